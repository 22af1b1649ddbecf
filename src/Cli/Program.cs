return await ProcHex.Cli.CliApp.MainAsync(args);
