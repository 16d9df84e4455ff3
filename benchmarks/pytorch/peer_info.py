#!/usr/bin/env python3
"""What each side of a PyTorch comparison ran: threads, libraries and kernels. Used by benchmarks/compare_*.sh.

  peer_info.py torch [--threads N] [--no-probe]   PyTorch (run it with the peer's python): version, threads,
        OpenMP, CPU capability, MKL and oneDNN (present, version, ISA), whether oneDNN's bf16 path is usable
        (torch.ops.mkldnn._is_mkldnn_bf16_supported), and, from a probe in a child process with oneDNN's and
        MKL's verbose modes on, which library each GEMM of a Linear and of a batched matmul went to, fp32 and
        under bf16 autocast, forward and backward, plus the SDPA backend PyTorch picks with and without dropout.
  peer_info.py ours BINARY [--build DIR]          hyperadapt's benchmark binary: the CBLAS library it loads
        (OpenBLAS's build config, core and threading model) and how the build was configured (-march=native).
Prints one JSON object; --text prints the summary lines the compare scripts show instead. Only the standard
library is needed for `ours`."""
import argparse
import ctypes
import json
import os
import re
import subprocess
import sys

PROBE_OPS = ("linear", "bmm")


# ---------------------------------------------------------------------------------------------------- PyTorch
def _probe(threads):
    """Child process: runs each probe op with oneDNN and MKL verbose on, with a marker line before each."""
    import torch
    torch.set_num_threads(threads)
    libc = ctypes.CDLL(None)

    def mark(text):
        sys.stdout.flush()
        libc.fflush(None)
        os.write(1, f"### {text}\n".encode())

    torch.manual_seed(0)
    lin = torch.nn.Linear(384, 1536)
    x = torch.randn(2048, 384)
    q = torch.randn(16, 12, 128, 32)
    with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON), \
            torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
        for precision in ("fp32", "bf16"):
            for op in PROBE_OPS:
                mark(f"{precision} {op}")
                xx = (x if op == "linear" else q).detach().requires_grad_(True)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    y = lin(xx) if op == "linear" else xx @ xx.transpose(-1, -2)
                y.float().sum().backward()
        mark("end")
        x.to_mkldnn()  # a oneDNN reorder, so its verbose header names the ISA even when no GEMM went to oneDNN


def _parse_probe(text):
    kernels = {p: {op: [] for op in PROBE_OPS} for p in ("fp32", "bf16")}
    isa, mkl_header, where = None, None, None
    for line in text.splitlines():
        if line.startswith("### "):
            parts = line[4:].split()
            where = parts if len(parts) == 2 else None
            continue
        name = None
        if line.startswith("MKL_VERBOSE"):
            if "(" not in line.split()[1]:
                mkl_header = line[len("MKL_VERBOSE "):].strip()
                continue
            name = "MKL " + line.split()[1].split("(")[0]
        elif line.startswith("onednn_verbose"):
            f = line.split(",")
            if "isa:" in line:
                isa = next(x for x in f if x.startswith("isa:"))[4:]
            if "exec" in f:
                i = f.index("exec")
                if f[i + 2] != "reorder":
                    name = f"oneDNN {f[i + 2]} {f[i + 3]}"
        if name and where:
            got = kernels[where[0]][where[1]]
            if name not in got:
                got.append(name)
    for p in kernels.values():
        for op, got in p.items():
            p[op] = got or ["ATen's own kernel (no MKL or oneDNN call)"]
    return kernels, isa, mkl_header


def _sdpa_choices():
    import torch
    if not hasattr(torch, "_fused_sdp_choice"):
        return {}
    try:
        from torch.nn.attention import SDPBackend
        name = lambda i: SDPBackend(i).name.lower()  # noqa: E731
    except Exception:  # older torch: the raw enum value
        name = str
    out = {}
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        q = torch.randn(16, 12, 128, 32, dtype=dtype)
        mask = torch.zeros(16, 1, 1, 128, dtype=dtype)
        for mode, p in (("infer", 0.0), ("train", 0.1)):
            try:
                out[f"{precision} {mode}"] = name(torch._fused_sdp_choice(q, q, q, mask, p, False))
            except Exception as e:  # an API change must not stop a benchmark
                out[f"{precision} {mode}"] = f"unknown ({type(e).__name__})"
    return out


def torch_info(threads=None, probe=True):
    import torch
    if threads:
        torch.set_num_threads(threads)
    cfg = torch.__config__.show()
    par = torch.__config__.parallel_info()

    def find(pattern, text):
        m = re.search(pattern, text)
        return m.group(1).strip() if m else None

    bf16_check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    info = {
        "torch": torch.__version__,
        "python": sys.executable,
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "parallel_backend": find(r"ATen parallel backend: (.*)", par),
        "omp_max_threads": find(r"omp_get_max_threads\(\) : (\d+)", par),
        "mkl_max_threads": find(r"mkl_get_max_threads\(\) : (\d+)", par),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS",
                                               "ATEN_CPU_CAPABILITY")},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": find(r"BLAS_INFO=([^,]*)", cfg),
        "mkl_available": torch.backends.mkl.is_available(),
        "mkl_version": find(r"Math Kernel Library Version ([\d.]+)", cfg),
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
        "onednn_version": find(r"MKL-DNN (v\S+)", cfg),
        "mkldnn_bf16_supported": bool(bf16_check()) if bf16_check else None,
        "sdpa": _sdpa_choices(),
    }
    if probe:
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "_probe", str(info["num_threads"])],
                           capture_output=True, text=True, timeout=300)
        if r.returncode == 0:
            info["kernels"], info["onednn_isa"], info["mkl_verbose"] = _parse_probe(r.stdout)
        else:
            info["kernels_error"] = r.stderr.strip().splitlines()[-1:] or [f"exit {r.returncode}"]
    return info


def torch_text(info, indent=""):
    yes = lambda b: "yes" if b else "no" if b is not None else "?"  # noqa: E731
    lines = [
        f"PyTorch {info['torch']} ({info['python']}): torch.get_num_threads() {info['num_threads']}, "
        f"interop {info['num_interop_threads']}, {info['parallel_backend']} (omp {info['omp_max_threads']}, "
        f"mkl {info['mkl_max_threads']} threads), CPU capability {info['cpu_capability']}, BLAS {info['blas']}",
        f"  MKL {yes(info['mkl_available'])} ({info['mkl_version']}), oneDNN {yes(info['mkldnn_available'])} "
        f"({info['onednn_version']}, enabled {yes(info['mkldnn_enabled'])}, ISA {info.get('onednn_isa') or '?'}), "
        f"oneDNN bf16 supported (torch.ops.mkldnn._is_mkldnn_bf16_supported) {yes(info['mkldnn_bf16_supported'])}",
    ]
    for precision, ops in info.get("kernels", {}).items():
        what = "; ".join(f"{op} {', '.join(k)}" for op, k in ops.items())
        lines.append(f"  {precision}{' autocast' if precision == 'bf16' else ''} GEMMs (fwd+bwd): {what}")
    if "kernels_error" in info:
        lines.append(f"  kernel probe failed: {info['kernels_error']}")
    if info.get("sdpa"):
        lines.append("  SDPA backend: " + ", ".join(f"{k} {v}" for k, v in info["sdpa"].items())
                     + " (train = dropout 0.1)")
    return "\n".join(indent + x for x in lines)


# ---------------------------------------------------------------------------------------------------- ours
def ours_info(binary, build=None):
    info = {"binary": binary, "blas": None}
    try:
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        ldd = ""
    m = re.search(r"(lib(?:open)?blas[^\s]*\.so[^\s]*) => (\S+)", ldd)
    if m:
        path = os.path.realpath(m.group(2))
        info["blas"] = {"library": m.group(2), "file": path}
        try:
            lib = ctypes.CDLL(m.group(2))
            for fn in ("openblas_get_config", "openblas_get_corename"):
                getattr(lib, fn).restype = ctypes.c_char_p
            info["blas"].update(config=lib.openblas_get_config().decode(),
                                core=lib.openblas_get_corename().decode(),
                                threading={0: "sequential", 1: "pthreads", 2: "OpenMP"}.get(
                                    lib.openblas_get_parallel(), "?"))
        except (OSError, AttributeError):
            pass  # not OpenBLAS: the path says which
    if build:
        cache = os.path.join(build, "CMakeCache.txt")
        if os.path.exists(cache):
            text = open(cache).read()
            for key in ("CMAKE_BUILD_TYPE", "HYPERADAPT_NATIVE", "CMAKE_CXX_FLAGS", "CMAKE_CXX_COMPILER"):
                m = re.search(rf"^{key}:\w+=(.*)$", text, re.M)
                if m:
                    info[key] = m.group(1)
    flags = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    info["cpu_simd"] = sorted(f for f in flags if re.match(r"avx|fma|amx", f))
    return info


def ours_text(info, indent=""):
    native = info.get("HYPERADAPT_NATIVE")
    build = (f"{info.get('CMAKE_BUILD_TYPE', '?')} build, "
             f"{'-march=native' if native == 'ON' else 'no -march=native' if native else 'flags unknown'}"
             f"{' ' + info['CMAKE_CXX_FLAGS'] if info.get('CMAKE_CXX_FLAGS') else ''}")
    lines = [f"hyperadapt {os.path.basename(info['binary'])}: {build}; CPU SIMD {' '.join(info['cpu_simd']) or '?'}",
             "  eigen: Eigen's GEMM compiled into the binary (the ISA the build flags allow)"]
    b = info.get("blas")
    if b and "config" in b:
        lines.append(f"  cblas: {b['config']} (core {b['core']}, {b['threading']} threads) from {b['file']}")
    elif b:
        lines.append(f"  cblas: {b['file']}")
    else:
        lines.append("  cblas: no BLAS library linked")
    return "\n".join(indent + x for x in lines)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_probe":
        _probe(int(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="side", required=True)
    t = sub.add_parser("torch")
    t.add_argument("--threads", type=int)
    t.add_argument("--no-probe", action="store_true")
    t.add_argument("--text", action="store_true")
    o = sub.add_parser("ours")
    o.add_argument("binary")
    o.add_argument("--build")
    o.add_argument("--text", action="store_true")
    a = ap.parse_args()
    if a.side == "torch":
        info = torch_info(a.threads, not a.no_probe)
        print(torch_text(info) if a.text else json.dumps(info))
    else:
        info = ours_info(a.binary, a.build)
        print(ours_text(info) if a.text else json.dumps(info))


if __name__ == "__main__":
    main()
