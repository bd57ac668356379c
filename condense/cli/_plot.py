"""The loss curve of a distillation run as a PNG, drawn with PIL (no plotting library needed).

Reads the artifact metadata ``loss_history`` (``[iteration, loss]`` pairs, every ``log_every``
iterations) and ``eval_history`` (periodic evaluations: their first metric, on a right-hand
axis); see docs/reference/artifact-format.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

SIZE = (640, 400)
LOSS_COLOUR = (31, 119, 180)
EVAL_COLOUR = (230, 110, 20)
AXIS_COLOUR = (60, 60, 60)
GRID_COLOUR = (225, 225, 225)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * step:
            step *= factor
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def draw_x_grid(draw: ImageDraw.ImageDraw, font: Any, lo: float, hi: float,
                x_of: Callable[[float], float], top: float, bottom: float) -> None:
    """Vertical grid lines at :func:`_ticks` with their labels below the plot."""
    for t in _ticks(lo, hi):
        x = x_of(t)
        draw.line([(x, top), (x, bottom)], fill=GRID_COLOUR)
        label = f"{t:.0f}" if t == int(t) else f"{t:.3g}"
        w = draw.textlength(label, font=font)
        draw.text((x - w / 2, bottom + 6), label, fill=AXIS_COLOUR, font=font)


def draw_y_grid(draw: ImageDraw.ImageDraw, font: Any, lo: float, hi: float,
                y_of: Callable[[float], float], left: float, right: float, *,
                label: Callable[[float], str] = lambda t: f"{t:.4g}",
                colour: tuple[int, int, int] = AXIS_COLOUR) -> None:
    """Horizontal grid lines at :func:`_ticks` with their labels left of the plot."""
    for t in _ticks(lo, hi):
        y = y_of(t)
        draw.line([(left, y), (right, y)], fill=GRID_COLOUR)
        text = label(t)
        w = draw.textlength(text, font=font)
        draw.text((left - 6 - w, y - 5), text, fill=colour, font=font)


def draw_legend(draw: ImageDraw.ImageDraw, font: Any, right: float,
                entries: Sequence[tuple[str, tuple[int, int, int]]]) -> None:
    """``(text, colour)`` entries right-aligned at ``right`` on the title line."""
    x = right
    for text, colour in reversed(entries):
        x -= draw.textlength(text, font=font)
        draw.text((x, 10), text, fill=colour, font=font)
        x -= 16


def _eval_series(evals: Sequence[Mapping[str, Any]]) -> tuple[str, list[tuple[float, float]]]:
    """The metric plotted for the periodic evaluations (``accuracy`` if present, else the first
    numeric one) and its ``(iteration, value)`` points."""
    if not evals:
        return "", []
    metrics = evals[0].get("metrics") or {}
    numeric = [k for k, v in metrics.items() if isinstance(v, (int, float))]
    if not numeric:
        return "", []
    key = "accuracy" if "accuracy" in numeric else numeric[0]
    points = [(float(e["iteration"]), float(e["metrics"][key])) for e in evals
              if isinstance((e.get("metrics") or {}).get(key), (int, float))]
    return key, points


def render_loss_curve(meta: Mapping[str, Any], size: tuple[int, int] = SIZE) -> Image.Image | None:
    """The loss curve (and periodic evaluations) as an RGB image, or None without a history."""
    losses = [(float(i), float(v)) for i, v in meta.get("loss_history") or []
              if math.isfinite(float(v))]
    metric, evals = _eval_series(meta.get("eval_history") or [])
    if not losses and not evals:
        return None
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = 64, width - (64 if evals else 20), 34, height - 42

    xs = [p[0] for p in losses + evals]
    x_lo, x_hi = min(0.0, *xs), max(xs)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1

    def x_of(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * (right - left)

    log = bool(losses) and min(v for _, v in losses) > 0 and \
        max(v for _, v in losses) / min(v for _, v in losses) > 30
    ys = [math.log10(v) if log else v for _, v in losses] or [0.0, 1.0]
    y_lo, y_hi = min(ys), max(ys)
    pad = (y_hi - y_lo) * 0.05 or abs(y_hi) * 0.05 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad

    def y_of(v: float, lo: float = y_lo, hi: float = y_hi) -> float:
        return bottom - (v - lo) / (hi - lo) * (bottom - top)

    draw_x_grid(draw, font, x_lo, x_hi, x_of, top, bottom)
    if losses:
        draw_y_grid(draw, font, y_lo, y_hi, y_of, left, right, colour=LOSS_COLOUR,
                    label=lambda t: f"{10 ** t:.3g}" if log else f"{t:.4g}")
    draw.rectangle([left, top, right, bottom], outline=AXIS_COLOUR)
    xlabel = "iteration"
    draw.text(((left + right - draw.textlength(xlabel, font=font)) / 2, height - 18), xlabel,
              fill=AXIS_COLOUR, font=font)

    if len(losses) == 1:
        x, y = x_of(losses[0][0]), y_of(ys[0])
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=LOSS_COLOUR)
    elif losses:
        draw.line([(x_of(i), y_of(v)) for (i, _), v in zip(losses, ys, strict=True)],
                  fill=LOSS_COLOUR, width=2)

    legend = [("loss (log scale)" if log else "loss", LOSS_COLOUR)] if losses else []
    if evals:
        values = [v for _, v in evals]
        e_lo, e_hi = min(values), max(values)
        e_pad = (e_hi - e_lo) * 0.05 or abs(e_hi) * 0.05 or 1.0
        e_lo, e_hi = e_lo - e_pad, e_hi + e_pad
        for t in _ticks(e_lo, e_hi):
            draw.text((right + 6, y_of(t, e_lo, e_hi) - 5), f"{t:.4g}", fill=EVAL_COLOUR,
                      font=font)
        points = [(x_of(i), y_of(v, e_lo, e_hi)) for i, v in evals]
        if len(points) > 1:
            draw.line(points, fill=EVAL_COLOUR, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=EVAL_COLOUR)
        legend.append((f"{metric} (right axis)", EVAL_COLOUR))

    title = " ".join(str(meta[k]) if k != "ipc" else f"IPC {meta[k]}"
                     for k in ("method", "dataset", "ipc") if k in meta)
    draw.text((left, 10), title, fill=AXIS_COLOUR, font=font)
    draw_legend(draw, font, right, legend)
    return image


def save_loss_curve(meta: Mapping[str, Any], path: str | Path) -> Path | None:
    """Write the curve to ``path`` (PNG); None (and no file) when ``meta`` has no history."""
    image = render_loss_curve(meta)
    if image is None:
        return None
    path = Path(path)
    image.save(path, format="PNG")
    return path


__all__ = ["SIZE", "render_loss_curve", "save_loss_curve"]
