from __future__ import annotations

import math

import torch

import condense
from condense_datadam import DataDAM, attention_map, datadam_loss, mean_match, sam_loss


def test_attention_map_hand_value():
    fmap = torch.tensor([[[[3.0, 4.0]]]])  # (1, C=1, H=1, W=2)
    assert torch.allclose(attention_map(fmap, 1.0), torch.tensor([[0.6, 0.8]]))
    two = torch.tensor([[[[1.0, 0.0]], [[1.0, 2.0]]]])  # C=2: Σ|A|² = (2, 4)
    expected = torch.tensor([[2.0, 4.0]]) / math.sqrt(20)
    assert torch.allclose(attention_map(two, 2.0), expected)
    assert attention_map(torch.randn(5, 2, 3, 4, 4), 4.0).shape == (5, 2, 16)


def test_attention_map_uses_absolute_values():
    x = torch.randn(2, 3, 4, 4)
    assert torch.allclose(attention_map(x, 1.0), attention_map(x.abs(), 1.0))


def _feats(k, n, seed):
    g = torch.Generator().manual_seed(seed)
    maps = (torch.rand(k, n, 4, 8, 8, generator=g), torch.rand(k, n, 4, 4, 4, generator=g),
            torch.rand(k, n, 4, 2, 2, generator=g))
    return condense.Features(torch.rand(k, n, 16, generator=g), maps)


def test_loss_is_zero_when_statistics_match():
    real = _feats(3, 4, 0)
    assert datadam_loss(real, real).item() == 0.0
    # per-class means are what is matched: syn = the class means of real gives zero too
    means = condense.Features(real.embedding.mean(1, keepdim=True),
                              tuple(m.mean(1, keepdim=True) for m in real.maps))
    assert datadam_loss(real, means, power=1.0).item() > 0  # attention is not linear in A
    assert mean_match(real.embedding, means.embedding).item() < 1e-10


def test_loss_hand_computed_value():
    # one class, one image each; block-1 map (C=1, 1×2) and an embedding; last map unused
    real = condense.Features(torch.tensor([[[1.0, 0.0]]]),
                             (torch.tensor([[[[[3.0, 4.0]]]]]), torch.zeros(1, 1, 1, 1, 1)))
    syn = condense.Features(torch.tensor([[[0.0, 0.0]]]),
                            (torch.tensor([[[[[4.0, 3.0]]]]]), torch.ones(1, 1, 1, 1, 1)))
    # SAM: (0.6-0.8)² + (0.8-0.6)² = 0.08, ×100 = 8; MMD: 1² ×100×0.01 = 1
    loss = datadam_loss(real, syn, power=1.0, task_balance=0.01)
    assert torch.allclose(loss, torch.tensor(9.0))


def test_last_block_is_excluded_from_sam():
    real, syn = _feats(2, 3, 1), _feats(2, 2, 2)
    changed = condense.Features(syn.embedding, syn.maps[:-1] + (syn.maps[-1] * 7,))
    assert torch.equal(datadam_loss(real, syn), datadam_loss(real, changed))
    assert torch.allclose(sam_loss(real.maps[:-1], syn.maps[:-1], 1.0) * 100
                          + mean_match(real.embedding, syn.embedding), datadam_loss(real, syn))


def test_gradient_reaches_synthetic_images():
    spec = condense.DataSpec(3, (16, 16), 2)
    encoder = condense.get_sampler("convnet")({"width": 4, "norm": "batchnorm"}).sample(
        spec, generator=torch.Generator().manual_seed(0))
    real = torch.randn(2 * 4, 3, 16, 16)
    syn = torch.randn(2 * 2, 3, 16, 16, requires_grad=True)
    method = DataDAM()
    with torch.no_grad():
        fr = method.summarize(encoder(real)).grouped(2)
    loss = method.loss(fr, method.summarize(encoder(syn)).grouped(2))
    assert loss.shape == ()
    loss.backward()
    assert syn.grad is not None and syn.grad.abs().sum() > 0


def test_official_settings_per_dataset_need_no_preset():
    """The official per-dataset table (DataDistillation/DataDAM README) follows from the
    defaults, auto_overrides and the depth rule, so no per-dataset preset restates it."""
    spec = condense.DataSpec(3, (128, 128), 10)
    plan = condense.resolve_plan("datadam", dataset="imagenette", spec=spec, ipc=10)
    assert plan.method.config.task_balance == 0.02 and len(plan.sampler.build(spec).blocks) == 6
    assert plan.sampler.config.norm == "batchnorm" and plan.loop.batch_real == 64
    tiny_spec = condense.DataSpec(3, (64, 64), 200)
    tiny = condense.resolve_plan("datadam", dataset="tinyimagenet", spec=tiny_spec, ipc=50)
    assert len(tiny.sampler.build(tiny_spec).blocks) == 4 and tiny.loop.lr_img == 1.0
    assert tiny.method.config.task_balance == 0.01
    big = condense.resolve_plan("datadam", dataset="cifar10",
                                spec=condense.DataSpec(3, (32, 32), 10), ipc=100)
    assert big.loop.lr_img == 10.0 and sorted(type(plan.method).presets) == ["datadam",
                                                                             "datadam-paper"]
