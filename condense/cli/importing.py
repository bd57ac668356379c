"""``condense import FILE --format F --dataset D``: legacy distilled sets -> artifacts."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from ..errors import ArtifactError
from ..importers import FORMATS, format_names, import_legacy
from ..store import save
from ._console import err_console
from ._console import out as print_result
from .group import cli


def _floats(ctx: click.Context, param: click.Parameter,
            value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(
            "give comma-separated numbers, e.g. 0.4914,0.4822,0.4465") from None


_FORMAT_HELP = "; ".join(f"{f.name}: {f.files}" for f in FORMATS.values())


@cli.command("import")
@click.argument("file", type=click.Path(exists=True))
@click.option("--format", "-f", "fmt", required=True,
              type=click.Choice(format_names(), case_sensitive=False), help=_FORMAT_HELP)
@click.option("--dataset", "-d", required=True, help="The real dataset the set was distilled from.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Output .safetensors [default: imported/<method>-<dataset>-ipc<N>.safetensors].")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--experiment", type=int, default=-1, show_default=True,
              help="vico/datadam: which experiment of the file (-1 = last, as DC-BENCH).")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="mtt/tensors: the labels file [default: the '…labels…' sibling].")
@click.option("--lr", "lr_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="mtt: the learned-lr file [default: lr_best.pt beside it].")
@click.option("--syn-lr", type=float, default=None, help="The learned lr when no file holds it.")
@click.option("--zca", is_flag=True, help="The images are ZCA-whitened (MTT/DataDAM --zca runs).")
@click.option("--zca-eps", type=float, default=0.1, show_default=True)
@click.option("--fit-zca", is_flag=True,
              help="With --zca: fit the ZCA on the local dataset and store it in the artifact.")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="CONDENSE_DATA_DIR",
              help="--fit-zca: dataset root [env CONDENSE_DATA_DIR].")
@click.option("--download", is_flag=True, help="--fit-zca: download the dataset if missing.")
@click.option("--factor", type=int, default=None,
              help="idc: the multi-formation factor [default: 'factor<F>' in the path].")
@click.option("--method", default=None, help="Method name to record [default: from the format].")
@click.option("--mean", callback=_floats, default=None, metavar="M1,M2,…",
              help="Per-channel mean the file was normalised with [default: the dataset's].")
@click.option("--std", callback=_floats, default=None, metavar="S1,S2,…",
              help="Per-channel std the file was normalised with [default: the dataset's].")
@click.option("--space", type=click.Choice(["auto", "normalized", "pixels"]), default="auto",
              show_default=True, help="tensors: how the images are stored.")
@click.option("--class-major-labels", is_flag=True,
              help="tensors: no labels file; labels follow class order, equal count per class.")
def import_(file: str, fmt: str, dataset: str, out: str | None, force: bool, experiment: int,
            labels: Path | None, lr_file: Path | None, syn_lr: float | None, zca: bool,
            zca_eps: float, fit_zca: bool, data_dir: str | None, download: bool,
            factor: int | None, method: str | None, mean: tuple[float, ...] | None,
            std: tuple[float, ...] | None, space: str, class_major_labels: bool) -> None:
    """Convert a legacy distilled set FILE into a condense artifact; print its path.

    Files are read with torch.load(weights_only=True) only: a file that would need to run
    pickled code is refused. The normalisation/ZCA the images are in is recorded so the
    imported set evaluates correctly. See docs/importing.md for each format.
    """
    result = import_legacy(file, format=fmt, dataset=dataset, experiment=experiment,
                           labels=labels, lr=lr_file, syn_lr=syn_lr, zca=zca, zca_eps=zca_eps,
                           fit_zca=fit_zca, data_dir=data_dir, download=download, factor=factor,
                           method=method, mean=mean, std=std, space=space,
                           class_major_labels=class_major_labels)
    synset = result.synset
    m = synset.meta
    path = (Path(out) if out
            else Path("imported") / f"{m['method']}-{m['dataset']}-ipc{m['ipc']}.safetensors")
    if path.exists() and not force:
        raise ArtifactError(f"{path} exists; pass --force to overwrite it or --out elsewhere")
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    save(synset, path)
    err_console.print(f"{len(synset)} images of {len(m['class_names'])} classes ({m['dataset']}, "
                      f"{m['label_type']} labels) from {m['imported']['format']} file "
                      f"{escape(str(file))}", highlight=False)
    print_result(str(path))
