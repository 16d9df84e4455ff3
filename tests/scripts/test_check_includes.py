#!/usr/bin/env python3
"""Tests of scripts/check_includes.py on small made-up header trees: the order check names file, line and
edge for an upward and a peer include, keeps a listed exception and refuses a stale one; the compile check
fails a header that uses a declaration it does not include, also when it starts from a precompiled prefix.

  test_check_includes.py [CXX]     (CXX: the compiler for the compile cases; default clang++, else c++)
"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_includes.py"
ORDER = "core\nnn\nio data\nmodels\n"
failures = []


def make_tree(root: Path, headers: dict, exceptions: str = "") -> None:
    (root / "cmake").mkdir(parents=True)
    (root / "cmake" / "include_order.txt").write_text(ORDER)
    (root / "cmake" / "include_order_exceptions.txt").write_text(exceptions)
    for name, text in headers.items():
        path = root / "include" / "hyperadapt" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def run(root: Path, *args: str):
    p = subprocess.run([sys.executable, str(SCRIPT), *args, "--root", str(root)], text=True, capture_output=True)
    return p.returncode, p.stdout + p.stderr


def expect(case: str, condition: bool, output: str) -> None:
    print(("ok      " if condition else "FAILED  ") + case)
    if not condition:
        failures.append(case)
        print(output)


def order_cases(tmp: Path) -> None:
    base = {
        "core/errors.hpp": "#pragma once\nstruct error {};\n",
        "nn/layer.hpp": '#pragma once\n#include "hyperadapt/core/errors.hpp"\n',
        "io/file.hpp": '#pragma once\n#include "hyperadapt/nn/layer.hpp"\n',
        "models/model.hpp": '#pragma once\n#include "hyperadapt/io/file.hpp"\n',
    }
    root = tmp / "clean"
    make_tree(root, base)
    rc, out = run(root, "order")
    expect("a tree that follows the order passes", rc == 0 and "0 errors" in out, out)

    upward = dict(base)
    upward["io/file.hpp"] = '#pragma once\n#include "hyperadapt/nn/layer.hpp"\n#include "hyperadapt/models/model.hpp"\n'
    root = tmp / "upward"
    make_tree(root, upward)
    rc, out = run(root, "order")
    expect("an upward include fails, naming file:line and the edge",
           rc == 1 and 'include/hyperadapt/io/file.hpp:3: io -> models: #include "hyperadapt/models/model.hpp"' in out
           and "models is above io" in out, out)

    peer = dict(base)
    peer["data/table.hpp"] = '#pragma once\n#include "hyperadapt/io/file.hpp"\n'
    root = tmp / "peer"
    make_tree(root, peer)
    rc, out = run(root, "order")
    expect("an include between peers fails", rc == 1 and "data/table.hpp:2: data -> io" in out and "peers" in out, out)

    root = tmp / "allowed"
    make_tree(root, upward, "include/hyperadapt/io/file.hpp -> hyperadapt/models/model.hpp  # to be removed\n")
    rc, out = run(root, "order")
    expect("a listed exception passes", rc == 0 and "1 known exceptions" in out, out)

    root = tmp / "stale"
    make_tree(root, base, "# known\ninclude/hyperadapt/io/file.hpp -> hyperadapt/models/model.hpp\n")
    rc, out = run(root, "order")
    expect("a stale exception fails, naming its line",
           rc == 1 and "cmake/include_order_exceptions.txt:2:" in out and "delete the entry" in out, out)

    odd = dict(base)
    odd["misc/thing.hpp"] = "#pragma once\n"
    odd["models/model.hpp"] = '#pragma once\n#include "file.hpp"\n#include "hyperadapt/io/missing.hpp"\n'
    root = tmp / "odd"
    make_tree(root, odd)
    rc, out = run(root, "order")
    expect("an unknown folder, a relative include and a missing header fail",
           rc == 1 and "folder 'misc' is not in include_order.txt" in out and 'models/model.hpp:2: #include "file.hpp"' in out
           and 'models/model.hpp:3: #include "hyperadapt/io/missing.hpp": no such header' in out, out)


def compile_cases(tmp: Path, cxx: str) -> None:
    # A prefix (nn/layer.hpp) that three headers include and that brings <vector>; io/file.hpp uses
    # std::string without including <string> and must fail even though it starts from the prefix.
    headers = {
        "core/errors.hpp": "#pragma once\n#include <vector>\nstruct error { std::vector<int> v; };\n",
        "nn/layer.hpp": '#pragma once\n#include "hyperadapt/core/errors.hpp"\nstruct layer { error e; };\n',
        "io/file.hpp": '#pragma once\n#include "hyperadapt/nn/layer.hpp"\nstruct file { layer l; std::string name; };\n',
        "io/ok.hpp": '#pragma once\n#include <map>\n#include "hyperadapt/nn/layer.hpp"\nstruct ok { layer l; std::map<int, int> m; };\n',
        "data/table.hpp": '#pragma once\n#include "hyperadapt/nn/layer.hpp"\nstruct table { layer l; };\n',
        "models/model.hpp": "#pragma once\nstruct model { layer l; };\n",
    }
    root = tmp / "compile"
    make_tree(root, headers)
    for extra in ([], ["--no-pch"]):
        rc, out = run(root, "compile", "--cxx", cxx, "--jobs", "2", *extra)
        how = " ".join(extra) or "with prefixes"
        expect(f"compile ({how}): headers missing an include fail, the others pass",
               rc == 1 and "hyperadapt/io/file.hpp does not compile on its own" in out
               and "hyperadapt/models/model.hpp does not compile on its own" in out
               and "6 headers compiled on their own" in out and "2 failed" in out
               and (extra or "clang" not in Path(cxx).name or "3 of them starting from a precompiled header" in out), out)


def main() -> int:
    cxx = sys.argv[1] if len(sys.argv) > 1 else shutil.which("clang++") or "c++"
    with tempfile.TemporaryDirectory(prefix="check_includes_test_") as tmp:
        order_cases(Path(tmp))
        compile_cases(Path(tmp), cxx)
    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
