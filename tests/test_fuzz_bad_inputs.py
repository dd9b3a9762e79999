"""Fuzz suite: bad input at every public entry point (issue #12, "nothing silent").

For each bad input the suite asserts three things: the exception type, that the message
names the offending argument, and that the object the call was made on is bit-identical
afterwards (every tensor of its state dict, its generator state, its extra state and its
plain attributes). The table below holds hand-picked cases per entry point (every case of
the issue is there); the hypothesis tests poison random positions of otherwise valid
tensors with NaN/±inf.
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from anatile.config import InferenceRPUConfig, MappingParameter, RPUConfig
from anatile.exceptions import ConfigError
from anatile.inference import (
    CustomPairConductanceConverter,
    DualPairConductanceConverter,
    PCMLikeNoiseModel,
    SinglePairConductanceConverter,
)
from anatile.nn import AnalogConv2d, AnalogLinear, AnalogSGD
from anatile.tiles import InferenceTile, TileWithPeriphery

NAN, INF = float("nan"), float("inf")


# ----------------------------------------------------------------------------- state
def _freeze(value: Any) -> Any:
    """A deep, comparable copy of ``value`` (tensors cloned, objects by their dict form)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", value.dtype, tuple(value.shape), value.detach().cpu().clone())
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_freeze(v) for v in value)
    if hasattr(value, "to_dict"):
        return ("object", type(value).__name__, _freeze(value.to_dict()))
    return value


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and len(a) == 4 and a[:1] == ("tensor",):
        return (isinstance(b, tuple) and len(b) == 4 and a[1:3] == b[1:3]
                and torch.equal(a[3], b[3]))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(
            _equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(
            _equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


_TILE_ATTRS = ("seed", "_learning_rate", "image_sizes", "last_programming", "t_inference",
               "conversion_params", "programmed_noise_model", "out_size", "in_size")


def snapshot(obj: Any) -> Any:
    """Everything a failed call must leave untouched."""
    if isinstance(obj, nn.Module):
        state: dict[str, Any] = {"state_dict": _freeze(obj.state_dict())}
        for name, mod in obj.named_modules():
            if isinstance(mod, TileWithPeriphery):
                state[name + ".generator"] = _freeze(mod.generator.get_state())
                state[name + ".attrs"] = _freeze(
                    {a: getattr(mod, a) for a in _TILE_ATTRS if hasattr(mod, a)})
                state[name + ".pending"] = len(mod._pending)
            if isinstance(mod, AnalogConv2d):
                state[name + "._image_hw"] = mod._image_hw
        return state
    if isinstance(obj, torch.optim.Optimizer):
        return _freeze(obj.state_dict())
    if hasattr(obj, "to_dict"):
        return _freeze(obj.to_dict())
    return _freeze(copy.copy(getattr(obj, "__dict__", obj)))


# ----------------------------------------------------------------------------- objects
def pulsed_tile(**kwargs: Any) -> TileWithPeriphery:
    tile = TileWithPeriphery(3, 4, seed=0, **kwargs)
    tile.set_weights(torch.randn(3, 4, generator=torch.Generator().manual_seed(1)) * 0.3)
    return tile


def range_tile() -> TileWithPeriphery:
    cfg = RPUConfig()
    cfg.pre_post.input_range.enable = True
    tile = TileWithPeriphery(3, 4, cfg, seed=0)
    tile.set_weights(torch.randn(3, 4, generator=torch.Generator().manual_seed(1)) * 0.3)
    return tile


def drifted_tile(out_size: int = 3, in_size: int = 4, seed: int = 1) -> InferenceTile:
    tile = InferenceTile(out_size, in_size, seed=seed)
    tile.set_weights(torch.randn(out_size, in_size,
                                 generator=torch.Generator().manual_seed(seed)))
    tile.program_weights()
    tile.drift_weights(100.0)
    return tile


def trained_tile() -> TileWithPeriphery:
    tile = pulsed_tile()
    tile.train()
    return tile


def eval_tile() -> TileWithPeriphery:
    tile = pulsed_tile()
    tile.eval()
    return tile


def state_with(tile_factory: Callable[[], TileWithPeriphery], key: str, value: Any
               ) -> dict[str, Any]:
    state = tile_factory().state_dict()
    state[key] = value
    return state


def extra_with(**changes: Any) -> dict[str, Any]:
    state = pulsed_tile().state_dict()
    extra = dict(state["_extra_state"])
    for k, v in changes.items():
        if v is _DROP:
            extra.pop(k)
        else:
            extra[k] = v
    state["_extra_state"] = extra
    return state


def inference_extra_with(**changes: Any) -> dict[str, Any]:
    state = drifted_tile().state_dict()
    extra = dict(state["_extra_state"])
    extra.update(changes)
    state["_extra_state"] = extra
    return state


_DROP = object()


def poisoned(shape: tuple[int, ...], value: float, index: int = 0) -> torch.Tensor:
    t = torch.ones(shape)
    t.view(-1)[index] = value
    return t


def interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def wpo(t_steps: Any = (1.0, 100.0), **kwargs: Any) -> Any:
    from anatile.wpo import WeightProgrammingOptimizer

    opts = dict(test_in_features=16, test_out_features=4, popsize=4, maxiter=1,
                baseline_iterations=2, polish=False, compile=False)
    opts.update(kwargs)
    weights = torch.randn(200, generator=torch.Generator().manual_seed(0)) * 0.1
    return WeightProgrammingOptimizer(weights, [None, None],
                                      InferenceRPUConfig(), t_steps,
                                      DualPairConductanceConverter([1.0, 1.0]), **opts)


def conductance_map(t_steps: Any) -> Any:
    from anatile.widgets import ConductanceMapView

    return ConductanceMapView(SinglePairConductanceConverter(), t_steps=t_steps)


def wpo_monitor(optimizer: Any) -> Any:
    from anatile.widgets import WPOMonitor

    return WPOMonitor(optimizer)


def nan_config_json() -> None:
    cfg = RPUConfig()
    cfg.forward.out_noise = NAN
    cfg.to_json()


def sgd(**kwargs: Any) -> Any:
    return AnalogSGD(AnalogLinear(2, 2, seed=0).parameters(), **{"lr": 0.1, **kwargs})


def conv_int(layer: AnalogConv2d) -> None:
    layer(torch.ones(1, 1, 6, 6, dtype=torch.int64))


# ----------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Case:
    """One bad input: ``call(make())`` raises ``exc`` naming ``name``; ``make()`` unchanged."""

    id: str
    make: Callable[[], Any] | None
    call: Callable[[Any], Any]
    exc: type[BaseException]
    name: str


def _tile_cases() -> list[Case]:
    w = torch.ones(3, 4) * 0.1
    x, d = torch.ones(2, 4), torch.ones(2, 3)
    meta = torch.ones(3, 4, device="meta")
    cases = [
        # set_weights
        Case("set_weights-list", pulsed_tile, lambda t: t.set_weights([[0.1] * 4] * 3),
             TypeError, "weight"),
        Case("set_weights-int", pulsed_tile,
             lambda t: t.set_weights(torch.ones(3, 4, dtype=torch.int64)), TypeError, "weight"),
        Case("set_weights-meta", pulsed_tile, lambda t: t.set_weights(meta), ValueError,
             "weight"),
        Case("set_weights-shape", pulsed_tile, lambda t: t.set_weights(torch.ones(4, 3)),
             ValueError, "weight"),
        Case("set_weights-nan", pulsed_tile, lambda t: t.set_weights(poisoned((3, 4), NAN)),
             ValueError, "weight"),
        Case("set_weights-inf", pulsed_tile, lambda t: t.set_weights(poisoned((3, 4), -INF, 5)),
             ValueError, "weight"),
        Case("set_weights-bias-nan", lambda: pulsed_tile(bias=True),
             lambda t: t.set_weights(w, poisoned((3,), NAN)), ValueError, "bias"),
        Case("set_weights-bias-shape", lambda: pulsed_tile(bias=True),
             lambda t: t.set_weights(w, torch.ones(4)), ValueError, "bias"),
        Case("set_weights-omega-nan", pulsed_tile,
             lambda t: t.set_weights(w, weight_scaling_omega=NAN), ValueError,
             "weight_scaling_omega"),
        Case("set_weights-omega-negative", pulsed_tile,
             lambda t: t.set_weights(w, weight_scaling_omega=-1.0), ValueError,
             "weight_scaling_omega"),
        Case("set_weights-omega-1e30", pulsed_tile,
             lambda t: t.set_weights(w, weight_scaling_omega=1e30), ValueError,
             "weight_scaling_omega"),
        Case("set_weights-omega-1e40", pulsed_tile,
             lambda t: t.set_weights(w, weight_scaling_omega=1e40), ValueError,
             "weight_scaling_omega"),
        Case("remap_weights-omega-inf", pulsed_tile, lambda t: t.remap_weights(INF),
             ValueError, "weight_scaling_omega"),
        # update
        Case("update-d-nan", pulsed_tile, lambda t: t.update(x, poisoned((2, 3), NAN)),
             ValueError, "d_input"),
        Case("update-d-inf", pulsed_tile, lambda t: t.update(x, poisoned((2, 3), INF, 4)),
             ValueError, "d_input"),
        Case("update-x-inf", pulsed_tile, lambda t: t.update(poisoned((2, 4), INF), d),
             ValueError, "x_input"),
        Case("update-x-nan", pulsed_tile, lambda t: t.update(poisoned((2, 4), NAN, 7), d),
             ValueError, "x_input"),
        Case("update-x-list", pulsed_tile, lambda t: t.update([[1.0] * 4], d), TypeError,
             "x_input"),
        Case("update-d-int", pulsed_tile,
             lambda t: t.update(x, torch.ones(2, 3, dtype=torch.int32)), TypeError, "d_input"),
        Case("update-batch-mismatch", pulsed_tile, lambda t: t.update(x, torch.ones(3, 3)),
             ValueError, "d_input"),
        Case("update-x-meta", pulsed_tile,
             lambda t: t.update(torch.ones(2, 4, device="meta"), d), ValueError, "x_input"),
        Case("update-x-shape", pulsed_tile, lambda t: t.update(torch.ones(2, 5), d),
             ValueError, "x_input"),
        # forward
        Case("forward-train-nan", trained_tile, lambda t: t(poisoned((2, 4), NAN)),
             ValueError, "x_input"),
        Case("forward-train-inf", trained_tile, lambda t: t(poisoned((2, 4), INF)),
             ValueError, "x_input"),
        Case("forward-train-nan-input-range", lambda: range_tile().train(),
             lambda t: t(poisoned((5, 4), NAN, 3)), ValueError, "x_input"),
        Case("forward-list", eval_tile, lambda t: t([1.0, 2.0, 3.0, 4.0]), TypeError,
             "x_input"),
        Case("forward-int", eval_tile, lambda t: t(torch.ones(2, 4, dtype=torch.int64)),
             TypeError, "x_input"),
        Case("forward-complex", eval_tile,
             lambda t: t(torch.ones(2, 4, dtype=torch.complex64)), TypeError, "x_input"),
        Case("forward-meta", eval_tile, lambda t: t(torch.ones(2, 4, device="meta")),
             ValueError, "x_input"),
        Case("forward-shape", eval_tile, lambda t: t(torch.ones(2, 5)), ValueError, "x_input"),
        Case("forward-scalar", eval_tile, lambda t: t(torch.tensor(1.0)), ValueError,
             "x_input"),
        # load_state_dict
        Case("load-nan-weight", pulsed_tile,
             lambda t: t.load_state_dict(state_with(pulsed_tile, "analog_core.weight",
                                                    poisoned((3, 4), NAN))),
             ValueError, "analog_core.weight"),
        Case("load-inf-device-param", pulsed_tile,
             lambda t: t.load_state_dict(state_with(pulsed_tile, "analog_core.dw_up",
                                                    poisoned((3, 4), INF))),
             ValueError, "analog_core.dw_up"),
        Case("load-zero-scales", pulsed_tile,
             lambda t: t.load_state_dict(state_with(pulsed_tile, "mapping_scales",
                                                    torch.zeros(1))),
             ValueError, "mapping_scales"),
        Case("load-negative-scales", pulsed_tile,
             lambda t: t.load_state_dict(state_with(pulsed_tile, "mapping_scales",
                                                    -torch.ones(1))),
             ValueError, "mapping_scales"),
        Case("load-nan-scales-nonstrict", pulsed_tile,
             lambda t: t.load_state_dict(state_with(pulsed_tile, "mapping_scales",
                                                    torch.full((1,), NAN)), strict=False),
             ValueError, "mapping_scales"),
        Case("load-scales-size", pulsed_tile,
             lambda t: t.load_state_dict(state_with(pulsed_tile, "mapping_scales",
                                                    torch.ones(2))),
             ValueError, "mapping_scales"),
        Case("load-weight-int", pulsed_tile,
             lambda t: t.load_state_dict(state_with(pulsed_tile, "analog_core.weight",
                                                    torch.ones(3, 4, dtype=torch.int64))),
             TypeError, "analog_core.weight"),
        Case("load-weight-list", pulsed_tile,
             lambda t: t.load_state_dict(state_with(pulsed_tile, "analog_core.weight",
                                                    [[0.0] * 4] * 3)),
             TypeError, "analog_core.weight"),
        Case("load-weight-meta", pulsed_tile,
             lambda t: t.load_state_dict(state_with(pulsed_tile, "analog_core.weight",
                                                    torch.ones(3, 4, device="meta"))),
             ValueError, "analog_core.weight"),
        Case("load-3x4-into-5x6", lambda: TileWithPeriphery(5, 6, seed=2),
             lambda t: t.load_state_dict(pulsed_tile().state_dict()), ValueError,
             "analog_core.weight"),
        Case("load-3x4-into-5x6-nonstrict", lambda: TileWithPeriphery(5, 6, seed=2),
             lambda t: t.load_state_dict(pulsed_tile().state_dict(), strict=False),
             ValueError, "analog_core.weight"),
        Case("load-missing-key-strict", pulsed_tile,
             lambda t: t.load_state_dict({k: v for k, v in pulsed_tile().state_dict().items()
                                          if k != "mapping_scales"}),
             RuntimeError, "mapping_scales"),
        Case("load-unexpected-key-strict", pulsed_tile,
             lambda t: t.load_state_dict({**pulsed_tile().state_dict(),
                                          "surprise": torch.ones(1)}),
             RuntimeError, "surprise"),
        Case("load-nan-input-range", range_tile,
             lambda t: t.load_state_dict(state_with(range_tile, "input_range",
                                                    torch.full((1,), NAN))),
             ValueError, "input_range"),
        Case("load-zero-input-range", range_tile,
             lambda t: t.load_state_dict(state_with(range_tile, "input_range",
                                                    torch.zeros(1))),
             ValueError, "input_range"),
        Case("load-extra-missing-seed", pulsed_tile,
             lambda t: t.load_state_dict(extra_with(seed=_DROP)), ValueError, "seed"),
        Case("load-extra-not-dict", pulsed_tile,
             lambda t: t.load_state_dict(state_with(pulsed_tile, "_extra_state", [1, 2])),
             TypeError, "extra_state"),
        Case("load-extra-negative-seed", pulsed_tile,
             lambda t: t.load_state_dict(extra_with(seed=-3)), ValueError, "seed"),
        Case("load-extra-nan-lr", pulsed_tile,
             lambda t: t.load_state_dict(extra_with(learning_rate=NAN)), ValueError,
             "learning_rate"),
        Case("load-extra-bad-generator", pulsed_tile,
             lambda t: t.load_state_dict(extra_with(
                 generator_state=torch.zeros(3, dtype=torch.uint8))),
             ValueError, "generator_state"),
        Case("load-extra-generator-not-tensor", pulsed_tile,
             lambda t: t.load_state_dict(extra_with(generator_state="abc")), TypeError,
             "generator_state"),
        Case("load-extra-image-sizes", pulsed_tile,
             lambda t: t.load_state_dict(extra_with(image_sizes=[1, 2])), ValueError,
             "image_sizes"),
        Case("set_extra_state-missing", pulsed_tile, lambda t: t.set_extra_state({"foo": 1}),
             ValueError, "seed"),
        # read_weights
        Case("read_weights-few-rows", eval_tile,
             lambda t: t.read_weights(x_values=torch.randn(2, 4)), ValueError, "x_values"),
        Case("read_weights-zero-rows", eval_tile,
             lambda t: t.read_weights(x_values=torch.zeros(10, 4)), ValueError, "x_values"),
        Case("read_weights-repeated-rows", eval_tile,
             lambda t: t.read_weights(x_values=torch.ones(10, 4)), ValueError, "x_values"),
        Case("read_weights-nan", eval_tile,
             lambda t: t.read_weights(x_values=poisoned((10, 4), NAN)), ValueError,
             "x_values"),
        Case("read_weights-shape", eval_tile,
             lambda t: t.read_weights(x_values=torch.randn(10, 5)), ValueError, "x_values"),
        Case("read_weights-list", eval_tile, lambda t: t.read_weights(x_values=[[1.0] * 4]),
             TypeError, "x_values"),
        Case("read_weights-over_sampling", eval_tile, lambda t: t.read_weights(over_sampling=0),
             ValueError, "over_sampling"),
        # program_weights
        Case("program-callback-not-callable", pulsed_tile,
             lambda t: t.program_weights(callback=3), TypeError, "callback"),
        Case("program-lr-nan", pulsed_tile, lambda t: t.program_weights(learning_rate=NAN),
             ValueError, "learning_rate"),
        Case("program-max-iter-0", pulsed_tile, lambda t: t.program_weights(max_iter=0),
             ValueError, "max_iter"),
        Case("program-tolerance-negative", pulsed_tile,
             lambda t: t.program_weights(tolerance=-1.0), ValueError, "tolerance"),
        Case("program-w-init-nan", pulsed_tile, lambda t: t.program_weights(w_init=NAN),
             ValueError, "w_init"),
        Case("program-w-init-shape", pulsed_tile,
             lambda t: t.program_weights(w_init=torch.zeros(2, 2)), ValueError, "w_init"),
        Case("program-x-values-inf", pulsed_tile,
             lambda t: t.program_weights(x_values=poisoned((4, 4), INF)), ValueError,
             "x_values"),
        Case("program-verify-reads-0", pulsed_tile,
             lambda t: t.program_weights(verify_reads=0), ValueError, "verify_reads"),
        Case("program-verify-reads-float", pulsed_tile,
             lambda t: t.program_weights(verify_reads=2.5), TypeError, "verify_reads"),
        Case("program-verify-reads-bool", pulsed_tile,
             lambda t: t.program_weights(verify_reads=True), TypeError, "verify_reads"),
        Case("program-max-reads-negative", pulsed_tile,
             lambda t: t.program_weights(max_reads=-4), ValueError, "max_reads"),
        Case("program-max-reads-str", pulsed_tile,
             lambda t: t.program_weights(max_reads="many"), TypeError, "max_reads"),
        Case("program-multiplexed-str", pulsed_tile,
             lambda t: t.program_weights(multiplexed="yes"), TypeError, "multiplexed"),
        Case("program-interrupted", pulsed_tile,
             lambda t: t.program_weights(max_iter=20, tolerance=None, callback=interrupt),
             KeyboardInterrupt, ""),
        # scales, learning rate, input range, seed, indexed
        Case("set_scales-zero", pulsed_tile, lambda t: t.set_scales(0.0), ValueError, "scales"),
        Case("set_scales-nan", pulsed_tile, lambda t: t.set_scales(torch.full((1,), NAN)),
             ValueError, "scales"),
        Case("set_mapping_scales-size", pulsed_tile,
             lambda t: t.set_mapping_scales(torch.ones(2)), ValueError, "mapping_scales"),
        Case("set_learning_rate-nan", pulsed_tile, lambda t: t.set_learning_rate(NAN),
             ValueError, "learning_rate"),
        Case("set_learning_rate-negative", pulsed_tile, lambda t: t.set_learning_rate(-1.0),
             ValueError, "learning_rate"),
        Case("set_input_range-nan", range_tile, lambda t: t.set_input_range(NAN), ValueError,
             "value"),
        Case("set_input_range-zero", range_tile, lambda t: t.set_input_range(0.0), ValueError,
             "value"),
        Case("manual_seed-negative", pulsed_tile, lambda t: t.manual_seed(-1), ValueError,
             "seed"),
        Case("manual_seed-str", pulsed_tile, lambda t: t.manual_seed("x"), TypeError, "seed"),
        Case("set_indexed-sizes", pulsed_tile,
             lambda t: t.set_indexed(torch.zeros(4, 1, dtype=torch.int64), [1, 2]),
             ValueError, "image_sizes"),
        Case("set_indexed-float", pulsed_tile,
             lambda t: t.set_indexed(torch.zeros(4, 4), [1, 2, 2, 2, 2]), TypeError,
             "indices"),
    ]
    return cases


def _inference_cases() -> list[Case]:
    return [
        Case("inference-load-3x4-into-5x6", lambda: drifted_tile(5, 6, seed=2),
             lambda t: t.load_state_dict(drifted_tile().state_dict()), ValueError,
             "analog_core.weight"),
        Case("inference-load-3x4-into-5x6-nonstrict", lambda: drifted_tile(5, 6, seed=2),
             lambda t: t.load_state_dict(drifted_tile().state_dict(), strict=False),
             ValueError, "analog_core.weight"),
        Case("inference-load-nan-alpha", drifted_tile,
             lambda t: t.load_state_dict(state_with(drifted_tile, "alpha",
                                                    torch.full((1,), NAN))),
             ValueError, "alpha"),
        Case("inference-load-drift-baseline-shape", drifted_tile,
             lambda t: t.load_state_dict(state_with(drifted_tile, "drift_baseline",
                                                    torch.ones(3))),
             ValueError, "drift_baseline"),
        Case("inference-load-nan-g-programmed", drifted_tile,
             lambda t: t.load_state_dict(state_with(drifted_tile, "g_programmed",
                                                    poisoned((2, 3, 4), NAN))),
             ValueError, "g_programmed"),
        Case("inference-load-t-inference-negative", drifted_tile,
             lambda t: t.load_state_dict(inference_extra_with(t_inference=-1.0)), ValueError,
             "t_inference"),
        Case("inference-load-t-inference-str", drifted_tile,
             lambda t: t.load_state_dict(inference_extra_with(t_inference="1h")), ValueError,
             "t_inference"),
        Case("inference-load-noise-model-int", drifted_tile,
             lambda t: t.load_state_dict(inference_extra_with(programmed_noise_model=3)),
             TypeError, "programmed_noise_model"),
        Case("inference-load-noise-model-bad-dict", drifted_tile,
             lambda t: t.load_state_dict(inference_extra_with(
                 programmed_noise_model={"__type__": "PCMLikeNoiseModel", "t_0": -1.0})),
             ValueError, "programmed_noise_model"),
        Case("inference-load-conversion-params", drifted_tile,
             lambda t: t.load_state_dict(inference_extra_with(conversion_params=[1])),
             TypeError, "conversion_params"),
        Case("inference-drift-negative", drifted_tile, lambda t: t.drift_weights(-1.0),
             ValueError, "t_inference"),
        Case("inference-drift-nan", drifted_tile, lambda t: t.drift_weights(NAN), ValueError,
             "t_inference"),
        Case("inference-program-noise-model", drifted_tile,
             lambda t: t.program_weights(noise_model="pcm"), TypeError, "noise_model"),
    ]


def _layer_cases() -> list[Case]:
    return [
        Case("AnalogLinear-in_features-0", None, lambda _: AnalogLinear(0, 3), ValueError,
             "in_features"),
        Case("AnalogLinear-out_features-str", None, lambda _: AnalogLinear(3, "2"), TypeError,
             "out_features"),
        Case("AnalogLinear-forward-list", lambda: AnalogLinear(4, 2, seed=0),
             lambda m: m([1.0, 2.0, 3.0, 4.0]), TypeError, "x_input"),
        Case("AnalogLinear-forward-meta", lambda: AnalogLinear(4, 2, seed=0),
             lambda m: m(torch.ones(2, 4, device="meta")), ValueError, "x_input"),
        Case("AnalogLinear-train-nan", lambda: AnalogLinear(4, 2, seed=0).train(),
             lambda m: m(poisoned((3, 4), NAN)), ValueError, "x_input"),
        Case("AnalogLinear-set_weights-nan", lambda: AnalogLinear(4, 2, seed=0),
             lambda m: m.set_weights(poisoned((2, 4), NAN)), ValueError, "weight"),
        Case("AnalogConv2d-int-input", lambda: AnalogConv2d(1, 2, 3, seed=0), conv_int,
             TypeError, "x"),
        Case("AnalogConv2d-list-input", lambda: AnalogConv2d(1, 2, 3, seed=0),
             lambda m: m([[1.0]]), TypeError, "x"),
        Case("AnalogConv2d-in_channels-0", None, lambda _: AnalogConv2d(0, 2, 3), ValueError,
             "in_channels"),
        Case("AnalogSGD-momentum-nan", None, lambda _: sgd(momentum=NAN), ValueError,
             "momentum"),
        Case("AnalogSGD-weight_decay-nan", None, lambda _: sgd(weight_decay=NAN), ValueError,
             "weight_decay"),
        Case("AnalogSGD-lr-inf", None, lambda _: sgd(lr=INF), ValueError, "lr"),
        Case("AnalogSGD-lr-zero", None, lambda _: sgd(lr=0.0), ValueError, "lr"),
    ]


def _physics_cases() -> list[Case]:
    conv = DualPairConductanceConverter([1.0, 1.0])
    model = PCMLikeNoiseModel()
    return [
        Case("CustomPair-above-g_max", None,
             lambda _: CustomPairConductanceConverter([1.0], [[0.0, 30.0], [30.0, 0.0]],
                                                      invertibility_test=False),
             ValueError, "g_lst"),
        Case("CustomPair-below-g_min", None,
             lambda _: CustomPairConductanceConverter([1.0], [[2.0, 10.0], [10.0, 2.0]],
                                                      g_min=5.0, invertibility_test=False),
             ValueError, "g_lst"),
        Case("CustomPair-nan", None,
             lambda _: CustomPairConductanceConverter([1.0], [[0.0, NAN], [10.0, 0.0]]),
             ValueError, "g_lst"),
        Case("convert-nan-weights", lambda: conv,
             lambda c: c.convert_to_conductances(poisoned((3,), NAN)), ValueError, "weights"),
        Case("convert-list", lambda: conv, lambda c: c.convert_to_conductances([0.1]),
             TypeError, "weights"),
        Case("convert-meta", lambda: conv,
             lambda c: c.convert_to_conductances(torch.ones(3, device="meta")), ValueError,
             "weights"),
        Case("convert_back-count", lambda: conv,
             lambda c: c.convert_back_to_weights([torch.ones(3)], {"scale_ratio": 1.0}),
             ValueError, "conductances"),
        Case("convert_back-nan", lambda: conv,
             lambda c: c.convert_back_to_weights([poisoned((3,), NAN)] + [torch.ones(3)] * 3,
                                                 {"scale_ratio": 1.0}),
             ValueError, "conductances[0]"),
        Case("apply_drift_noise-shape", lambda: model,
             lambda m: m.apply_drift_noise(torch.randn(3, 4), [torch.rand(2, 2)] * 2, 100.0),
             ValueError, "drift_noise_parameters[0]"),
        Case("apply_drift_noise-count", lambda: model,
             lambda m: m.apply_drift_noise(torch.randn(3, 4), [torch.rand(3, 4)] * 3, 100.0),
             ValueError, "drift_noise_parameters"),
        Case("apply_drift_noise-not-list", lambda: model,
             lambda m: m.apply_drift_noise(torch.randn(3, 4), 0.05, 100.0), TypeError,
             "drift_noise_parameters"),
        Case("apply_drift_noise_to_conductance-shape", lambda: model,
             lambda m: m.apply_drift_noise_to_conductance(torch.ones(3, 4), torch.ones(4, 3),
                                                          10.0),
             ValueError, "drift_noise_param"),
        Case("programming-noise-nan", lambda: model,
             lambda m: m.apply_programming_noise_to_conductance(poisoned((4,), NAN)),
             ValueError, "g_target"),
        Case("drift-coefficients-int", lambda: model,
             lambda m: m.generate_drift_coefficients(torch.ones(4, dtype=torch.int64)),
             TypeError, "g_target"),
        Case("PCMLike-prog_noise_scale-nan", None,
             lambda _: PCMLikeNoiseModel(prog_noise_scale=NAN), ValueError,
             "prog_noise_scale"),
    ]


def _config_and_tool_cases() -> list[Case]:
    return [
        Case("config-nan-to_json", None, lambda _: nan_config_json(), ConfigError,
             "out_noise"),
        Case("MappingParameter-omega-1e30", None,
             lambda _: MappingParameter(weight_scaling_omega=1e30), ConfigError,
             "weight_scaling_omega"),
        Case("MappingParameter-omega-nan", None,
             lambda _: MappingParameter(weight_scaling_omega=NAN), ConfigError,
             "weight_scaling_omega"),
        Case("ConductanceMapView-t_steps-negative", None, lambda _: conductance_map([-1]),
             ValueError, "t_steps"),
        Case("ConductanceMapView-t_steps-str", None, lambda _: conductance_map("abc"),
             TypeError, "t_steps"),
        Case("ConductanceMapView-t_steps-None", None, lambda _: conductance_map(None),
             TypeError, "t_steps"),
        Case("WPO-t_steps-str", None, lambda _: wpo("abc"), TypeError, "t_steps"),
        Case("WPO-t_steps-None", None, lambda _: wpo(None), TypeError, "t_steps"),
        Case("WPO-t_steps-scalar", None, lambda _: wpo(5.0), TypeError, "t_steps"),
        Case("WPO-t_steps-nan", None, lambda _: wpo([1.0, NAN]), ValueError, "t_steps"),
        Case("WPO-t_steps-empty", None, lambda _: wpo([]), ValueError, "t_steps"),
        Case("WPO-device-bogus", None, lambda _: wpo(device="bogus"), ConfigError, "device"),
        Case("WPO-device-int-list", None, lambda _: wpo(device=[0]), ConfigError, "device"),
        Case("WPO-unknown-option", None, lambda _: wpo(popsze=3), ConfigError, "popsze"),
        Case("WPOMonitor-str", None, lambda _: wpo_monitor("x"), TypeError, "optimizer"),
    ]


CASES = (_tile_cases() + _inference_cases() + _layer_cases() + _physics_cases()
         + _config_and_tool_cases())


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, one_thread: None) -> None:
    obj = case.make() if case.make is not None else None
    before = snapshot(obj)
    with pytest.raises(case.exc) as info:
        case.call(obj)
    assert case.name in str(info.value), f"message does not name {case.name!r}: {info.value}"
    assert _equal(snapshot(obj), before), "state changed by a failed call"


# ----------------------------------------------------------------------------- hypothesis
_BAD = st.sampled_from([NAN, INF, -INF])
_FUZZ = settings(max_examples=25, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def _poison(shape: tuple[int, ...], index: int, value: float, seed: int) -> torch.Tensor:
    t = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    t.view(-1)[index % t.numel()] = value
    return t


@_FUZZ
@given(n=st.integers(1, 5), index=st.integers(0, 100), value=_BAD, which=st.sampled_from("xd"),
       seed=st.integers(0, 2**16))
def test_update_poisoned_leaves_tile(n: int, index: int, value: float, which: str,
                                     seed: int) -> None:
    tile = pulsed_tile()
    x, d = torch.randn(n, 4), torch.randn(n, 3)
    if which == "x":
        x = _poison((n, 4), index, value, seed)
    else:
        d = _poison((n, 3), index, value, seed)
    before = snapshot(tile)
    with pytest.raises(ValueError, match=f"{which}_input: expected finite"):
        tile.update(x, d)
    assert _equal(snapshot(tile), before)


@_FUZZ
@given(index=st.integers(0, 100), value=_BAD, seed=st.integers(0, 2**16),
       bias=st.booleans())
def test_set_weights_poisoned_leaves_tile(index: int, value: float, seed: int,
                                          bias: bool) -> None:
    tile = pulsed_tile(bias=True)
    weight, b = torch.randn(3, 4), torch.randn(3)
    if bias:
        b = _poison((3,), index, value, seed)
    else:
        weight = _poison((3, 4), index, value, seed)
    before = snapshot(tile)
    with pytest.raises(ValueError, match="bias" if bias else "weight"):
        tile.set_weights(weight, b)
    assert _equal(snapshot(tile), before)


@_FUZZ
@given(n=st.integers(1, 6), index=st.integers(0, 100), value=_BAD, seed=st.integers(0, 2**16))
def test_training_forward_poisoned_leaves_input_range(n: int, index: int, value: float,
                                                      seed: int) -> None:
    tile = range_tile().train()
    before = snapshot(tile)
    with pytest.raises(ValueError, match="x_input"):
        tile(_poison((n, 4), index, value, seed))
    assert _equal(snapshot(tile), before)
    assert math.isfinite(float(tile.input_range.detach()))


_FLOAT_KEYS = ["analog_core.weight", "analog_core.dw_up", "analog_core.w_min_device",
               "mapping_scales", "reference_weight", "alpha", "drift_baseline",
               "g_target", "g_programmed", "drift_nu", "g_drifted", "programmed_weight"]


@settings(max_examples=25, deadline=None)
@given(key=st.sampled_from(_FLOAT_KEYS), index=st.integers(0, 100), value=_BAD,
       strict=st.booleans())
def test_load_state_dict_poisoned_leaves_tile(key: str, index: int, value: float,
                                              strict: bool) -> None:
    make = drifted_tile if not key.startswith("analog_core.d") and \
        not key.startswith("analog_core.w_min") else pulsed_tile
    source = make().state_dict()
    tensor = source[key].clone()
    tensor.view(-1)[index % tensor.numel()] = value
    source[key] = tensor
    tile = make()
    tile.manual_seed(7)  # a state that differs from the source's
    before = snapshot(tile)
    with pytest.raises(ValueError, match=key):
        tile.load_state_dict(source, strict=strict)
    assert _equal(snapshot(tile), before)


_BIG = torch.finfo(torch.float32).max


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.lists(st.sampled_from([0.0, 0.5, -1.0, 2.0, INF, -INF]),
                              min_size=4, max_size=4), min_size=1, max_size=4))
def test_eval_forward_clips_inf_at_the_dac(rows: list[list[float]]) -> None:
    """An inf input is driven like the row's largest finite magnitude (full scale)."""
    tile = eval_tile()
    x = torch.tensor(rows)
    finite = torch.where(torch.isinf(x), torch.zeros_like(x), x)
    peak = finite.abs().amax(dim=1, keepdim=True)
    peak = torch.where(peak > 0, peak, torch.ones_like(peak))  # an all-inf row: scale 1
    saturated = torch.where(torch.isinf(x), torch.sign(x) * peak, x)
    twin = copy.deepcopy(tile)
    y = tile(x)
    assert bool(torch.isfinite(y).all())
    assert torch.equal(y, twin(saturated))


# ----------------------------------------------------------------------------- behaviours
def test_eval_nan_input_poisons_only_its_row() -> None:
    tile = eval_tile()
    x = torch.randn(3, 4)
    x[1, 2] = NAN
    y = tile(x)
    assert bool(torch.isnan(y[1]).all())
    assert bool(torch.isfinite(y[[0, 2]]).all())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_forward_returns_the_input_dtype(dtype: torch.dtype) -> None:
    tile = eval_tile()
    twin = copy.deepcopy(tile)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(3)).to(dtype)
    y = tile(x)
    assert y.dtype == dtype
    # computed in float32 on the tile: the same numbers as a float32 input of those values
    assert torch.equal(y, twin(x.float()).to(dtype))


def test_float64_training_gradient_has_the_input_dtype() -> None:
    layer = AnalogLinear(4, 2, seed=0).train()
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float64


def test_single_element_batches_never_poison_the_input_range() -> None:
    cfg = RPUConfig()
    cfg.pre_post.input_range.enable = True
    tile = TileWithPeriphery(2, 1, cfg, seed=0).train()
    for _ in range(3):
        tile(torch.tensor([[0.7]]))
    assert float(tile.input_range.detach()) == cfg.pre_post.input_range.init_value
    assert int(tile.input_range_update_idx) == 0  # such batches do not count
    tile(torch.tensor([[0.5], [-0.5], [1.0]]))
    assert int(tile.input_range_update_idx) == 1
    assert math.isfinite(float(tile.input_range.detach()))


def test_pending_updates_are_all_or_nothing() -> None:
    layer = AnalogLinear(4, 2, seed=0).train()
    opt = AnalogSGD(layer.parameters(), lr=0.1)
    layer(torch.randn(3, 4)).sum().backward()
    layer(torch.randn(3, 4)).sum().backward()
    tile = layer.analog_tile
    x, d, idx = tile._pending[1]
    tile._pending[1] = (x, torch.full_like(d, NAN), idx)
    weights = tile.analog_core.weight.clone()
    with pytest.raises(ValueError, match="d_input"):
        opt.step()
    assert torch.equal(tile.analog_core.weight, weights)


def test_interrupted_programming_restores_the_array_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    tile = pulsed_tile()
    tile.program_weights(max_iter=5, tolerance=None)
    report, array = tile.last_programming, tile.analog_core.weight.clone()

    def stop_at_3(i: int, n: int, err: float) -> None:
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        tile.program_weights(max_iter=50, tolerance=None, callback=stop_at_3)
    assert torch.equal(tile.analog_core.weight, array)
    assert tile.last_programming == report
    assert any("restored" in note for note in getattr(info.value, "__notes__", []))
    assert "restored" in caplog.text


def test_rejected_callback_draws_nothing() -> None:
    tile = pulsed_tile()
    state = tile.generator.get_state().clone()
    with pytest.raises(TypeError, match="callback"):
        tile.program_weights(callback="progress")
    assert torch.equal(tile.generator.get_state(), state)


def test_conv_rejects_integer_input_before_reindexing() -> None:
    layer = AnalogConv2d(1, 2, 3, seed=0)
    layer(torch.randn(1, 1, 5, 5))
    indices = layer.analog_tile.indices.clone()
    with pytest.raises(TypeError, match="x"):
        layer(torch.ones(1, 1, 7, 7, dtype=torch.int64))
    assert layer._image_hw == (5, 5)
    assert torch.equal(layer.analog_tile.indices, indices)


def test_read_weights_with_enough_probes_still_works() -> None:
    tile = TileWithPeriphery(3, 4, RPUConfig(), seed=0)
    tile.rpu_config.forward.is_perfect = True
    weight = torch.randn(3, 4)
    tile.set_weights(weight)
    probes = torch.eye(4)
    assert torch.allclose(tile.read_weights(True, x_values=probes)[0], weight, atol=1e-5)


def test_config_json_round_trip_is_standard_json() -> None:
    cfg = InferenceRPUConfig()
    cfg.forward.out_noise = 0.02
    text = cfg.to_json()
    assert "NaN" not in text and "Infinity" not in text
    assert InferenceRPUConfig.from_json(text) == cfg


def _programmed_model() -> nn.Module:
    from anatile.nn import program_analog_weights

    torch.manual_seed(0)
    model = nn.Sequential(AnalogLinear(4, 3, rpu_config=InferenceRPUConfig(), seed=1),
                          AnalogLinear(3, 2, rpu_config=InferenceRPUConfig(), seed=2))
    program_analog_weights(model, PCMLikeNoiseModel(prog_noise_scale=0.5, drift_scale=2.0))
    return model


def test_state_dict_loads_with_weights_only() -> None:
    from anatile.nn import drift_analog_weights

    model = _programmed_model()
    drift_analog_weights(model, 3600.0)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    fresh = nn.Sequential(AnalogLinear(4, 3, rpu_config=InferenceRPUConfig(), seed=5),
                          AnalogLinear(3, 2, rpu_config=InferenceRPUConfig(), seed=6))
    fresh.load_state_dict(state)
    for a, b in zip(model, fresh, strict=True):
        assert b.analog_tile.programmed_noise_model == a.analog_tile.programmed_noise_model
        assert b.analog_tile.programmed_noise_model.drift_scale == 2.0
        assert b.analog_tile.t_inference == 3600.0
    model.eval()
    fresh.eval()
    x = torch.randn(5, 4)
    assert torch.equal(model(x), fresh(x))
    # a later drift of the copy uses the saved noise model: same numbers as the original
    drift_analog_weights(model, 86400.0)
    drift_analog_weights(fresh, 86400.0)
    assert torch.equal(model(x), fresh(x))


def test_failed_load_leaves_a_working_tile() -> None:
    """The issue's case: after the failed load the 5x6 tile still runs as before."""
    big = drifted_tile(5, 6, seed=2)
    big.eval()
    x = torch.randn(2, 6)
    twin = copy.deepcopy(big)
    with pytest.raises(ValueError):
        big.load_state_dict(drifted_tile().state_dict())
    assert torch.equal(big(x), twin(x))


def test_optimizer_rerun_after_an_interrupt_reproduces_a_clean_run() -> None:
    """#12: a KeyboardInterrupt mid-run (a notebook's stop), then a rerun on the same
    optimizer: the rerun restarts every random stream from the seed (same numbers as an
    optimizer that was never interrupted); a stop requested before a run is honoured."""
    from anatile.wpo.events import GenerationFinished

    def summary(opt: Any) -> tuple[Any, ...]:
        res = opt.result
        return (res.f_lst, res.g_lst, res.baseline_tnmse, [h.best_loss for h in res.history])

    clean = wpo(maxiter=2, callback=None)
    clean.run_optimizer()

    interrupted = wpo(maxiter=2, callback=None)

    def interrupt_once(event: Any) -> None:
        if isinstance(event, GenerationFinished):
            raise KeyboardInterrupt

    token = interrupted.events.subscribe(interrupt_once)
    with pytest.raises(KeyboardInterrupt):
        interrupted.run_optimizer()
    token.cancel()
    interrupted.run_optimizer()
    assert summary(interrupted) == summary(clean)

    interrupted.request_stop()
    interrupted.run_optimizer()
    assert interrupted.result.stopped_by_user and interrupted.result.n_generations == 1
