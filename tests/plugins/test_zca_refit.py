from __future__ import annotations

import pytest
import torch

import condense
from condense_evaluators.protocol import synset_transform

from tolerance import assert_close


def _synset(zca_meta):
    return condense.SynSet(torch.zeros(3, 1, 8, 8), torch.arange(3),
                           {"mean": [0.5], "std": [0.25], "zca": zca_meta})


def test_unstored_zca_is_refitted_on_the_training_set(tiny_data):
    t = synset_transform(_synset({"eps": 0.1, "stored": False}), tiny_data)
    x = (tiny_data.train.images.float() / 255 - 0.5) / 0.25
    expected = condense.ZCA.fit(x, 0.1)(x)
    assert_close(t(tiny_data.train.images), expected, what="whitened images")
    plain = synset_transform(_synset(None), tiny_data)
    assert torch.allclose(plain(tiny_data.train.images), x)


def test_unstored_zca_without_data_is_refused():
    with pytest.raises(condense.ConfigError, match="fit-zca"):
        synset_transform(_synset({"eps": 0.1, "stored": False}))
