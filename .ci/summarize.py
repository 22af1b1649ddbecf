#!/usr/bin/env python3
"""CI arithmetic: totals from dotnet test's per-assembly summaries, and a package's line coverage merged
over every coverlet report (a line counts as covered when any test project covered it)."""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET


def tests(log_path):
    """Sums the per-assembly summaries, in either of dotnet test's formats: the one-line "Passed!  - Failed: F,
    Passed: P, Skipped: S" (minimal verbosity) or "Total tests: T" followed by "Passed: P" / "Failed: F" /
    "Skipped: S" lines (normal verbosity)."""
    one_line = re.compile(r"(?:Passed|Failed)!\s+-\s+Failed:\s+(\d+),\s+Passed:\s+(\d+),\s+Skipped:\s+(\d+)")
    total_line = re.compile(r"^Total tests:\s+(\d+)")
    count_line = re.compile(r"^\s+(Passed|Failed|Skipped):\s+(\d+)\s*$")
    counts = {"Passed": 0, "Failed": 0, "Skipped": 0}
    in_summary = False
    with open(log_path, encoding="utf-8", errors="replace") as log:
        for line in log:
            match = one_line.search(line)
            if match:
                counts["Failed"] += int(match.group(1))
                counts["Passed"] += int(match.group(2))
                counts["Skipped"] += int(match.group(3))
                in_summary = False
                continue
            if total_line.match(line):
                in_summary = True
                continue
            match = count_line.match(line) if in_summary else None
            if match:
                counts[match.group(1)] += int(match.group(2))
            else:
                in_summary = False
    print(counts["Passed"], counts["Failed"], counts["Skipped"])
    return 0


def coverage(results_dir, package, minimum):
    lines = {}
    for report in glob.glob(os.path.join(results_dir, "**", "coverage.cobertura.xml"), recursive=True):
        root = ET.parse(report).getroot()
        # Each report names files relative to its own source root; join them so every report agrees.
        sources = [s.text or "" for s in root.iter("source")]
        for pkg in root.iter("package"):
            if pkg.get("name") != package:
                continue
            for cls in pkg.iter("class"):
                name = cls.get("filename")
                if not os.path.isabs(name) and len(sources) == 1:
                    name = os.path.normpath(os.path.join(sources[0], name))
                if name.endswith(".g.cs"):
                    continue  # source-generated (LoggerMessage): not code we wrote
                for line in cls.iter("line"):
                    key = (name, line.get("number"))
                    lines[key] = lines.get(key, False) or int(line.get("hits", "0")) > 0
    if not lines:
        print(f"{package}: no coverage data found")
        return 1
    percent = 100.0 * sum(lines.values()) / len(lines)
    print(f"{package} line coverage: {percent:.1f}% of {len(lines)} lines, generated code excluded (minimum {minimum}%)")
    return 0 if percent >= float(minimum) else 1


if __name__ == "__main__":
    if sys.argv[1] == "tests":
        sys.exit(tests(sys.argv[2]))
    sys.exit(coverage(sys.argv[2], sys.argv[3], sys.argv[4]))
