"""Class-sharded distillation: iterations per second against the number of torchrun processes.

    python benchmarks/scaling.py                                  # DM + DataDAM, 1 and 2 procs, CPU
    python benchmarks/scaling.py --procs 1,2,4 --iterations 20 --device cuda   # one GPU per proc
    python benchmarks/scaling.py --what memory --chunks 1,2,4     # peak memory vs class chunk

speed : for each process count K, `torchrun --nproc-per-node K` runs the method on the dataset
        (default Fashion-MNIST, IPC 10, batch_real 64) for 1 + N iterations; the first is warm-up,
        N are timed on rank 0 (loop time only: no data loading). On the CPU each process gets
        `cores // K` threads (`--threads` fixes it), so K = 1 and K = 2 use the same cores.
        Also reported: the largest difference of the K-process images from the 1-process ones.
memory: peak memory of one TinyImageNet IPC50 iteration against the class chunk, measured by
        `benchmarks/distill.py --what memory` (the same code, not a copy), next to what the
        class_chunk=0 (auto) rule estimates per class and would choose on this device.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

import condense

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker(args: argparse.Namespace) -> None:
    """One torchrun process: distil, time the loop on rank 0, save the images."""
    torch.set_num_threads(args.threads)
    device = condense.distributed.init(args.device)
    data = condense.load_dataset(args.dataset)
    plan = condense.resolve_plan(args.method, dataset=data.name, spec=data.spec, ipc=args.ipc,
                                 seed=0, overrides={"iterations": args.iterations + 1,
                                                    "batch_real": args.batch_real,
                                                    "log_every": 1, **args.settings})
    stamps: dict[int, float] = {}

    def clock(event: condense.StepEvent) -> None:
        stamps[event.iteration] = time.perf_counter()

    synset = condense.loop.run(plan, data, device=device, callback=clock)
    if condense.distributed.is_main():
        sec = (stamps[args.iterations + 1] - stamps[1]) / args.iterations
        torch.save(synset.images, args.out + ".pt")
        Path(args.out).write_text(json.dumps({"sec_per_iter": sec}))
    condense.distributed.shutdown()


def bench_speed(args: argparse.Namespace) -> list[dict]:
    rows = []
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            base: torch.Tensor | None = None
            for k in (int(p) for p in args.procs.split(",")):
                threads = args.threads or max(1, cores // k)
                out = str(Path(tmp) / f"{method}-{k}.json")
                cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
                       "--nproc-per-node", str(k), "--master-addr", "127.0.0.1",
                       "--master-port", str(_free_port()), str(Path(__file__).resolve()),
                       "--worker", "--method", method, "--dataset", args.dataset,
                       "--ipc", str(args.ipc), "--batch-real", str(args.batch_real),
                       "--iterations", str(args.iterations), "--device", args.device,
                       "--threads", str(threads), "--out", out,
                       *[x for kv in args.set for x in ("--set", kv)]]
                env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
                r = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if r.returncode != 0:
                    rows.append({"method": method, "procs": k,
                                 "error": r.stderr.strip().splitlines()[-3:]})
                    continue
                sec = json.loads(Path(out).read_text())["sec_per_iter"]
                images = torch.load(out + ".pt")
                base = images if base is None else base
                rows.append({"method": method, "procs": k, "threads_per_proc": threads,
                             "device": args.device, "dataset": args.dataset, "ipc": args.ipc,
                             "batch_real": args.batch_real, "sec_per_iter": round(sec, 4),
                             "iter_per_sec": round(1 / sec, 3),
                             "max_abs_diff_vs_first": float((images - base).abs().max())})
    return rows


def _distill_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("condense_bench_distill", HERE / "distill.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_memory(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """The auto rule at TinyImageNet IPC50 shapes, then the measured peaks from distill.py."""
    from condense.loop.memory import auto_class_chunk, available_bytes, estimate_class_bytes

    bench = _distill_bench()
    source = bench.RandomTiny()
    data = condense.RealData(name=source.name, source=source, train=source.load("train", None))
    plan = condense.resolve_plan("datadam", dataset=data.name, spec=data.spec, ipc=50, seed=0,
                                 overrides={"iterations": 1})
    per_class = estimate_class_bytes(plan, data, args.device)
    free = available_bytes(args.device)
    auto = {"device": args.device, "estimated_mb_per_class": round(per_class / 2**20, 1),
            "available_mb": round(free / 2**20),
            "auto_class_chunk": auto_class_chunk(200, per_class, free)}
    cmd = [sys.executable, str(HERE / "distill.py"), "--what", "memory", "--chunks", args.chunks,
           "--chunk-groups", str(args.chunk_groups), "--device", args.device]
    r = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("memory")]
    if r.returncode != 0:
        lines.append(f"memory error {r.stderr.strip().splitlines()[-1:]}")
    return auto, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--what", default="speed", choices=["speed", "memory", "all"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--procs", default="1,2", help="process counts to compare")
    ap.add_argument("--methods", default="dm,datadam")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--batch-real", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=5, help="timed iterations (after 1 warm-up)")
    ap.add_argument("--threads", type=int, default=0, help="threads per process [cores // K]")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra loop/method settings, e.g. class_chunk=5")
    ap.add_argument("--chunks", default="1,2,4", help="memory: class chunks to measure")
    ap.add_argument("--chunk-groups", type=int, default=1)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", default="dm", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    condense.tune_allocator()  # as `condense run` does (process-wide malloc settings)
    args.settings = condense.config.parse_overrides(args.set)
    if args.worker:
        worker(args)
        return
    print(f"# torch {torch.__version__}, cpus {os.cpu_count()}, device {args.device}")
    if args.what in ("speed", "all"):
        for row in bench_speed(args):
            print("scaling", json.dumps(row))
    if args.what in ("memory", "all"):
        auto, lines = bench_memory(args)
        print("auto", json.dumps(auto))
        for line in lines:
            print(line)


if __name__ == "__main__":
    main()
