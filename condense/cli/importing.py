"""``condense import FILE --format F --dataset D``: legacy distilled sets -> artifacts
(options: ``commands.py``)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from ..errors import ArtifactError
from ..importers import import_legacy
from ..store import save
from ._console import err_console
from ._console import out as print_result
from ._outputs import check_writable
from .hub import hub_warnings


def import_(file: str, fmt: str, dataset: str, out: str | None, force: bool, experiment: int,
            labels: str | Path | None, lr_file: str | Path | None, syn_lr: float | None,
            zca: bool, zca_eps: float, fit_zca: bool, data_dir: str | None, download: bool,
            factor: int | None, method: str | None, mean: tuple[float, ...] | None,
            std: tuple[float, ...] | None, space: str, class_major_labels: bool) -> None:
    """Convert a legacy distilled set FILE into a condense artifact; print its path.

    Files are read with torch.load(weights_only=True) only: a file that would need to run
    pickled code is refused. The normalisation/ZCA the images are in is recorded so the
    imported set evaluates correctly. See docs/importing.md for each format.
    """
    fix = "choose another place with --out"
    if out:
        check_writable(out, fix)
    with hub_warnings():  # FILE, --labels, --lr may be hf://datasets/… paths: pulled first
        result = import_legacy(file, format=fmt, dataset=dataset, experiment=experiment,
                               labels=labels, lr=lr_file, syn_lr=syn_lr, zca=zca,
                               zca_eps=zca_eps, fit_zca=fit_zca, data_dir=data_dir,
                               download=download, factor=factor, method=method, mean=mean,
                               std=std, space=space, class_major_labels=class_major_labels)
    synset = result.synset
    m = synset.meta
    path = (Path(out) if out
            else Path("imported") / f"{m['method']}-{m['dataset']}-ipc{m['ipc']}.safetensors")
    if path.exists() and not force:
        raise ArtifactError(f"{path} exists; pass --force to overwrite it or --out elsewhere")
    check_writable(path, fix)
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    save(synset, path)
    err_console.print(f"{len(synset)} images of {len(m['class_names'])} classes ({m['dataset']}, "
                      f"{m['label_type']} labels) from {m['imported']['format']} file "
                      f"{escape(str(file))}", highlight=False)
    print_result(str(path))
