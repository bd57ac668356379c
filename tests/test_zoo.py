"""The cross-architecture zoo: every model builds and runs at 28/32/64 px, official sizes kept."""

from __future__ import annotations

import pytest
import torch

import condense
from condense.networks import build_model

ZOO = ["mlp", "lenet", "alexnet", "alexnet-bn", "vgg11", "vgg11-bn", "resnet18", "resnet18-bn",
       "resnet18bn-ap"]


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("shape", [(1, 28), (3, 32), (3, 64)])
def test_zoo_forward_backward(name: str, shape: tuple[int, int]) -> None:
    c, s = shape
    spec = condense.DataSpec(channels=c, image_size=(s, s), num_classes=7)
    net = build_model(name, spec)
    x = torch.randn(2, c, s, s)
    out = net(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_official_head_sizes() -> None:
    """The classifier input sizes the official networks.py hard-codes for 28/32 px."""
    fm = condense.DataSpec(1, (28, 28), 10)
    cifar = condense.DataSpec(3, (32, 32), 10)
    assert build_model("mlp", fm).fc_1.in_features == 784
    assert build_model("mlp", cifar).fc_1.in_features == 3072
    assert build_model("lenet", fm).fc_1.in_features == 400
    assert build_model("lenet", cifar).fc_1.in_features == 400
    assert build_model("alexnet", fm).fc.in_features == 192 * 4 * 4
    assert build_model("vgg11", cifar).classifier.in_features == 512
    assert build_model("resnet18", fm).classifier.in_features == 512
    assert build_model("resnet18bn-ap", fm).classifier.in_features == 512 * 3 * 3
    assert build_model("resnet18bn-ap", cifar).classifier.in_features == 512 * 4 * 4


def test_norm_variants() -> None:
    spec = condense.DataSpec(3, (32, 32), 10)
    kinds = {n: {type(m).__name__ for m in build_model(n, spec).modules()}
             for n in ("vgg11", "vgg11-bn", "resnet18", "resnet18-bn", "alexnet", "alexnet-bn")}
    assert "GroupNorm" in kinds["vgg11"] and "BatchNorm2d" not in kinds["vgg11"]
    assert "BatchNorm2d" in kinds["vgg11-bn"]
    assert "GroupNorm" in kinds["resnet18"] and "BatchNorm2d" in kinds["resnet18-bn"]
    assert "BatchNorm2d" not in kinds["alexnet"] and "BatchNorm2d" in kinds["alexnet-bn"]
