"""The fused ReLU + 2×2 average pooling used by ConvNet.embed on the CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import vmap

import condense
from condense.networks import pooling
from condense.networks.pooling import fusable, relu_avg_pool2

from tolerance import assert_close


def test_hand_computed_value_and_shape():
    x = torch.tensor([[1.0, -2.0, 3.0, 5.0],
                      [3.0, 4.0, -1.0, 0.0]]).reshape(1, 1, 2, 4)
    out = relu_avg_pool2(x)
    assert out.shape == (1, 1, 1, 2)
    assert out.flatten().tolist() == [2.0, 2.0]  # (1+0+3+4)/4, (3+5+0+0)/4


def test_matches_relu_then_avg_pool_values_and_gradients():
    x = torch.randn(3, 5, 8, 6, dtype=torch.float64, requires_grad=True)
    ref = F.avg_pool2d(F.relu(x), 2)
    out = relu_avg_pool2(x)
    assert torch.allclose(out, ref)
    g = torch.randn_like(ref)
    (gr,) = torch.autograd.grad(ref, x, g)
    (go,) = torch.autograd.grad(out, x, g)
    assert torch.allclose(go, gr)
    assert torch.autograd.gradcheck(relu_avg_pool2, (torch.randn(2, 3, 4, 6, dtype=torch.float64,
                                                                  requires_grad=True),))


def test_gradient_is_zero_where_relu_is_off():
    x = (-torch.rand(1, 2, 4, 4)).requires_grad_()
    relu_avg_pool2(x).sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_works_under_vmap():
    xs = torch.randn(3, 4, 5, 8, 8, requires_grad=True)
    out = vmap(relu_avg_pool2)(xs)
    ref = F.avg_pool2d(F.relu(xs.reshape(12, 5, 8, 8)), 2).reshape(3, 4, 5, 4, 4)
    assert torch.allclose(out, ref, atol=1e-6)
    (gv,) = torch.autograd.grad(out.sum(), xs)
    (gr,) = torch.autograd.grad(ref.sum(), xs)
    assert torch.allclose(gv, gr)


def test_odd_sizes_are_refused():
    with pytest.raises(ValueError, match="even H and W"):
        relu_avg_pool2(torch.randn(1, 1, 3, 4))


def test_fusable_only_for_contiguous_cpu_maps_large_enough():
    assert fusable(torch.randn(2, 3, 16, 16))
    assert not fusable(torch.randn(2, 3, 8, 8))  # native kernels as fast
    assert not fusable(torch.randn(2, 3, 16, 16).contiguous(memory_format=torch.channels_last))
    assert not fusable(torch.randn(2, 3, 15, 16))


def test_convnet_embed_equals_the_unfused_modules(monkeypatch):
    net = condense.networks.build_model("convnet", condense.DataSpec(1, (28, 28), 10))
    x = torch.randn(4, 1, 28, 28, requires_grad=True)
    fused = net(x)
    (g_fused,) = torch.autograd.grad(fused.sum(), x)
    monkeypatch.setattr(pooling, "MIN_PIXELS", 1 << 62)
    plain = net(x)
    (g_plain,) = torch.autograd.grad(plain.sum(), x)
    assert_close(fused, plain, what="logits")
    assert_close(g_fused, g_plain, what="input gradient")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("norm", ["instancenorm", "batchnorm"])
def test_convnet_fused_embed_equals_features(monkeypatch, norm, channels):
    """``embed``/``forward`` (fused ReLU + pooling) == ``features`` (the plain modules), in train
    mode: values and input gradients of the embedding and of the logits."""
    torch.manual_seed(0)
    net = condense.networks.ConvNet(channels, 10, (28, 28) if channels == 1 else (32, 32),
                                    norm=norm).train()
    x = torch.randn(4, channels, *((28, 28) if channels == 1 else (32, 32)), requires_grad=True)
    fused_calls = []

    def spy(t):
        fused_calls.append(tuple(t.shape))
        return relu_avg_pool2(t)

    monkeypatch.setattr(condense.networks.convnet, "relu_avg_pool2", spy)
    feats = net.features(x)
    assert not fused_calls  # features() runs the plain modules
    for fused, plain, what in ((net.embed(x), feats.embedding, "embedding"),
                               (net(x), feats.logits, "logits")):
        g = torch.randn_like(plain)
        (g_fused,) = torch.autograd.grad(fused, x, g)
        (g_plain,) = torch.autograd.grad(plain, x, g, retain_graph=True)
        assert_close(fused, plain, what=what)
        assert_close(g_fused, g_plain, what=f"input gradient through the {what}")
    # the fused path was taken: on the 32×32 and 16×16 maps of both calls (8×8 is native)
    assert fused_calls == [(4, 128, 32, 32), (4, 128, 16, 16)] * 2
