#!/usr/bin/env python3
"""Counts the host round trips written in the step's code (issue 13: "no layer copies to or from the host during
forward or backward"; "no host fallback remains (static check)").

  check_host_copies.py [--root DIR] [--allowed FILE]

Scans include/hyperadapt/{layers,loss,models} for calls that copy between host and backend memory or wait for the
device: .to_host(, copy_to_host(, copy_from_host(, from_host(, host_values(, synchronize( (comment lines
skipped). cmake/host_copies_allowed.txt lists, per header, how many such calls it may hold and why. Fails, naming
file and line, when a header holds more than its entry allows or has no entry; fails too when a header holds
fewer than its entry says (lower the entry: the list only shrinks). Prints the total, which issue 13 wants at
zero.

A ratchet, not a proof: a call counted here may never run in training (a path for callers that did not hand the
host values over), and a round trip hidden behind a helper elsewhere is not seen (test_train_host_round_trips
counts what a step really does).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

CALL_RE = re.compile(r"\.to_host\(|copy_to_host\(|copy_from_host\(|from_host\(|host_values\(|synchronize\(")
FOLDERS = ("layers", "loss", "models")


def count_calls(root: Path) -> dict[str, list[int]]:
    """Header path (relative to root) -> the line numbers of its calls."""
    found: dict[str, list[int]] = {}
    for folder in FOLDERS:
        for header in sorted((root / "include" / "hyperadapt" / folder).rglob("*.hpp")):
            lines = []
            for number, line in enumerate(header.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("//", 1)[0]
                lines += [number] * len(CALL_RE.findall(code))
            if lines:
                found[header.relative_to(root).as_posix()] = lines
    return found


def read_allowed(path: Path) -> dict[str, int]:
    """'<header> <count>  # why' per line; blank lines and lines starting with # are skipped."""
    allowed: dict[str, int] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise SystemExit(f"{path}:{number}: expected '<header> <count>  # why', got {raw!r}")
        if parts[0] in allowed:
            raise SystemExit(f"{path}:{number}: {parts[0]} is listed twice")
        allowed[parts[0]] = int(parts[1])
    return allowed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--allowed", type=Path)
    args = parser.parse_args()
    allowed_path = args.allowed or args.root / "cmake" / "host_copies_allowed.txt"
    allowed = read_allowed(allowed_path)
    found = count_calls(args.root)
    errors = []
    for header, lines in found.items():
        limit = allowed.get(header)
        where = ", ".join(f"{header}:{n}" for n in lines)
        if limit is None:
            errors.append(f"{header}: {len(lines)} host round trip(s) and no entry in {allowed_path.name} ({where})")
        elif len(lines) > limit:
            errors.append(f"{header}: {len(lines)} host round trip(s), {limit} allowed ({where})")
        elif len(lines) < limit:
            errors.append(f"{header}: {len(lines)} host round trip(s) but {limit} allowed: lower its entry in "
                          f"{allowed_path.name} to {len(lines)}")
    for header, limit in allowed.items():
        if header not in found and limit > 0:
            errors.append(f"{header}: no host round trip left (or no such header): remove its entry from {allowed_path.name}")
    total = sum(len(v) for v in found.values())
    print(f"check_host_copies.py: {total} host round trip(s) in {len(found)} header(s) of "
          f"{', '.join(FOLDERS)}; issue 13 wants none; {len(errors)} error(s)")
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
