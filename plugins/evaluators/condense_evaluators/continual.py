"""``continual``: class-incremental learning with the distilled set as the memory.

GDumb-style, as in DM's ``CL_DM.py`` (VICO-UoE/DatasetCondensation; docs/evaluators.md): the
classes arrive in ``steps`` groups in an order drawn from the seed (``np.random.seed(s);
np.random.permutation(C)``, so the official orders); at step t a **fresh** network with all C
outputs is trained from scratch on the memory of the classes seen so far and tested on the real
test images of those classes (C-way argmax). Several seeds × several networks per step give
mean ± std per step; the mean over steps summarises the curve.

The same run is repeated with ``random`` and ``herding`` memories of the same size (real images of
the dataset, built with condense's own baselines), with the same networks' initialisations.

Simplification (documented): the artifact is one set distilled from all classes, so step t uses
its images of the classes seen so far; in the paper each step's images were distilled from that
step's classes only.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import torch

import condense

from .accuracy import real_test_split, train_and_score
from .protocol import check_model, data_spec, resolve_dsa, synset_transform, training_targets
from .stats import mean_std
from .training import TrainProtocol, run_on_cores

BASELINES = ("random", "herding")


def class_order(num_classes: int, seed: int) -> list[int]:
    """The official class order of seed ``s``: ``np.random.seed(s); np.random.permutation(C)``."""
    return [int(c) for c in np.random.RandomState(seed).permutation(num_classes)]


def step_classes(order: list[int], steps: int) -> list[list[int]]:
    """Split the class order into ``steps`` groups (as equal as possible, earlier ones larger)."""
    if not 1 <= steps <= len(order):
        raise condense.ConfigError(f"steps must be between 1 and {len(order)}, got {steps}")
    return [[int(c) for c in part] for part in np.array_split(np.array(order), steps)]


class Continual(condense.Evaluator):
    """Class-incremental accuracy with the set as memory, against random and herding memories."""

    name = "continual"

    @dataclasses.dataclass(frozen=True)
    class Config(condense.Config):
        steps: tuple[int, ...] = (5, 10)  # class-incremental settings to run
        seeds: int = 5  # class orders 0..seeds-1
        num_eval: int = 3  # networks per seed and step
        baselines: tuple[str, ...] = BASELINES  # memories compared with the set (random, herding)
        model: str = "convnet"
        epochs: int = 1000
        batch_size: int = 256
        lr: float = 0.01
        momentum: float = 0.9
        weight_decay: float = 0.0005
        lr_decay: float = 0.1
        dsa: str = "auto"
        test_limit: int = 0  # first N test images (then restricted to the seen classes); 0 = all
        engine: Literal["auto", "stacked", "parallel", "sequential"] = "auto"
        compile: Literal["on", "off"] = "off"

        def __post_init__(self) -> None:
            check_model(self.model)
            bad = [b for b in self.baselines if b not in BASELINES]
            if bad:
                raise condense.ConfigError(
                    f"unknown baseline {', '.join(bad)}; valid: {', '.join(BASELINES)}")
            if self.seeds < 1 or self.num_eval < 1 or not self.steps:
                raise condense.ConfigError("seeds, num_eval must be ≥ 1 and steps non-empty")
            TrainProtocol(self.epochs, self.batch_size, self.lr, self.momentum, self.weight_decay,
                          self.lr_decay, "none")

    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        # CL_DM.py: 5 seeds × 3 networks, E = 1000, batch 256, IN ConvNet (the default)
        "dm": {},
        # CPU minutes on Fashion-MNIST; numbers not comparable to papers
        "quick": {"steps": (5,), "seeds": 2, "num_eval": 1, "epochs": 100, "test_limit": 2000},
    }

    def protocol(self) -> str:
        """``cl-<preset>`` when the settings are a preset's (how it runs aside), else custom."""
        run_only = ("engine", "compile", "baselines")
        mine = {k: v for k, v in self.config.to_dict().items() if k not in run_only}
        for name, preset in self.presets.items():
            ref = type(self).Config.from_dict(dict(preset)).to_dict()
            if mine == {k: v for k, v in ref.items() if k not in run_only}:
                return f"cl-{name}"
        return "cl-custom"

    def memories(self, synset: condense.SynSet, data: condense.RealData, seed: int,
                 ) -> dict[str, list[condense.SynSet]]:
        """``{name: [memory for class-order seed s]}``: the set itself and each baseline."""
        ipc = synset.ipc
        out: dict[str, list[condense.SynSet]] = {"distilled": [synset] * self.config.seeds}
        for name in self.config.baselines:
            if name == "herding":  # independent of the class order: one selection for all seeds
                mem = condense.distill("herding", dataset=data, ipc=ipc, seed=seed)
                out[name] = [mem] * self.config.seeds
            else:
                out[name] = [condense.distill("random", dataset=data, ipc=ipc,
                                             seed=condense.derive_seed(seed, "continual", s))
                             for s in range(self.config.seeds)]
        return out

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
        protocol = TrainProtocol(cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum,
                                 cfg.weight_decay, cfg.lr_decay, dsa)
        test_x, test_y = real_test_split(data, cfg.test_limit)
        memories = self.memories(synset, data, seed)
        total = (len(memories) * sum(cfg.seeds * s for s in cfg.steps) * cfg.num_eval
                 * (cfg.epochs + 1))
        lock = threading.Lock()
        done = [0]
        seconds = [0.0]
        results: dict[tuple[str, int, int, int], list[float]] = {}

        def unit(method: str, steps: int, s: int, t: int, seen: list[int], engine: str,
                 ) -> Callable[[], None]:
            """Train and test the ``num_eval`` networks of one (memory, steps, seed, step)."""
            mem = memories[method][s]
            seen_t = torch.tensor(seen)
            rows = torch.isin(mem.labels, seen_t)
            test_rows = torch.isin(test_y, seen_t)
            gens = [condense.keyed_generator(seed, "continual", steps, s, t, i)
                    for i in range(cfg.num_eval)]
            last = [0]

            def on_epoch(k: int) -> None:
                with lock:
                    done[0] += k - last[0]
                    last[0] = k
                    if progress is not None:
                        progress(condense.ProgressEvent(
                            "continual", done[0], total,
                            {"memory": method, "steps": steps, "seed": s, "step": t + 1}))

            def run() -> None:
                scores = train_and_score(
                    images=mem.images[rows], targets=training_targets(mem)[rows], spec=spec,
                    model=cfg.model, protocol=protocol, generators=gens,
                    test_images=test_x[test_rows], test_labels=test_y[test_rows],
                    transform=synset_transform(mem, data), device=device,
                    engine=engine,  # type: ignore[arg-type]
                    compile=cfg.compile, on_epoch=on_epoch)
                with lock:
                    results[(method, steps, s, t)] = [100.0 * a for a in scores.accuracies]
                    seconds[0] += scores.train_seconds + scores.test_seconds

            return run

        classes_seen = {steps: list(itertools.accumulate(
            len(g) for g in step_classes(list(range(spec.num_classes)), steps)))
            for steps in cfg.steps}
        jobs: list[Callable[[], None]] = []
        # on a CPU the (memory, steps, seed, step) units run one per core; else one by one
        spread = device.type == "cpu" and cfg.engine in ("auto", "parallel")
        for method in memories:
            for steps in cfg.steps:
                for s in range(cfg.seeds):
                    seen: list[int] = []
                    groups = step_classes(class_order(spec.num_classes, s), steps)
                    for t, group in enumerate(groups):
                        seen = seen + group
                        jobs.append(unit(method, steps, s, t, seen,
                                         "sequential" if spread else cfg.engine))
        if spread:
            run_on_cores(jobs)
        else:
            for job in jobs:
                job()

        curves: dict[str, dict[str, Any]] = {}
        metrics: dict[str, float] = {}
        headline: list[float] = []
        for method in memories:
            curves[method] = {}
            for steps in cfg.steps:
                runs = [[a for s in range(cfg.seeds) for a in results[(method, steps, s, t)]]
                        for t in range(steps)]  # [step][seed * net]
                stats_t = [mean_std(r) for r in runs]
                per_run_mean = [sum(r[j] for r in runs) / len(runs) for j in range(len(runs[0]))]
                avg, avg_std = mean_std(per_run_mean)
                curves[method][str(steps)] = {
                    "classes": classes_seen[steps], "mean": [m for m, _ in stats_t],
                    "std": [sd for _, sd in stats_t], "runs": runs,
                }
                for n_seen, (m_t, _) in zip(classes_seen[steps], stats_t, strict=True):
                    metrics[f"{method} {steps}-step @{n_seen} classes"] = m_t
                metrics[f"{method} {steps}-step mean"] = avg
                metrics[f"{method} {steps}-step mean std"] = avg_std
                metrics[f"{method} {steps}-step last"] = stats_t[-1][0]
                if method == "distilled" and steps == cfg.steps[0]:
                    headline = per_run_mean
        settings: dict[str, Any] = {**cfg.to_dict(), "dsa": dsa, "seed": seed,
                                    "device": str(device), "ipc": synset.ipc,
                                    "memory_per_class": synset.ipc}
        return condense.EvalResult(
            evaluator=self.name,
            protocol=self.protocol(),
            settings=settings,
            metrics=metrics,
            per_run=tuple(headline),
            details={
                "unit": "percent; 'mean' = average over steps of the accuracy on the classes "
                        "seen so far; per_run = the distilled set's step-averaged accuracy of "
                        f"each (seed, network) at {cfg.steps[0]} steps",
                "curves": curves,
                "class_orders": {str(s): class_order(spec.num_classes, s)
                                 for s in range(cfg.seeds)},
                "seconds": seconds[0],
                "simplification": "step t uses the artifact's images of the classes seen so far "
                                  "(one set distilled from all classes), not per-step distillation",
            },
        )


__all__ = ["BASELINES", "Continual", "class_order", "step_classes"]
