"""``TileArray.fused`` and ``TileArray.parallel`` take a bool; anything else raises and
leaves the array as it was."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from anatile.config import InferenceRPUConfig
from anatile.nn import AnalogLinear


def _layer() -> AnalogLinear:
    cfg = InferenceRPUConfig()
    cfg.mapping.max_input_size = cfg.mapping.max_output_size = 8
    return AnalogLinear(20, 12, rpu_config=cfg, seed=0)


def _snapshot(module: torch.nn.Module) -> tuple[bytes, dict[str, object]]:
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.getvalue(), dict(vars(module))


@pytest.mark.parametrize("name", ["parallel", "fused"])
@pytest.mark.parametrize("bad", ["no", "False", 2, 0, 1.0, None, np.bool_(False),
                                 torch.tensor(False)], ids=repr)
def test_a_non_bool_switch_raises_naming_it_and_changes_nothing(name: str, bad: object) -> None:
    layer = _layer()
    array = layer.tile_array
    setattr(array, name, False)  # an instance value, so "unchanged" is not the default
    before, attrs = _snapshot(array)
    with pytest.raises(TypeError, match=rf"^{name}: expected a bool \(True or False\), got "):
        setattr(array, name, bad)
    after, attrs_after = _snapshot(array)
    assert after == before
    assert attrs_after.keys() == attrs.keys()
    assert all(attrs_after[k] is attrs[k] for k in attrs)
    assert getattr(array, name) is False


@pytest.mark.parametrize("name", ["parallel", "fused"])
def test_a_bool_switch_is_taken(name: str) -> None:
    layer = _layer().eval()
    x = torch.randn(4, 20, generator=torch.Generator().manual_seed(1))
    for value in (False, True):
        setattr(layer.tile_array, name, value)
        assert getattr(layer.tile_array, name) is value
        assert layer(x).shape == (4, 12)
