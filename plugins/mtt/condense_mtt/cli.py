"""``condense experts``: train expert trajectories for MTT (added through ``register_commands``).

The folder path goes to stdout; progress (a bar per expert and epoch, one line per finished
epoch) to stderr. Errors are :class:`condense.CondenseError` subclasses, which the ``condense``
group prints as one red line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import condense

from .experts import ExpertConfig, train_experts


def _overrides(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise condense.ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


@contextlib.contextmanager
def _reporter(console: Console, bars: bool) -> Iterator[condense.ProgressFn]:
    """A progress callback: rich bars (experts, batches of the current epoch) and a line per
    finished epoch."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True,
                        disable=not bars)
    tasks: dict[str, int] = {}

    def report(event: condense.ProgressEvent) -> None:
        info = event.info
        if event.task == "expert":
            desc = f"expert {info['expert']} epoch {info['epoch']}/{info['epochs']}"
            if "epoch" not in tasks:
                tasks["epoch"] = progress.add_task(desc, total=event.total)
            progress.update(tasks["epoch"], description=desc, completed=event.completed,
                            total=event.total)
        elif event.task == "expert-epoch":
            test = f", test acc {info['test_acc']:.1f}%" if "test_acc" in info else ""
            progress.console.print(
                f"expert {info['expert']} epoch {event.completed}/{event.total}: train loss "
                f"{info['train_loss']:.4f}, train acc {info['train_acc']:.1f}%{test} "
                f"({info['seconds']:.1f} s)", highlight=False)
        elif event.task == "expert-done":
            if "experts" not in tasks:
                tasks["experts"] = progress.add_task("experts", total=event.total)
            progress.update(tasks["experts"], completed=event.completed)
            if info.get("skipped"):
                progress.console.print(f"expert {info['expert']}: already trained "
                                       f"({info['path']})", highlight=False)

    with progress:
        yield report


@click.command("experts")
@click.option("--dataset", "-d", required=True, help="Dataset name (`condense list datasets`).")
@click.option("--experts", "num_experts", type=click.IntRange(min=1), required=True,
              help="Number of expert networks to train.")
@click.option("--epochs", type=click.IntRange(min=1), required=True,
              help="Epochs per expert (the trajectory keeps the parameters after each).")
@click.option("--model", default="convnet", show_default=True,
              help="Network (`condense list models`); MTT's student must use the same.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Training setting (repeatable): lr_teacher, momentum, weight_decay, "
                   "batch_train, decay, dsa_strategy, zca, zca_eps, train_limit, test_limit.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder for expert-NNNN.safetensors (finished experts in it are kept).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed; expert i is drawn from (seed, i).")
@click.option("--device", default="auto", show_default=True,
              help="torch device: auto (cuda if available), cpu, cuda, cuda:1 ...")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="CONDENSE_DATA_DIR",
              help="Dataset root [env CONDENSE_DATA_DIR; default ~/.cache/condense/data].")
@click.option("--download", is_flag=True, help="Download the dataset if it is not found.")
@click.option("--data-set", "data_settings", multiple=True, metavar="KEY=VALUE",
              help="Dataset setting (repeatable), e.g. image_size=64.")
@click.option("--no-progress", is_flag=True, help="Do not draw progress bars.")
def experts(dataset: str, num_experts: int, epochs: int, model: str, settings: tuple[str, ...],
            out: str, seed: int, device: str, data_dir: str | None, download: bool,
            data_settings: tuple[str, ...], no_progress: bool) -> None:
    """Train expert trajectories on DATASET for `condense run mtt --set experts=OUT`; print OUT.

    Resumable: experts already in OUT (same settings) are kept, an interrupted one restarts.
    """
    config = ExpertConfig.from_dict(_overrides(settings), owner="condense experts")
    condense.tune_allocator()  # process-wide malloc settings: the CLI owns the process
    dev = str(condense.devices.resolve_device(device))  # a missing device: one line
    console = Console(stderr=True)
    with console.status(f"loading {dataset}"):
        data = condense.load_dataset(dataset, data_dir, download=download,
                                     config=_overrides(data_settings) or None)
    console.print(f"[bold]experts[/] on {data.name}: {num_experts} × {epochs} epochs, "
                  f"model {model}, device {dev}, seed {seed}", highlight=False)
    with _reporter(console, not no_progress) as report:
        train_experts(data, out, experts=num_experts, epochs=epochs, model=model, config=config,
                      seed=seed, device=dev, progress=report)
    click.echo(out)
