"""``condense push`` and ``condense pull``: the Hugging Face Hub.

Loaded by name when one of them is used (``condense.cli.group.LAZY_COMMANDS``); the library
(:mod:`condense.hub`, which imports torch) is loaded by name when the command runs, so
``condense push --help`` stays fast.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.markup import escape

from ._console import err_console, out
from ._lazy import CondenseCommand, load


@contextmanager
def hub_warnings() -> Iterator[None]:
    """Show each ``condense.hub.HubPathWarning`` (an ``hf://`` spelling that changed) as one
    yellow ``warning:`` line; other warnings are shown as usual."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:  # type: ignore[assignment]
            warnings.simplefilter("always", FutureWarning)
            yield
    finally:
        # shown after the recording ends: inside it, showwarning would append to `caught`
        kind = load("condense.hub:HubPathWarning")
        for w in caught:
            if issubclass(w.category, kind):
                err_console.print(f"[yellow]warning:[/] {escape(str(w.message))}",
                                  highlight=False, soft_wrap=True)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)


PUSH_EPILOG = """\
    The set goes to <dataset>/ipc<N>/seed<S>/<method>.safetensors; the card says how to load it
    with condense, with plain safetensors and with `datasets.load_dataset(REPO_ID, CONFIG)`.
    Concurrent pushes to one repository are safe (each commits on the head it read, and
    retries). See docs/hub.md.

    Examples:

    \b
      condense push runs/datadam-fashion-mnist-ipc10-seed0.safetensors my-lab/datadam-fmnist
      condense push imported/mtt-cifar10-ipc10.safetensors my-lab/mtt --license mit --private
    """


@click.command("push", cls=CondenseCommand, epilog=PUSH_EPILOG)
@click.argument("artifact", type=click.Path(dir_okay=False))
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repository private (an existing "
              "repository keeps its visibility).")
@click.option("--revision", default=None, help="Branch to commit to (created if missing) "
              "[default: main].")
@click.option("--message", "-m", default=None, help="Commit message [default: Upload <path> "
              "with condense].")
@click.option("--path-in-repo", default=None, help="Where the set goes in the repository "
              "[default: <dataset>/ipc<N>/seed<S>/<method>.safetensors].")
@click.option("--license", "license_", default=None, metavar="ID",
              help="Licence of the set, a Hub licence id (mit, cc-by-4.0, other …) [default: "
                   "the source dataset's, e.g. mit for fashion-mnist, unknown where condense "
                   "knows none].")
@click.option("--no-preview", is_flag=True, help="Do not upload the PNG preview that "
              "`datasets.load_dataset` and the Dataset Viewer read.")
def push(artifact: str, repo_id: str, private: bool, revision: str | None, message: str | None,
         path_in_repo: str | None, license_: str | None, no_preview: bool) -> None:
    """Publish ARTIFACT to the Hub dataset repository REPO_ID (ORG/NAME); print its URL.

    Uploads the set, its evaluation records (<stem>.eval-<evaluator>.json beside it, local
    paths removed), a PNG preview for `datasets` and the Dataset Viewer, and the regenerated
    dataset card, in one commit. Hand edits of the card outside its generated block are kept.
    Uses your usual Hub token (HF_TOKEN or `hf auth login`).
    """
    with err_console.status(f"pushing to {repo_id}"):
        result = load("condense.hub:push")(
            artifact, repo_id, private=private, revision=revision, message=message,
            path_in_repo=path_in_repo, license=license_, preview=not no_preview)
    for record in result.ignored:  # made for an earlier set at that path: not uploaded
        note = load("condense.records:stale_note")(record)
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    err_console.print(f"uploaded {', '.join(escape(f) for f in result.files)}", highlight=False,
                      soft_wrap=True)
    if result.attempts > 1:
        err_console.print(f"other commits landed meanwhile: committed at attempt "
                          f"{result.attempts}", highlight=False)
    err_console.print(f"licence: {escape(result.license)}", highlight=False)
    err_console.print(f"load it with: condense eval {escape(result.uri)}", highlight=False,
                      soft_wrap=True)
    out(result.url)


@click.command("pull", cls=CondenseCommand)
@click.argument("target", metavar="hf://datasets/REPO_ID[/PATH]")
@click.option("--revision", default=None, help="Branch, tag or full commit hash [default: main].")
def pull(target: str, revision: str | None) -> None:
    """Download hf://datasets/REPO_ID[/PATH] into the Hugging Face cache; print the local path.

    REPO_ID[/PATH] without the scheme works too. A PATH naming a file fetches that file; a
    folder or the whole repository fetches its sets, evaluation records and card.
    HF_HUB_OFFLINE=1 reads the cache only.
    """
    with hub_warnings(), err_console.status(f"pulling {target}"):
        path = load("condense.hub:pull")(target, revision=revision)
    out(str(path))


__all__ = ["hub_warnings", "pull", "push"]
