"""The repository index (``condense-index.json``) and the dataset card generated from it.

A repository can hold many distilled sets (IPCs, seeds, methods). Every push merges one entry into
the index and regenerates README.md from the whole index, so the card always describes every set
in the repository.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import CondenseError
from ..registry import get_method

INDEX_FILE = "condense-index.json"
INDEX_VERSION = 1

#: papers of the methods the field publishes; a method class may also carry ``paper = (title, url)``
PAPERS: dict[str, tuple[str, str]] = {
    "dc": ("Dataset Condensation with Gradient Matching (ICLR 2021)",
           "https://arxiv.org/abs/2006.05929"),
    "dsa": ("Dataset Condensation with Differentiable Siamese Augmentation (ICML 2021)",
            "https://arxiv.org/abs/2102.08259"),
    "dm": ("Dataset Condensation with Distribution Matching (WACV 2023)",
           "https://arxiv.org/abs/2110.04181"),
    "mtt": ("Dataset Distillation by Matching Training Trajectories (CVPR 2022)",
            "https://arxiv.org/abs/2203.11932"),
    "idc": ("Dataset Condensation via Efficient Synthetic-Data Parameterization (ICML 2022)",
            "https://arxiv.org/abs/2205.14959"),
    "datadam": ("DataDAM: Efficient Dataset Distillation with Attention Matching (ICCV 2023)",
                "https://arxiv.org/abs/2310.00093"),
    "datm": (("Towards Lossless Dataset Distillation via Difficulty-Aligned Trajectory Matching "
              "(ICLR 2024)"), "https://arxiv.org/abs/2310.05773"),
}


def entry(meta: Mapping[str, Any], path_in_repo: str, num_images: int,
          evaluations: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """One index entry: what the set is and its evaluation results (``(file, result)`` pairs)."""
    imported = meta.get("imported") or None
    return {
        "path": path_in_repo,
        "method": meta.get("method"),
        "dataset": meta.get("dataset"),
        "ipc": meta.get("ipc"),
        "seed": meta.get("seed"),
        "num_images": num_images,
        "num_classes": len(meta.get("class_names") or []),
        "channels": meta.get("channels"),
        "image_size": meta.get("image_size"),
        "label_type": meta.get("label_type", "hard"),
        "mean": meta.get("mean"),
        "std": meta.get("std"),
        "zca": meta.get("zca"),
        "preset": meta.get("preset"),
        "iterations": meta.get("iterations"),
        "imported_from": imported.get("format") if isinstance(imported, dict) else None,
        "reproduce": meta.get("reproduce"),
        "created": meta.get("created"),
        "condense_version": (meta.get("versions") or {}).get("condense"),
        "evaluations": [
            {"file": file, "evaluator": r.get("evaluator"), "protocol": r.get("protocol"),
             "settings": r.get("settings", {}), "metrics": r.get("metrics", {})}
            for file, r in evaluations
        ],
    }


def merge(index: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """``index`` with ``new`` added (replacing an entry at the same path), sorted by path."""
    variants = [v for v in (index or {}).get("variants", []) if v.get("path") != new["path"]]
    variants.append(dict(new))
    variants.sort(key=lambda v: str(v.get("path")))
    return {"condense_hub_index": INDEX_VERSION, "variants": variants}


def _paper(method: str) -> tuple[str, str] | None:
    """``(title, url)``: the method class's ``paper`` attribute if installed, else the table."""
    try:
        paper = getattr(get_method(method), "paper", None)
    except CondenseError:  # not installed here (e.g. an imported set): the table still knows it
        paper = None
    if isinstance(paper, (tuple, list)) and len(paper) == 2:
        return str(paper[0]), str(paper[1])
    return PAPERS.get(method.lower())


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    return "100K<n<1M"


def _zca_text(zca: Any) -> str:
    if not isinstance(zca, dict):
        return ""
    where = ("stored in the file" if zca.get("stored")
             else "not stored: refit it on the training set as meta['zca']['fit'] says")
    return f", ZCA-whitened (eps {zca.get('eps')}, {where})"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def front_matter(index: Mapping[str, Any]) -> dict[str, Any]:
    variants = index["variants"]
    methods = sorted({str(v["method"]) for v in variants if v.get("method")})
    datasets = sorted({str(v["dataset"]) for v in variants if v.get("dataset")})
    ipcs = sorted({int(v["ipc"]) for v in variants if v.get("ipc") is not None})
    tags = ["dataset-distillation", "dataset-condensation", "condense", "synthetic"]
    tags += [f"ipc-{n}" for n in ipcs] + [m.lower() for m in methods]
    return {
        "pretty_name": f"{', '.join(methods)} distilled {', '.join(datasets)}",
        "task_categories": ["image-classification"],
        "tags": list(dict.fromkeys(tags)),
        "source_datasets": datasets,
        "size_categories": [_size_category(sum(int(v.get("num_images") or 0) for v in variants))],
        "viewer": False,
    }


INTRO = ("Distilled (synthetic) training sets of {datasets}, made with "
         "[condense](https://pypi.org/project/condense-toolbox/) and stored as self-describing "
         "`.safetensors` files: images, labels and every piece of state needed to train on them "
         "correctly (normalisation, ZCA, soft labels, learned learning rate) are in the file.")

LAYOUT = ("`<dataset>/ipc<N>/seed<S>/<method>.safetensors` (imported sets, which have no seed: "
          "`<dataset>/ipc<N>/<method>.safetensors`), with its evaluation records "
          "`<method>.eval-<evaluator>.json` beside it and `condense-index.json` (the "
          "machine-readable list this card is generated from) at the top. Pushing another set "
          "with `condense push` adds it and regenerates this card.")

PLAIN_LOAD = """```python
import json
from huggingface_hub import hf_hub_download
from safetensors import safe_open

path = hf_hub_download("{repo_id}", "{first}", repo_type="dataset")
with safe_open(path, framework="pt") as f:
    images, labels = f.get_tensor("images"), f.get_tensor("labels")  # (N,C,H,W), (N,)
    meta = {{k: json.loads(v) for k, v in f.metadata().items()
            if k not in ("format", "condense_format", "format_version")}}
# images are normalised: pixels = images * std + mean, per channel, with
# meta["mean"], meta["std"]; if meta["zca"] is set they are ZCA-whitened on top
# (tensors "zca_mean"/"zca_transform" when stored). Optional tensors:
# "soft_labels" (N, K) and "syn_lr" (the learned learning rate).
```"""

CONDENSE_LOAD = """With condense (`pip install condense-toolbox`):

```bash
condense pull {repo_id}/{first}
condense eval hf://{repo_id}/{first} --evaluator accuracy
condense show hf://{repo_id}/{first}
```

```python
import condense

synset = condense.load("hf://{repo_id}/{first}")  # a torch Dataset
images, labels = synset.images, synset.labels
```"""


def _sets(variants: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["| file | method | source dataset | IPC | seed | images | labels | stored as |",
             "|---|---|---|---|---|---|---|---|"]
    for v in variants:
        space = "normalised with mean/std" + (" + ZCA" if v.get("zca") else "")
        if v.get("imported_from"):
            space += f" (imported from {v['imported_from']})"
        seed = _fmt(v["seed"]) if v.get("seed") is not None else "–"
        lines.append(f"| `{v['path']}` | {v.get('method')} | {v.get('dataset')} | {v.get('ipc')} "
                     f"| {seed} | {v.get('num_images')} | {v.get('label_type')} | {space} |")
    return lines


def _sources(variants: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for v in variants:
        size = "×".join(map(str, [v.get("channels"), *(v.get("image_size") or [])]))
        lines.append(f"- `{v['path']}`: `{v.get('dataset')}`, {v.get('num_classes')} classes, "
                     f"{size} images, mean {v.get('mean')}, std {v.get('std')}"
                     f"{_zca_text(v.get('zca'))}")
    return lines


def _papers(variants: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for method in sorted({str(v.get("method")) for v in variants}):
        paper = _paper(method)
        lines.append(f"- **{method}**: [{paper[0]}]({paper[1]})" if paper else f"- **{method}**")
    return lines


def _results(variants: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = [(v, e) for v in variants for e in v.get("evaluations", [])]
    if not rows:
        return ["No evaluation was uploaded with these sets; run `condense eval` on them."]
    lines = ["| file | evaluator | protocol | metrics | settings |", "|---|---|---|---|---|"]
    for v, e in rows:
        metrics = ", ".join(f"{k} {_fmt(x)}" for k, x in (e.get("metrics") or {}).items())
        settings = ", ".join(f"{k}={_fmt(x)}" for k, x in (e.get("settings") or {}).items())
        lines.append(f"| `{v['path']}` | {e.get('evaluator')} | {e.get('protocol')} | "
                     f"{metrics} | {settings} |")
    return [*lines, "", ("Each result was produced by `condense eval`; its full record (per-run "
                         "values) is the `*.eval-<evaluator>.json` file next to the set.")]


def _reproduce(variants: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for v in variants:
        if v.get("reproduce"):
            lines.append(f"- `{v['path']}`: `{v['reproduce']}`")
        elif v.get("imported_from"):
            lines.append(f"- `{v['path']}`: imported from a {v['imported_from']} file with "
                         f"`condense import`")
        else:
            lines.append(f"- `{v['path']}`: unknown")
    return lines


def render(index: Mapping[str, Any], repo_id: str) -> str:
    """README.md: YAML front matter + how to load, what each set is, results with protocols."""
    from huggingface_hub import DatasetCardData

    fm = front_matter(index)
    variants = index["variants"]
    first = variants[0]["path"]
    lines = [
        f"---\n{DatasetCardData(**fm).to_yaml()}\n---", "", f"# {fm['pretty_name']}", "",
        INTRO.format(datasets=", ".join(fm["source_datasets"])), "",
        "## Sets in this repository", "", *_sets(variants), "",
        "## Source dataset", "", *_sources(variants), "",
        "## Method and papers", "", *_papers(variants), "",
        "## How to load it", "", CONDENSE_LOAD.format(repo_id=repo_id, first=first), "",
        "With plain safetensors (no condense needed):", "",
        PLAIN_LOAD.format(repo_id=repo_id, first=first), "",
        "## Evaluation results", "", *_results(variants), "",
        "## Reproduce", "", *_reproduce(variants), "",
        "## Layout", "", LAYOUT, "",
    ]
    return "\n".join(lines)


def dumps(index: Mapping[str, Any]) -> bytes:
    return (json.dumps(index, indent=2, sort_keys=False) + "\n").encode()
