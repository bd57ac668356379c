"""Write a full-size TinyImageNet tree of generated JPEGs in the raw ``tiny-imagenet-200`` layout.

For rehearsing the headline run (``condense run datadam --dataset tinyimagenet --ipc 50``)
without the real archive: same file count, image size, folder layout and annotation files as the
CS231n download, so the loader's scan, decode and cache costs are those of the real data.

    python benchmarks/make_tinyimagenet.py /tmp/tin            # 200 × 500 train, 10,000 val
    python benchmarks/make_tinyimagenet.py /tmp/tin --classes 4 --train-per-class 20 --val 40

Layout written under ``OUT/tiny-imagenet-200/``: ``wnids.txt``, ``words.txt``,
``train/<wnid>/images/<wnid>_<k>.JPEG`` (and ``train/<wnid>/<wnid>_boxes.txt``),
``val/images/val_<k>.JPEG`` with ``val/val_annotations.txt`` (``file<TAB>wnid<TAB>x0 y0 x1 y1``).
Pixels are class-dependent smooth colour fields plus noise (so classes are separable), drawn
from a fixed seed. Nothing is written inside the repository unless OUT points there.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image


def wnid(c: int) -> str:
    return f"n{1000000 + 37 * c:08d}"


def class_image(rng: np.random.Generator, c: int, size: int = 64) -> np.ndarray:
    """One uint8 HxWx3 image of class ``c``: a gradient whose direction and colour depend on c."""
    angle = 2 * np.pi * (c * 0.6180339887 % 1.0)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    colour = np.array([(c * 53) % 256, (c * 97) % 256, (c * 151) % 256], dtype=np.float64)
    img = colour[None, None, :] * 0.6 + 100 * ramp[..., None]
    img = img + rng.normal(0, 25, size=(size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def write_tree(out: Path, classes: int = 200, train_per_class: int = 500, val: int = 10000,
               seed: int = 0) -> Path:
    root = out / "tiny-imagenet-200"
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    wnids = [wnid(c) for c in range(classes)]
    (root / "wnids.txt").write_text("".join(w + "\n" for w in wnids))
    (root / "words.txt").write_text("".join(f"{w}\tgenerated class {c}\n"
                                            for c, w in enumerate(wnids)))
    for c, w in enumerate(wnids):
        folder = root / "train" / w / "images"
        folder.mkdir(parents=True, exist_ok=True)
        boxes = []
        for k in range(train_per_class):
            name = f"{w}_{k}.JPEG"
            (folder / name).write_bytes(jpeg(class_image(rng, c)))
            boxes.append(f"{name}\t0\t0\t63\t63\n")
        (root / "train" / w / f"{w}_boxes.txt").write_text("".join(boxes))
    vdir = root / "val" / "images"
    vdir.mkdir(parents=True, exist_ok=True)
    lines = []
    for k in range(val):
        c = k % classes
        name = f"val_{k}.JPEG"
        (vdir / name).write_bytes(jpeg(class_image(rng, c)))
        lines.append(f"{name}\t{wnids[c]}\t0\t0\t63\t63\n")
    (root / "val" / "val_annotations.txt").write_text("".join(lines))
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder to write tiny-imagenet-200/ into (not the repo)")
    p.add_argument("--classes", type=int, default=200)
    p.add_argument("--train-per-class", type=int, default=500)
    p.add_argument("--val", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    t0 = time.perf_counter()
    root = write_tree(a.out, a.classes, a.train_per_class, a.val, a.seed)
    n = a.classes * a.train_per_class + a.val
    print(f"{root}: {n} JPEGs in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
