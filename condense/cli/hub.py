"""``condense push`` and ``condense pull``: the Hugging Face Hub."""

from __future__ import annotations

import click
from rich.markup import escape

from ..hub import pull as pull_target
from ..hub import push as push_artifact
from ._console import err_console, out
from .group import cli


@cli.command()
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
def push(artifact: str, repo_id: str, private: bool, revision: str | None, message: str | None,
         path_in_repo: str | None) -> None:
    """Publish ARTIFACT to the Hub dataset repository REPO_ID (ORG/NAME); print its URL.

    Uploads the set, its evaluation records (<stem>.eval-<evaluator>.json beside it) and a
    regenerated dataset card, in one commit. Uses your usual Hub token (HF_TOKEN or
    `hf auth login`).
    """
    with err_console.status(f"pushing to {repo_id}"):
        result = push_artifact(artifact, repo_id, private=private, revision=revision,
                               message=message, path_in_repo=path_in_repo)
    err_console.print(f"uploaded {', '.join(escape(f) for f in result.files)}", highlight=False)
    err_console.print(f"load it with: condense eval {escape(result.uri)}", highlight=False)
    out(result.url)


@cli.command()
@click.argument("target", metavar="REPO_ID[/PATH]")
@click.option("--revision", default=None, help="Branch, tag or full commit hash [default: main].")
def pull(target: str, revision: str | None) -> None:
    """Download REPO_ID[/PATH] (or hf://…) into the Hugging Face cache; print the local path.

    A PATH naming a file fetches that file; a folder or the whole repository fetches its sets,
    evaluation records and card. HF_HUB_OFFLINE=1 reads the cache only.
    """
    with err_console.status(f"pulling {target}"):
        path = pull_target(target, revision=revision)
    out(str(path))
