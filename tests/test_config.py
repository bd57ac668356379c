from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

import condense
from condense.config import Config, parse_overrides


@dataclasses.dataclass(frozen=True)
class Demo(Config):
    lr: float = 1.0
    steps: int = 10
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1, 2)
    maybe: int | None = None


def test_defaults_and_coercion_from_strings():
    c = Demo.from_dict({"lr": "0.5", "steps": "3", "flag": "true", "mode": "b", "sizes": "4,5",
                        "maybe": "none"})
    assert c == Demo(lr=0.5, steps=3, flag=True, mode="b", sizes=(4, 5), maybe=None)
    assert Demo.from_dict({"maybe": "7"}).maybe == 7


def test_unknown_key_lists_valid_ones():
    with pytest.raises(condense.ConfigError) as exc:
        Demo.from_dict({"lrr": 1}, owner="demo")
    msg = str(exc.value)
    assert "lrr" in msg and "demo" in msg
    for key in ("lr", "steps", "flag", "mode", "sizes", "maybe"):
        assert key in msg


@pytest.mark.parametrize("key,value", [("steps", "1.5"), ("flag", "maybe"), ("mode", "c"),
                                       ("lr", "fast"), ("steps", True)])
def test_bad_values_raise_config_error(key, value):
    with pytest.raises(condense.ConfigError, match=key):
        Demo.from_dict({key: value})


def test_frozen_and_json_round_trip():
    c = Demo(lr=2.0, sizes=(3,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lr = 3.0  # type: ignore[misc]
    assert Demo.from_dict(c.to_dict()) == c
    assert '"sizes": [3]' in c.to_json()


def test_parse_overrides():
    assert parse_overrides(["a=1", " b = x=y "]) == {"a": "1", "b": "x=y"}
    with pytest.raises(condense.ConfigError, match="key=value"):
        parse_overrides(["novalue"])


def test_plan_routes_keys_and_rejects_unknown(tiny_data):
    plan = condense.resolve_plan("datadam", dataset="tiny", spec=tiny_data.spec, ipc=2,
                                 overrides={"task_balance": "0.5", "lr_img": "3",
                                            "sampler.width": "16", "depth": "2"})
    assert plan.method.config.task_balance == 0.5
    assert plan.loop.lr_img == 3.0
    assert plan.sampler.config.width == 16 and plan.sampler.config.depth == 2
    assert plan.sampler.config.norm == "batchnorm"  # DataDAM's code-faithful default
    with pytest.raises(condense.ConfigError) as exc:
        condense.resolve_plan("datadam", dataset="tiny", spec=tiny_data.spec, ipc=2,
                              overrides={"task_balanse": 1})
    assert "task_balance" in str(exc.value) and "lr_img" in str(exc.value)


def test_presets_and_auto_overrides(tiny_data):
    paper = condense.resolve_plan("datadam", dataset="tiny", spec=tiny_data.spec, ipc=2,
                                  preset="datadam-paper")
    assert paper.method.config.attention_power == 4.0
    assert paper.sampler.config.norm == "instancenorm"
    assert paper.loop.iterations == 8000
    high = condense.resolve_plan("datadam", dataset="tiny", spec=tiny_data.spec, ipc=100)
    assert high.loop.lr_img == 10.0
    dm = condense.resolve_plan("dm", dataset="tiny", spec=tiny_data.spec, ipc=10)
    assert (dm.loop.batch_real, dm.sampler.config.norm) == (256, "instancenorm")
    with pytest.raises(condense.ConfigError, match="datadam-paper"):
        condense.resolve_plan("datadam", dataset="tiny", spec=tiny_data.spec, ipc=2, preset="nope")
