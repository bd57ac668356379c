"""The plots of ``condense report``, drawn with PIL like the loss curve (:mod:`._plot`).

* :func:`render_accuracy_bars`: per model (and protocol) the set's mean accuracy beside its
  random baseline's, each with a ± std whisker;
* :func:`render_iterations`: the periodic (monitoring) evaluations against the iteration, with
  a ± std band where the result has one and the final baseline as a dashed line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from ._plot import AXIS_COLOUR, draw_legend, draw_x_grid, draw_y_grid

SET_COLOUR = (31, 119, 180)
BASELINE_COLOUR = (160, 160, 160)
WHISKER_COLOUR = (40, 40, 40)


def _value_axis(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.15 or 5.0
    return max(0.0, lo - pad), min(100.0, hi + pad) if hi <= 100 else hi + pad


def render_accuracy_bars(rows: Sequence[Mapping[str, Any]], title: str,
                         size: tuple[int, int] | None = None) -> Image.Image:
    """Grouped bars: one group per row (``label``, ``accuracy``, ``std``, ``baseline``,
    ``baseline_std``; baseline may be None), accuracy in percent."""
    width = size[0] if size else max(480, 110 * len(rows) + 140)
    height = size[1] if size else 420
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = 60, width - 20, 52, height - 70
    values = []
    for r in rows:
        for key, spread in (("accuracy", "std"), ("baseline", "baseline_std")):
            if isinstance(r.get(key), (int, float)):
                s = r.get(spread) if isinstance(r.get(spread), (int, float)) else 0.0
                values += [r[key] - s, r[key] + s]
    y_lo, y_hi = _value_axis(values or [0.0, 100.0])
    y_hi += (y_hi - y_lo) * 0.06  # room for the value labels

    def y_of(v: float) -> float:
        return bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top)

    draw_y_grid(draw, font, y_lo, y_hi, y_of, left, right)
    draw.rectangle([left, top, right, bottom], outline=AXIS_COLOUR)
    draw.text((8, top - 14), "test accuracy (%)", fill=AXIS_COLOUR, font=font)
    slot = (right - left) / max(len(rows), 1)
    bar = min(40.0, slot * 0.32)
    for i, r in enumerate(rows):
        centre = left + slot * (i + 0.5)
        for offset, key, spread, colour in ((-bar / 2 - 2, "accuracy", "std", SET_COLOUR),
                                             (bar / 2 + 2, "baseline", "baseline_std",
                                              BASELINE_COLOUR)):
            value = r.get(key)
            if not isinstance(value, (int, float)):
                continue
            x0, x1 = centre + offset - bar / 2, centre + offset + bar / 2
            draw.rectangle([x0, y_of(value), x1, bottom], fill=colour)
            s = r.get(spread)
            top_of_bar = value + s if isinstance(s, (int, float)) and s > 0 else value
            if isinstance(s, (int, float)) and s > 0:
                xm = (x0 + x1) / 2
                draw.line([(xm, y_of(value - s)), (xm, y_of(value + s))], fill=WHISKER_COLOUR,
                          width=2)
                for v in (value - s, value + s):
                    draw.line([(xm - 5, y_of(v)), (xm + 5, y_of(v))], fill=WHISKER_COLOUR,
                              width=2)
            label = f"{value:.1f}"
            draw.text((x0 + (bar - draw.textlength(label, font=font)) / 2,
                       y_of(top_of_bar) - 14), label, fill=AXIS_COLOUR, font=font)
        for line_no, text in enumerate(str(r.get("label", "")).split("\n")[:3]):
            w = draw.textlength(text, font=font)
            draw.text((centre - w / 2, bottom + 6 + 12 * line_no), text, fill=AXIS_COLOUR,
                      font=font)
    draw.text((8, 6), title, fill=AXIS_COLOUR, font=font)
    x = right
    for text, colour in reversed([("set", SET_COLOUR), ("random baseline", BASELINE_COLOUR)]):
        x -= draw.textlength(text, font=font)
        draw.text((x, 24), text, fill=colour, font=font)
        draw.rectangle([x - 12, 26, x - 4, 34], fill=colour)
        x -= 22
    return image


def render_iterations(points: Sequence[tuple[float, float, float | None]],
                      baseline: tuple[float, float | None] | None, title: str,
                      metric: str = "accuracy", size: tuple[int, int] = (640, 400),
                      ) -> Image.Image:
    """``(iteration, value, std or None)`` points as a line (± std band) and an optional
    horizontal baseline ``(mean, std)``."""
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = 64, width - 20, 34, height - 42
    xs = [p[0] for p in points]
    x_lo, x_hi = min(0.0, *xs), max(xs)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1
    ys = [p[1] + (p[2] or 0) for p in points] + [p[1] - (p[2] or 0) for p in points]
    if baseline is not None:
        ys += [baseline[0]]
    y_lo, y_hi = _value_axis(ys)

    def x_of(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * (right - left)

    def y_of(v: float) -> float:
        return bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top)

    draw_x_grid(draw, font, x_lo, x_hi, x_of, top, bottom)
    draw_y_grid(draw, font, y_lo, y_hi, y_of, left, right)
    draw.rectangle([left, top, right, bottom], outline=AXIS_COLOUR)
    xlabel = "iteration (periodic evaluations: monitoring only)"
    draw.text(((left + right - draw.textlength(xlabel, font=font)) / 2, height - 18), xlabel,
              fill=AXIS_COLOUR, font=font)
    band = [(x_of(i), y_of(v + s)) for i, v, s in points if s] + \
        [(x_of(i), y_of(v - s)) for i, v, s in reversed(points) if s]
    if len(band) > 2:
        draw.polygon(band, fill=(205, 225, 240))
    line = [(x_of(i), y_of(v)) for i, v, _ in points]
    if len(line) > 1:
        draw.line(line, fill=SET_COLOUR, width=2)
    for x, y in line:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=SET_COLOUR)
    legend = [(metric, SET_COLOUR)]
    if baseline is not None:
        y = y_of(baseline[0])
        for x in range(left, right, 12):
            draw.line([(x, y), (min(x + 6, right), y)], fill=BASELINE_COLOUR, width=2)
        legend.append(("random baseline", BASELINE_COLOUR))
    draw.text((left, 10), title, fill=AXIS_COLOUR, font=font)
    draw_legend(draw, font, right, legend)
    return image


__all__ = ["render_accuracy_bars", "render_iterations"]
