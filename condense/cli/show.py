"""``condense show ARTIFACT``: the metadata as a table, a de-normalised PNG image grid and the
loss curve (options: ``commands.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..api import output_next_to
from ..hub import pull
from ..records import current_records, stale_note
from ..store import load
from ..validation import nonfinite_rows, validate_synset
from ._console import err_console, out, out_json
from ._grid import save_grid
from ._outputs import check_writable
from ._plot import save_loss_curve
from .hub import hub_warnings


def show(artifact: str, grid_path: str | None, no_grid: bool, max_per_class: int,
         as_json: bool) -> None:
    """Show ARTIFACT's metadata and write a PNG grid of its images (one row per class, labelled
    with the class name; as many columns as the fullest class has images, up to
    ``max_per_class``)."""
    path = Path(grid_path) if grid_path else output_next_to(artifact, ".png")
    if not no_grid:
        check_writable(path, "choose another place with --grid, or pass --no-grid")
    local = artifact
    if artifact.startswith("hf://"):
        with hub_warnings():
            local = str(pull(artifact))
    synset = load(local, validate=False)  # NaN images are flagged below, not refused
    validate_synset(synset, local, finite=False)
    broken = nonfinite_rows(synset.images)
    if len(broken):
        err_console.print(
            f"[yellow]warning:[/] {len(broken)} of {len(synset)} images contain NaN or infinite "
            f"values (first: image {int(broken[0])}); drawn red in the grid. condense.load and "
            f"condense eval refuse this set", highlight=False, soft_wrap=True)
    records, stale = current_records(local)
    for record in stale:
        err_console.print(f"[yellow]note:[/] {escape(stale_note(record))}", highlight=False,
                          soft_wrap=True)
    meta = dict(synset.meta)
    meta["num_images"] = len(synset)
    if as_json:
        out_json(meta)
    else:
        table = Table(title=str(artifact), show_header=False)
        table.add_column("key", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in meta.items():
            text = value if isinstance(value, str) else json.dumps(value)
            if key == "loss_history" and value:
                text = (f"{len(value)} readings, iteration {value[0][0]}: {value[0][1]:.4g} -> "
                        f"iteration {value[-1][0]}: {value[-1][1]:.4g}")
            if key == "reproduce" and value:
                table.add_row(key, "(below the table, in full)")
                continue
            table.add_row(key, text if len(text) < 400 else text[:400] + " …")
        for record_path, record in records:
            metrics = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in record["metrics"].items())
            table.add_row(f"record {record_path.name}", metrics)
        console = Console()
        console.print(table)
        if meta.get("reproduce"):  # one unwrapped line, so that a copied command is complete
            console.print(f"reproduce: {meta['reproduce']}", soft_wrap=True, markup=False,
                          highlight=False)
    if not no_grid:
        save_grid(synset, path, max_per_class)
        err_console.print(f"image grid written to {path}")
        curve = save_loss_curve(synset.meta, path.with_name(path.stem + ".loss.png"))
        if curve is not None:
            err_console.print(f"loss curve written to {curve}")
        if as_json:
            return
        out(str(path))
