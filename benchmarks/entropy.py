"""Time, peak extra memory and accuracy of `eapo.token_entropy` vs TRL's `entropy_from_logits`.

Both functions get the same `(batch, length, vocab)` logits, `3 * randn` with a fixed seed (so the
distribution is not flat), in float32 and in bfloat16 (the bfloat16 logits are the float32 ones rounded),
and run under `torch.no_grad()` with their default chunking (eapo's device default, 2**20 elements on CPU and 2**24 on
GPU, unless `--chunk-elements` says otherwise, `chunk_size=128` rows for TRL).

One fresh worker process (this script with a hidden flag) per (dtype, function):
1. imports torch, eapo and TRL, sets the thread count and primes the function on two rows of
   logits, so one-time set-up is not counted;
2. allocates the full logits, generated a few rows at a time straight into the result, so no temporary
   larger than a few rows exists, and every page is written (touched);
3. on CPU: resets the resident-memory high-water mark (`/proc/self/clear_refs`, where writable), reads
   the current resident size (`/proc/self/statm`), calls the function once, then reads the high-water
   mark `ru_maxrss` of `resource.getrusage(RUSAGE_SELF)`. Peak extra = ru_maxrss after - RSS before:
   the growth beyond the logits (and everything else already resident). A fresh process matters: the
   allocator keeps freed memory for reuse, so a second call in the same process can show little or no
   growth. The minor page faults taken during the call are reported too (each fresh page costs one).
   On CUDA: `torch.cuda.max_memory_allocated() - torch.cuda.memory_allocated()` around the call;
4. that call is also the warm-up; then `--repeats` timed calls (wall clock, median reported);
5. the maximum absolute difference of the result vs a float64 reference `sum(-p log p)`, `p` the float64
   softmax of the same (already rounded) logits, on 64 rows spread over the batch. TRL computes in the
   input dtype (bfloat16 in, bfloat16 out), eapo always in float32.

Threads: default 1. On the 2-vCPU VM this was written on, 2 OpenMP threads stall whenever the host
deschedules a vCPU, and the numbers become noise. Pass `--threads N` on a machine with dedicated cores.

Runtime with the defaults on that VM (1 thread): 4-6 s per call, 6 s to generate the logits and 8 s of
imports per worker, about 2.5 minutes in all. Memory: each worker holds one copy of the logits (2.3 GiB in
float32 at the default size) plus the work space.

Usage: python benchmarks/entropy.py [--batch 4 --length 1024 --vocab 151936 --repeats 3 --threads 1]
Prints plain figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time

import torch
import trl
from trl.trainer.utils import entropy_from_logits

import eapo
from eapo.core.entropy import CPU_CHUNK_ELEMENTS, GPU_CHUNK_ELEMENTS

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
FUNCTIONS = {"eapo": "eapo.token_entropy", "trl": "trl entropy_from_logits"}
TRL_CHUNK_ROWS = 128  # entropy_from_logits' default chunk_size
GEN_ROWS = 8  # rows of logits generated per randn call
SCALE = 3.0
REF_ROWS = 64  # rows compared with the float64 reference
RESULT_TAG = "RESULT "
MIB = 2**20


# ----- worker side ---------------------------------------------------------------------------------


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_logits(shape: tuple[int, int, int], dtype: torch.dtype, seed: int, dev: torch.device) -> torch.Tensor:
    """`SCALE * randn(shape)` rounded to `dtype`, the same values whatever the dtype.

    Generated `GEN_ROWS` rows at a time in float32 into a small buffer, then copied into the result:
    no full-size float32 temporary (which would raise the memory high-water mark before the measured
    call), and every page of the result is written.
    """
    vocab = shape[-1]
    out = torch.empty(shape, dtype=dtype, device=dev)
    flat = out.view(-1, vocab)
    gen = torch.Generator(device=dev).manual_seed(seed)
    buf = torch.empty(GEN_ROWS, vocab, dtype=torch.float32, device=dev)
    for start in range(0, flat.shape[0], GEN_ROWS):
        rows = flat[start : start + GEN_ROWS]
        chunk = buf[: rows.shape[0]]
        torch.randn(chunk.shape, generator=gen, out=chunk)
        rows.copy_(chunk.mul_(SCALE))
    return out


def call(name: str, logits: torch.Tensor, chunk_elements: int) -> torch.Tensor:
    if name == "eapo":
        return eapo.token_entropy(logits, chunk_elements=chunk_elements)
    return entropy_from_logits(logits)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def reset_high_water_mark() -> bool:
    """Reset the process' resident high-water mark to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measured_call(name: str, logits: torch.Tensor, chunk_elements: int) -> tuple[torch.Tensor, dict]:
    """The one memory-measured call, on a process that has done nothing big since allocating the logits."""
    dev = logits.device
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = call(name, logits, chunk_elements)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated()
        return out, {"extra": peak - before, "first_call_s": seconds, "method": "cuda max_memory_allocated"}
    reset = reset_high_water_mark()
    rss_before, hwm_before = rss_bytes(), maxrss_bytes()
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    with torch.no_grad():
        out = call(name, logits, chunk_elements)
    seconds = time.perf_counter() - t0
    hwm_after = maxrss_bytes()
    return out, {
        "extra": hwm_after - rss_before,
        "first_call_s": seconds,
        "method": "ru_maxrss",
        "hwm_reset": reset,
        "slack": max(0, hwm_before - rss_before),  # a pre-call high-water mark above RSS hides growth below it
        "rss_before": rss_before,
        "minor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before,
    }


def timed_calls(name: str, logits: torch.Tensor, chunk_elements: int, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        if logits.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            call(name, logits, chunk_elements)
        if logits.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def reference_error(logits: torch.Tensor, out: torch.Tensor) -> dict:
    """Max |out - H| on `REF_ROWS` rows spread over the batch, H in float64 from the same logits."""
    flat = logits.reshape(-1, logits.shape[-1])
    idx = torch.linspace(0, flat.shape[0] - 1, steps=min(REF_ROWS, flat.shape[0]), device=flat.device).long()
    ref = torch.special.entr(torch.softmax(flat[idx].double(), dim=-1)).sum(-1)
    got = out.reshape(-1)[idx].double()
    return {"max_abs_err": (got - ref).abs().max().item(), "ref_mean": ref.mean().item(), "out_dtype": str(out.dtype)}


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    dev = device()
    dtype = DTYPES[args.dtype]
    with torch.no_grad():  # prime: kernels, thread pool, allocator set-up
        call(args.function, torch.randn(2, args.vocab, device=dev).to(dtype), args.chunk_elements)
    logits = make_logits((args.batch, args.length, args.vocab), dtype, args.seed, dev)
    out, result = measured_call(args.function, logits, args.chunk_elements)
    result["times"] = timed_calls(args.function, logits, args.chunk_elements, args.repeats)
    result.update(reference_error(logits, out))
    result["logits_bytes"] = logits.numel() * logits.element_size()
    print(RESULT_TAG + json.dumps(result), flush=True)


# ----- driver side ---------------------------------------------------------------------------------


def run_worker(args: argparse.Namespace, dtype: str, function: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", "--dtype", dtype, "--function", function]
    for flag in ("batch", "length", "vocab", "repeats", "threads", "seed", "chunk_elements"):
        cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    raise RuntimeError(f"worker {dtype}/{function} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")


def header(args: argparse.Namespace) -> list[str]:
    dev = device()
    eapo_rows = max(1, args.chunk_elements // args.vocab)
    lines = [
        f"entropy of ({args.batch}, {args.length}, {args.vocab}) logits = {SCALE:g} * randn (seed {args.seed}): "
        f"{FUNCTIONS['eapo']} vs {FUNCTIONS['trl']}",
        f"machine: {platform.platform()} | {platform.processor() or platform.machine()} | "
        f"cpu_count {os.cpu_count()} | python {platform.python_version()} | torch {torch.__version__} | "
        f"trl {trl.__version__} | threads {args.threads} | device {dev.type}"
        + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""),
        f"command: python {shlex.join(sys.argv)}",
        f"eapo chunk_elements {args.chunk_elements} ({eapo_rows} rows, {eapo_rows * args.vocab * 4 / MIB:.0f} MiB "
        f"float32 per chunk buffer); trl chunk_size {TRL_CHUNK_ROWS} rows",
        f"repeats {args.repeats} after one warm-up (the memory-measured call); each (dtype, function) in a fresh "
        "process",
    ]
    if dev.type == "cuda":
        lines.append("memory: torch.cuda.max_memory_allocated() - memory_allocated() before the call")
    else:
        lines.append("memory: ru_maxrss after the call - RSS before it; faults: minor page faults during the call")
    return lines


def table(results: dict[tuple[str, str], dict]) -> list[str]:
    cols = f"{'dtype':9s} {'function':24s} {'median s':>8s} {'runs s':>20s} {'peak extra':>12s} {'/logits':>8s} "
    cols += f"{'faults':>9s} {'max|err| vs f64':>15s} {'out dtype':>14s}"
    lines = [cols, "-" * len(cols)]
    for (dtype, function), r in results.items():
        runs = " ".join(f"{t:.3f}" for t in r["times"])
        faults = str(r.get("minor_faults", "-"))
        lines.append(
            f"{dtype:9s} {FUNCTIONS[function]:24s} {statistics.median(r['times']):8.3f} {runs:>20s} "
            f"{r['extra'] / MIB:8.1f} MiB {r['extra'] / r['logits_bytes']:8.1%} {faults:>9s} "
            f"{r['max_abs_err']:15.2e} {r['out_dtype'].replace('torch.', ''):>14s}"
        )
    return lines


def summary(results: dict[tuple[str, str], dict]) -> list[str]:
    lines = []
    for dtype in DTYPES:
        e, t = results.get((dtype, "eapo")), results.get((dtype, "trl"))
        if e is None or t is None:
            continue
        te, tt = statistics.median(e["times"]), statistics.median(t["times"])
        lines.append(
            f"{dtype}: logits {e['logits_bytes'] / MIB:.1f} MiB, mean entropy {e['ref_mean']:.3f} nats; "
            f"eapo/trl time {te / tt:.2f}x, peak extra {e['extra'] / MIB:.1f} vs {t['extra'] / MIB:.1f} MiB "
            f"({(e['extra'] - t['extra']) / MIB:+.1f} MiB)"
        )
    for (dtype, function), r in results.items():
        if r.get("hwm_reset") is False:
            lines.append(f"note: {dtype}/{function}: /proc/self/clear_refs not writable, high-water mark not reset")
        if r.get("slack", 0) > 16 * MIB:
            lines.append(
                f"note: {dtype}/{function}: high-water mark was {r['slack'] / MIB:.0f} MiB above RSS before the call "
                "(reset not allowed?): growth below that is not seen"
            )
    return lines


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=151936)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--chunk-elements",
        type=int,
        default=GPU_CHUNK_ELEMENTS if torch.cuda.is_available() else CPU_CHUNK_ELEMENTS,
        help="eapo.token_entropy's (default: its own device default)",
    )
    p.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dtype", choices=list(DTYPES), help=argparse.SUPPRESS)
    p.add_argument("--function", choices=list(FUNCTIONS), help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args._worker:
        worker(args)
        return
    torch.set_num_threads(args.threads)
    for line in header(args):
        print(line, flush=True)
    t0 = time.perf_counter()
    results = {}
    for dtype in DTYPES:
        for function in FUNCTIONS:
            results[(dtype, function)] = run_worker(args, dtype, function)
    print()
    for line in table(results) + [""] + summary(results):
        print(line)
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s (workers only)")


if __name__ == "__main__":
    main()
