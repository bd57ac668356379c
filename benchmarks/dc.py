"""Gradient matching (DC, DSA) on Fashion-MNIST: seconds per iteration, and accuracy.

    python benchmarks/dc.py --what speed                      # dc, dsa at IPC 1 and 10
    python benchmarks/dc.py --what speed --ipcs 1 --engines reference,batched
    python benchmarks/dc.py --what skip                       # 1-D gradients skipped or not
    python benchmarks/dc.py --what quality --ipc 1 --iterations 200
    python benchmarks/dc.py --what official --official /path/to/patched/main.py

speed  : seconds per iteration (= per network: outer_loop image updates and the inner-loop
         training in between) of `condense run dc|dsa --dataset fashion-mnist --ipc N`, with the
         default settings (InstanceNorm ConvNet-3, batch_real 256); one untimed warm-up iteration
         at IPC 1. `--engines` compares the per-class loop (`reference`, the default) with
         `torch.func.vmap` over classes (`batched`).
skip   : the reference engine with and without differentiating the 1-D parameters (biases, norm
         weights: they add exactly 0 to dis_metric=ours), IPC 1.
official: the official code on the same machine, for the same table: `--official` is a local copy
         of VICO-UoE/DatasetCondensation's `main.py` (never committed here) patched only to run on
         the CPU with a current torch, without its evaluation, and to print
         `TIME it=<i> seconds=<s>` after each iteration; run for `--methods` × `--ipcs` with
         `--ipc N --method DC|DSA` (DSA: `--init real --dsa_strategy
         color_crop_cutout_flip_scale_rotate`), `--Iteration` so that `--iterations` (IPC 1) or
         `--iterations-high` iterations are timed after the first (untimed at IPC 1).
quality: `random`, `dc` and `dsa` sets at one IPC (`--iterations` networks, seed 0), each evaluated
         with the accuracy evaluator under `--protocols` (default `dm-reduced`: IN ConvNet,
         3 nets × 300 epochs, batch 256, DSA). Published (full protocol, 1000 iterations):
         DC 70.5 / 82.3, DSA 70.6 / 84.6 at IPC 1 / 10 (VICO-UoE/DatasetCondensation README).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import condense

PUBLISHED = {("dc", 1): 70.5, ("dc", 10): 82.3, ("dsa", 1): 70.6, ("dsa", 10): 84.6}


def seconds_per_iteration(data: condense.RealData, method: str, ipc: int, iterations: int,
                          settings: dict[str, object], warmup: bool) -> float:
    plan = condense.resolve_plan(method, dataset=data.name, spec=data.spec, ipc=ipc, seed=0,
                                 overrides={"iterations": iterations + 1, **settings})
    if warmup:
        condense.loop.run(plan, data, stop_after=1)
    t0 = time.perf_counter()
    condense.loop.run(plan, data, stop_after=iterations)
    return (time.perf_counter() - t0) / iterations


def bench_speed(args: argparse.Namespace, data: condense.RealData) -> None:
    for ipc in (int(i) for i in args.ipcs.split(",")):
        for method in args.methods.split(","):
            for engine in args.engines.split(","):
                its = args.iterations if ipc == 1 else args.iterations_high
                sec = seconds_per_iteration(data, method, ipc, its, {"engine": engine},
                                            warmup=ipc == 1)
                plan = condense.resolve_plan(method, dataset=data.name, spec=data.spec, ipc=ipc)
                outer = plan.method.config.outer_loop
                print(json.dumps({"what": "speed", "method": method, "ipc": ipc, "engine": engine,
                                  "outer_loop": outer, "inner_loop": plan.method.config.inner_loop,
                                  "timed_iterations": its, "s_per_iteration": round(sec, 2),
                                  "s_per_image_update": round(sec / outer, 2)}), flush=True)


def bench_skip(args: argparse.Namespace, data: condense.RealData) -> None:
    import condense_dc

    matched = condense_dc.DC._matched
    for label in ("skip 1-D (default)", "all parameters"):
        if label == "all parameters":
            condense_dc.DC._matched = lambda self, net: list(net.named_parameters())  # type: ignore[method-assign]
        try:
            sec = seconds_per_iteration(data, "dc", 1, args.iterations, {"engine": "reference"},
                                        warmup=True)
        finally:
            condense_dc.DC._matched = matched  # type: ignore[method-assign]
        print(json.dumps({"what": "skip", "variant": label, "ipc": 1,
                          "s_per_iteration": round(sec, 2)}), flush=True)


def bench_official(args: argparse.Namespace, data: condense.RealData) -> None:
    import re
    import subprocess
    import sys

    script = Path(args.official).resolve()
    for ipc in (int(i) for i in args.ipcs.split(",")):
        for method in args.methods.split(","):
            timed = args.iterations if ipc == 1 else args.iterations_high
            skip = 1 if ipc == 1 else 0  # the first iteration at IPC 1 warms up, as for condense
            cmd = [sys.executable, str(script), "--method", method.upper(), "--ipc", str(ipc),
                   "--Iteration", str(timed + skip - 1)]
            if method == "dsa":
                cmd += ["--init", "real", "--dsa_strategy", "color_crop_cutout_flip_scale_rotate"]
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=script.parent)
            if r.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
            secs = [float(m.group(1)) for m in re.finditer(r"TIME it=\d+ seconds=([\d.]+)",
                                                           r.stdout)][skip:]
            print(json.dumps({"what": "official", "method": method, "ipc": ipc,
                              "timed_iterations": len(secs),
                              "s_per_iteration": round(sum(secs) / len(secs), 2)}), flush=True)


def bench_quality(args: argparse.Namespace, data: condense.RealData) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for method in ("random", *args.methods.split(",")):
        its = None if method == "random" else args.iterations
        path = out / f"{method}-ipc{args.ipc}-it{its or 0}-seed0.safetensors"
        if not path.exists():
            t0 = time.perf_counter()
            syn = condense.distill(method, dataset=data, ipc=args.ipc, seed=0, iterations=its)
            condense.save(syn, path)
            print(f"# distilled {method} ({its} iterations) in {time.perf_counter() - t0:.0f} s "
                  f"-> {path}", flush=True)
        syn = condense.load(path)
        for protocol in args.protocols.split(","):
            t0 = time.perf_counter()
            result = condense.evaluate(syn, evaluator="accuracy", preset=protocol, data=data,
                                       seed=0, settings={"num_eval": args.num_eval}
                                       if args.num_eval else None)
            row = {"what": "quality", "set": method, "ipc": args.ipc, "iterations": its,
                   "protocol": result.protocol, "num_eval": result.settings["num_eval"],
                   "mean": round(result.metrics["accuracy"], 2),
                   "std": round(result.metrics["std"], 2),
                   "per_run": [round(v, 2) for v in result.per_run],
                   "published_full_protocol": PUBLISHED.get((method, args.ipc)),
                   "eval_seconds": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| set | iterations | protocol | condense | published (1000 it., own protocol) |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['set']} | {r['iterations'] or '–'} | {r['protocol']} | "
              f"{r['mean']:.1f} ± {r['std']:.1f} | {r['published_full_protocol'] or '–'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--what", choices=("speed", "skip", "quality", "official"), default="speed")
    ap.add_argument("--methods", default="dc,dsa")
    ap.add_argument("--ipcs", default="1,10", help="speed: IPCs")
    ap.add_argument("--engines", default="reference")
    ap.add_argument("--iterations", type=int, default=3,
                    help="speed/skip: timed iterations at IPC 1; quality: networks per set")
    ap.add_argument("--iterations-high", type=int, default=1, help="speed: timed at IPC > 1")
    ap.add_argument("--ipc", type=int, default=1, help="quality: IPC")
    ap.add_argument("--protocols", default="dm-reduced")
    ap.add_argument("--num-eval", type=int, default=0,
                    help="quality: networks per protocol (0 = the preset's)")
    ap.add_argument("--out", default="runs/dc-bench")
    ap.add_argument("--official", help="official: the patched main.py to time")
    args = ap.parse_args()
    condense.tune_allocator()  # as `condense run` does
    data = condense.load_dataset("fashion-mnist")
    benches = {"speed": bench_speed, "skip": bench_skip, "quality": bench_quality,
               "official": bench_official}
    benches[args.what](args, data)


if __name__ == "__main__":
    main()
