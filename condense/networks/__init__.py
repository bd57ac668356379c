"""Networks: the ConvNet family (encoders and evaluation models) and the model factory."""

from .convnet import ACTS, NORMS, POOLS, ConvNet, FeatureEncoder, reinit_
from .factory import MODELS, build_model, model_names

__all__ = ["ACTS", "MODELS", "NORMS", "POOLS", "ConvNet", "FeatureEncoder", "build_model",
           "model_names", "reinit_"]
