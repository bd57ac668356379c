"""Every GPU path of condense in one command: correctness, speed and memory on one device.

    python benchmarks/gpu.py                          # CUDA if present (< 8 minutes on one GPU)
    python benchmarks/gpu.py --device cpu --quick     # the same code, small sizes (< 2 minutes)
    python benchmarks/gpu.py --sections speed,memory --json out.json

Prints one table (section | item | measured | reference | status) and writes a JSON file
(``--json``, default ``gpu-benchmark.json`` in the current folder). Every section runs in its own
``try``: an error or a missing capability (no CUDA, no nccl, no second GPU, no MTT plugin) is a
row of the table (``error: …`` / ``skipped: why``), never an abort. Sections (``--sections``):

* ``env``        torch, CUDA, device, nccl, TF32 settings.
* ``methods``    DataDAM, DM, DC, MTT: 2 iterations on the device against the same seed on the CPU
                 (every random draw is made on the CPU, so both see the same draws). Compared:
                 the update of the synthetic images, ``max|Δdev − Δcpu| / max|Δcpu|`` ≤ 2e-3,
                 with TF32 off for this section (fp32 on both sides).
* ``evaluator``  the accuracy evaluator's trainer: K networks stacked (vmap) against the same K
                 one after the other, on the device, one epoch: every weight within
                 ``allclose(atol=2e-4, rtol=1e-3)`` (TF32 off).
* ``precision``  DataDAM with ``channels_last`` and ``autocast=bf16`` on and off (loop settings):
                 update against the fp32/NCHW run (max-norm relative ≤ 2e-3 for channels_last,
                 L2 relative ≤ 1e-1 for bf16) and s/iteration of each combination.
* ``torchrun``   ``torchrun --standalone`` (a subprocess) with nccl on the GPUs present (gloo on
                 the CPU): 2 processes run DM and DataDAM class-sharded, compared with one
                 process on the same device (≤ 1e-4, docs/distributed.md). With one GPU, nccl
                 refuses two ranks on it: one nccl rank opens the group and all-reduces, and the
                 sharded runs use two gloo ranks on cuda:0.
* ``speed``      s/iteration of DataDAM (batch_real 64) and DM (batch_real 256) on
                 Fashion-MNIST (the installed files, else generated data of its shape) at IPC
                 1/10/50 and CIFAR-10-shaped generated data at IPC 10/50, beside the official
                 H100 anchors (DataDAM 55–63 ms/it at IPC 10, DM ~90 ms/it at batch_real 256)
                 and the targets (≥ 10× DataDAM it/s, i.e. ≤ 5.9 ms/it).
* ``evalspeed``  seconds per evaluation network for 1000 epochs on 100 images (1×28×28), both
                 protocols (DataDAM: BN ConvNet, batch 64; DM: IN ConvNet, batch 256): a few
                 epochs are measured and scaled to 1001 (the protocol's epochs + 1) — the table
                 says how many. Anchor 6–10 s per net (official, H100); target ≥ 5×.
* ``memory``     TinyImageNet IPC 50 shapes (generated: 200 classes × 64 real 3×64×64, DataDAM,
                 BN ConvNet-4): peak memory of one iteration over one class chunk, for several
                 chunk sizes (peak allocated on CUDA; on the CPU peak RSS above the start, one
                 process per chunk), the
                 automatic rule's estimate, and the chunk it picks on this device.

The official anchors are quoted from docs/benchmarks.md ("Official anchors"). The sizes of
``--quick`` are small (every number is a smoke value, not a benchmark).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
try:
    import condense
except ImportError:  # a bare checkout: use the repository's package
    sys.path.insert(0, str(ROOT))
    import condense

#: first-party plugins (module -> folder under plugins/)
FIRST_PARTY = {"condense_datadam": "datadam", "condense_dm": "dm", "condense_dc": "dc",
               "condense_mtt": "mtt", "condense_evaluators": "evaluators"}

SECTIONS = ("env", "methods", "evaluator", "precision", "torchrun", "speed", "evalspeed", "memory")
#: official anchors on one H100 (docs/benchmarks.md, "Official anchors")
ANCHOR_DATADAM_S = (0.055, 0.063)  # DataDAM s/iteration, Fashion-MNIST IPC 10, batch_real 64
ANCHOR_DM_S = 0.090  # DM s/iteration at batch_real 256
ANCHOR_EVAL_NET_S = (6.0, 10.0)  # one 1000-epoch evaluation network
TARGET_DATADAM_X = 10.0
TARGET_EVAL_X = 5.0
TOL_FP32 = 2e-3  # device vs CPU (TF32 off), channels_last vs NCHW
TOL_BF16 = 1e-1  # bf16 autocast vs fp32
TOL_ENGINES = 1e-3  # stacked vs sequential evaluator: rtol on every weight ...
ENGINE_ATOL = 2e-4  # ... and atol
TOL_SHARDED = 1e-4  # K processes vs one (docs/distributed.md)


@dataclasses.dataclass
class Row:
    section: str
    item: str
    measured: str = ""
    reference: str = ""
    status: str = "ok"
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Options:
    device: str
    quick: bool
    workdir: Path


# ------------------------------------------------------------------------------- helpers


def generated(name: str, channels: int, size: int, classes: int, per_class: int,
              seed: int = 0) -> condense.RealData:
    """A dataset of class-dependent noise images with the given shape (uint8, like real data)."""

    def load(self: Any, split: str, root: str | None, *, download: bool = False
             ) -> condense.RawSplit:
        g = torch.Generator().manual_seed(seed + (split != "train"))
        n = per_class if split == "train" else max(2, per_class // 10)
        labels = torch.arange(classes).repeat_interleave(n)
        centre = torch.randint(0, 176, (classes, channels, 1, 1), generator=g, dtype=torch.uint8)
        noise = torch.randint(0, 80, (len(labels), channels, size, size), generator=g,
                              dtype=torch.uint8)
        images = noise.add_(centre[labels])  # < 256: no overflow
        return condense.RawSplit(images, labels, tuple(f"c{i}" for i in range(classes)),
                                 "generated")

    attrs = {"name": name, "channels": channels, "image_size": (size, size),
             "num_classes": classes, "mean": (0.5,) * channels, "std": (0.25,) * channels,
             "load": load}
    source = type("Generated", (condense.DatasetSource,), attrs)()
    return condense.RealData(name=name, source=source, train=source.load("train", None))


def fashion_mnist(quick: bool) -> tuple[condense.RealData, str]:
    try:
        return condense.load_dataset("fashion-mnist"), "Fashion-MNIST"
    except condense.CondenseError:
        per_class = 300 if quick else 6000
        return (generated("fashion-mnist-shaped", 1, 28, 10, per_class),
                "generated 1×28×28 (Fashion-MNIST not installed)")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """TF32 off for matmuls and cuDNN convolutions (restored afterwards)."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def plan_for(method: str, data: condense.RealData, ipc: int, **overrides: Any) -> Any:
    return condense.resolve_plan(method, dataset=data.name, spec=data.spec, ipc=ipc, seed=0,
                                 overrides={"checkpoint_every": 0, **overrides})


def run_images(plan: Any, data: condense.RealData, device: str) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return condense.loop.run(plan, data, device=device).images


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max|a − b| / max|b| (0 when both are 0)."""
    scale = float(b.abs().max())
    diff = float((a - b).abs().max())
    return diff / scale if scale > 0 else diff


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖₂ / ‖b‖₂."""
    scale = float(b.norm())
    return float((a - b).norm()) / scale if scale > 0 else float((a - b).norm())


def update_err(plan: Any, data: condense.RealData, device: str, ref_device: str,
               ref_plan: Any = None) -> tuple[float, float, float]:
    """How the images' update (after the plan's iterations) on ``device`` differs from the one on
    ``ref_device`` (or with ``ref_plan``): (max-norm relative, L2 relative, max |Δ|)."""
    init = run_images(plan.with_loop(iterations=0), data, "cpu")
    dev = run_images(plan, data, device) - init
    ref = run_images(ref_plan or plan, data, ref_device) - init
    return rel_err(dev, ref), rel_l2(dev, ref), float(ref.abs().max())


def timed_iterations(plan: Any, data: condense.RealData, device: str, n: int) -> float:
    """Seconds per iteration over ``n`` iterations after one untimed (a loss read per
    iteration: one host sync, as the official scripts' per-iteration logging)."""
    stamps: list[float] = []

    def tick(event: Any) -> None:
        sync(device)
        stamps.append(time.perf_counter())

    plan = plan.with_loop(iterations=n + 1, log_every=1, checkpoint_every=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        condense.loop.run(plan, data, device=device, callback=tick)
    return (stamps[-1] - stamps[0]) / n


def status(ok: bool) -> str:
    return "ok" if ok else "FAIL"


def fmt_s(sec: float) -> str:
    return f"{sec * 1000:.1f} ms" if sec < 1 else f"{sec:.2f} s"


def plugin_missing(method: str) -> str | None:
    try:
        condense.get_method(method)
    except condense.CondenseError as exc:
        return f"skipped: {str(exc).splitlines()[0]}"
    return None


# ------------------------------------------------------------------------------- sections


def sec_env(o: Options) -> list[Row]:
    cuda = torch.cuda.is_available()
    dist = torch.distributed.is_available()
    rows = [Row("env", "torch", f"{torch.__version__} (python {platform.python_version()})",
                data={"torch": torch.__version__, "threads": torch.get_num_threads()}),
            Row("env", "device", o.device, data={"device": o.device})]
    if cuda:
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        free, total = torch.cuda.mem_get_info()
        rows.append(Row("env", "CUDA", f"{len(names)} × {names[0]}, {total / 2**30:.0f} GiB, "
                        f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}",
                        data={"gpus": names, "total_gib": total / 2**30}))
        rows.append(Row("env", "TF32 (default)",
                        f"matmul {torch.backends.cuda.matmul.allow_tf32}, "
                        f"cudnn {torch.backends.cudnn.allow_tf32}",
                        "speed/memory sections use the defaults"))
    else:
        rows.append(Row("env", "CUDA", "not available", status="skipped: no CUDA device"))
    nccl = dist and torch.distributed.is_nccl_available()
    rows.append(Row("env", "nccl", str(bool(nccl)),
                    status="ok" if nccl else "skipped: this torch has no nccl"))
    return rows


def sec_methods(o: Options) -> list[Row]:
    rows = []
    data = generated("mnist-shaped", 1, 28, 10, 40 if o.quick else 300)
    batch = 16 if o.quick else 64
    configs: dict[str, dict[str, Any]] = {
        "datadam": {"batch_real": batch},
        "dm": {"batch_real": batch},
        "dc": {"batch_real": batch, "inner_loop": 2, "outer_loop": 2},
        "mtt": {"syn_steps": 4 if o.quick else 10, "expert_epochs": 1, "max_start_epoch": 1},
    }
    with strict_fp32():
        for method, overrides in configs.items():
            skip = plugin_missing(method)
            if skip:
                rows.append(Row("methods", f"{method} device vs cpu", status=skip))
                continue
            try:
                if method == "mtt":
                    overrides = {**overrides, "experts": str(experts_for(data, o))}
                plan = plan_for(method, data, 1 if method in ("dc", "mtt") else 2,
                                iterations=2, **overrides)
                err, _, size = update_err(plan, data, o.device, "cpu")
                same = o.device == "cpu"
                rows.append(Row("methods", f"{method} 2 it, {o.device} vs cpu",
                                f"rel {err:.1e} (update max {size:.2g})",
                                f"≤ {TOL_FP32:g}" + (" (same device: trivial)" if same else ""),
                                status(err <= TOL_FP32), {"rel_err": err, "update_max": size}))
            except Exception as exc:  # noqa: BLE001 - every failure is a row
                rows.append(error_row("methods", f"{method} device vs cpu", exc))
    return rows


_EXPERTS: dict[str, Path] = {}


def experts_for(data: condense.RealData, o: Options) -> Path:
    """Throw-away expert trajectories for MTT (1 expert × 2 epochs on 20 images per class)."""
    if data.name not in _EXPERTS:
        import condense_mtt

        folder = o.workdir / f"experts-{data.name}"
        condense_mtt.train_experts(data, folder, experts=1, epochs=2,
                                   config={"train_limit": 20, "test_limit": -1})
        _EXPERTS[data.name] = folder
    return _EXPERTS[data.name]


def sec_evaluator(o: Options) -> list[Row]:
    try:
        from condense_evaluators.training import TrainProtocol, init_models, train_models
    except ImportError as exc:
        return [Row("evaluator", "stacked vs sequential",
                    status=f"skipped: condense-evaluators not installed ({exc})")]
    rows = []
    spec = condense.DataSpec(1, (28, 28), 10)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(100) % 10
    x = torch.randn(10, 1, 28, 28, generator=g)[y] + 0.3 * torch.randn(100, 1, 28, 28, generator=g)
    x, y = x.to(o.device), y.to(o.device)
    k, epochs = 3, 1  # a few SGD steps: float differences grow with training (BatchNorm fastest)
    for model in ("convnet-bn", "convnet"):
        try:
            nets = {}
            with strict_fp32():
                for engine in ("stacked", "sequential"):
                    gens = [torch.Generator().manual_seed(10 + i) for i in range(k)]
                    models = init_models(lambda m=model: condense.networks.build_model(m, spec),
                                         gens, o.device)
                    protocol = TrainProtocol(epochs=epochs - 1, batch_size=64 if model ==
                                             "convnet-bn" else 256,
                                             dsa="color_crop_cutout_flip_scale_rotate")
                    train_models(models, x, y, protocol, gens, engine=engine, compile="off")
                    nets[engine] = models
            # tests/plugins/test_evaluators.py's criterion: allclose(atol=2e-4, rtol=1e-3)
            ratio = max(float(((a - b).abs() / (ENGINE_ATOL + TOL_ENGINES * b.abs())).max())
                        for ma, mb in zip(nets["stacked"], nets["sequential"], strict=True)
                        for a, b in zip(ma.state_dict().values(), mb.state_dict().values(),
                                        strict=True) if a.is_floating_point())
            rows.append(Row("evaluator", f"{model}: stacked vs sequential ({k} nets, "
                            f"{epochs} epoch)", f"max |Δ|/(atol+rtol·|w|) {ratio:.2f}",
                            f"≤ 1 (atol {ENGINE_ATOL:g}, rtol {TOL_ENGINES:g})",
                            status(ratio <= 1), {"ratio": ratio}))
        except Exception as exc:  # noqa: BLE001
            rows.append(error_row("evaluator", f"{model}: stacked vs sequential", exc))
    return rows


def sec_precision(o: Options) -> list[Row]:
    rows = []
    data = generated("mnist-shaped", 1, 28, 10, 40 if o.quick else 300)
    batch = 16 if o.quick else 64
    base = plan_for("datadam", data, 2, iterations=2, batch_real=batch, channels_last=False,
                    autocast="none")
    variants = {"channels_last": {"channels_last": True},
                "bf16 autocast": {"autocast": "bf16", "channels_last": False},
                "bf16 + channels_last": {"autocast": "bf16", "channels_last": True}}
    with strict_fp32():
        for name, change in variants.items():
            tol = TOL_BF16 if "bf16" in name else TOL_FP32
            try:
                plan = base.with_loop(**change)
                err, l2, _ = update_err(plan, data, o.device, o.device, ref_plan=base)
                bf16 = "bf16" in name
                rows.append(Row("precision", f"DataDAM {name} vs fp32 NCHW",
                                f"max rel {err:.1e}, L2 rel {l2:.1e}",
                                f"{'L2' if bf16 else 'max'} rel ≤ {tol:g}",
                                status((l2 if bf16 else err) <= tol),
                                {"rel_err": err, "rel_l2": l2}))
            except Exception as exc:  # noqa: BLE001
                rows.append(error_row("precision", f"DataDAM {name}", exc))
    # speed of each combination at IPC 10 (defaults otherwise: TF32 as torch sets it)
    fm, source = fashion_mnist(o.quick)
    ipc, n = (2, 1) if o.quick else (10, 10)
    for cl in (False, True):
        for ac in ("none", "bf16"):
            item = f"DataDAM IPC {ipc} channels_last={cl} autocast={ac}"
            try:
                plan = plan_for("datadam", fm, ipc, batch_real=16 if o.quick else 64,
                                channels_last=cl, autocast=ac)
                sec = timed_iterations(plan, fm, o.device, n)
                rows.append(Row("precision", item, f"{fmt_s(sec)}/it", source,
                                data={"sec_per_iter": sec}))
            except Exception as exc:  # noqa: BLE001
                rows.append(error_row("precision", item, exc))
    return rows


def sec_torchrun(o: Options) -> list[Row]:
    if not torch.distributed.is_available():
        return [Row("torchrun", "process group", status="skipped: no torch.distributed")]
    if not o.device.startswith("cuda"):
        return launch(o, 2, "gloo", o.device)
    gpus = torch.cuda.device_count()
    if not torch.distributed.is_nccl_available():
        rows = [Row("torchrun", "nccl", status="skipped: this torch has no nccl")]
    else:
        rows = launch(o, min(2, gpus), "nccl", "cuda")
    if gpus < 2:  # nccl refuses two ranks on one GPU: shard over two gloo ranks on cuda:0
        rows += launch(o, 2, "gloo", "cuda:0")
    return rows


def launch(o: Options, nproc: int, backend: str, device: str) -> list[Row]:
    """One ``torchrun --standalone`` of :func:`torchrun_child`; its rows."""
    what = f"{backend}, {nproc} process(es) on {device}"
    out = o.workdir / f"torchrun-{backend}-{nproc}"
    out.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", str(Path(__file__).resolve()), "--torchrun-child",
           str(out), "--device", device, "--backend", backend] + (["--quick"] if o.quick else [])
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    except subprocess.TimeoutExpired:
        return [Row("torchrun", what, status="error: no result in 300 s (a hang?)")]
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:160]
        return [Row("torchrun", what, f"exit {proc.returncode}", status=f"error: {tail}")]
    result = json.loads((out / "result.json").read_text())
    rows = [Row("torchrun", what, f"process group up and down in {wall:.1f} s", data=result)]
    if "allreduce_ok" in result:
        rows.append(Row("torchrun", f"{backend}: all_reduce", str(result["allreduce_ok"]),
                        "exact", status(result["allreduce_ok"])))
    for method in result.get("sharded", []):
        item = f"{method}: {nproc} processes ({backend}, {device}) vs one"
        try:
            data = torchrun_data(o.quick)
            plan = torchrun_plan(method, data, o.quick)
            with strict_fp32():
                init = run_images(plan.with_loop(iterations=0), data, "cpu")
                single = run_images(plan, data, device) - init
            sharded = torch.load(out / f"{method}.pt") - init
            err = rel_err(sharded, single)
            # per image, relative to the update's scale: a different summation order can push a
            # few activations across ReLU's zero and change those images' gradients (seen on
            # the CPU at this size, also by switching channels_last alone), so the criterion is
            # the typical image and at most a quarter of the images above the tolerance, as in
            # tests/test_distributed.py (docs/distributed.md)
            scale = float(single.abs().max()) or 1.0
            per = sorted(float((a - b).abs().max()) / scale for a, b in zip(sharded, single,
                                                                          strict=True))
            typical, over = per[len(per) // 2], sum(d > TOL_SHARDED for d in per)
            ok = typical <= TOL_SHARDED / 2 and over <= len(per) // 4
            rows.append(Row("torchrun", item,
                            f"typical image {typical:.1e}, {over}/{len(per)} over, max {err:.1e}",
                            f"typical ≤ {TOL_SHARDED / 2:g}, ≤ 1/4 over {TOL_SHARDED:g}",
                            status(ok), {"rel_err": err, "typical": typical, "over": over}))
        except Exception as exc:  # noqa: BLE001
            rows.append(error_row("torchrun", item, exc))
    if nproc < 2:
        rows.append(Row("torchrun", f"{backend}: class sharding",
                        status="skipped: one GPU (nccl refuses two ranks on one GPU)"))
    return rows


def torchrun_child(out: Path, device: str, backend: str, quick: bool) -> None:
    """One rank of the ``torchrun`` check; rank 0 writes ``out/result.json`` (and the gathered
    images of each sharded run)."""
    import faulthandler

    from condense import distributed

    faulthandler.dump_traceback_later(float(os.environ.get("GPU_BENCH_HANG_S", "240")), exit=True)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    result: dict[str, Any] = {"world": world, "backend": backend}
    if world == 1:  # condense.distributed.init is a no-op here: open the group ourselves
        dev = torch.device(device if device != "cuda" else "cuda:0")
        kwargs: dict[str, Any] = {"device_id": dev} if backend == "nccl" else {}
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch.distributed.init_process_group(backend, **kwargs)
        t = torch.arange(4.0, device=dev)
        distributed.all_reduce_(t, "the benchmark's all-reduce")
        result["allreduce_ok"] = bool(torch.equal(t.cpu(), torch.arange(4.0)))
        torch.distributed.destroy_process_group()
    else:
        dev = distributed.init(device, backend=backend)
        t = torch.full((2,), float(distributed.rank() + 1), device=dev)
        distributed.all_reduce_(t, "the benchmark's all-reduce")
        result["allreduce_ok"] = bool(torch.equal(t.cpu(), torch.full((2,), world * (world + 1)
                                                                      / 2)))
        data = torchrun_data(quick)
        result["sharded"] = ["dm", "datadam"]
        for method in result["sharded"]:
            with strict_fp32():
                images = run_images(torchrun_plan(method, data, quick), data, str(dev))
            if distributed.is_main():
                torch.save(images, out / f"{method}.pt")
        distributed.shutdown()
    if world == 1 or int(os.environ.get("RANK", "0")) == 0:
        (out / "result.json").write_text(json.dumps(result))


def torchrun_data(quick: bool) -> condense.RealData:
    return generated("mnist-shaped", 1, 28, 10, 40 if quick else 300)


def torchrun_plan(method: str, data: condense.RealData, quick: bool) -> Any:
    return plan_for(method, data, 2, iterations=2, batch_real=16 if quick else 64)


def sec_speed(o: Options) -> list[Row]:
    rows = []
    fm, fm_source = fashion_mnist(o.quick)
    if o.quick:
        cifar = generated("cifar10-shaped", 3, 32, 10, 40)
        cases = [(fm, fm_source, (1, 2)), (cifar, "generated 3×32×32", (2,))]
        n = 1
    else:
        cifar = generated("cifar10-shaped", 3, 32, 10, 5000)
        cases = [(fm, fm_source, (1, 10, 50)), (cifar, "generated 3×32×32 (CIFAR-10 shape)",
                                                 (10, 50))]
        n = 10
    for data, source, ipcs in cases:
        for method, batch in (("datadam", 64), ("dm", 256)):
            for ipc in ipcs:
                real = 16 if o.quick else batch
                item = f"{method} {data.name} IPC {ipc} batch_real {real}"
                try:
                    plan = plan_for(method, data, ipc, batch_real=real)
                    sec = timed_iterations(plan, data, o.device, n)
                    ref, verdict = "", "ok"
                    if data.name.startswith("fashion") and ipc == 10 and method == "datadam":
                        lo, hi = ANCHOR_DATADAM_S
                        x = (lo / sec, hi / sec)
                        ref = (f"H100 official 55–63 ms: {x[0]:.1f}–{x[1]:.1f}×; "
                               f"target ≥ {TARGET_DATADAM_X:g}×")
                        verdict = "ok" if x[0] >= TARGET_DATADAM_X else "below target"
                    elif data.name.startswith("fashion") and ipc == 10 and method == "dm":
                        ref = f"H100 official ~90 ms: {ANCHOR_DM_S / sec:.1f}×"
                    rows.append(Row("speed", item, f"{fmt_s(sec)}/it ({n} timed)",
                                    ref or source, verdict if o.device != "cpu" else "ok",
                                    {"sec_per_iter": sec, "source": source, "timed": n}))
                except Exception as exc:  # noqa: BLE001
                    rows.append(error_row("speed", item, exc))
    return rows


def sec_evalspeed(o: Options) -> list[Row]:
    try:
        import condense_evaluators.training  # noqa: F401
    except ImportError as exc:
        return [Row("evalspeed", "evaluation network",
                    status=f"skipped: condense-evaluators not installed ({exc})")]
    rows = []
    g = torch.Generator().manual_seed(0)
    x = torch.randn(100, 1, 28, 28, generator=g).to(o.device)
    y = (torch.arange(100) % 10).to(o.device)
    k = 2 if o.quick else 5
    epochs = 2 if o.quick else 30
    for protocol_name, model, batch in (("datadam", "convnet-bn", 64), ("dm", "convnet", 256)):
        item = f"{protocol_name} protocol ({model}, batch {batch}), K={k} at once"
        try:
            _train_nets(model, batch, 1, k, x, y, o.device)  # warm-up (kernels, allocator)
            wall = _train_nets(model, batch, epochs, k, x, y, o.device)
            per_net = wall / k / epochs * 1001
            lo, hi = ANCHOR_EVAL_NET_S
            verdict = "ok" if lo / per_net >= TARGET_EVAL_X else "below target"
            rows.append(Row("evalspeed", item,
                            f"{per_net:.2f} s/net per 1000 ep (measured {epochs} ep, scaled "
                            f"×{1001 / epochs:.0f})",
                            f"H100 official 6–10 s: {lo / per_net:.1f}–{hi / per_net:.1f}×; "
                            f"target ≥ {TARGET_EVAL_X:g}×",
                            verdict if o.device != "cpu" else "ok",
                            {"sec_per_net_1000": per_net, "epochs_measured": epochs, "k": k}))
        except Exception as exc:  # noqa: BLE001
            rows.append(error_row("evalspeed", item, exc))
    return rows


def _train_nets(model: str, batch: int, epochs: int, k: int, x: torch.Tensor, y: torch.Tensor,
                device: str) -> float:
    """Wall seconds to train ``k`` fresh networks for ``epochs`` epochs at once (auto engine)."""
    from condense_evaluators.training import TrainProtocol, init_models, train_models

    spec = condense.DataSpec(x.shape[1], tuple(x.shape[2:]), 10)
    gens = [torch.Generator().manual_seed(i) for i in range(k)]
    models = init_models(lambda: condense.networks.build_model(model, spec), gens, device)
    protocol = TrainProtocol(epochs=epochs - 1, batch_size=batch,
                             dsa="color_crop_cutout_flip_scale_rotate")
    sync(device)
    t0 = time.perf_counter()
    train_models(models, x, y, protocol, gens, engine="auto", compile="off")
    sync(device)
    return time.perf_counter() - t0


def sec_memory(o: Options) -> list[Row]:
    from condense.loop import memory

    rows = []
    plan, data, ipc, batch = memory_setup(o.quick)
    try:
        per_class_bytes = memory.estimate_class_bytes(plan, data, o.device)
        free = memory.available_bytes(o.device)
        auto = memory.auto_class_chunk(200, per_class_bytes, free)
        rows.append(Row("memory", f"auto rule: DataDAM TinyImageNet IPC {ipc}, batch_real {batch}",
                        f"class_chunk {auto or 200} ({'all' if auto == 0 else 'chunked'}); "
                        f"estimate {per_class_bytes / 2**20:.0f} MB/class",
                        f"{memory.AUTO_CHUNK_FRACTION:g} × {free / 2**30:.1f} GiB available",
                        data={"auto_chunk": auto, "class_bytes": per_class_bytes,
                              "available_bytes": free}))
    except Exception as exc:  # noqa: BLE001
        rows.append(error_row("memory", "auto rule", exc))
    chunks = (1, 2) if o.quick else (1, 10, 25, 50, 100, 200)
    cuda = o.device.startswith("cuda")
    for chunk in chunks:
        item = f"chunk {chunk}: one pass of {chunk} class(es), IPC {ipc}"
        try:
            if cuda:
                peak, sec = _peak_of_chunk(plan.with_loop(class_chunk=chunk), data, o.device,
                                           chunk)
            else:  # the CPU's peak RSS is per process: one process per chunk
                peak, sec = _memory_subprocess(chunk, o)
            est = memory.estimate_class_bytes(plan, data, o.device) * chunk
            rows.append(Row("memory", item,
                            f"peak {'allocated' if cuda else 'RSS +'} {peak / 2**20:.0f} MB "
                            f"in {sec:.2f} s", f"estimate {est / 2**20:.0f} MB",
                            data={"peak_bytes": peak, "estimate_bytes": est, "seconds": sec}))
        except Exception as exc:  # noqa: BLE001
            if cuda and isinstance(exc, torch.cuda.OutOfMemoryError):
                torch.cuda.empty_cache()
                rows.append(Row("memory", item, "out of memory", status="ok (OOM)"))
                break
            rows.append(error_row("memory", item, exc))
    return rows


def memory_setup(quick: bool) -> tuple[Any, condense.RealData, int, int]:
    """(plan, data, ipc, batch_real) of the memory section: TinyImageNet IPC 50 shapes."""
    ipc = 5 if quick else 50
    batch = 16 if quick else 64
    data = generated("tinyimagenet-shaped", 3, 64, 200, max(batch, ipc))
    return plan_for("datadam", data, ipc, iterations=1, batch_real=batch), data, ipc, batch


def _memory_subprocess(chunk: int, o: Options) -> tuple[int, float]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(chunk),
           "--device", o.device] + (["--quick"] if o.quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or ["no output"])[-1])
    peak, sec = json.loads(proc.stdout.strip().splitlines()[-1])
    return int(peak), float(sec)


def memory_child(chunk: int, device: str, quick: bool) -> None:
    plan, data, _, _ = memory_setup(quick)
    condense.tune_allocator()
    print(json.dumps(_peak_of_chunk(plan.with_loop(class_chunk=chunk), data, device, chunk)))


def _peak_of_chunk(plan: Any, data: condense.RealData, device: str, chunk: int
                   ) -> tuple[int, float]:
    """Peak bytes (CUDA: allocated; CPU: VmHWM above the start) and seconds of one iteration
    over the first ``chunk`` classes."""
    classes = list(range(chunk))
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        _reset_hwm()
        base = _status_kb("VmRSS") * 1024
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        condense.loop.run(plan, data, device=device, classes=classes)
    sync(device)
    sec = time.perf_counter() - t0
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() - base, sec
    return _status_kb("VmHWM") * 1024 - base, sec


def _status_kb(key: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_hwm() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


SECTION_FNS: dict[str, Callable[[Options], list[Row]]] = {
    "env": sec_env, "methods": sec_methods, "evaluator": sec_evaluator,
    "precision": sec_precision, "torchrun": sec_torchrun, "speed": sec_speed,
    "evalspeed": sec_evalspeed, "memory": sec_memory,
}


def error_row(section: str, item: str, exc: BaseException) -> Row:
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    return Row(section, item, status=f"error: {type(exc).__name__}: {first}",
               data={"traceback": traceback.format_exc()[-2000:]})


def needs_cuda(name: str, device: str) -> str | None:
    """Why a section cannot run on ``device`` (None: it can)."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        return "skipped: no CUDA device (run with --device cpu for the CPU path)"
    return None


def run_sections(names: list[str], o: Options,
                 on_row: Callable[[Row], None] = lambda r: None) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        why = needs_cuda(name, o.device) if name != "env" else None
        t0 = time.perf_counter()
        try:
            got = [Row(name, "(section)", status=why)] if why else SECTION_FNS[name](o)
        except Exception as exc:  # noqa: BLE001 - a section never aborts the script
            got = [error_row(name, "(section)", exc)]
        for r in got:
            r.data.setdefault("section_seconds", round(time.perf_counter() - t0, 2))
            on_row(r)
        rows.extend(got)
    return rows


def table(rows: list[Row]) -> str:
    head = ("section", "item", "measured", "reference / target", "status")
    cells = [head] + [(r.section, r.item, r.measured, r.reference, r.status) for r in rows]
    widths = [min(60, max(len(c[i]) for c in cells)) for i in range(5)]
    lines = []
    for j, c in enumerate(cells):
        lines.append(" | ".join(str(v)[:60].ljust(w) for v, w in zip(c, widths, strict=True)))
        if j == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def ensure_plugins() -> list[str]:
    """Register the repository's first-party plugins that are not installed (a fresh checkout on
    a GPU machine); returns the ones registered here."""
    from condense.plugins import load_plugins, pm

    load_plugins()
    done = []
    for module_name, folder in FIRST_PARTY.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            path = ROOT / "plugins" / folder
            if not path.is_dir():
                continue
            sys.path.insert(0, str(path))
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
        if not pm.is_registered(module) and not pm.has_plugin(module_name):
            pm.register(module, name=module_name)
            done.append(module_name)
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run; CPU < 2 min)")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated subset of: {', '.join(SECTIONS)}")
    ap.add_argument("--json", dest="json_path", default="gpu-benchmark.json",
                    help="where to write the results (JSON)")
    ap.add_argument("--torchrun-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="gloo", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    ensure_plugins()
    if args.torchrun_child:
        torchrun_child(Path(args.torchrun_child), args.device, args.backend, args.quick)
        return 0
    if args.memory_child is not None:
        memory_child(args.memory_child, args.device, args.quick)
        return 0
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    condense.tune_allocator()  # as `condense run` does
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="condense-gpu-") as tmp:
        o = Options(device=args.device, quick=args.quick, workdir=Path(tmp))
        rows = run_sections(names, o, on_row=lambda r: print(
            f"[{r.section}] {r.item}: {r.measured} {r.status}", file=sys.stderr, flush=True))
    total = time.perf_counter() - t0
    print(table(rows))
    print(f"total {total:.0f} s, device {args.device}, quick={args.quick}")
    report = {"device": args.device, "quick": args.quick, "seconds": total,
              "rows": [dataclasses.asdict(r) for r in rows]}
    Path(args.json_path).write_text(json.dumps(report, indent=2, default=str))
    return 1 if any(r.status == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
