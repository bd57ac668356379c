"""``accuracy``: N networks trained from scratch on the distilled set, tested on the real test set.

The field's standard protocol (``evaluate_synset``, VICO-UoE/DatasetCondensation utils.py) with
the fast trainer of :mod:`.training`. ``model`` selects the architecture (cross-architecture
evaluation); each paper's protocol is a preset.

Every result comes with its **random baseline** (``baseline=true``, the default): ``ipc`` random
real images per class (``condense.distill("random", ...)``), trained by the same networks (same
initialisations, orders and augmentation draws) under the same protocol; cached (:mod:`.baseline`).
With a ``teacher`` the set is also trained on soft labels and DD-Ranking's HLR, IOR and LRS are
reported (:mod:`.ddranking`). Only the networks after the last epoch are tested: nothing is
selected on test accuracy.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

import condense

from .baseline import BaselineRequest, baseline_scores, random_set
from .ddranking import paired_scores
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
from .teacher import Teacher, get_teacher, tempered
from .training import (
    SoftLoss,
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
    soft: SoftLoss = SoftLoss(),  # noqa: B008 - frozen dataclass
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
                 lr=lr, on_epoch=on_epoch, soft=soft)
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
        # the random baseline: ipc random real images per class, same networks and protocol
        baseline: bool = True
        cache_dir: str = ""  # baselines/teachers cache ("" = $CONDENSE_CACHE_DIR/eval or ~/.cache)
        # soft labels (DD-Ranking): "" = none, "train" = a network trained on the real training
        # set (cached), or the path of a saved state dict of teacher_model
        teacher: str = ""
        teacher_model: str = ""  # "" = model
        teacher_epochs: int = 20  # epochs over the real training set
        teacher_images: int = 0  # class-balanced subset of the training set (0 = all)
        teacher_batch: int = 256
        teacher_lr: float = 0.01
        soft_criterion: Literal["sce", "kl"] = "sce"  # loss on soft labels
        temperature: float = 1.0  # softmax temperature of the soft labels and the student
        lrs_weight: float = 0.5  # w in DD-Ranking's alpha = w IOR - (1 - w) HLR

        def __post_init__(self) -> None:
            check_model(self.model)
            if self.teacher_model:
                check_model(self.teacher_model)
            SoftLoss(self.soft_criterion, self.temperature)
            if not 0.0 <= self.lrs_weight <= 1.0:
                raise condense.ConfigError(f"lrs_weight must be in [0, 1], got {self.lrs_weight}")
            if self.teacher_epochs < 1 or self.teacher_images < 0 or self.teacher_batch < 1:
                raise condense.ConfigError(
                    "teacher_epochs and teacher_batch must be ≥ 1, teacher_images ≥ 0")
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
        test_x, test_y = real_test_split(data, cfg.test_limit)
        transform = synset_transform(synset, data)
        soft = SoftLoss(cfg.soft_criterion, cfg.temperature)
        total = cfg.num_eval * (cfg.epochs + 1)
        timing = {"engine": cfg.engine, "compiled": False, "seconds": 0.0, "test_seconds": 0.0}

        def run(task: str, images: Tensor, targets: Tensor, run_lr: float) -> list[float]:
            """Train the protocol's networks (the same initialisations every time) on one set;
            per-network test accuracies in percent, gathered over ranks."""
            def on_epoch(done: int) -> None:
                if progress is not None:
                    progress(condense.ProgressEvent(task, done, total, {"model": cfg.model}))

            local: list[float] = []
            if mine:
                generators = [condense.keyed_generator(seed, "accuracy", i) for i in mine]
                scores = train_and_score(
                    images=images, targets=targets, spec=spec, model=cfg.model,
                    protocol=protocol, generators=generators, test_images=test_x,
                    test_labels=test_y, transform=transform, device=device, engine=cfg.engine,
                    compile=cfg.compile, chunk=cfg.chunk, lr=run_lr, on_epoch=on_epoch,
                    soft=soft)
                local = [100.0 * a for a in scores.accuracies]
                if task == "accuracy":
                    timing.update(engine=scores.engine, compiled=scores.compiled,
                                  seconds=scores.train_seconds, test_seconds=scores.test_seconds)
            return condense.distributed.gather_objects(local)

        own_soft = synset.soft_labels is not None
        hard_targets = synset.labels.long()
        own_targets = (tempered(training_targets(synset), cfg.temperature) if own_soft
                       else hard_targets)
        accs = run("accuracy", synset.images, own_targets, lr)
        seconds = max(condense.distributed.gather_objects([timing["seconds"]]))
        mean, std = mean_std(accs)
        metrics: dict[str, float] = {"accuracy": mean, "std": std,
                                     "num_eval": float(cfg.num_eval)}
        details: dict[str, Any] = {
            "unit": "percent; std is the population std over networks (np.std)",
            "train_images": len(synset),
            "test_images": int(test_x.shape[0]),
            "train_seconds": seconds,
            "seconds_per_model": seconds / cfg.num_eval,
            "test_seconds": timing["test_seconds"],
            "selection": "none: every network is tested once, after its last epoch",
        }

        space = {"mean": list(synset.meta.get("mean") or []),
                 "std": list(synset.meta.get("std") or []),
                 "zca": dict(synset.meta.get("zca") or {}) or None}
        teacher: Teacher | None = None
        if cfg.teacher:
            def on_teacher(done: int, of: int) -> None:
                if progress is not None:
                    progress(condense.ProgressEvent("teacher", done, of,
                                                    {"model": teacher_model}))

            teacher_model = cfg.teacher_model or cfg.model
            teacher, status = get_teacher(
                cfg.teacher, model_name=teacher_model, data=data, spec=spec,
                transform=transform, space=space, test_images=test_x, test_labels=test_y,
                epochs=cfg.teacher_epochs, images=cfg.teacher_images,
                batch_size=cfg.teacher_batch, lr=cfg.teacher_lr, seed=seed, device=device,
                cache_dir=cfg.cache_dir, progress=on_teacher)
            details["teacher"] = {"model": teacher.name, "source": teacher.source,
                                  "cache": status, "key": teacher.key,
                                  "accuracy": teacher.accuracy, "seconds": teacher.seconds}

        # the set under hard labels and under soft labels (stored ones as they are, else the
        # teacher's), each computed once
        hard_accs = accs if not own_soft else None
        soft_accs = accs if own_soft else None
        if teacher is not None:
            if hard_accs is None:
                hard_accs = run("hard labels", synset.images, hard_targets, lr)
            if soft_accs is None:
                soft_accs = run("soft labels", synset.images,
                                teacher.probabilities(synset.images, cfg.temperature), lr)

        # the random baseline(s): same networks, protocol, seed and labels; cached
        baselines: dict[str, list[float]] = {}
        if cfg.baseline:
            ipc = set_ipc(synset)
            random_cache: list[tuple[Tensor, Tensor]] = []

            def random_images() -> tuple[Tensor, Tensor]:
                if not random_cache:
                    random_cache.append(random_set(data, ipc, seed, transform))
                return random_cache[0]

            base_fields = {
                "dataset": data.name,
                "dataset_config": dict(synset.meta.get("dataset_config") or {}),
                "ipc": ipc, "seed": seed, "device": device.type, "space": space,
                "protocol": {k: getattr(cfg, k) for k in PROTOCOL_KEYS}, "dsa": dsa,
                "lr": cfg.lr,
            }
            regimes: list[str] = ["hard"] if (not own_soft or teacher is not None) else []
            if teacher is not None:
                regimes.append("soft")
            info: dict[str, Any] = {"method": "random", "ipc": ipc, "seed": seed,
                                    "lr": cfg.lr}
            for regime in regimes:
                labels: Any = "hard"
                if regime == "soft":
                    labels = {"teacher": teacher.key, "criterion": soft.criterion,  # type: ignore[union-attr]
                              "temperature": soft.temperature}

                def compute(regime: str = regime) -> list[float]:
                    images, rlabels = random_images()
                    targets = rlabels if regime == "hard" else \
                        teacher.probabilities(images, cfg.temperature)  # type: ignore[union-attr]
                    return run("baseline" if regime == "hard" else "soft baseline", images,
                               targets, cfg.lr)

                scores = baseline_scores(BaselineRequest({**base_fields, "labels": labels}),
                                         compute, cache_dir=cfg.cache_dir)
                baselines[regime] = scores.per_run
                info[regime] = {"per_run": scores.per_run, "cache": scores.cache,
                                "key": scores.key, "seconds": scores.seconds}
            if own_soft and teacher is None:
                # no teacher to label random images: compare with hard-label random images and
                # say so (the difference then includes the labels' effect)
                scores = baseline_scores(BaselineRequest({**base_fields, "labels": "hard"}),
                                         lambda: run("baseline", *random_images(), cfg.lr),
                                         cache_dir=cfg.cache_dir)
                baselines["hard"] = scores.per_run
                info["hard"] = {"per_run": scores.per_run, "cache": scores.cache,
                                "key": scores.key, "seconds": scores.seconds}
                info["labels_differ"] = ("the set trains on its stored soft labels, the random "
                                         "baseline on hard labels; give a teacher to label both")
            own_regime = "soft" if own_soft and "soft" in baselines else "hard"
            info["labels"] = own_regime
            b_mean, b_std = mean_std(baselines[own_regime])
            metrics.update(baseline=b_mean, baseline_std=b_std, difference=mean - b_mean)
            details["baseline"] = info

        if teacher is not None:
            assert hard_accs is not None and soft_accs is not None
            for name, values in (("hard", hard_accs), ("soft", soft_accs)):
                m, s = mean_std(values)
                metrics[f"{name}_accuracy"], metrics[f"{name}_std"] = m, s
                if name in baselines:
                    bm, bs = mean_std(baselines[name])
                    metrics.update({f"{name}_baseline": bm, f"{name}_baseline_std": bs,
                                    f"{name}_difference": m - bm})
            metrics["real_accuracy"] = teacher.accuracy
            if "soft" in baselines:
                metrics.update(paired_scores(teacher.accuracy, hard_accs, soft_accs,
                                             baselines["soft"], cfg.lrs_weight))
            else:
                metrics["hlr"], metrics["hlr_std"] = mean_std(
                    [teacher.accuracy - a for a in hard_accs])
            details["hard_per_run"], details["soft_per_run"] = hard_accs, soft_accs

        settings: dict[str, Any] = {
            **cfg.to_dict(), "dsa": dsa, "lr": lr, "seed": seed, "device": str(device),
            "engine": timing["engine"], "compile": timing["compiled"],
            "labels": "soft" if own_soft else "hard",
            "space": "zca" if synset.zca_transform is not None else "normalized",
        }
        return condense.EvalResult(
            evaluator=self.name,
            protocol=self.protocol(),
            settings=settings,
            metrics=metrics,
            per_run=tuple(accs),
            details=details,
        )


def set_ipc(synset: condense.SynSet) -> int:
    """Images per class of the set: its metadata's ``ipc``, else its largest class."""
    ipc = synset.meta.get("ipc")
    if isinstance(ipc, int) and ipc > 0:
        return ipc
    return int(torch.bincount(synset.labels.long()).max())


__all__ = ["PROTOCOL_KEYS", "Accuracy", "TrainedScores", "real_test_split", "set_ipc",
           "train_and_score"]
