#!/usr/bin/env python3
"""Checks the public headers of include/hyperadapt (docs/design.md, "Folder order").

  check_includes.py order [--root DIR]
      Every '#include "hyperadapt/..."' must point down the folder order of cmake/include_order.txt (or stay
      in its own folder), except the edges listed in cmake/include_order_exceptions.txt. A header must name
      the others as "hyperadapt/<folder>/<file>" so that every edge is seen, and the file must exist.
      Prints file:line and the offending edge for each violation; fails on any, and on an exception entry
      that no longer matches an include (so the list only shrinks).

  check_includes.py compile [--root DIR] [--cxx CXX] [--jobs N] [-I DIR ...] [--skip-header NAME ...]
      Compiles every public header on its own (a translation unit holding only '#include "<header>"',
      C++20, no warnings asked for: the project's builds check those), in parallel. Headers that need nvcc
      (*.cuh, or a closure that includes <cuda_runtime.h> or <cublas_v2.h>) are left out, as are headers
      whose closure includes a --skip-header (a system header this machine lacks); both lists are printed.

      To keep this cheap (CI has no time to spare), clang compiles a header on top of a precompiled header
      of ONE header that it includes itself, directly or through others: the costliest to parse among
      those that serve at least three headers. That prefix was compiled on its own into the precompiled
      header (which is its check). The translation unit sees nothing the header's own includes would not
      bring, so a header that uses a declaration it does not include still fails, in its own translation
      unit. With another compiler, or --no-pch, every header is compiled from scratch (about twice the CPU
      time).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
HEADER_SUFFIXES = (".hpp", ".h", ".cuh")
# System headers that cost many times a small one to parse (measured with clang 14 and libstdc++ 12).
HEAVY_SYSTEM_HEADERS = {"nlohmann/json.hpp": 40, "Eigen/Core": 25, "unsupported/Eigen/SpecialFunctions": 20,
                        "regex": 10, "filesystem": 8, "fstream": 5, "sstream": 4, "map": 3, "functional": 3}
# A precompiled prefix costs about one compile more than a plain check; it pays from three users on.
MIN_PREFIX_USERS = 3
# Headers that only nvcc compiles: leaving these out of the compile check is the one gap; test_cuda_backend
# and test_cuda_models compile them (HYPERADAPT_ENABLE_CUDA, on whenever scripts/test.sh finds nvcc).
CUDA_SYSTEM_HEADERS = {"cuda_runtime.h", "cublas_v2.h", "cuda.h"}


class Header:
    def __init__(self, root: Path, path: Path):
        self.path = path
        self.name = path.relative_to(root / "include").as_posix()  # "hyperadapt/layers/linear.hpp"
        parts = path.relative_to(root / "include" / "hyperadapt").parts
        self.folder = parts[0] if len(parts) > 1 else ""
        self.includes: list[tuple[int, str, str]] = []  # (line, "<" or '"', target)
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if m:
                    self.includes.append((number, m.group(1), m.group(2)))


def load_headers(root: Path) -> dict[str, Header]:
    base = root / "include" / "hyperadapt"
    if not base.is_dir():
        sys.exit(f"check_includes.py: {base} is not a directory (give the repository with --root)")
    found = sorted(p for p in base.rglob("*") if p.is_file() and p.name.endswith(HEADER_SUFFIXES))
    return {h.name: h for h in (Header(root, p) for p in found)}


def read_order(path: Path) -> dict[str, int]:
    rank: dict[str, int] = {}
    level = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        for w in words:
            if w in rank:
                sys.exit(f"{path}:{number}: folder '{w}' appears twice")
            rank[w] = level
        level += 1
    if not rank:
        sys.exit(f"{path}: no folders")
    return rank


def read_exceptions(path: Path) -> dict[tuple[str, str], int]:
    allowed: dict[tuple[str, str], int] = {}
    if not path.exists():
        return allowed
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        m = re.fullmatch(r"(\S+)\s*->\s*(\S+)", text)
        if not m:
            sys.exit(f"{path}:{number}: expected '<header> -> <included header>', got '{text}'")
        allowed[(m.group(1), m.group(2))] = number
    return allowed


def check_order(root: Path) -> int:
    order_file = root / "cmake" / "include_order.txt"
    exceptions_file = root / "cmake" / "include_order_exceptions.txt"
    rank = read_order(order_file)
    allowed = read_exceptions(exceptions_file)
    headers = load_headers(root)
    used: set[tuple[str, str]] = set()
    errors: list[str] = []
    edges = 0
    for h in headers.values():
        where = h.path.relative_to(root).as_posix()
        if h.folder not in rank:
            errors.append(f"{where}: folder '{h.folder or '(none)'}' is not in {order_file.name}: add it at its rank")
            continue
        for line, kind, target in h.includes:
            if not target.startswith("hyperadapt/"):
                if kind == '"':
                    errors.append(f'{where}:{line}: #include "{target}": name public headers as "hyperadapt/<folder>/<file>"')
                continue
            edges += 1
            if target not in headers:
                errors.append(f'{where}:{line}: #include "{target}": no such header under include/')
                continue
            to = headers[target].folder
            if to == h.folder or (to in rank and rank[to] < rank[h.folder]):
                continue
            key = (where, target)
            if key in allowed:
                used.add(key)
                continue
            if to not in rank:
                why = f"'{to}' is not in {order_file.name}"
            elif rank[to] == rank[h.folder]:
                why = f"{h.folder} and {to} are peers in {order_file.name} and may not include each other"
            else:
                why = f"{to} is above {h.folder} in {order_file.name}"
            errors.append(f'{where}:{line}: {h.folder} -> {to}: #include "{target}": {why}')
    for key, number in sorted(allowed.items(), key=lambda kv: kv[1]):
        if key not in used:
            errors.append(f"{exceptions_file.relative_to(root)}:{number}: '{key[0]} -> {key[1]}' no longer "
                          "breaks the order (or is gone): delete the entry")
    for e in errors:
        print(e)
    print(f"check_includes.py order: {len(headers)} headers, {edges} hyperadapt include edges, "
          f"{len(used)} known exceptions, {len(errors)} errors")
    return 1 if errors else 0


def closures(headers: dict[str, Header]) -> dict[str, tuple[set[str], set[str]]]:
    """For each header: (hyperadapt headers it reaches, itself included; system headers they include)."""
    memo: dict[str, tuple[set[str], set[str]]] = {}

    def visit(name: str, stack: tuple[str, ...]) -> tuple[set[str], set[str]]:
        if name in memo:
            return memo[name]
        inner, system = {name}, set()
        for _, kind, target in headers[name].includes:
            if target in headers:
                if target not in stack:
                    sub_inner, sub_system = visit(target, stack + (target,))
                    inner |= sub_inner
                    system |= sub_system
            elif kind == "<" or not target.startswith("hyperadapt/"):
                system.add(target)
        memo[name] = (inner, system)
        return memo[name]

    for name in headers:
        visit(name, (name,))
    return memo


def parse_weight(closure: tuple[set[str], set[str]]) -> int:
    """A rough parse cost of a header's closure, in units of a small hyperadapt header."""
    inner, system = closure
    return len(inner) + sum(HEAVY_SYSTEM_HEADERS.get(h, 1) for h in system)


def compiler_search_dirs(cxx: str) -> set[str]:
    """The directories the compiler searches for <...> by itself."""
    p = subprocess.run([cxx, "-x", "c++", "-E", "-v", "-"], input="", text=True, capture_output=True)
    lines = p.stderr.splitlines()
    try:
        first = lines.index("#include <...> search starts here:") + 1
        last = lines.index("End of search list.")
    except ValueError:
        return set()
    return {os.path.realpath(line.split(" (")[0].strip()) for line in lines[first:last]}


def run_compiler(command: list[str], source: str) -> tuple[int, str, float]:
    start = time.monotonic()
    p = subprocess.run(command, input=source, text=True, capture_output=True)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - start


def check_compile(root: Path, cxx: str, jobs: int, include_dirs: list[str], skip_headers: list[str],
                  use_pch: bool, verbose: bool) -> int:
    headers = load_headers(root)
    reach = closures(headers)
    base = [cxx, "-std=c++20", "-I", str(root / "include")]
    for d in include_dirs:
        base += ["-isystem", d]

    checked: list[str] = []
    left_out: list[str] = []
    for name in sorted(headers):
        system = reach[name][1]
        missing = sorted(system & set(skip_headers))
        if name.endswith(".cuh") or system & CUDA_SYSTEM_HEADERS:
            left_out.append(f"{name} (needs nvcc)")
        elif missing:
            left_out.append(f"{name} (needs <{'>, <'.join(missing)}>, not on this machine)")
        else:
            checked.append(name)

    # Each header's prefix: of the headers in its own closure that prefix at least MIN_PREFIX_USERS headers,
    # the one that costs most to parse (parse_weight). With clang, a prefix is compiled on its own into a
    # precompiled header (that is its check), and the headers it prefixes start from it.
    version = subprocess.run([cxx, "--version"], text=True, capture_output=True).stdout.lower()
    use_prefixes = use_pch and "clang" in version
    candidates = set(checked) if use_prefixes else set()
    while True:
        parent: dict[str, str | None] = {}
        for name in checked:
            options = [c for c in reach[name][0] if c != name and c in candidates]
            parent[name] = max(options, key=lambda c: (parse_weight(reach[c]), c)) if options else None
        users = {c: sum(1 for p in parent.values() if p == c) for c in candidates}
        weakest = min(candidates, key=lambda c: (users[c], parse_weight(reach[c]), c), default=None)
        if weakest is None or users[weakest] >= MIN_PREFIX_USERS:
            break
        candidates.discard(weakest)  # one at a time: its users may make another candidate worth keeping
    prefixes = {p for p in parent.values() if p}
    # A prefix is compiled from scratch: clang 14 crashes, or loses libstdc++'s internal macros, reading
    # chains of precompiled headers.
    depends = {name: None if name in prefixes else parent[name] for name in checked}

    start = time.monotonic()
    failures: dict[str, str] = {}
    timings: list[tuple[float, str]] = []
    pch: dict[str, Path | None] = {}  # built precompiled headers (None: that header failed)
    with tempfile.TemporaryDirectory(prefix="hyperadapt_headers_") as tmp, \
            concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:

        def submit(index: int, name: str):
            # The nearest prefix that compiled: a failed one only costs its dependants the time.
            command = list(base)
            before = depends[name]
            if before is not None and pch[before] is not None:  # else from scratch
                command += ["-include-pch", str(pch[before])]
            if name in prefixes:
                stub = Path(tmp) / f"h{index}.hpp"
                stub.write_text(f'#include "{name}"\n', encoding="utf-8")
                command += ["-fpch-instantiate-templates", "-x", "c++-header", str(stub), "-o", str(stub) + ".pch"]
                return pool.submit(run_compiler, command, "")
            return pool.submit(run_compiler, command + ["-fsyntax-only", "-x", "c++", "-"], f'#include "{name}"\n')

        index = {name: i for i, name in enumerate(checked)}
        waiting = set(checked)
        running: dict[concurrent.futures.Future, str] = {}
        while waiting or running:
            for name in sorted(waiting):
                if depends[name] is None or depends[name] in pch:
                    running[submit(index[name], name)] = name
                    waiting.discard(name)
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                rc, out, seconds = future.result()
                timings.append((seconds, name))
                if rc != 0:
                    failures[name] = out
                if name in prefixes:
                    pch[name] = Path(tmp) / f"h{index[name]}.hpp.pch" if rc == 0 else None
    elapsed = time.monotonic() - start

    for name, out in sorted(failures.items()):
        print(f"--- {name} does not compile on its own:")
        print("\n".join(out.splitlines()[:30]))
    for item in left_out:
        print(f"left out: {item}")
    if verbose:
        for seconds, name in sorted(timings, reverse=True):
            after = f"  (after {depends[name]})" if depends[name] else ""
            after += "  (precompiled)" if name in prefixes else ""
            print(f"{seconds:6.2f} s  {name}{after}")
    how = (f"{sum(1 for n in checked if depends[n])} of them starting from a precompiled header they include, "
           f"{len(prefixes)} precompiled") if use_prefixes else "each from scratch"
    print(f"check_includes.py compile: {len(checked)} headers compiled on their own with {Path(cxx).name} "
          f"({how}), {len(left_out)} left out, {len(failures)} failed, {elapsed:.1f} s with {jobs} jobs")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["order", "compile"])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--cxx", default=shutil.which("clang++") or os.environ.get("CXX") or "c++",
                        help="the compiler (default: clang++, whose precompiled headers make this cheap)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("-I", dest="include_dirs", action="append", default=[],
                        help="a system include directory (Eigen, utf8proc, ...)")
    parser.add_argument("--include-path", default="", help="system include directories separated by '|' (CMake)")
    parser.add_argument("--skip-header", action="append", default=[],
                        help="a system header this machine lacks: headers that reach it are left out")
    parser.add_argument("--no-pch", action="store_true", help="compile every header from scratch (the default "
                        "with a compiler other than clang)")
    parser.add_argument("--verbose", action="store_true", help="print each compile's time")
    a = parser.parse_args()
    root = a.root.resolve()
    if a.mode == "order":
        return check_order(root)
    # The compiler's own directories stay out: naming /usr/include again breaks libstdc++'s #include_next.
    default_dirs = compiler_search_dirs(a.cxx)
    include_dirs = []
    for d in a.include_dirs + a.include_path.split("|"):
        if d and os.path.realpath(d) not in default_dirs and d not in include_dirs:
            include_dirs.append(d)
    return check_compile(root, a.cxx, a.jobs, include_dirs, a.skip_header, not a.no_pch,
                         a.verbose)


if __name__ == "__main__":
    sys.exit(main())
