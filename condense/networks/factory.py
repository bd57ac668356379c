"""``build_model(name, spec)``: evaluation and encoder architectures by the field's names."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import ConfigError
from ..interfaces import DataSpec
from .convnet import ConvNet
from .zoo import MLP, VGG11, AlexNet, LeNet, ResNet18


def default_depth(image_size: tuple[int, int]) -> int:
    """ConvNet-3 up to 32 px, ConvNet-4 at 64 px, ConvNet-6 at 128 px (as DataDAM)."""
    side = max(image_size)
    if side <= 32:
        return 3
    if side <= 64:
        return 4
    return 6


def _convnet(**kw: object) -> Callable[[DataSpec], nn.Module]:
    def build(spec: DataSpec) -> nn.Module:
        opts = dict(kw)
        opts.setdefault("depth", default_depth(spec.image_size))
        return ConvNet(spec.channels, spec.num_classes, spec.image_size, **opts)  # type: ignore[arg-type]

    return build


#: name -> builder(spec). ConvNet depth follows the image size unless the name fixes it.
MODELS: dict[str, Callable[[DataSpec], nn.Module]] = {
    "convnet": _convnet(norm="instancenorm"),
    "convnet-bn": _convnet(norm="batchnorm"),
    "convnet-ln": _convnet(norm="layernorm"),
    "convnet-gn": _convnet(norm="groupnorm"),
    "convnet-nn": _convnet(norm="none"),
    "convnet-swish-bn": _convnet(norm="batchnorm", act="swish"),
    "convnet-mp": _convnet(pool="maxpool"),
    "convnet-np": _convnet(pool="none"),
    **{f"convnet-d{d}": _convnet(depth=d) for d in (1, 2, 3, 4, 5, 6)},
    **{f"convnet-w{w}": _convnet(width=w) for w in (32, 64, 128, 256)},
    # cross-architecture networks (docs/evaluators.md); "-bn" = BatchNorm, plain VGG11/ResNet18 = IN
    "mlp": lambda s: MLP(s.channels, s.num_classes, s.image_size),
    "lenet": lambda s: LeNet(s.channels, s.num_classes, s.image_size),
    "alexnet": lambda s: AlexNet(s.channels, s.num_classes, s.image_size, norm="none"),
    "alexnet-bn": lambda s: AlexNet(s.channels, s.num_classes, s.image_size, norm="batchnorm"),
    "vgg11": lambda s: VGG11(s.channels, s.num_classes, s.image_size, norm="instancenorm"),
    "vgg11-bn": lambda s: VGG11(s.channels, s.num_classes, s.image_size, norm="batchnorm"),
    "resnet18": lambda s: ResNet18(s.channels, s.num_classes, s.image_size, norm="instancenorm"),
    "resnet18-bn": lambda s: ResNet18(s.channels, s.num_classes, s.image_size, norm="batchnorm"),
    "resnet18bn-ap": lambda s: ResNet18(s.channels, s.num_classes, s.image_size, norm="batchnorm",
                                        ap=True),
}


def model_names() -> list[str]:
    return sorted(MODELS)


def build_model(name: str, spec: DataSpec) -> nn.Module:
    """A freshly initialised classifier ``name`` for images of ``spec`` (forward -> logits)."""
    key = name.lower().replace("_", "-")
    if key not in MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(model_names())}")
    return MODELS[key](spec)
