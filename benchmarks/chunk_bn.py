"""Does BatchNorm under class chunking change DataDAM's accuracy? (docs/methods.md)

    python benchmarks/chunk_bn.py                               # the full grid, then the table
    python benchmarks/chunk_bn.py --chunks 1,10 --seeds 0       # part of it (results are kept)
    python benchmarks/chunk_bn.py --table                       # only print the table

DataDAM's default encoder is a BatchNorm ConvNet: the official script (DataDistillation/DataDAM
main_DataDAM.py) pushes all classes' real images through it in one forward pass (and all
synthetic images in another), so batch statistics span every class. With ``class_chunk`` N,
each pass holds N classes. This script distils Fashion-MNIST IPC 10 with DataDAM for each
``class_chunk`` (10 = all classes, the official computation) and each seed, and evaluates every
set under the ``datadam-reduced`` protocol (3 BatchNorm ConvNets × 300 epochs, evaluation seed =
distillation seed, so sets of one seed are judged by the same networks).

``--bn-stats`` picks how chunked runs compute BatchNorm statistics (``chunk`` = each chunk's own,
``global`` = over all classes, exact): the artifacts record it (``meta["batchnorm"]``).

Each set and each evaluation is saved under ``--out`` as it finishes, so the grid can be run in
several jobs; a later call skips what exists.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import condense


def set_path(out: Path, chunk: int, seed: int, iterations: int, bn_stats: str) -> Path:
    tag = "" if bn_stats == "chunk" else f"-{bn_stats}"
    return out / f"datadam-ipc10-it{iterations}-chunk{chunk}{tag}-seed{seed}.safetensors"


def run_one(data: condense.RealData, out: Path, chunk: int, seed: int, iterations: int,
            bn_stats: str, device: str) -> dict:
    path = set_path(out, chunk, seed, iterations, bn_stats)
    result_path = path.with_suffix(".json")
    if result_path.exists():
        return json.loads(result_path.read_text())
    settings = {"class_chunk": chunk}
    if bn_stats != "chunk":
        settings["bn_stats"] = bn_stats
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
    row = {"chunk": chunk, "seed": seed, "iterations": iterations, "bn_stats": bn_stats,
           "batchnorm_meta": syn.meta.get("batchnorm"),
           "mean": res.metrics["accuracy"], "std": res.metrics["std"],
           "per_run": list(res.per_run), "eval_seconds": round(time.perf_counter() - t0, 1)}
    result_path.write_text(json.dumps(row))
    print(json.dumps(row), flush=True)
    return row


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
        label = "all classes (official)" if chunk >= 10 else ("per chunk" if stats == "chunk"
                                                             else "global (exact)")
        lines.append(f"| {chunk} | {label} | " + " | ".join(cells) + f" | {overall} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", default="1,2,5,10")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--bn-stats", default="chunk", choices=("chunk", "global"))
    ap.add_argument("--out", default="runs/chunk_bn")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--table", action="store_true", help="only print the table of saved results")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.table:
        condense.tune_allocator()  # as `condense run` does
        data = condense.load_dataset("fashion-mnist")
        for seed in map(int, args.seeds.split(",")):
            for chunk in map(int, args.chunks.split(",")):
                run_one(data, out, chunk, seed, args.iterations, args.bn_stats, args.device)
    rows = [json.loads(p.read_text()) for p in sorted(out.glob(f"*-it{args.iterations}-*.json"))]
    print(f"\nFashion-MNIST IPC 10, DataDAM {args.iterations} iterations, datadam-reduced "
          f"(3 × 300 epochs), accuracy % (mean ± std over the 3 networks):\n")
    print(table(rows))


if __name__ == "__main__":
    main()
