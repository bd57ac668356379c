"""Distillation speed and memory: seconds per iteration, peak memory, dataset load time.

    python benchmarks/distill.py                    # everything, CPU (or --device cuda)
    python benchmarks/distill.py --what speed --iterations 10
    python benchmarks/distill.py --what memory --chunks 1,5,10,25

speed : DataDAM (batch_real 64) and DM (batch_real 64 and 256) on Fashion-MNIST, IPC 10.
load  : Fashion-MNIST IDX files -> uint8 tensors -> normalised float (the official ~20 s).
memory: TinyImageNet IPC50 shapes (200 classes × 50 synthetic 3×64×64, batch_real 64,
        ConvNet-4 BN) with random data: peak memory of one iteration against the class chunk.
        Memory is set by one chunk, so by default only the first `--chunk-groups` chunks of the
        iteration run (a full CPU iteration takes minutes; `--full` runs it all).
Official reference figures (docs/benchmarks.md, same machine type): DataDAM 2.3-2.7 s/it,
DM(256) ~4.5 s/it on 2 CPU cores; 55-63 ms and ~90 ms on one H100.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

import condense

OFFICIAL_CPU = {"datadam@64": 2.5, "dm@256": 4.5}
OFFICIAL_H100 = {"datadam@64": 0.059, "dm@256": 0.090}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_speed(device: str, iterations: int, settings: dict[str, str]) -> list[dict]:
    rows = []
    data = condense.load_dataset("fashion-mnist")
    for method, batch in (("datadam", 64), ("dm", 64), ("dm", 256)):
        plan = condense.resolve_plan(method, dataset=data.name, spec=data.spec, ipc=10, seed=0,
                                     overrides={"iterations": iterations + 1, "batch_real": batch,
                                                **settings})
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        condense.loop.run(plan, data, device=device, stop_after=1)  # warm-up (allocator, kernels)
        sync(device)
        t0 = time.perf_counter()
        # continue from a fresh start for `iterations` steps; the warm-up is not timed
        condense.loop.run(plan, data, device=device, stop_after=iterations)
        sync(device)
        sec = (time.perf_counter() - t0) / iterations
        peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
                else rss_mb())
        key = f"{method}@{batch}"
        ref = (OFFICIAL_H100 if device.startswith("cuda") else OFFICIAL_CPU).get(key)
        rows.append({"method": method, "batch_real": batch, "ipc": 10, "device": device,
                     "sec_per_iter": round(sec, 4), "peak_mb": round(peak, 1),
                     "official_sec_per_iter": ref,
                     "speedup_vs_official": round(ref / sec, 2) if ref else None})
    return rows


def bench_load() -> dict:
    t0 = time.perf_counter()
    data = condense.load_dataset("fashion-mnist")
    t1 = time.perf_counter()
    x = data.normalize(data.train.images)
    data.class_index()
    t2 = time.perf_counter()
    test = data.test
    t3 = time.perf_counter()
    return {"train_decode_s": round(t1 - t0, 3), "normalise_and_index_s": round(t2 - t1, 3),
            "test_decode_s": round(t3 - t2, 3), "train_shape": list(x.shape),
            "test_images": int(test.images.shape[0]), "official_s": 20.0}


class RandomTiny(condense.DatasetSource):
    """TinyImageNet-shaped random data: 200 classes × 64 images of 3×64×64."""

    name = "random-tinyimagenet"
    channels, image_size, num_classes = 3, (64, 64), 200
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def load(self, split, root, *, download=False):  # type: ignore[no-untyped-def]
        g = torch.Generator().manual_seed(0)
        labels = torch.arange(200).repeat_interleave(64)
        images = torch.randint(0, 256, (len(labels), 3, 64, 64), generator=g, dtype=torch.uint8)
        return condense.RawSplit(images, labels, tuple(f"c{i}" for i in range(200)), "random")


def memory_child(chunk: int, groups: int, device: str, full: bool) -> dict:
    source = RandomTiny()
    train = source.load("train", None)
    data = condense.RealData(name=source.name, source=source, train=train)
    plan = condense.resolve_plan("datadam", dataset=data.name, spec=data.spec, ipc=50, seed=0,
                                 overrides={"iterations": 1, "class_chunk": chunk})
    classes = list(range(200)) if full else list(range(min(200, chunk * groups)))
    base = rss_mb()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    import warnings

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    condense.loop.run(plan, data, device=device, classes=classes)
    sync(device)
    sec = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else rss_mb() - base)
    return {"class_chunk": chunk, "classes_run": len(classes), "seconds": round(sec, 2),
            "sec_per_class": round(sec / len(classes), 3), "peak_mb_above_data": round(peak, 1),
            "device": device}


def bench_memory(chunks: list[int], groups: int, device: str, full: bool) -> list[dict]:
    rows = []
    for chunk in chunks:
        cmd = [sys.executable, __file__, "--memory-child", str(chunk),
               "--chunk-groups", str(groups), "--device", device] + (["--full"] if full else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            rows.append({"class_chunk": chunk, "error": out.stderr.strip().splitlines()[-1:]})
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--what", default="all", choices=["all", "speed", "load", "memory"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--iterations", type=int, default=5, help="timed iterations per setting")
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="extra loop/method settings for the speed runs (e.g. channels_last=true)")
    ap.add_argument("--chunks", default="1,5,10,25")
    ap.add_argument("--chunk-groups", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="memory: run all 200 classes")
    ap.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    condense.tune_allocator()  # as `condense run` does (process-wide malloc settings)
    if args.memory_child is not None:
        result = memory_child(args.memory_child, args.chunk_groups, args.device, args.full)
        print(json.dumps(result))
        return
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, "
          f"cpus {os.cpu_count()}")
    settings = condense.config.parse_overrides(args.settings)
    if args.what in ("all", "load"):
        print("load", json.dumps(bench_load()))
    if args.what in ("all", "speed"):
        for row in bench_speed(args.device, args.iterations, settings):
            print("speed", json.dumps(row))
    if args.what in ("all", "memory"):
        chunks = [int(c) for c in args.chunks.split(",")]
        for row in bench_memory(chunks, args.chunk_groups, args.device, args.full):
            print("memory", json.dumps(row))


if __name__ == "__main__":
    main()
