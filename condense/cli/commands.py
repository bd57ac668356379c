"""What each built-in command accepts: options, help texts, examples and completion.

This module imports only click (and floor-0 condense modules), so ``condense --help``,
``condense COMMAND --help`` and shell completion stay fast. What a command *does* lives in its
own module (``run.py``, ``evaluate.py``, ``show.py``, ``listing.py``, ``importing.py``), imported
by name when the command runs (:func:`condense.cli._lazy.invoke`). ``run --help`` is the one help
that loads the plugins: it lists the installed methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._lazy import CondenseCommand, complete, complete_file, invoke, load
from ._options import data_options, device_option, set_option

#: the kinds ``condense list`` takes (``condense.registration.KINDS``; kept here so that
#: ``list --help`` does not import torch; tests/test_cli.py checks they agree)
LIST_KINDS = ("datasets", "evaluators", "methods", "samplers")
#: ``condense.importers.format_names()`` and each format's files (checked the same way)
IMPORT_FORMATS = ("vico", "dc", "dsa", "dm", "mtt", "datm", "ftd", "idc", "datadam", "tensors")
IMPORT_FORMAT_HELP = (
    "vico: res_<M>_<DS>_<MODEL>_<N>ipc.pt; "
    "mtt: images_best.pt + labels_best.pt [+ lr_best.pt], or the run folder; "
    "idc: data.pt = (data, target); "
    "datadam: syn_data_<ds>_ipc_<n>.pt (Hub: uoft-dsp-lab/DataDAM); "
    "tensors: <x>images<y>.pt + <x>labels<y>.pt, or one (images, labels) file"
)

NO_PROGRESS_HELP = ("No progress bars or progress lines (warnings, errors and the result are "
                    "still printed).")


def _run_epilog() -> str:
    try:
        methods = ", ".join(load("condense.cli._plugins:method_names")()) or "(none)"
    except Exception:  # the help must render even with a broken plugin
        methods = "see `condense list methods`"
    return f"""\
        Methods installed here: {methods}. A preset name that only one method has (e.g.
        datadam-paper) is accepted as METHOD; `condense list methods` shows the presets and
        settings.

        When the artifact is written, the checkpoint <out>.ckpt.safetensors is removed (pass
        --keep-checkpoint to keep it). Ctrl-C or SIGTERM finishes the current iteration, writes
        the checkpoint there and prints the command that resumes it (a second Ctrl-C stops at
        once). While a run writes --out it holds <out>.lock: a second run to the same --out
        stops (or waits, with --wait). Where stderr is not a terminal (a batch log), a progress
        line is printed every log_every iterations and at least every 30 s.

        Examples:

        \b
          condense run datadam --dataset fashion-mnist --ipc 10 --iterations 500
          condense run dm -d cifar10 --ipc 50 --preset dm --device cuda
          condense run datadam -d fashion-mnist --ipc 1 --evaluator accuracy --set eval_every=100
          condense run random -d fashion-mnist --ipc 10        # a baseline
          condense run datadam -d tinyimagenet --ipc 50 --dry-run=probe   # plan, time, memory
        """


@click.command("run", cls=CondenseCommand, epilog=_run_epilog)
@click.argument("method", shell_complete=complete("methods"))
@click.option("--dataset", "-d", required=True, shell_complete=complete("datasets"),
              help="Dataset name (`condense list datasets`).")
@click.option("--ipc", type=int, required=True, help="Synthetic images per class.")
@click.option("--iterations", type=int, default=None, help="Image updates [default: the method's].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option("--preset", default=None, shell_complete=complete("run-presets"),
              help="Named preset of the method (`condense list methods`).")
@set_option
@data_options
@device_option
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Output .safetensors; missing folders are created "
                   "[default: runs/<method>-<dataset>-ipc<N>-seed<S>.safetensors].")
@click.option("--force", is_flag=True,
              help="Replace --out if it exists (its <out>.eval-*.json records are removed).")
@click.option("--wait", is_flag=True,
              help="If another run is writing --out, wait for it to end instead of stopping.")
@click.option("--resume", is_flag=True,
              help="Continue from the checkpoint next to --out (<out>.ckpt.safetensors).")
@click.option("--keep-checkpoint", is_flag=True,
              help="Keep <out>.ckpt.safetensors after the artifact is written (removed by "
                   "default).")
@click.option("--evaluator", default=None, shell_complete=complete("evaluators"),
              help="Evaluate every `--set eval_every=K` iterations with this evaluator; results "
                   "go to <out>.eval.jsonl, marked as monitoring (the artifact is always the "
                   "final set, never the best evaluated).")
@click.option("--eval-set", "eval_settings", multiple=True, metavar="KEY=VALUE",
              help="Settings of the periodic evaluator (repeatable).")
@click.option("--class-chunk", type=click.IntRange(min=0), default=None,
              help="Classes per forward pass: bounds memory by the chunk; 0 = auto (all classes "
                   "unless they exceed device memory) [default: 0]. Same as --set class_chunk=N.")
@click.option("--dry-run", "dry_run", type=click.Choice(["plan", "probe"]), is_flag=False,
              flag_value="plan", default=None,
              help="Resolve the run and print it (settings, dataset shape, device, class chunk "
                   "and whether it changes BatchNorm, memory per iteration, artifact path) "
                   "without distilling; nothing is written. --dry-run=probe also runs 2 "
                   "iterations and estimates the run's time.")
@click.option("--no-progress", is_flag=True, help=NO_PROGRESS_HELP)
def run(**params: Any) -> None:
    """Distil DATASET into IPC images per class with METHOD; print the artifact path."""
    invoke("condense.cli.run:run", params)


@click.command("eval", cls=CondenseCommand)
@click.argument("artifact", shell_complete=complete_file)
@click.option("--evaluator", "-e", default="accuracy", show_default=True,
              shell_complete=complete("evaluators"),
              help="Evaluator name (`condense list evaluators`).")
@click.option("--preset", default=None, shell_complete=complete("eval-presets"),
              help="Named protocol preset of the evaluator.")
@set_option
@data_options
@device_option
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the evaluation: each network's initialisation and data order are "
                   "drawn from it.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--no-save", is_flag=True, help="Do not write <artifact>.eval-<evaluator>.json.")
@click.option("--model", default=None,
              help="Evaluation architecture, same as --set model=NAME; a comma-separated list "
                   "(e.g. convnet,convnet-bn,alexnet,vgg11,resnet18) gives one cross-architecture "
                   "table and JSON (<artifact>.eval-<evaluator>-models.json).")
@click.option("--no-baseline", is_flag=True,
              help="accuracy: skip the random real-image baseline trained beside the set (same "
                   "as --set baseline=false).")
@click.option("--teacher", default=None, metavar="train|PATH",
              help="accuracy: also train on soft labels from a teacher (`train`: a network "
                   "trained on the real training set, cached; or a saved state dict) and report "
                   "DD-Ranking's HLR, IOR and LRS; same as --set teacher=...")
@click.option("--into-metadata", is_flag=True,
              help="Also record the result in the artifact's metadata (key `evaluations`).")
@click.option("--no-progress", is_flag=True, help=NO_PROGRESS_HELP)
def evaluate(**params: Any) -> None:
    """Evaluate ARTIFACT (a .safetensors file or hf://datasets/ORG/REPO/FILE) with an evaluator."""
    invoke("condense.cli.evaluate:evaluate", params)


@click.command("show", cls=CondenseCommand)
@click.argument("artifact", shell_complete=complete_file)
@click.option("--grid", "grid_path", type=click.Path(dir_okay=False), default=None,
              help="Where to write the image grid "
                   "[default: <artifact>.png; for hf:// paths in the current folder]; the loss "
                   "curve goes beside it as <grid stem>.loss.png.")
@click.option("--no-grid", is_flag=True, help="Do not write the image grid or the loss curve.")
@click.option("--max-per-class", type=click.IntRange(min=1), default=10, show_default=True,
              help="Columns of the grid: images shown per class (fewer when no class has "
                   "that many).")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def show(**params: Any) -> None:
    """Show ARTIFACT's metadata and write a PNG grid of its images (one row per class).

    Rows are labelled with the class names; images with NaN or infinite values are drawn red
    and reported. The `reproduce` command is printed in full below the table.
    """
    invoke("condense.cli.show:show", params)


@click.command("report", cls=CondenseCommand)
@click.argument("artifacts", nargs=-1, required=True, shell_complete=complete_file)
@click.option("--out-dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the PNGs [default: beside each artifact, as its image grid].")
@click.option("--json", "as_json", is_flag=True, help="Print the collected figures as JSON.")
def report(**params: Any) -> None:
    """Plot each ARTIFACT's evaluations: accuracy vs its random baseline per model, and vs
    iteration.

    Reads the results `condense eval` wrote beside the artifact (<stem>.eval-*.json), those
    recorded in its metadata (--into-metadata) and its periodic evaluations (eval_history,
    monitoring only); writes <stem>.accuracy.png (bars: mean ± std of the set and of its
    random baseline, per model and protocol) and, where periodic evaluations exist,
    <stem>.iterations.png.
    """
    invoke("condense.cli.report:report", params)


@click.command("list", cls=CondenseCommand)
@click.argument("kind", required=False, type=click.Choice(LIST_KINDS))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(**params: Any) -> None:
    """List installed methods, samplers, evaluators and datasets (or one KIND)."""
    invoke("condense.cli.listing:list_", params)


@click.command("plugins", cls=CondenseCommand)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(**params: Any) -> None:
    """List loaded plugins: name, distribution, version, hooks (and any that failed).

    The commands a plugin adds are listed under `commands`. `condense plugins --debug` also
    prints the traceback of each plugin that failed to import.
    """
    invoke("condense.cli.listing:plugins", params)


def _floats(ctx: click.Context, param: click.Parameter,
            value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(
            "give comma-separated numbers, e.g. 0.4914,0.4822,0.4465") from None


def _local_or_hub(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A local path that exists, or an ``hf://datasets/…`` path (pulled when the command runs)."""
    if value is None or value.startswith("hf://") or Path(value).expanduser().exists():
        return value
    raise click.BadParameter(f"{value!r} does not exist (give a local path or "
                             f"hf://datasets/ORG/REPO/PATH)")


@click.command("import", cls=CondenseCommand)
@click.argument("file", callback=_local_or_hub, shell_complete=complete_file)
@click.option("--format", "-f", "fmt", required=True,
              type=click.Choice(IMPORT_FORMATS, case_sensitive=False), help=IMPORT_FORMAT_HELP)
@click.option("--dataset", "-d", required=True, shell_complete=complete("datasets"),
              help="The real dataset the set was distilled from.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Output .safetensors; missing folders are created "
                   "[default: imported/<method>-<dataset>-ipc<N>.safetensors].")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--experiment", type=int, default=-1, show_default=True,
              help="vico/datadam: which experiment of the file (-1 = last, as DC-BENCH).")
@click.option("--labels", callback=_local_or_hub, default=None, shell_complete=complete_file,
              help="mtt/tensors: the labels file, local or hf:// [default: the '…labels…' "
                   "sibling].")
@click.option("--lr", "lr_file", callback=_local_or_hub, default=None,
              shell_complete=complete_file,
              help="mtt: the learned-lr file, local or hf:// [default: lr_best.pt beside it].")
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
def import_(**params: Any) -> None:
    """Convert a legacy distilled set FILE into a condense artifact; print its path.

    FILE is a local file or folder, or hf://datasets/ORG/REPO/PATH (pulled into the Hugging Face
    cache first, with the labels/lr files beside it). Files are read with
    torch.load(weights_only=True) only: a file that would need to run pickled code is refused.
    The normalisation/ZCA the images are in is recorded so the imported set evaluates
    correctly. See docs/importing.md for each format.
    """
    invoke("condense.cli.importing:import_", params)


#: every built-in command declared here, by name
COMMANDS: dict[str, click.Command] = {
    c.name: c for c in (run, evaluate, show, report, list_, plugins,  # type: ignore[misc]
                        import_)
}

__all__ = ["COMMANDS", "IMPORT_FORMATS", "IMPORT_FORMAT_HELP", "LIST_KINDS", "evaluate",
           "import_", "list_", "plugins", "report", "run", "show"]
