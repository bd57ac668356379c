"""MTT (condense-mtt) on Fashion-MNIST: expert training time, seconds per iteration, memory of the
unrolled graph, and (optionally) accuracy against `random` at a reduced length.

    python benchmarks/mtt.py --what experts            # one expert, one full epoch (60 000 images)
    python benchmarks/mtt.py --what speed              # s/iteration at IPC 1 and 10, peak RSS
    python benchmarks/mtt.py --what memory             # peak RSS against syn_steps and batch_syn
    python benchmarks/mtt.py --what accuracy           # experts, MTT IPC 1, random; dm-reduced

speed/memory: each configuration runs in its own process (so its peak RSS is its own) against
throw-away experts (2 × 2 epochs on 20 images per class), with the images and syn_lr held
fixed (lr_img = lr_lr = 0: against such experts they would diverge, and the cost of an
iteration does not depend on their values). One untimed iteration, then `--iterations` timed
ones.
accuracy: `--experts` experts × `--expert-epochs` epochs on the first `--train-limit` images of
each class, MTT at `--ipc` (default 1) for `--mtt-iterations` iterations (syn_steps 20,
expert_epochs 2, max_start_epoch 5, the other settings MTT's defaults; `--variants` adds settings
per MTT run, default lr_img 1000 and 100; `none` for no MTT run), `random` and the `--others` at
the same IPC and length, each evaluated with the `dm-reduced` protocol (3 IN ConvNets × 300
epochs; the learned syn_lr for MTT).
Every process calls `condense.tune_allocator()`, as the CLI does. Results are JSON lines on
stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import condense
import condense_mtt


def rss_mb() -> float:
    """Peak resident memory of this process (MB) since start or :func:`reset_peak`."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss_mb()


def reset_peak() -> None:
    """Linux: restart the peak (VmHWM) from the current resident size."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def quick_experts(folder: Path, data: condense.RealData) -> Path:
    """Throw-away experts (kept in `folder` between runs; trained when missing)."""
    condense_mtt.train_experts(data, folder, experts=2, epochs=2,
                               config={"train_limit": 20, "test_limit": -1})
    return folder


def bench_experts(epochs: int, train_limit: int, device: str) -> dict:
    data = condense.load_dataset("fashion-mnist")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        condense_mtt.train_experts(data, tmp, experts=1, epochs=epochs, device=device,
                                   config={"train_limit": train_limit},
                                   progress=lambda e: e.task == "expert-epoch" and log(
                                       f"epoch {e.completed}: {json.dumps(e.info)}"))
        total = time.perf_counter() - t0
        meta = condense_mtt.read_meta(Path(tmp) / "expert-0000.safetensors")
    hist = meta["history"]
    n = meta["training"]["train_images"]
    train_s = [h["seconds"] for h in hist]
    return {"what": "experts", "device": device, "threads": torch.get_num_threads(),
            "train_images": n, "epochs": epochs, "sec_per_epoch": [round(s, 1) for s in train_s],
            "images_per_sec": round(n * len(hist) / sum(train_s), 1),
            "sec_per_full_epoch_60k": round(60000 * sum(train_s) / (n * len(hist)), 1),
            "test_acc": [round(h.get("test_acc", float("nan")), 2) for h in hist],
            "wall_s": round(total, 1), "peak_rss_mb": round(rss_mb())}


def child(ipc: int, steps: int, batch_syn: int, iterations: int, experts: str,
          device: str) -> dict:
    """One configuration: an untimed iteration, then `iterations` timed ones."""
    data = condense.load_dataset("fashion-mnist")
    plan = condense.loop.resolve_plan(
        "mtt", dataset=data.name, spec=data.spec, ipc=ipc, seed=0,
        overrides={"experts": experts, "expert_epochs": 1, "max_start_epoch": 2,
                   "syn_steps": steps, "batch_syn": batch_syn, "iterations": iterations + 1,
                   "checkpoint_every": 0, "lr_img": 0.0, "lr_lr": 0.0})
    data.class_index()
    reset_peak()
    base = current_mb()
    times = []

    def tick(event: condense.StepEvent) -> None:
        times.append(time.perf_counter())

    plan = plan.with_loop(log_every=1)
    condense.loop.run(plan, data, device=device, callback=tick)
    sec = (times[-1] - times[0]) / iterations
    peak = rss_mb()
    n = batch_syn or 10 * ipc
    return {"what": "speed", "ipc": ipc, "syn_steps": steps, "batch_syn": n, "device": device,
            "threads": torch.get_num_threads(), "sec_per_iter": round(sec, 3),
            "baseline_rss_mb": round(base), "peak_rss_mb": round(peak),
            "graph_mb": round(peak - base),
            "mb_per_image_step": round((peak - base) / (steps * n), 2)}


def run_child(cfg: tuple[int, int, int], iterations: int, experts: Path, device: str) -> dict:
    ipc, steps, batch = cfg
    cmd = [sys.executable, __file__, "--child", f"{ipc},{steps},{batch}", "--iterations",
           str(iterations), "--experts-dir", str(experts), "--device", device]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"configuration {cfg} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_accuracy(args: argparse.Namespace) -> list[dict]:
    data = condense.load_dataset("fashion-mnist")
    folder = Path(args.experts_dir or "runs/mtt-bench-experts")
    t0 = time.perf_counter()
    condense_mtt.train_experts(data, folder, experts=args.experts, epochs=args.expert_epochs,
                               config={"train_limit": args.train_limit}, device=args.device,
                               progress=lambda e: e.task == "expert-epoch" and log(
                                   f"expert {e.info['expert']} epoch {e.completed}: "
                                   f"test {e.info.get('test_acc', 0):.1f}%"))
    experts_s = time.perf_counter() - t0
    settings = {"experts": str(folder), "syn_steps": 20, "expert_epochs": 2,
                "max_start_epoch": 5, "checkpoint_every": 0, "log_every": 10}
    ipc = args.ipc
    sets = [("random", condense.distill("random", dataset=data, ipc=ipc, seed=0), 0.0, {})]
    for method in [m for m in args.others.split(",") if m]:
        t0 = time.perf_counter()
        try:
            syn = condense.distill(method, dataset=data, ipc=ipc, iterations=args.mtt_iterations,
                                   seed=0, device=args.device)
        except condense.UnknownComponentError as exc:
            log(f"skipping {method}: {exc}")
            continue
        sets.append((method, syn, time.perf_counter() - t0, {}))
    for variant in [v for v in args.variants.split(";") if v and v != "none"]:
        extra = dict(kv.split("=", 1) for kv in variant.split(",") if "=" in kv)
        t0 = time.perf_counter()
        syn = condense.distill("mtt", dataset=data, ipc=ipc, iterations=args.mtt_iterations,
                               seed=0, settings={**settings, **extra}, device=args.device,
                               callback=lambda e: log(f"mtt it {e.iteration}: loss {e.loss:.4f}"))
        sets.append(("mtt", syn, time.perf_counter() - t0, extra))
    rows = []
    for name, syn, seconds, extra in sets:
        result = condense.evaluate(syn, evaluator="accuracy", preset="dm-reduced", data=data,
                                   seed=0, device=args.device)
        rows.append({"what": "accuracy", "set": name, "settings": extra, "ipc": ipc,
                     "iterations": syn.meta.get("iterations"),
                     "protocol": result.protocol, "accuracy": round(result.metrics["accuracy"], 2),
                     "std": round(result.metrics.get("std", float("nan")), 2),
                     "per_run": [round(a, 2) for a in result.per_run],
                     "eval_lr": result.settings["lr"],
                     "syn_lr": None if syn.syn_lr is None else round(float(syn.syn_lr), 5),
                     "distill_s": round(seconds, 1), "experts_s": round(experts_s, 1),
                     "experts": args.experts, "expert_epochs": args.expert_epochs,
                     "train_limit": args.train_limit})
        log(json.dumps(rows[-1]))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--what", default="speed", choices=["experts", "speed", "memory", "accuracy"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--iterations", type=int, default=2, help="timed iterations per config")
    p.add_argument("--epochs", type=int, default=1, help="--what experts: epochs")
    p.add_argument("--train-limit", type=int, default=0,
                   help="images per class for expert training (0 = all)")
    p.add_argument("--experts", type=int, default=5, help="--what accuracy: experts")
    p.add_argument("--expert-epochs", type=int, default=10, help="--what accuracy: epochs")
    p.add_argument("--mtt-iterations", type=int, default=200, help="--what accuracy")
    p.add_argument("--ipc", type=int, default=1, help="--what accuracy: images per class")
    p.add_argument("--variants", default="lr_img=1000;lr_img=100",
                   help="--what accuracy: MTT settings per variant, KEY=V,KEY=V;... ")
    p.add_argument("--others", default="",
                   help="--what accuracy: other methods at the same IPC and length (dm,datadam)")
    p.add_argument("--experts-dir", default=None)
    p.add_argument("--configs", default=None,
                   help="speed/memory: IPC,SYN_STEPS,BATCH_SYN;... (batch 0 = whole set)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    condense.tune_allocator()  # as `condense run` and `condense experts` do
    if args.child:
        ipc, steps, batch = map(int, args.child.split(","))
        print(json.dumps(child(ipc, steps, batch, args.iterations, args.experts_dir,
                               args.device)))
        return
    if args.what == "experts":
        print(json.dumps(bench_experts(args.epochs, args.train_limit, args.device)))
        return
    if args.what == "accuracy":
        for row in bench_accuracy(args):
            print(json.dumps(row))
        return
    default = {"speed": "1,20,0;10,20,0;10,20,20",
               "memory": "1,5,0;1,10,0;1,20,0;1,40,0;10,5,0;10,5,50;10,10,50"}[args.what]
    configs = [tuple(map(int, c.split(","))) for c in (args.configs or default).split(";")]
    folder = Path(args.experts_dir) if args.experts_dir else Path(
        tempfile.gettempdir()) / "condense-mtt-bench-experts"
    quick_experts(folder, condense.load_dataset("fashion-mnist"))
    rows = []
    for cfg in configs:
        log(f"running ipc,syn_steps,batch_syn = {cfg}")
        rows.append(run_child(cfg, args.iterations, folder, args.device))
        print(json.dumps(rows[-1]), flush=True)
    for batch in sorted({r["batch_syn"] for r in rows}):
        group = [r for r in rows if r["batch_syn"] == batch]
        if len({r["syn_steps"] for r in group}) < 2:
            continue
        # least squares: graph_mb = fixed + slope * syn_steps
        xs, ys = [r["syn_steps"] for r in group], [r["graph_mb"] for r in group]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
        slope = cov / sum((x - mx) ** 2 for x in xs)
        print(json.dumps({"what": "memory-fit", "batch_syn": batch,
                          "mb_per_step": round(slope, 1),
                          "mb_per_image_step": round(slope / batch, 2),
                          "fixed_mb": round(my - slope * mx)}), flush=True)


if __name__ == "__main__":
    main()
