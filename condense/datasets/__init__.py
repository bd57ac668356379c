"""Built-in real datasets (registered through the ``register_datasets`` hook).

One module per on-disk format: :mod:`.mnist` (IDX), :mod:`.cifar` (python pickle batches),
:mod:`.svhn` (``.mat``), :mod:`.tinyimagenet`, :mod:`.imagenet_subsets`, :mod:`.imagefolder`
(image files, decoded once through :mod:`.images` into the :mod:`.cache`).
"""

from .loading import load_dataset

__all__ = ["load_dataset"]
