"""Evaluation speed: the fast trainer of ``condense-evaluators`` against a straightforward loop.

Trains evaluation networks on 100 Fashion-MNIST-shaped images (IPC 10) with the
``evaluate_synset`` protocol of docs/evaluators.md (SGD 0.01/0.9/5e-4, DSA every batch) and prints
the time per network for 300 and 1000 epochs, measured over ``--epochs`` epochs and extrapolated
(the per-epoch cost is constant).

* ``naive``: what the official ``evaluate_synset`` does, one network at a time: a DataLoader over
  a TensorDataset, DSA per batch, ``loss.item()`` and a host-side accuracy every batch.
* ``parallel``/``sequential``/``stacked``: ``condense_evaluators.training.train_models`` with K
  networks (parallel: one network per core with one intra-op thread each, the CPU default;
  sequential: one after the other; stacked: vmap over stacked parameters, the GPU default), eager
  or compiled (``+compile``; the compile time is reported and amortised separately), or with
  the fused ReLU + average pooling of ``condense.networks.pooling`` switched off (``+nofuse``).

All variants run in one process, interleaved, so the ratios are comparable even on a shared,
noisy machine (the fastest of ``--rounds`` rounds counts). Times are wall-clock per network; the
process CPU seconds per network and epoch are printed too (on a busy machine they show the work
done, which wall time hides; spinning OpenMP barriers count as CPU time). Example::

    python benchmarks/evaluate.py --epochs 10 --models 2 --protocol dm
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, TensorDataset

import condense
from condense import (
    augment,
    tune_allocator,  # the allocator tuning `condense eval` applies
)
from condense.networks import pooling
from condense_evaluators.training import TrainProtocol, init_models, train_models

PROTOCOLS = {"dm": ("convnet", 256), "datadam": ("convnet-bn", 64)}


def fmnist_like(n_per_class: int = 10) -> tuple[torch.Tensor, torch.Tensor, str]:
    try:
        data = condense.load_dataset("fashion-mnist")
        idx = torch.cat([rows[:n_per_class] for rows in data.class_index()])
        return data.normalize(data.train.images[idx]), data.train.labels[idx], "fashion-mnist"
    except condense.CondenseError:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(10 * n_per_class, 1, 28, 28, generator=g)
        return x, torch.arange(10).repeat_interleave(n_per_class), "random tensors"


def naive(model: str, images: torch.Tensor, labels: torch.Tensor, protocol: TrainProtocol,
          epochs: int) -> tuple[float, float]:
    """The official loop shape (DataLoader, per-batch .item() and numpy accuracy).

    Returns (wall s/epoch, process CPU s/epoch).

    One untimed warm-up epoch first (oneDNN primitive creation), as for the other variants.
    """
    with unfused():  # the official ConvNet: nn.ReLU then nn.AvgPool2d
        return _naive(model, images, labels, protocol, epochs)


@contextlib.contextmanager
def unfused() -> Iterator[None]:
    saved = pooling.MIN_PIXELS
    pooling.MIN_PIXELS = 1 << 62
    try:
        yield
    finally:
        pooling.MIN_PIXELS = saved


def _naive(model: str, images: torch.Tensor, labels: torch.Tensor, protocol: TrainProtocol,
           epochs: int) -> tuple[float, float]:
    spec = condense.DataSpec(1, (28, 28), 10)
    net = condense.networks.build_model(model, spec).train()
    loader = DataLoader(TensorDataset(images, labels), batch_size=protocol.batch_size,
                        shuffle=True, num_workers=0)
    opt = torch.optim.SGD(net.parameters(), lr=protocol.lr, momentum=protocol.momentum,
                          weight_decay=protocol.weight_decay)
    g = torch.Generator().manual_seed(1)
    t0, c0 = time.perf_counter(), time.process_time()
    for ep in range(epochs + 1):
        if ep == 1:
            t0, c0 = time.perf_counter(), time.process_time()
        loss_avg, acc_avg = 0.0, 0
        for x, y in loader:
            x = augment.augment(x, protocol.dsa, g)
            out = net(x)
            loss = torch.nn.functional.cross_entropy(out, y)
            acc_avg += int((out.detach().cpu().numpy().argmax(-1) == y.cpu().numpy()).sum())
            loss_avg += loss.item() * x.shape[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
    return (time.perf_counter() - t0) / epochs, (time.process_time() - c0) / epochs


def fast(model: str, images: torch.Tensor, labels: torch.Tensor, epochs: int, batch: int, k: int,
         engine: str, compile_: bool) -> tuple[float, float, float]:
    """(wall s/epoch per network, CPU s/epoch per network, one-off warm-up/compile seconds).

    A 1-epoch warm-up call first (it compiles, with ``compile_``; graphs are then reused).
    """
    spec = condense.DataSpec(1, (28, 28), 10)
    dsa = "color_crop_cutout_flip_scale_rotate"
    mode = "on" if compile_ else "off"

    def run(ep: int, seed: int) -> tuple[float, float]:
        gens = [torch.Generator().manual_seed(seed + i) for i in range(k)]
        models = init_models(lambda: condense.networks.build_model(model, spec), gens, "cpu")
        protocol = TrainProtocol(epochs=ep - 1, batch_size=batch, dsa=dsa)
        t0, c0 = time.perf_counter(), time.process_time()
        train_models(models, images, labels, protocol, gens, engine=engine,  # type: ignore[arg-type]
                     compile=mode)  # type: ignore[arg-type]
        return time.perf_counter() - t0, time.process_time() - c0

    warm = run(1, 100)[0]
    wall, cpu = run(epochs, 0)
    per_epoch = wall / epochs / k
    return per_epoch, cpu / epochs / k, max(warm - per_epoch * k, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10, help="epochs actually timed per variant")
    ap.add_argument("--models", type=int, default=2, help="networks trained at once (K)")
    ap.add_argument("--protocol", choices=sorted(PROTOCOLS), default="dm")
    ap.add_argument("--variants", default="naive,parallel,sequential,stacked",
                    help="comma-separated: naive, parallel, sequential, stacked; "
                         "suffixes +compile, +nofuse")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repetitions (best counts)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_allocator()
    model, batch = PROTOCOLS[args.protocol]
    images, labels, source = fmnist_like()
    protocol = TrainProtocol(epochs=args.epochs - 1, batch_size=batch,
                             dsa="color_crop_cutout_flip_scale_rotate")
    rows: dict[str, dict[str, float]] = {}
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for _ in range(args.rounds):  # interleaved rounds; the fastest round of each variant counts
        for variant in variants:
            if variant == "naive":
                wall, cpu = naive(model, images, labels, protocol, args.epochs)
                row = {"s_per_epoch": wall, "cpu_s_per_epoch": cpu, "compile_s": 0.0, "k": 1}
            else:
                engine, *extras = variant.split("+")
                with unfused() if "nofuse" in extras else contextlib.nullcontext():
                    per_epoch, cpu, compile_s = fast(model, images, labels, args.epochs, batch,
                                                     args.models, engine, "compile" in extras)
                row = {"s_per_epoch": per_epoch, "cpu_s_per_epoch": cpu, "compile_s": compile_s,
                       "k": args.models}
            best = rows.get(variant)
            if best is None or row["s_per_epoch"] < best["s_per_epoch"]:
                rows[variant] = row
    base = rows.get("naive", {}).get("s_per_epoch")
    report = {"protocol": args.protocol, "model": model, "batch_size": batch, "images": 100,
              "source": source, "timed_epochs": args.epochs, "threads": torch.get_num_threads(),
              "variants": {}}
    print(f"protocol {args.protocol}: {model}, batch {batch}, 100 {source} images, DSA, "
          f"{args.epochs} timed epochs per variant, {torch.get_num_threads()} threads, "
          f"K={args.models} networks for the fast engines")
    print(f"{'variant':24s} {'s/epoch/net':>12s} {'cpu-s/ep/net':>13s} {'300 ep/net':>11s} "
          f"{'1000 ep/net':>12s} "
          f"{'compile s':>10s} {'speed-up 300':>13s} {'speed-up 1000':>14s}")
    for name, r in rows.items():
        k = r["k"]
        t300 = 301 * r["s_per_epoch"] + r["compile_s"] / k
        t1000 = 1001 * r["s_per_epoch"] + r["compile_s"] / k
        su300 = (301 * base) / t300 if base else float("nan")
        su1000 = (1001 * base) / t1000 if base else float("nan")
        report["variants"][name] = {**r, "per_net_300_s": t300, "per_net_1000_s": t1000,
                                    "speedup_300": su300, "speedup_1000": su1000}
        print(f"{name:24s} {r['s_per_epoch']:12.4f} {r['cpu_s_per_epoch']:13.4f} {t300:11.1f} "
              f"{t1000:12.1f} "
              f"{r['compile_s']:10.1f} {su300:13.2f} {su1000:14.2f}")
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
