"""DSA ops: shapes, hand-computed values, gradients, Siamese sharing, determinism."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from condense import augment
from condense.augment import OPS, DSAParams

from tolerance import assert_close


def params(n: int = 1, **over) -> DSAParams:
    base = dict(op=torch.zeros(n, dtype=torch.long), brightness=torch.zeros(n),
                saturation=torch.ones(n), contrast=torch.ones(n),
                crop=torch.zeros(n, 2, dtype=torch.long),
                cutout=torch.zeros(n, 2, dtype=torch.long),
                flip=torch.zeros(n, dtype=torch.bool), scale=torch.ones(n, 2),
                rotate=torch.zeros(n))
    base.update(over)
    return DSAParams(**base)


def grid(n=1, c=1, h=4, w=4):
    return torch.arange(n * c * h * w, dtype=torch.float32).view(n, c, h, w)


def test_crop_shifts_with_zero_fill():
    x = grid()
    y = augment.crop(x, params(crop=torch.tensor([[1, 0]])))
    expected = torch.tensor([[4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [0, 0, 0, 0.]])
    assert torch.equal(y[0, 0], expected)
    y = augment.crop(x, params(crop=torch.tensor([[0, -1]])))
    assert torch.equal(y[0, 0, 0], torch.tensor([0, 0, 1, 2.]))


def test_cutout_zeroes_a_clipped_square():
    x = torch.ones(1, 2, 4, 4)
    y = augment.cutout(x, params(cutout=torch.tensor([[1, 1]])))  # k = 2, rows/cols 0..1
    assert y[:, :, :2, :2].sum() == 0 and y.sum() == 2 * 12
    y = augment.cutout(x, params(cutout=torch.tensor([[0, 4]])))  # clipped at the borders
    assert y.sum() == 2 * (16 - 1)


def test_flip_and_color():
    x = grid(c=3)
    assert torch.equal(augment.flip(x, params(flip=torch.tensor([True]))), x.flip(3))
    assert torch.equal(augment.flip(x, params()), x)
    y = augment.color(x, params(brightness=torch.tensor([0.25])))
    assert torch.allclose(y, x + 0.25)
    # saturation 0 makes every pixel grey (its channel mean); contrast 0.5 halves deviations
    y = augment.color(x, params(saturation=torch.tensor([0.0])))
    assert torch.allclose(y, x.mean(1, keepdim=True).expand_as(x))
    y = augment.color(x, params(contrast=torch.tensor([0.5])))
    assert torch.allclose(y, (x - x.mean()) * 0.5 + x.mean())


def test_saturation_does_nothing_on_one_channel():
    x = grid()
    assert torch.allclose(augment.color(x, params(saturation=torch.tensor([1.7]))), x)


def test_identity_affines():
    x = torch.randn(2, 3, 6, 6)
    assert torch.allclose(augment.scale(x, params(2)), x, atol=1e-5)
    assert torch.allclose(augment.rotate(x, params(2)), x, atol=1e-5)


def test_rotate_by_90_degrees_matches_rot90():
    x = torch.randn(1, 1, 5, 5)
    y = augment.rotate(x, params(rotate=torch.tensor([torch.pi / 2])))
    assert torch.allclose(y, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5) or torch.allclose(
        y, torch.rot90(x, -1, dims=(2, 3)), atol=1e-5)


@pytest.mark.parametrize("op", OPS)
def test_each_op_keeps_shape_and_passes_gradients(op):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    p = augment.sample_params(4, op, (8, 8), g)
    y = augment.apply(x, p)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_sample_params_ranges_and_determinism():
    p1 = augment.sample_params(500, "color_crop_cutout_flip_scale_rotate", (28, 28),
                               torch.Generator().manual_seed(3), shared_op=False)
    p2 = augment.sample_params(500, "color_crop_cutout_flip_scale_rotate", (28, 28),
                               torch.Generator().manual_seed(3), shared_op=False)
    for f in dataclasses.fields(DSAParams):
        assert torch.equal(getattr(p1, f.name), getattr(p2, f.name))
    assert p1.brightness.min() >= -0.5 and p1.brightness.max() < 0.5
    assert p1.saturation.min() >= 0 and p1.saturation.max() < 2
    assert p1.contrast.min() >= 0.5 and p1.contrast.max() < 1.5
    assert p1.crop.abs().max() == 4  # int(28 * 0.125 + 0.5)
    assert p1.cutout.min() >= 0 and p1.cutout.max() <= 28  # k = 14 (even): U{0..28}
    assert p1.scale.min() >= 1 / 1.2 and p1.scale.max() <= 1.2
    assert p1.rotate.abs().max() <= 15 / 180 * torch.pi
    assert set(p1.op.tolist()) == set(range(6))


def test_mixed_ops_equal_rowwise_application():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 3, 8, 8)
    p = augment.sample_params(12, "color_crop_cutout_flip_scale_rotate", (8, 8), g, shared_op=False)
    batched = augment.apply(x, p)
    for i in range(12):
        row = augment.apply(x[i : i + 1], p.take(torch.tensor([i])))
        assert_close(row, batched[i : i + 1], what=f"row {i}")


def test_siamese_rows_share_parameters():
    g = torch.Generator().manual_seed(5)
    per_class = DSAParams.cat([augment.sample_params(1, "crop", (8, 8), g) for _ in range(2)])
    p = per_class.take(torch.tensor([0, 0, 0, 1, 1]))
    assert torch.equal(p.crop[0], p.crop[2]) and torch.equal(p.crop[3], p.crop[4])


def test_none_strategy_and_bad_strategy():
    x = torch.randn(2, 1, 4, 4)
    assert augment.augment(x, "none", torch.Generator()) is x
    from condense import ConfigError

    with pytest.raises(ConfigError, match="valid ops"):
        augment.parse_strategy("color_zoom")
