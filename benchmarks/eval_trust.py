"""Evaluation the field can trust, measured: each set beside its random baseline, under hard and
soft labels with DD-Ranking's scores, across architectures, and what the baseline cache saves.

    python benchmarks/eval_trust.py sets --out runs/trust          # distil missing sets
    python benchmarks/eval_trust.py scores --out runs/trust        # baseline + HLR/IOR/LRS
    python benchmarks/eval_trust.py xarch --out runs/trust --set datadam
    python benchmarks/eval_trust.py cache --out runs/trust         # baseline cost, cold vs warm

Sets (Fashion-MNIST, IPC 10, seed 0): ``datadam`` and ``dm`` distilled for ``--iterations``
(``--iterations-datadam`` / ``--iterations-dm`` override), and ``herding`` (real images, no
iterations). Protocol (reduced, CPU): ``--model`` (default the IN ConvNet), ``--num-eval``
networks × ``--epochs`` (+1) epochs, batch 256, DSA, SGD 0.01/0.9/5e-4 ×0.1 at the half; the
teacher is the same architecture trained ``--teacher-epochs`` epochs on all 60 000 real images
(no augmentation); soft labels with ``--criterion`` at ``--temperature``. Everything is cached
under ``--out``/cache (delete it for cold numbers). Times are wall seconds of this process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import condense

SETS = ("datadam", "dm", "herding")


def set_path(out: Path, method: str) -> Path:
    return out / f"{method}-fashion-mnist-ipc10.safetensors"


def protocol(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    return {"model": args.model, "num_eval": args.num_eval, "epochs": args.epochs,
            "batch_size": 256, "cache_dir": str(Path(args.out) / "cache"), **extra}


def make_sets(args: argparse.Namespace, data: condense.RealData) -> None:
    for method in SETS:
        path = set_path(Path(args.out), method)
        if path.exists():
            meta = condense.read_metadata(path)
            print(f"{method}: {path} exists ({meta.get('iterations')} iterations)")
            continue
        iterations = {"datadam": args.iterations_datadam or args.iterations,
                      "dm": args.iterations_dm or args.iterations, "herding": None}[method]
        t0 = time.perf_counter()
        syn = condense.distill(method, dataset=data, ipc=10, iterations=iterations, seed=0)
        condense.save(syn, path)
        print(f"{method}: {syn.meta.get('iterations')} iterations in "
              f"{time.perf_counter() - t0:.0f} s -> {path}", flush=True)


def fmt(m: dict[str, float], key: str) -> str:
    """``key ± key_std``; the set's own rows are ``hard_accuracy`` ± ``hard_std``."""
    if key in ("hard", "soft"):
        return f"{m[key + '_accuracy']:.2f} ± {m[key + '_std']:.2f}"
    return f"{m[key]:.2f} ± {m[key + '_std']:.2f}" if key in m else "-"


def scores(args: argparse.Namespace, data: condense.RealData) -> None:
    settings = protocol(args, teacher="train", teacher_epochs=args.teacher_epochs,
                        soft_criterion=args.criterion, temperature=args.temperature)
    rows = []
    for method in args.sets.split(","):
        saved = Path(args.out) / f"{method}.scores.json"
        if args.reprint:
            rows.append((method, json.loads(saved.read_text())["metrics"]))
            continue
        t0 = time.perf_counter()
        r = condense.evaluate(set_path(Path(args.out), method), data=data, settings=settings)
        m, d = r.metrics, r.details
        rows.append((method, m))
        print(f"{method}: {time.perf_counter() - t0:.0f} s; teacher {d['teacher']['cache']} "
              f"({d['teacher']['accuracy']:.2f} %), baseline hard {d['baseline']['hard']['cache']}"
              f", soft {d['baseline']['soft']['cache']}", flush=True)
        saved.write_text(json.dumps(r.to_dict(), indent=1))
    print(f"\nprotocol: {args.model}, {args.num_eval} nets x {args.epochs}+1 epochs, "
          f"teacher {args.teacher_epochs} epochs on 60k images, {args.criterion} T="
          f"{args.temperature}; percent, mean ± std over networks")
    print("| set | hard: set | hard: random | hard: diff | soft: set | soft: random | soft: diff"
          " | real (teacher) | HLR | IOR | LRS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for method, m in rows:
        print(f"| {method} | {fmt(m, 'hard')} | {fmt(m, 'hard_baseline')} | "
              f"{m['hard_difference']:+.2f} | {fmt(m, 'soft')} | {fmt(m, 'soft_baseline')} | "
              f"{m['soft_difference']:+.2f} | {m['real_accuracy']:.2f} | {fmt(m, 'hlr')} | "
              f"{fmt(m, 'ior')} | {fmt(m, 'lrs')} |")


def fmt_hard(m: dict[str, float]) -> tuple[str, str]:
    return f"{m['accuracy']:.2f} ± {m['std']:.2f}", f"{m['baseline']:.2f} ± {m['baseline_std']:.2f}"


def xarch(args: argparse.Namespace, data: condense.RealData) -> None:
    models = args.models.split(",")
    path = set_path(Path(args.out), args.set)
    rows = []
    payloads: list[dict[str, Any]] = []
    for model in models:
        t0 = time.perf_counter()
        r = condense.cross_architecture(path, [model], data=data, settings=protocol(args))[model]
        rows.append((model, r.metrics, time.perf_counter() - t0))
        payloads.append({"artifact": str(path), **r.to_dict()})
        print(f"{model}: {rows[-1][2]:.0f} s", flush=True)
    # as `condense eval --model a,b` writes it, so that `condense report` plots it
    path.with_name(path.stem + ".eval-accuracy-models.json").write_text(
        json.dumps({"artifact": str(path), "evaluator": "accuracy", "models": models,
                    "results": payloads}, indent=1))
    print(f"\n{args.set} set, {args.num_eval} nets x {args.epochs}+1 epochs, batch 256, DSA; "
          f"percent")
    print("| model | set | random baseline | difference | seconds |")
    print("|---|---|---|---|---|")
    for model, m, seconds in rows:
        s, b = fmt_hard(m)
        print(f"| {model} | {s} | {b} | {m['difference']:+.2f} | {seconds:.0f} |")


def cache_cost(args: argparse.Namespace, data: condense.RealData) -> None:
    cache = Path(args.out) / "cache-cost"
    shutil.rmtree(cache, ignore_errors=True)
    path = set_path(Path(args.out), args.set)
    base = {**protocol(args), "cache_dir": str(cache)}
    times = {}
    for label, settings in (("no baseline", {**base, "baseline": False}),
                            ("baseline, cold cache", base), ("baseline, warm cache", base)):
        t0 = time.perf_counter()
        r = condense.evaluate(path, data=data, settings=settings)
        times[label] = time.perf_counter() - t0
        info = r.details.get("baseline", {}).get("hard", {})
        print(f"{label}: {times[label]:.1f} s (baseline part {info.get('seconds', 0):.2f} s, "
              f"cache {info.get('cache', '-')})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=("sets", "scores", "xarch", "cache"))
    ap.add_argument("--out", default="runs/trust")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--iterations-datadam", type=int, default=0)
    ap.add_argument("--iterations-dm", type=int, default=0)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--set", default="datadam", help="xarch/cache: which set")
    ap.add_argument("--model", default="convnet")
    ap.add_argument("--models", default="convnet,convnet-bn,alexnet,vgg11,resnet18")
    ap.add_argument("--num-eval", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--teacher-epochs", type=int, default=3)
    ap.add_argument("--criterion", default="kl")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--reprint", action="store_true",
                    help="scores: print the table from the saved <set>.scores.json files")
    args = ap.parse_args()
    condense.tune_allocator()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    data = condense.load_dataset("fashion-mnist")
    {"sets": make_sets, "scores": scores, "xarch": xarch, "cache": cache_cost}[args.part](
        args, data)


if __name__ == "__main__":
    main()
