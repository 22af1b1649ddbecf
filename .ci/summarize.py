#!/usr/bin/env python3
"""CI arithmetic: totals from dotnet test's per-assembly summaries, and a package's line coverage merged
over every coverlet report (a line counts as covered when any test project covered it)."""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET


def tests(log_path):
    pattern = re.compile(r"(?:Passed|Failed)!\s+-\s+Failed:\s+(\d+),\s+Passed:\s+(\d+),\s+Skipped:\s+(\d+)")
    passed = failed = skipped = 0
    with open(log_path, encoding="utf-8", errors="replace") as log:
        for line in log:
            match = pattern.search(line)
            if match:
                failed += int(match.group(1))
                passed += int(match.group(2))
                skipped += int(match.group(3))
    print(passed, failed, skipped)
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
