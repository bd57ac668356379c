from __future__ import annotations

import torch

import condense
from condense_dm import DM, dm_loss


def test_dm_loss_shape_zero_and_hand_value():
    real = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # k=1, n=2, D=2: mean (2, 3)
    syn = torch.zeros(1, 1, 2)
    loss = dm_loss(real, syn)
    assert loss.shape == () and loss.item() == 13.0  # 2² + 3²
    assert dm_loss(real, real.clone()).item() == 0.0
    # equal means with different samples also give zero: DM matches first moments only
    assert dm_loss(real, torch.tensor([[[2.0, 3.0]]])).item() == 0.0


def test_dm_loss_sums_over_classes():
    a, b = torch.randn(3, 4, 5), torch.randn(3, 2, 5)
    total = sum(dm_loss(a[i : i + 1], b[i : i + 1]) for i in range(3))
    assert torch.allclose(dm_loss(a, b), total)


def test_gradient_reaches_synthetic_images():
    spec = condense.DataSpec(1, (8, 8), 2)
    encoder = condense.get_sampler("convnet")({"width": 4}).sample(
        spec, generator=torch.Generator().manual_seed(0))
    real = torch.randn(2 * 3, 1, 8, 8)
    syn = torch.randn(2 * 2, 1, 8, 8, requires_grad=True)
    method = DM()
    with torch.no_grad():
        fr = method.summarize(encoder(real)).grouped(2)
    loss = method.loss(fr, method.summarize(encoder(syn)).grouped(2))
    loss.backward()
    assert syn.grad is not None and syn.grad.abs().sum() > 0


def test_dm_defaults_follow_the_official_code():
    plan = condense.resolve_plan("dm", dataset="x", spec=condense.DataSpec(3, (32, 32), 10), ipc=10)
    assert plan.loop.batch_real == 256 and plan.loop.lr_img == 1.0
    assert plan.loop.momentum == 0.5 and plan.loop.iterations == 20000
    assert plan.sampler.config.norm == "instancenorm" and plan.sampler.config.width == 128
    high = condense.resolve_plan("dm", dataset="x", spec=condense.DataSpec(3, (32, 32), 10),
                                 ipc=100)
    assert high.loop.lr_img == 10.0
