"""Expert trajectories: networks trained on the real data, their parameters after every epoch.

Training follows the official ``buffer.py`` of MTT (GeorgeCazenavette/mtt-distillation): a
ConvNet (InstanceNorm, width 128, depth by resolution) trained with SGD at ``lr_teacher`` 0.01,
momentum 0 and weight decay 0 (``--mom``/``--l2`` default to 0), mini-batches of 256 real images,
DSA on every batch (one op per batch, a parameter set per image), optional ×0.1 decay after epoch
``E//2 + 1`` (``--decay``, off by default). Every draw (initialisation, batch order, DSA) comes
from a generator keyed by ``(seed, "expert", index, ...)``, so an expert is a pure function of the
seed and its index: a restarted expert equals an uninterrupted one.

File format (one per expert, ``expert-0003.safetensors``; docs/experts.md): tensors
``epoch{e}/{parameter name}`` for ``e = 0..E`` (0 = initialisation), metadata ``condense_format``
= ``mtt-expert``, ``format_version`` and ``meta`` (JSON: dataset, normalisation, ZCA, model,
training settings, seed, per-epoch accuracy and seconds, versions). No pickles; written
atomically (temporary file, then rename).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

import condense

FORMAT = "mtt-expert"
FORMAT_VERSION = 1
_FILE = re.compile(r"^expert-(\d+)\.safetensors$")
#: what the run's ZCA is fitted on (as the core records it in artifacts)
ZCA_FIT = "unbiased covariance of the whole normalised training set"


@dataclasses.dataclass(frozen=True)
class ExpertConfig(condense.Config):
    """Settings of expert training (``condense experts --set key=value``); defaults: buffer.py."""

    lr_teacher: float = 0.01  # SGD learning rate of the experts
    momentum: float = 0.0  # SGD momentum (buffer.py --mom, default 0)
    weight_decay: float = 0.0  # SGD weight decay (buffer.py --l2, default 0)
    batch_train: int = 256  # real images per SGD step
    decay: bool = False  # buffer.py --decay: learning rate x0.1 after epoch E//2 + 1
    dsa_strategy: str = "auto"  # DSA ops joined by '_', 'none', or 'auto' (the dataset's)
    zca: bool = False  # ZCA-whiten the real data (fitted on the whole training set)
    zca_eps: float = 0.1  # ZCA regulariser (as the run's loop.zca_eps)
    train_limit: int = 0  # train on the first N images of each class (0 = all; quick tests)
    test_limit: int = 0  # test accuracy after each epoch on N test images (0 = all, -1 = none)

    def __post_init__(self) -> None:
        if self.lr_teacher <= 0:
            raise ValueError("lr_teacher must be > 0")
        if self.batch_train < 1:
            raise ValueError("batch_train must be >= 1")
        if self.train_limit < 0:
            raise ValueError("train_limit must be >= 0")
        if self.test_limit < -1:
            raise ValueError("test_limit must be >= -1")
        if self.zca_eps <= 0:
            raise ValueError("zca_eps must be > 0")
        condense.augment.parse_strategy(self.dsa_strategy if self.dsa_strategy != "auto" else "")


def expert_path(folder: str | os.PathLike[str], index: int) -> Path:
    return Path(folder) / f"expert-{index:04d}.safetensors"


def build_net(model: str, spec: condense.DataSpec, generator: torch.Generator | None = None,
              device: torch.device | str = "cpu") -> nn.Module:
    """``condense.networks.build_model(model, spec)`` without touching the global RNG; with a
    generator, its initialisation is redrawn from it (``condense.networks.reinit_``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # layers reinit_ does not cover get a fixed draw
        net = condense.networks.build_model(model, spec)
    if generator is not None:
        condense.networks.reinit_(net, generator)
    return net.to(device)


def architecture(net: nn.Module) -> dict[str, Any]:
    """What must agree between a trajectory and the student: the module's text, and its
    parameters' names and shapes in the module's order (a list: JSON objects get sorted)."""
    return {"repr": repr(net),
            "parameters": [[n, list(p.shape)] for n, p in net.named_parameters()]}


def zca_state(data: condense.RealData) -> dict[str, Any] | None:
    """The ZCA a run of ``data`` whitens with (``None``: no ZCA)."""
    if data.zca is None:
        return None
    return {"eps": float(data.zca.eps), "fit": ZCA_FIT}


def data_record(data: condense.RealData) -> dict[str, Any]:
    """The dataset facts a trajectory is only valid for."""
    spec = data.spec
    return {
        "dataset": data.name,
        "dataset_config": dict(data.config),
        "channels": spec.channels,
        "image_size": list(spec.image_size),
        "num_classes": spec.num_classes,
        "mean": list(data.mean),
        "std": list(data.std),
        "zca": zca_state(data),
    }


# -- training ---------------------------------------------------------------------------------


def train_experts(
    data: condense.RealData,
    out: str | os.PathLike[str],
    *,
    experts: int,
    epochs: int,
    model: str = "convnet",
    config: ExpertConfig | Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: condense.ProgressFn | None = None,
) -> list[Path]:
    """Train ``experts`` networks for ``epochs`` epochs each and write their trajectories to
    ``out`` (one safetensors file per expert). A file that already holds the finished expert is
    kept (resume); a file made with other settings raises :class:`condense.ConfigError`.

    ``progress`` receives ``ProgressEvent("expert", batches_done, batches, info)`` during an
    epoch, ``("expert-epoch", epoch, epochs, info)`` after each (``info``: expert, epoch,
    train_loss, train_acc, test_acc, seconds) and ``("expert-done", index + 1, experts, info)``
    after each expert (``info["skipped"]`` when it was already there).
    """
    if experts < 1:
        raise condense.ConfigError(f"--experts must be at least 1, got {experts}")
    if epochs < 1:
        raise condense.ConfigError(f"--epochs must be at least 1, got {epochs}")
    cfg = config if isinstance(config, ExpertConfig) else ExpertConfig.from_dict(
        config, owner="condense experts")
    device = torch.device(device)
    build_net(model, data.spec)  # an unknown model name fails before any work
    strategy = data.source.dsa_strategy if cfg.dsa_strategy == "auto" else cfg.dsa_strategy
    condense.augment.parse_strategy(strategy)
    prepared = data.prepared(device, zca_eps=cfg.zca_eps if cfg.zca else None)
    rows = _training_rows(prepared, cfg.train_limit)
    settings = {
        **data_record(prepared),
        "model": model,
        "epochs": epochs,
        "seed": seed,
        "training": {**{k: v for k, v in cfg.to_dict().items() if k != "test_limit"},
                     "dsa_strategy": strategy, "train_images": len(rows)},
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(experts):
        path = expert_path(out, index)
        if path.exists() and _finished(path, settings, index):
            paths.append(path)
            if progress:
                progress(condense.ProgressEvent("expert-done", index + 1, experts,
                                                {"expert": index, "skipped": True,
                                                 "path": str(path)}))
            continue
        tensors, history = _train_one(prepared, rows, model, cfg, strategy, seed, index, epochs,
                                      device, progress)
        meta = {**settings, "index": index, "format_version": FORMAT_VERSION,
                "test_limit": cfg.test_limit,
                "architecture": architecture(build_net(model, data.spec)),
                "history": history,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "versions": {"condense": condense.__version__, "torch": torch.__version__,
                             "condense_mtt": _version()}}
        write_expert(path, tensors, meta)
        paths.append(path)
        if progress:
            progress(condense.ProgressEvent("expert-done", index + 1, experts,
                                            {"expert": index, "skipped": False, "path": str(path)}))
    return paths


def _version() -> str:
    from . import __version__

    return __version__


def _training_rows(data: condense.RealData, limit: int) -> Tensor:
    """Indices of the training images used: all, or the first ``limit`` of each class."""
    index = data.class_index()
    if limit <= 0:
        return torch.cat(index).sort().values
    return torch.cat([ix[:limit] for ix in index]).sort().values


def _train_one(data: condense.RealData, rows: Tensor, model: str, cfg: ExpertConfig,
               strategy: str, seed: int, index: int, epochs: int, device: torch.device,
               progress: condense.ProgressFn | None) -> tuple[dict[str, Tensor], list[dict]]:
    net = build_net(model, data.spec, condense.keyed_generator(seed, "expert", index, "init"),
                    device).train()
    lr = cfg.lr_teacher

    def optimizer() -> torch.optim.Optimizer:
        return torch.optim.SGD(net.parameters(), lr=lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)

    opt = optimizer()
    tensors = _snapshot(net, 0)
    images, labels = data.train.images, data.train.labels
    history: list[dict[str, Any]] = []
    batches = (len(rows) + cfg.batch_train - 1) // cfg.batch_train
    for epoch in range(epochs):
        t0 = time.perf_counter()
        g = condense.keyed_generator(seed, "expert", index, "epoch", epoch)
        order = rows[torch.randperm(len(rows), generator=g)]
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for b, idx in enumerate(order.split(cfg.batch_train)):
            x = data.normalize(images.index_select(0, idx.to(images.device)).to(device))
            x = condense.augment.augment(x, strategy, g)
            y = labels[idx].to(device)
            out = net(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
            correct += (out.detach().argmax(1) == y).sum()
            if progress:
                progress(condense.ProgressEvent("expert", b + 1, batches,
                                                {"expert": index, "epoch": epoch + 1,
                                                 "epochs": epochs}))
        tensors.update(_snapshot(net, epoch + 1))
        record = {"epoch": epoch + 1, "train_loss": float(loss_sum) / len(rows),
                  "train_acc": 100.0 * float(correct) / len(rows)}
        if cfg.test_limit >= 0:
            record["test_acc"] = test_accuracy(net, data, cfg.test_limit, device)
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        if progress:
            progress(condense.ProgressEvent("expert-epoch", epoch + 1, epochs,
                                            {"expert": index, **record}))
        if cfg.decay and epoch == epochs // 2 + 1:  # buffer.py: a new optimizer at the lower lr
            lr *= 0.1
            opt = optimizer()
    return tensors, history


def _snapshot(net: nn.Module, epoch: int) -> dict[str, Tensor]:
    return {f"epoch{epoch}/{n}": p.detach().to("cpu", torch.float32).contiguous().clone()
            for n, p in net.named_parameters()}


@torch.no_grad()
def test_accuracy(net: nn.Module, data: condense.RealData, limit: int = 0,
                  device: torch.device | str = "cpu", chunk: int = 1000) -> float:
    """Accuracy (%) on the test split (its first ``limit`` images when ``limit`` > 0)."""
    test = data.test
    images, labels = test.images, test.labels
    if limit > 0:
        images, labels = images[:limit], labels[:limit]
    was_training = net.training
    net.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    for i in range(0, len(images), chunk):
        x = data.normalize(images[i : i + chunk].to(device))
        correct += (net(x).argmax(1) == labels[i : i + chunk].to(device)).sum()
    net.train(was_training)
    return 100.0 * float(correct) / max(len(images), 1)


# -- files ------------------------------------------------------------------------------------


def write_expert(path: str | os.PathLike[str], tensors: Mapping[str, Tensor],
                 meta: Mapping[str, Any]) -> Path:
    """Write one trajectory atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": "pt", "condense_format": FORMAT, "format_version": str(FORMAT_VERSION),
              "meta": json.dumps(dict(meta), sort_keys=True)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=header)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of one expert file; :class:`condense.ConfigError` if it is not one."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise condense.ConfigError(f"{path}: unreadable expert trajectory ({exc}); delete it and "
                                   f"run condense experts again") from None
    if header.get("condense_format") != FORMAT:
        raise condense.ConfigError(f"{path}: not an expert trajectory written by condense experts")
    version = int(header.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise condense.ConfigError(f"{path}: expert format {version} is newer than this "
                                   f"condense-mtt reads ({FORMAT_VERSION}); upgrade condense-mtt")
    return json.loads(header["meta"])


def _finished(path: Path, settings: Mapping[str, Any], index: int) -> bool:
    """Whether ``path`` is expert ``index`` made with ``settings`` (else ConfigError)."""
    meta = read_meta(path)
    theirs = {k: meta.get(k) for k in settings}
    ours = json.loads(json.dumps(dict(settings)))
    if theirs != ours or meta.get("index") != index:
        key = _first_difference(theirs, ours) or "index"
        raise condense.ConfigError(
            f"{path} was trained with other settings ({key}: {_get(theirs, key)!r} there, "
            f"{_get(ours, key)!r} now); use another --out folder or delete its expert files")
    return True


def _first_difference(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> str:
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            sub = _first_difference(va, vb, f"{prefix}{key}.")
            if sub:
                return sub
        elif va != vb:
            return prefix + key
    return ""


def _get(d: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, Mapping):
            return None
        d = d.get(part)  # type: ignore[assignment]
    return d


class Trajectories:
    """The expert files of one folder, checked against each other and, with :meth:`check_run`,
    against a run; :meth:`load` reads two epochs of one expert (only those tensors)."""

    def __init__(self, folder: str | os.PathLike[str], limit: int = 0) -> None:
        self.folder = Path(folder)
        if not str(folder):
            raise condense.ConfigError(
                "mtt needs expert trajectories: train them with `condense experts --dataset D "
                "--experts N --epochs E --out DIR`, then pass --set experts=DIR")
        if not self.folder.is_dir():
            raise condense.ConfigError(
                f"expert folder {self.folder} does not exist; train experts with `condense "
                f"experts ... --out {self.folder}` or fix --set experts=DIR")
        found = sorted((int(m.group(1)), p) for p in self.folder.iterdir()
                       if (m := _FILE.match(p.name)))
        if not found:
            raise condense.ConfigError(
                f"{self.folder} holds no expert-NNNN.safetensors files; train them with "
                f"`condense experts ... --out {self.folder}`")
        if limit > 0:
            found = found[:limit]
        self.paths = [p for _, p in found]
        self.metas = [read_meta(p) for p in self.paths]
        self.meta = self.metas[0]
        self.epochs = min(int(m["epochs"]) for m in self.metas)
        shared = ("dataset", "dataset_config", "channels", "image_size", "num_classes", "mean",
                  "std", "zca", "model", "architecture")
        for path, meta in zip(self.paths[1:], self.metas[1:], strict=True):
            for key in shared:
                if meta.get(key) != self.meta.get(key):
                    raise condense.ConfigError(
                        f"{path} differs from {self.paths[0]} in {key} ({meta.get(key)!r} vs "
                        f"{self.meta.get(key)!r}); keep one kind of expert per folder")
        self.names = [name for name, _ in self.meta["architecture"]["parameters"]]

    def __len__(self) -> int:
        return len(self.paths)

    def check_run(self, data: condense.RealData, model: str) -> None:
        """One :class:`condense.ConfigError` naming the first thing that differs between the
        trajectories and a run on ``data`` (prepared: ZCA fitted if the run uses it) with the
        student ``model``: the key, both values and the fix."""
        run = data_record(data)
        where = f"the expert trajectories in {self.folder}"
        for key in ("dataset", "dataset_config", "channels", "image_size", "num_classes"):
            theirs, ours = self.meta.get(key), run[key]
            if theirs != ours:
                raise condense.ConfigError(
                    f"{where} do not match this run: {key} is {theirs!r} there but {ours!r} here; "
                    f"distil the dataset they were trained on, or train experts for this one "
                    f"(condense experts --dataset {data.name} ... --out NEW_DIR)")
        for key in ("mean", "std"):
            theirs, ours = self.meta.get(key), run[key]
            if theirs != ours:
                raise condense.ConfigError(
                    f"{where} do not match this run: normalisation {key} is {theirs!r} there but "
                    f"{ours!r} here (the dataset's constants changed); retrain the experts")
        theirs, ours = self.meta.get("zca"), run["zca"]
        if (theirs is None) != (ours is None):
            fix = ("pass --set zca=true to whiten this run like them" if theirs is not None else
                   "run without zca (--set zca=false), or train experts with --set zca=true")
            raise condense.ConfigError(
                f"{where} do not match this run: zca is {'on' if theirs else 'off'} there but "
                f"{'on' if ours else 'off'} here; {fix}")
        if theirs is not None and ours is not None and theirs != ours:
            key = "eps" if theirs.get("eps") != ours.get("eps") else "fit"
            raise condense.ConfigError(
                f"{where} do not match this run: zca {key} is {theirs.get(key)!r} there but "
                f"{ours.get(key)!r} here; pass --set zca_eps={theirs.get('eps')} or retrain "
                f"the experts")
        if self.meta.get("model") != model:
            raise condense.ConfigError(
                f"{where} do not match this run: model is {self.meta.get('model')!r} there but "
                f"{model!r} here; pass --set model={self.meta.get('model')} or train experts "
                f"with --model {model}")
        ours_arch = architecture(build_net(model, data.spec))
        theirs_arch = self.meta.get("architecture")
        if theirs_arch != ours_arch:
            key = "parameters" if theirs_arch and theirs_arch.get("parameters") != ours_arch[
                "parameters"] else "repr"
            raise condense.ConfigError(
                f"{where} do not match this run: the {model} network's {key} differ (the "
                f"network definition changed since they were trained); retrain the experts")

    def check_schedule(self, max_start_epoch: int, expert_epochs: int) -> None:
        last = max_start_epoch - 1 + expert_epochs
        if last > self.epochs:
            raise condense.ConfigError(
                f"max_start_epoch {max_start_epoch} and expert_epochs {expert_epochs} need "
                f"trajectories of at least {last} epochs but {self.folder} has {self.epochs}; "
                f"pass --set max_start_epoch={max(1, self.epochs - expert_epochs + 1)} (or "
                f"lower expert_epochs), or train experts with --epochs {last}")

    def load(self, index: int, epochs: Sequence[int], device: torch.device | str = "cpu",
             names: Sequence[str] | None = None) -> list[Tensor]:
        """Expert ``index``'s parameters after each of ``epochs``, each flattened to one vector
        in the order of ``names`` (default: the network's ``named_parameters()`` order, as
        recorded), on ``device``."""
        path = self.paths[index]
        names = list(self.names if names is None else names)
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                return [torch.cat([f.get_tensor(f"epoch{e}/{n}").reshape(-1) for n in names])
                        .to(device) for e in epochs]
        except (SafetensorError, OSError) as exc:
            raise condense.ConfigError(f"{path}: unreadable expert trajectory ({exc})") from None

    def load_all(self, index: int) -> dict[str, Tensor]:
        """Every tensor of expert ``index`` (``epoch{e}/{name}``)."""
        with safe_open(str(self.paths[index]), framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}


ProgressCallback = Callable[[condense.ProgressEvent], None]

__all__ = ["ExpertConfig", "Trajectories", "architecture", "build_net", "data_record",
           "expert_path", "read_meta", "test_accuracy", "train_experts", "write_expert",
           "zca_state"]
