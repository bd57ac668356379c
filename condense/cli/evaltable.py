"""The accuracy tables of ``condense eval``: the set beside its random baseline (hard and soft
labels, DD-Ranking's scores) and the cross-architecture table (one row per model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from .. import api, distributed
from ..records import DIGEST_KEY, content_digest
from ..store import save
from ..synset import SynSet
from ._console import err_console, out_json, progress_bars
from ._outputs import after_result, write_record


def pm(mean: Any, std: Any) -> str:
    """``mean ± std`` with two decimals, or an em dash when absent."""
    if not isinstance(mean, (int, float)):
        return "—"
    return f"{mean:.2f} ± {std:.2f}" if isinstance(std, (int, float)) else f"{mean:.2f}"


def signed(value: Any) -> str:
    return f"{value:+.2f}" if isinstance(value, (int, float)) else "—"


def has_baseline_layout(metrics: Mapping[str, Any]) -> bool:
    return "baseline" in metrics or "hard_accuracy" in metrics


def comparison_table(payload: Mapping[str, Any]) -> Table:
    """Labels × (set, random baseline, difference), in percent."""
    m = payload["metrics"]
    table = Table(title=f"{payload['evaluator']} — protocol: {payload['protocol']} "
                        f"(model {payload['settings'].get('model')})")
    for name, justify in (("labels", "left"), ("set", "right"), ("random baseline", "right"),
                          ("difference", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    if "hard_accuracy" in m:
        for regime in ("hard", "soft"):
            table.add_row(regime, pm(m.get(f"{regime}_accuracy"), m.get(f"{regime}_std")),
                          pm(m.get(f"{regime}_baseline"), m.get(f"{regime}_baseline_std")),
                          signed(m.get(f"{regime}_difference")))
    else:
        baseline = (payload.get("details") or {}).get("baseline") or {}
        labels = str(payload["settings"].get("labels", "hard"))
        if baseline.get("labels_differ"):
            labels += " (baseline: hard)"
        table.add_row(labels, pm(m.get("accuracy"), m.get("std")),
                      pm(m.get("baseline"), m.get("baseline_std")), signed(m.get("difference")))
    return table


def ddranking_table(metrics: Mapping[str, Any]) -> Table | None:
    """DD-Ranking's scores (arXiv 2505.13300), when a teacher was given."""
    if "real_accuracy" not in metrics:
        return None
    table = Table(title="DD-Ranking (arXiv 2505.13300; docs/evaluators.md)")
    table.add_column("score")
    table.add_column("value", justify="right")
    table.add_row("real data, hard labels (the teacher)", f"{metrics['real_accuracy']:.2f}")
    table.add_row("HLR = real − set (hard)", pm(metrics.get("hlr"), metrics.get("hlr_std")))
    table.add_row("IOR = set − random (soft)", pm(metrics.get("ior"), metrics.get("ior_std")))
    table.add_row("LRS (%)", pm(metrics.get("lrs"), metrics.get("lrs_std")))
    return table


def result_tables(payload: Mapping[str, Any]) -> list[Table]:
    """What ``condense eval`` prints for one result."""
    metrics = payload["metrics"]
    if not has_baseline_layout(metrics):
        table = Table(title=f"{payload['evaluator']} — protocol: {payload['protocol']}")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in metrics.items():
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        return [table]
    tables = [comparison_table(payload)]
    extra = ddranking_table(metrics)
    if extra is not None:
        tables.append(extra)
    return tables


def baseline_note(payload: Mapping[str, Any]) -> str | None:
    """One line on where the baseline came from (cache hit or trained now)."""
    info = (payload.get("details") or {}).get("baseline")
    if not info:
        return None
    parts = [f"{regime} labels: cache {info[regime]['cache']} ({info[regime]['seconds']:.1f} s)"
             for regime in ("hard", "soft") if regime in info]
    note = f"random baseline (ipc {info.get('ipc')}, seed {info.get('seed')}): " + "; ".join(parts)
    if info.get("labels_differ"):
        note += f" — {info['labels_differ']}"
    return note


def model_rows(payloads: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: ``model``, ``protocol``, ``accuracy``, ``std``, ``baseline``,
    ``baseline_std``, ``difference`` (None where no baseline was computed)."""
    rows = []
    for p in payloads:
        m = p["metrics"]
        rows.append({"model": p["settings"].get("model"), "protocol": p["protocol"],
                     "accuracy": m.get("accuracy"), "std": m.get("std"),
                     "baseline": m.get("baseline"), "baseline_std": m.get("baseline_std"),
                     "difference": m.get("difference")})
    return rows


def models_table(rows: Sequence[Mapping[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for name, justify in (("model", "left"), ("set", "right"), ("random baseline", "right"),
                          ("difference", "right"), ("protocol", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(str(r["model"]), pm(r["accuracy"], r["std"]),
                      pm(r["baseline"], r["baseline_std"]), signed(r["difference"]),
                      str(r["protocol"]))
    return table


def evaluate_models(artifact: str, local: str, synset: SynSet, models: list[str], *,
                    evaluator: str, preset: str | None, overrides: dict[str, Any],
                    data_dir: str | None, download: bool, dataset_config: dict[str, object],
                    device: str, seed: int, as_json: bool, no_save: bool, into_metadata: bool,
                    no_progress: bool) -> None:
    """``condense eval --model a,b,c``: one evaluation per model, one table, one JSON
    (``synset`` is the artifact at ``local``, already loaded and validated by the caller)."""
    main = distributed.is_main()
    with progress_bars(not no_progress and main) as report:
        results = api.cross_architecture(
            synset, models, evaluator=evaluator, settings=overrides, preset=preset,
            data_dir=data_dir, download=download, dataset_config=dataset_config, seed=seed,
            device=device, progress=report)
    if not main:
        return
    digest = content_digest(local)
    payloads = [{"artifact": artifact, DIGEST_KEY: digest, **r.to_dict()}
                for r in results.values()]
    rows = model_rows(payloads)
    combined = {"artifact": artifact, DIGEST_KEY: digest, "evaluator": evaluator,
                "models": list(results), "cross_architecture": rows, "results": payloads}
    # the result first: a failed write below must not lose the evaluations
    if as_json:
        out_json(combined)
    else:
        console = Console()
        console.print(models_table(rows, f"{evaluator} across architectures — {artifact}"))
        for payload in payloads:
            note = baseline_note(payload)
            if note:
                err_console.print(f"{payload['settings'].get('model')}: {note}",
                                  highlight=False, markup=False)
    if not no_save:
        path = api.results_path(artifact, f"{evaluator}-models")
        write_record(path, combined)
        err_console.print(f"results written to {path}")
    if into_metadata:
        for payload in payloads:
            synset.meta.setdefault("evaluations", {})[payload["protocol"]] = payload
        after_result(local, lambda: save(synset, local))
        err_console.print(f"results recorded in {local} (metadata key `evaluations`)")


__all__ = ["baseline_note", "comparison_table", "ddranking_table", "evaluate_models",
           "model_rows", "models_table", "pm", "result_tables"]
