"""Does BatchNorm under class chunking change DataDAM's accuracy? (docs/methods.md)

    python benchmarks/chunk_bn.py                               # the full grid, then the table
    python benchmarks/chunk_bn.py --chunks 1,10 --seeds 0       # part of it (results are kept)
    python benchmarks/chunk_bn.py --table                       # only print the table
    python benchmarks/chunk_bn.py --gradient                    # one iteration's image gradient

DataDAM's default encoder is a BatchNorm ConvNet: the official script (DataDistillation/DataDAM
main_DataDAM.py) pushes all classes' real images through it in one forward pass (and all
synthetic images in another), so batch statistics span every class. With ``class_chunk`` N,
each pass holds N classes. This script distils Fashion-MNIST IPC 10 with DataDAM for each
``class_chunk`` (10 = all classes, the official computation) and each seed, and evaluates every
set under the ``datadam-reduced`` protocol (3 BatchNorm ConvNets × 300 epochs, evaluation seed =
distillation seed, so sets of one seed are judged by the same networks).

Every artifact records the chunk it ran with and where BatchNorm statistics came from
(``meta["passes"]``).

``--gradient`` compares, for one iteration, the gradient of the synthetic images with each
chunk against all classes in one pass (relative L2 difference, whole set and median image, and
the cosine): how much chunking changes what the method computes, in seconds.

Each set and each evaluation is saved under ``--out`` as it finishes, so the grid can be run in
several jobs; a later call skips what exists.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import condense


def set_path(out: Path, chunk: int, seed: int, iterations: int) -> Path:
    return out / f"datadam-ipc10-it{iterations}-chunk{chunk}-seed{seed}.safetensors"


def run_one(data: condense.RealData, out: Path, chunk: int, seed: int, iterations: int,
            device: str) -> dict:
    path = set_path(out, chunk, seed, iterations)
    result_path = path.with_suffix(".json")
    if result_path.exists():
        return json.loads(result_path.read_text())
    settings = {"class_chunk": chunk}
    if not path.exists():
        t0 = time.perf_counter()
        syn = condense.distill("datadam", dataset=data, ipc=10, seed=seed, iterations=iterations,
                               settings=settings, device=device)
        condense.save(syn, path)
        print(f"# distilled chunk {chunk} seed {seed} in {time.perf_counter() - t0:.0f} s",
              flush=True)
    syn = condense.load(path)
    t0 = time.perf_counter()
    res = condense.evaluate(syn, evaluator="accuracy", preset="datadam-reduced", data=data,
                            seed=seed, device=device)
    row = {"chunk": chunk, "seed": seed, "iterations": iterations, "bn_stats": "chunk",
           "passes": syn.meta.get("passes"),
           "mean": res.metrics["accuracy"], "std": res.metrics["std"],
           "per_run": list(res.per_run), "eval_seconds": round(time.perf_counter() - t0, 1)}
    result_path.write_text(json.dumps(row))
    print(json.dumps(row), flush=True)
    return row


def gradient_table(data: condense.RealData, chunks: list[int], seed: int = 0,
                   iteration: int = 0) -> str:
    """The synthetic images' gradient of iteration ``iteration`` per chunk vs all classes."""
    import torch

    from condense.loop.context import LoopContext
    from condense.networks import convert_sync_batchnorm

    def grad(chunk: int) -> torch.Tensor:
        plan = condense.resolve_plan("datadam", dataset=data.name, spec=data.spec, ipc=10,
                                     seed=seed, overrides={"class_chunk": chunk})
        d = data.prepared(torch.device("cpu"))
        syn = condense.loop.initial_images(plan, d, torch.device("cpu")).requires_grad_(True)
        ctx = LoopContext.for_plan(plan, d, syn, iteration=iteration,
                                   dsa_strategy=d.source.dsa_strategy, draw_encoder=False)
        ctx._prepare = lambda e: convert_sync_batchnorm(e, synchronise=False)  # as the loop
        ctx.begin(iteration, draw_encoder=True)
        plan.method.iteration(ctx)
        return syn.grad.detach().clone()

    ref = grad(0)
    lines = ["| class_chunk | ‖g − g_all‖ / ‖g_all‖ | median image | cosine |",
             "| --- | --- | --- | --- |"]
    for chunk in chunks:
        if chunk >= data.spec.num_classes:
            continue
        g = grad(chunk)
        per = (g - ref).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1)
        cos = torch.nn.functional.cosine_similarity(g.flatten(), ref.flatten(), dim=0)
        lines.append(f"| {chunk} | {float((g - ref).norm() / ref.norm()):.3f} "
                     f"| {float(per.median()):.3f} | {float(cos):.3f} |")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    """One line per chunk: per-seed mean ± std over the 3 networks, and the mean over seeds."""
    seeds = sorted({r["seed"] for r in rows})
    lines = ["| class_chunk | BN statistics | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean over seeds |", "| --- | --- |" + " --- |" * (len(seeds) + 1)]
    for chunk, stats in sorted({(r["chunk"], r["bn_stats"]) for r in rows}):
        mine = {r["seed"]: r for r in rows if r["chunk"] == chunk and r["bn_stats"] == stats}
        cells = [f"{mine[s]['mean']:.2f} ± {mine[s]['std']:.2f}" if s in mine else "–"
                 for s in seeds]
        means = [mine[s]["mean"] for s in seeds if s in mine]
        overall = f"{statistics.fmean(means):.2f}" if means else "–"
        label = "all classes (official)" if chunk >= 10 else "per chunk"
        lines.append(f"| {chunk} | {label} | " + " | ".join(cells) + f" | {overall} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", default="1,2,5,10")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--out", default="runs/chunk_bn")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--table", action="store_true", help="only print the table of saved results")
    ap.add_argument("--gradient", action="store_true",
                    help="only compare one iteration's image gradient per chunk (seconds)")
    args = ap.parse_args()
    if args.gradient:
        warnings.simplefilter("ignore")  # the class_chunk warning, once per chunk
        data = condense.load_dataset("fashion-mnist")
        print("DataDAM, Fashion-MNIST IPC 10, iteration 0: synthetic images' gradient with each "
              "class_chunk against all classes in one pass\n")
        print(gradient_table(data, [int(c) for c in args.chunks.split(",")]))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.table:
        condense.tune_allocator()  # as `condense run` does
        data = condense.load_dataset("fashion-mnist")
        for seed in map(int, args.seeds.split(",")):
            for chunk in map(int, args.chunks.split(",")):
                run_one(data, out, chunk, seed, args.iterations, args.device)
    rows = [json.loads(p.read_text()) for p in sorted(out.glob(f"*-it{args.iterations}-*.json"))]
    print(f"\nFashion-MNIST IPC 10, DataDAM {args.iterations} iterations, datadam-reduced "
          f"(3 × 300 epochs), accuracy % (mean ± std over the 3 networks):\n")
    print(table(rows))


if __name__ == "__main__":
    main()
