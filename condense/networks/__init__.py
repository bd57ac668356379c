"""Networks: the ConvNet family (encoders and evaluation models), the model factory, and the
cross-rank BatchNorm of sharded runs."""

from .convnet import ACTS, NORMS, POOLS, ConvNet, FeatureEncoder, reinit_
from .factory import MODELS, build_model, model_names
from .syncbn import SyncBatchNorm, convert_sync_batchnorm, has_batchnorm

__all__ = ["ACTS", "MODELS", "NORMS", "POOLS", "ConvNet", "FeatureEncoder", "SyncBatchNorm",
           "build_model", "convert_sync_batchnorm", "has_batchnorm", "model_names", "reinit_"]
