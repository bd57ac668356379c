"""An image-folder preview of a distilled set, for ``datasets.load_dataset`` and the Viewer.

``<stem>.preview.zip`` beside the artifact holds one PNG per image (``00000.png`` …, the images
de-normalised to 8-bit pixels, ZCA undone when the transform is stored) and ``metadata.jsonl``
with ``{"file_name", "label"}`` per image: the layout of the ``imagefolder`` builder of
``datasets``, which the dataset card's ``configs:`` points at. The zip is deterministic (fixed
timestamps, stored in order), so pushing the same set twice uploads the same bytes.
"""

from __future__ import annotations

import io
import json
import zipfile

import torch

from ..synset import SynSet

SUFFIX = ".preview.zip"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def previewable(synset: SynSet) -> bool:
    """Grey (1 channel) or RGB (3 channels) images, which PNG stores as they are."""
    return synset.images.ndim == 4 and synset.images.shape[1] in (1, 3)


def build(synset: SynSet) -> bytes:
    """The zip's bytes (``previewable(synset)`` must hold)."""
    from PIL import Image

    pixels = synset.denormalize().detach().float().cpu()
    pixels = (pixels * 255).round().clamp(0, 255).to(torch.uint8)
    labels = synset.labels.detach().cpu().tolist()
    width = max(5, len(str(len(labels))))
    buffer = io.BytesIO()
    rows = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, (image, label) in enumerate(zip(pixels, labels, strict=True)):
            array = image.permute(1, 2, 0).numpy()
            pil = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)  # L / RGB
            png = io.BytesIO()
            pil.save(png, format="PNG")
            name = f"{i:0{width}d}.png"
            _write(zf, name, png.getvalue())
            rows.append(json.dumps({"file_name": name, "label": int(label)}))
        _write(zf, "metadata.jsonl", ("\n".join(rows) + "\n").encode())
    return buffer.getvalue()


def _write(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def path_for(path_in_repo: str) -> str:
    """``a/b/dm.safetensors`` -> ``a/b/dm.preview.zip``."""
    return path_in_repo[: -len(".safetensors")] + SUFFIX
