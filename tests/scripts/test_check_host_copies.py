#!/usr/bin/env python3
"""Tests of scripts/check_host_copies.py on a made-up header tree: a header over its allowance fails naming the
lines, one under it fails asking to lower the entry, one without an entry fails, comments are not counted."""
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_host_copies.py"


def run(root: Path, allowed: str) -> tuple[int, str]:
    (root / "allowed.txt").write_text(allowed)
    p = subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), "--allowed", str(root / "allowed.txt")],
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def main() -> int:
    failures = []

    def expect(cond: bool, what: str, out: str) -> None:
        if not cond:
            failures.append(f"{what}:\n{out}")

    with tempfile.TemporaryDirectory(prefix="check_host_copies_test_") as tmp:
        root = Path(tmp)
        layers = root / "include" / "hyperadapt" / "layers"
        layers.mkdir(parents=True)
        (layers / "a.hpp").write_text("int f() {\n  auto h = x.to_host();  // one\n  // y.to_host() in a comment\n"
                                      "  b.copy_from_host(p, q, n);\n}\n")
        name = "include/hyperadapt/layers/a.hpp"
        rc, out = run(root, f"{name} 2  # why\n")
        expect(rc == 0 and "2 host round trip(s)" in out, "exact allowance passes", out)
        rc, out = run(root, f"{name} 1  # why\n")
        expect(rc == 1 and f"{name}:2" in out and f"{name}:4" in out, "over the allowance fails naming lines", out)
        rc, out = run(root, f"{name} 3  # why\n")
        expect(rc == 1 and "lower its entry" in out, "under the allowance fails", out)
        rc, out = run(root, "# nothing\n")
        expect(rc == 1 and "no entry" in out, "a header without an entry fails", out)
        rc, out = run(root, f"{name} 2\ninclude/hyperadapt/layers/gone.hpp 1\n")
        expect(rc == 1 and "remove its entry" in out, "a stale entry fails", out)
    for f in failures:
        print("FAILED:", f)
    print(f"test_check_host_copies: {5 - len(failures)} of 5 passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
