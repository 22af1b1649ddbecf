using Microsoft.Extensions.Logging;
using ProcHex.Ports;

namespace ProcHex.Breakpoints;

/// <summary>
/// Breakpoint bookkeeping for one victim (S14–S16): which addresses hold traps, what they replaced, and who
/// wants them. Callers hold the victim lock.
/// </summary>
internal sealed class BreakpointSet
{
    private readonly Dictionary<ulong, BreakpointSite> _sites = [];
    private readonly ITracedProcess _process;
    private readonly ILogger _logger;

    public BreakpointSet(ITracedProcess process, ILogger logger)
    {
        _process = process;
        _logger = logger;
    }

    public int Count => _sites.Count;

    public bool TryGet(ulong address, out BreakpointSite site) => _sites.TryGetValue(address, out site!);

    public bool IsActive(ulong address) => _sites.TryGetValue(address, out var site) && site.Active;

    /// <summary>
    /// Records a breakpoint and, unless <paramref name="plant"/> is false (the lifecycle keeps traps out: idle, a fork,
    /// a release), writes its trap. A trap that cannot be written leaves the breakpoint recorded but inactive (S15);
    /// so does one added while traps are kept out, until the lifecycle puts them back (<see cref="EnableAll"/>).
    /// </summary>
    public BreakpointSite Add(ulong address, SiteRoles roles, ClientBreakpoint? client, bool plant)
    {
        if (!_sites.TryGetValue(address, out var site))
        {
            site = new BreakpointSite(address);
            _sites.Add(address, site);
        }

        site.Roles |= roles;
        if (client is not null)
        {
            site.AddClient(client);
        }

        if (plant && !site.Active)
        {
            TryPlant(site);
        }

        return site;
    }

    /// <summary>Drops a client; a site nobody wants any more gets its original text back, if the text is in reach (S16).</summary>
    public void RemoveClient(ClientBreakpoint client, bool restoreText)
    {
        if (!_sites.TryGetValue(client.Address, out var site))
        {
            return;
        }

        site.RemoveClient(client);
        DropIfUnused(site, restoreText);
    }

    /// <summary>Drops an internal role; a site nobody wants any more gets its original text back, if the text is in reach.</summary>
    public void RemoveRole(ulong address, SiteRoles role, bool restoreText)
    {
        if (!_sites.TryGetValue(address, out var site))
        {
            return;
        }

        site.Roles &= ~role;
        DropIfUnused(site, restoreText);
    }

    private void DropIfUnused(BreakpointSite site, bool restoreText)
    {
        if (!site.IsUnused)
        {
            return;
        }

        if (site.Active && restoreText)
        {
            TryRemove(site);
        }

        _sites.Remove(site.Address);
    }

    /// <summary>Retries every inactive breakpoint (bpenable).</summary>
    public void EnableAll()
    {
        foreach (var site in _sites.Values)
        {
            if (!site.Active)
            {
                TryPlant(site);
            }
        }
    }

    /// <summary>Takes every trap out of the text (bpdisable); a site that cannot be restored stays active.</summary>
    public void DisableAll()
    {
        foreach (var site in _sites.Values)
        {
            if (site.Active)
            {
                TryRemove(site);
            }
        }
    }

    /// <summary>
    /// Forgets every breakpoint (bpdestroy). Text is restored only for active sites and only when
    /// <paramref name="restoreText"/> says the victim is neither dead nor lost (S16). Client breakpoints end.
    /// </summary>
    public void Clear(bool restoreText)
    {
        foreach (var site in _sites.Values)
        {
            if (restoreText && site.Active)
            {
                TryRemove(site);
            }

            foreach (var client in site.Clients)
            {
                client.IsPlanted = false;
            }
        }

        _sites.Clear();
    }

    private void TryPlant(BreakpointSite site)
    {
        try
        {
            site.Patch = Retry.OnInterrupt((_process, site.Address), static s => s._process.PlantBreakpoint(s.Address));
            site.Active = true;
        }
        catch (TracerException ex)
        {
            Log.BreakpointNotPlanted(_logger, _process.Pid, site.Address, ex.Message);
        }
    }

    private void TryRemove(BreakpointSite site)
    {
        try
        {
            Retry.Persistently((_process, site.Patch), static s => s._process.RemoveBreakpoint(s.Patch));
            site.Active = false;
        }
        catch (TracerException ex)
        {
            Log.BreakpointNotRemoved(_logger, _process.Pid, site.Address, ex.Message);
        }
    }
}
