"""``accuracy``: N networks trained from scratch on the distilled set, tested on the real test set.

The field's standard protocol (``evaluate_synset``, VICO-UoE/DatasetCondensation utils.py) with
the fast trainer of :mod:`.training`. ``model`` selects the architecture (cross-architecture
evaluation); each paper's protocol is a preset.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

import condense

from .protocol import (
    check_model,
    data_spec,
    model_builder,
    protocol_name,
    resolve_dsa,
    synset_transform,
    training_targets,
)
from .stats import mean_std
from .training import (
    TrainProtocol,
    evaluate_models,
    init_models,
    resolve_engine,
    train_models,
)

#: the settings that define a protocol (the rest are how it is run, not what it measures)
PROTOCOL_KEYS = ("model", "num_eval", "epochs", "batch_size", "lr", "momentum", "weight_decay",
                 "lr_decay", "dsa", "test_limit")


@dataclasses.dataclass(frozen=True)
class TrainedScores:
    """Accuracies (fractions) of a batch of evaluation networks and what it cost."""

    accuracies: list[float]
    train_seconds: float
    test_seconds: float
    engine: str
    compiled: bool


def train_and_score(
    *,
    images: Tensor,
    targets: Tensor,
    spec: condense.DataSpec,
    model: str | Callable[[], nn.Module],
    protocol: TrainProtocol,
    generators: list[torch.Generator],
    test_images: Tensor,
    test_labels: Tensor,
    transform: Callable[[Tensor], Tensor],
    device: torch.device,
    engine: Literal["auto", "stacked", "parallel", "sequential"] = "auto",
    compile: Literal["on", "off"] = "off",
    chunk: int = 0,
    lr: float | None = None,
    classes: Tensor | None = None,
    on_epoch: Callable[[int], None] | None = None,
) -> TrainedScores:
    """Initialise one network per generator, train them on ``images``, test on the uint8 split.

    ``model``: a name of ``condense.networks.MODELS`` or a zero-argument builder.
    """
    build = model_builder(model, spec) if isinstance(model, str) else model
    models = init_models(build, generators, device)
    x = images.to(device, torch.float32)
    y = targets.to(device)
    t0 = time.perf_counter()
    train_models(models, x, y, protocol, generators, engine=engine, compile=compile, chunk=chunk,
                 lr=lr, on_epoch=on_epoch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t1 = time.perf_counter()
    accs = evaluate_models(models, test_images, test_labels, transform, classes=classes)
    t2 = time.perf_counter()
    return TrainedScores(accuracies=accs, train_seconds=t1 - t0, test_seconds=t2 - t1,
                         engine=resolve_engine(engine, device, len(models)),
                         compiled=compile == "on")


def real_test_split(data: condense.RealData, limit: int) -> tuple[Tensor, Tensor]:
    """The official test split (uint8), or its first ``limit`` images when ``limit`` > 0."""
    test = data.test
    if limit > 0:
        return test.images[:limit], test.labels[:limit]
    return test.images, test.labels


class Accuracy(condense.Evaluator):
    """Test accuracy of N networks trained from scratch on the set (mean ± std, %)."""

    name = "accuracy"

    @dataclasses.dataclass(frozen=True)
    class Config(condense.Config):
        model: str = "convnet"  # architecture (condense list models): convnet = IN ConvNet
        num_eval: int = 5  # networks trained from scratch
        epochs: int = 1000  # E: the loop runs E+1 epochs, LR x lr_decay after epoch E//2+1
        batch_size: int = 256
        lr: float = 0.01  # SGD learning rate (a learned syn_lr in the artifact overrides it)
        momentum: float = 0.9
        weight_decay: float = 0.0005
        lr_decay: float = 0.1
        dsa: str = "auto"  # DSA strategy at training time; auto = the dataset's, none = off
        use_syn_lr: bool = True  # use the artifact's learned lr when it has one
        test_limit: int = 0  # test on the first N test images (0 = the full official split)
        # auto: stacked (vmap) on a GPU, parallel (a network per core) on a CPU
        engine: Literal["auto", "stacked", "parallel", "sequential"] = "auto"
        compile: Literal["on", "off"] = "off"  # torch.compile the training forward
        chunk: int = 0  # networks stacked at once (0 = all)

        def __post_init__(self) -> None:
            check_model(self.model)
            if self.num_eval < 1:
                raise condense.ConfigError(f"num_eval must be ≥ 1, got {self.num_eval}")
            TrainProtocol(self.epochs, self.batch_size, self.lr, self.momentum, self.weight_decay,
                          self.lr_decay, "none")

    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        # DM (VICO main_DM.py / README): IN ConvNet, 1000 epochs, batch 256 (README: 5 nets)
        "dm": {"model": "convnet", "epochs": 1000, "batch_size": 256, "num_eval": 5},
        # DataDAM (main_DataDAM.py): its ConvNet is BatchNorm; 1800 epochs, batch 64, 10 nets
        "datadam": {"model": "convnet-bn", "epochs": 1800, "batch_size": 64, "num_eval": 10},
        # reduced protocols (3 nets × 300 epochs; docs/benchmarks.md), each paper's network/batch
        "datadam-reduced": {"model": "convnet-bn", "epochs": 300, "batch_size": 64, "num_eval": 3},
        "dm-reduced": {"model": "convnet", "epochs": 300, "batch_size": 256, "num_eval": 3},
        # DM's cross-architecture pool uses BatchNorm variants (README)
        "dm-bn": {"model": "convnet-bn", "epochs": 1000, "batch_size": 256, "num_eval": 5},
        # DC (VICO utils.py evaluate_synset + get_daparam): 20 nets; without augmentation where
        # get_daparam gives none (every dataset but MNIST with the IN ConvNet): 300 epochs
        "dc": {"model": "convnet", "epochs": 300, "batch_size": 256, "num_eval": 20, "dsa": "none"},
        # DSA (VICO main.py with --dsa): 1000 epochs with DSA, 20 nets
        "dsa": {"model": "convnet", "epochs": 1000, "batch_size": 256, "num_eval": 20},
        # a smoke test: minutes on a CPU, numbers not comparable to papers
        "quick": {"model": "convnet", "epochs": 100, "batch_size": 256, "num_eval": 2,
                  "test_limit": 2000},
    }

    def protocol(self) -> str:
        defaults = type(self).Config().to_dict()
        return protocol_name(self.config.to_dict(), dict(self.presets), defaults, PROTOCOL_KEYS)

    def evaluate(
        self,
        synset: condense.SynSet,
        data: condense.RealData,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        progress: condense.ProgressFn | None = None,
    ) -> condense.EvalResult:
        cfg = self.config
        device = torch.device(device)
        spec = data_spec(synset, data)
        dsa = resolve_dsa(cfg.dsa, data)
        lr = cfg.lr
        if cfg.use_syn_lr and synset.syn_lr is not None:
            lr = float(synset.syn_lr.reshape(-1)[0])
        protocol = TrainProtocol(cfg.epochs, cfg.batch_size, lr, cfg.momentum, cfg.weight_decay,
                                 cfg.lr_decay, dsa)
        # Under torchrun each rank trains its share of the networks (keyed by network index, so
        # the results equal one process's); one process trains them all.
        mine = condense.distributed.shard(cfg.num_eval)
        generators = [condense.keyed_generator(seed, "accuracy", i) for i in mine]
        test_x, test_y = real_test_split(data, cfg.test_limit)
        total = cfg.num_eval * (cfg.epochs + 1)

        def on_epoch(done: int) -> None:
            if progress is not None:
                progress(condense.ProgressEvent("accuracy", done, total, {"model": cfg.model}))

        local_accs: list[float] = []
        engine, compiled, seconds, test_seconds = cfg.engine, False, 0.0, 0.0
        if generators:
            scores = train_and_score(
                images=synset.images, targets=training_targets(synset), spec=spec,
                model=cfg.model, protocol=protocol, generators=generators, test_images=test_x,
                test_labels=test_y, transform=synset_transform(synset, data), device=device,
                engine=cfg.engine, compile=cfg.compile, chunk=cfg.chunk, on_epoch=on_epoch)
            local_accs = [100.0 * a for a in scores.accuracies]
            engine, compiled, seconds = scores.engine, scores.compiled, scores.train_seconds
            test_seconds = scores.test_seconds
        accs = condense.distributed.gather_objects(local_accs)
        seconds = max(condense.distributed.gather_objects([seconds]))
        mean, std = mean_std(accs)
        settings: dict[str, Any] = {
            **cfg.to_dict(), "dsa": dsa, "lr": lr, "seed": seed, "device": str(device),
            "engine": engine, "compile": compiled,
            "labels": "soft" if synset.soft_labels is not None else "hard",
            "space": "zca" if synset.zca_transform is not None else "normalized",
        }
        return condense.EvalResult(
            evaluator=self.name,
            protocol=self.protocol(),
            settings=settings,
            metrics={"accuracy": mean, "std": std, "num_eval": float(cfg.num_eval)},
            per_run=tuple(accs),
            details={
                "unit": "percent; std is the population std over networks (np.std)",
                "train_images": len(synset),
                "test_images": int(test_x.shape[0]),
                "train_seconds": seconds,
                "seconds_per_model": seconds / cfg.num_eval,
                "test_seconds": test_seconds,
            },
        )


__all__ = ["PROTOCOL_KEYS", "Accuracy", "TrainedScores", "real_test_split", "train_and_score"]
