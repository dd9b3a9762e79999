"""aihwkit's weight clipping and remapping rules (post_update_step)."""

from __future__ import annotations

import pytest
import torch

from anatile.config import (
    WeightClipParameter,
    WeightClipType,
    WeightRemapParameter,
    WeightRemapType,
)
from anatile.exceptions import ConfigError
from anatile.functional import clip_value, clip_weights, remap_weights

W = torch.tensor([[0.5, -2.0, 0.1], [1.0, 0.2, -0.4]])


def test_clip_types() -> None:
    assert clip_value(W, WeightClipParameter()) is None
    fixed = WeightClipParameter(type=WeightClipType.FIXED_VALUE, fixed_value=0.45)
    assert torch.equal(clip_weights(W, fixed), W.clamp(-0.45, 0.45))
    gauss = WeightClipParameter(type=WeightClipType.LAYER_GAUSSIAN, sigma=1.5)
    assert clip_value(W, gauss) == pytest.approx(1.5 * float(W.std()))
    # the fixed value caps the other types when positive
    capped = WeightClipParameter(type=WeightClipType.LAYER_GAUSSIAN, sigma=1.5, fixed_value=0.3)
    assert clip_value(W, capped) == pytest.approx(0.3)
    channel = WeightClipParameter(type=WeightClipType.AVERAGE_CHANNEL_MAX)
    assert clip_value(W, channel) == pytest.approx((2.0 + 1.0) / 2)
    assert torch.equal(clip_weights(W, channel), W.clamp(-1.5, 1.5))
    # FIXED_VALUE with the default -1: no clipping (aihwkit clips only at positive bounds)
    assert clip_value(W, WeightClipParameter(type=WeightClipType.FIXED_VALUE)) is None


def test_layerwise_remap_keeps_logical_weights() -> None:
    scales = torch.tensor([2.0])
    remap = WeightRemapParameter(type=WeightRemapType.LAYERWISE_SYMMETRIC, remapped_wmax=0.5)
    w, s = remap_weights(W, scales, remap)
    assert float(w.abs().max()) == pytest.approx(0.5)
    torch.testing.assert_close(s[:, None] * w, 2.0 * W)


def test_channelwise_remap_per_row() -> None:
    scales = torch.tensor([1.0, 3.0])
    remap = WeightRemapParameter(type=WeightRemapType.CHANNELWISE_SYMMETRIC)
    w, s = remap_weights(W, scales, remap)
    torch.testing.assert_close(w.abs().amax(dim=1), torch.ones(2))
    torch.testing.assert_close(s, torch.tensor([2.0, 3.0]))
    torch.testing.assert_close(s[:, None] * w, scales[:, None] * W)


def test_channelwise_remap_with_scale_range() -> None:
    scales = torch.tensor([1.0, 1.0])
    remap = WeightRemapParameter(type=WeightRemapType.CHANNELWISE_SYMMETRIC,
                                 max_scale_range=1.5)
    w, s = remap_weights(W, scales, remap)
    # row 0 would need scale 2 > 1.5 · min scale 1: capped, part of the excess stays in w
    torch.testing.assert_close(s, torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(s[:, None] * w, W)


def test_remap_config_validation() -> None:
    with pytest.raises(ConfigError, match="remapped_wmax"):
        WeightRemapParameter(max_scale_range=2.0, remapped_wmax=0.5)
    with pytest.raises(ConfigError, match="sigma"):
        WeightClipParameter(sigma=0.0)
