"""The image grid of ``condense show``: one row per class, labelled with its name, as many columns
as the fullest class has images (at most ``max_per_class``); drawn with PIL.

Images are de-normalised to pixels (``SynSet.denormalize``). Pixels that are NaN or infinite in
the stored images are drawn red, never black (with a ZCA transform, which mixes pixels, the whole
image is), so a broken set cannot pass for a dark one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from ..synset import SynSet

#: colour of NaN / infinite pixels
FLAG = (1.0, 0.0, 0.0)
#: a row is at least this many pixels high (small images are enlarged by a whole factor)
MIN_ROW = 24
LABEL_CHARS = 24
PAD = 1


def columns(synset: SynSet, max_per_class: int) -> int:
    """Images in the fullest class, capped at ``max_per_class`` (at least 1)."""
    counts = torch.bincount(synset.labels.long().cpu(), minlength=1) if len(synset) else None
    most = int(counts.max()) if counts is not None else 1
    return max(1, min(max_per_class, most))


def pixels(synset: SynSet) -> torch.Tensor:
    """``(N, 3, H, W)`` floats in [0, 1]: the de-normalised images, non-finite pixels red."""
    raw = synset.images.detach().float().cpu()
    bad = ~torch.isfinite(raw)
    zca = synset.zca_transform is not None and synset.zca_mean is not None
    finite = synset
    if bad.any():
        clean = torch.where(bad, torch.zeros_like(raw), raw)
        finite = SynSet(clean, synset.labels, synset.meta, zca_mean=synset.zca_mean,
                        zca_transform=synset.zca_transform)
    images = finite.denormalize().float().cpu()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    images = images[:, :3].clone()
    if bad.any():
        mask = bad.any(dim=1, keepdim=True)  # (N, 1, H, W)
        if zca:
            mask = bad.flatten(1).any(1).view(-1, 1, 1, 1).expand_as(mask)
        flag = torch.tensor(FLAG).view(1, 3, 1, 1).expand_as(images)
        images = torch.where(mask.expand_as(images), flag, images)
    return images


def render_grid(synset: SynSet, max_per_class: int = 10) -> Image.Image:
    """One row per class (``class_names`` order), labelled; missing images left white."""
    names = list(synset.meta.get("class_names") or [])
    k = max(synset.num_classes, len(names))
    cols = columns(synset, max_per_class)
    images = pixels(synset)
    h, w = int(images.shape[2]), int(images.shape[3])
    scale = max(1, -(-MIN_ROW // h))  # ceil
    ch, cw = h * scale + PAD, w * scale + PAD
    font = ImageFont.load_default()
    labels = [(names[c] if c < len(names) else str(c))[:LABEL_CHARS] for c in range(k)]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    margin = int(max((probe.textlength(t, font=font) for t in labels), default=0)) + 8
    grid = Image.new("RGB", (margin + cols * cw + PAD, k * ch + PAD), "white")
    draw = ImageDraw.Draw(grid)
    labels_cpu = synset.labels.long().cpu()
    for c in range(k):
        y = PAD + c * ch
        draw.text((4, y + (ch - PAD) // 2 - 5), labels[c], fill=(0, 0, 0), font=font)
        picked = images[labels_cpu == c][:cols]
        for j, image in enumerate(picked):
            array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            tile = Image.fromarray(array, "RGB")
            if scale > 1:
                tile = tile.resize((w * scale, h * scale), Image.Resampling.NEAREST)
            grid.paste(tile, (margin + PAD + j * cw, y))
    return grid


def save_grid(synset: SynSet, path: str | Path, max_per_class: int = 10) -> Path:
    """Write :func:`render_grid` to ``path`` as PNG."""
    path = Path(path)
    render_grid(synset, max_per_class).save(path, format="PNG")
    return path


__all__ = ["columns", "pixels", "render_grid", "save_grid"]
