"""Tiles of an array working on several threads give the numbers of the serial loop."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from anatile.config import InferenceRPUConfig, IOParameters, RPUConfig
from anatile.functional import io_model, threads
from anatile.nn import AnalogConv2d, AnalogLinear, tile_array
from anatile.nn.layer import AnalogLayerBase


@pytest.fixture
def two_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Two torch threads, every job worth a thread; yields the worker counts of run_jobs."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_JOB", 1)
    calls: list[int] = []

    def spy(jobs: Any, workers: int) -> Any:
        calls.append(workers)
        return threads.run_jobs(jobs, workers)

    monkeypatch.setattr(io_model, "run_jobs", spy)
    monkeypatch.setattr(tile_array, "run_jobs", spy)
    yield calls
    torch.set_num_threads(before)


def _limited(cfg: RPUConfig) -> RPUConfig:
    cfg.mapping.max_input_size = 4
    cfg.mapping.max_output_size = 3
    return cfg


def _clipping() -> RPUConfig:  # bound management redraws after the output noise
    cfg = _limited(RPUConfig())
    cfg.forward = IOParameters(out_bound=0.5, w_noise=0.02, out_sto_round=True)
    return cfg


CONFIGS: dict[str, Callable[[], RPUConfig]] = {
    "default": lambda: _limited(RPUConfig()),
    "clipping": _clipping,
    "inference": lambda: _limited(InferenceRPUConfig()),
}


def _state(layer: AnalogLayerBase) -> list[torch.Tensor]:
    out = [v for v in layer.state_dict().values() if isinstance(v, torch.Tensor)]
    for p in layer.analog_tiles():
        out.append(p.tile.generator.get_state())
        for name in ("g_programmed", "drift_nu", "g_drifted", "alpha"):
            value = getattr(p.tile, name, None)
            if value is not None:
                out.append(value)
    return out


def _assert_identical(a: AnalogLayerBase, b: AnalogLayerBase) -> None:
    sa, sb = _state(a), _state(b)
    assert len(sa) == len(sb)
    for x, y in zip(sa, sb, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("out_size", [7, 3])  # 3×3 tiles: a row per job; 1×3: a tile per job
@pytest.mark.parametrize("name", list(CONFIGS))
def test_parallel_forward_draws_what_the_serial_forward_draws(
        name: str, out_size: int, two_threads: list[int]) -> None:
    layer = AnalogLinear(11, out_size, rpu_config=CONFIGS[name](), seed=3)
    assert layer.tile_array.grid_shape == (-(-out_size // 3), 3)
    if name == "inference":
        layer.tile_array.parallel = False
        layer.program_weights()
        layer.drift_weights(3600.0)
        layer.tile_array.parallel = True
    layer.eval()
    serial = copy.deepcopy(layer)
    serial.tile_array.parallel = False
    x = torch.randn(40, 11, generator=torch.Generator().manual_seed(2)) * 2.0
    with torch.no_grad():
        for _ in range(2):  # the second call continues each tile's own stream
            two_threads.clear()
            y = layer(x)
            assert torch.equal(y, serial(x))
            # two threads (1×3 tiles: two tiles, then the third); the twin: serial
            assert two_threads == ([2, 1] if out_size > 3 else [2, 2, 1])
            assert y.grad_fn is None and not y.requires_grad
    _assert_identical(layer, serial)


def test_parallel_conv_forward_draws_what_the_serial_forward_draws(
        two_threads: list[int]) -> None:
    cfg = _limited(InferenceRPUConfig())
    cfg.mapping.max_input_size = 10
    layer = AnalogConv2d(4, 7, 3, padding=1, rpu_config=cfg, seed=5).eval()
    serial = copy.deepcopy(layer)
    serial.tile_array.parallel = False
    x = torch.randn(2, 4, 6, 7, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(layer(x), serial(x))
    assert two_threads == [2, 1]
    _assert_identical(layer, serial)


def test_parallel_program_and_drift_equal_the_serial_loop(two_threads: list[int]) -> None:
    layer = AnalogLinear(11, 7, rpu_config=_limited(InferenceRPUConfig()), seed=3)
    layer.set_weights(torch.randn(7, 11, generator=torch.Generator().manual_seed(0)) * 0.3)
    serial = copy.deepcopy(layer)
    serial.tile_array.parallel = False
    for t in (0.0, 3600.0, 86400.0):
        two_threads.clear()
        layer.program_weights()
        layer.drift_weights(t)
        assert two_threads == [2, 2]
        serial.program_weights()
        serial.drift_weights(t)
        _assert_identical(layer, serial)
    assert any(float(p.tile.alpha.flatten()[0]) != 1.0 for p in layer.analog_tiles())


def test_bad_drift_time_raises_and_changes_no_tile(two_threads: list[int]) -> None:
    layer = AnalogLinear(11, 7, rpu_config=_limited(InferenceRPUConfig()), seed=3)
    layer.program_weights()
    before = copy.deepcopy(layer)
    with pytest.raises(ValueError, match="t_inference"):
        layer.drift_weights(-1.0)
    _assert_identical(layer, before)


def test_what_needs_the_calling_thread_runs_serially(two_threads: list[int]) -> None:
    layer = AnalogLinear(11, 7, rpu_config=_limited(InferenceRPUConfig()), seed=3)
    tiles = [p.tile for p in layer.analog_tiles()]
    # a subscriber (a widget) is called on the emitting thread
    def subscriber(event: object) -> None:
        pass

    tiles[4].events.subscribe(subscriber)
    layer.drift_weights(10.0)
    tiles[4].events.unsubscribe(subscriber)
    # one generator for every tile: the draws depend on the order of the tiles
    layer.program_weights(generator=torch.Generator().manual_seed(0))
    tiles[1].generator = tiles[0].generator
    layer.drift_weights(10.0)
    with torch.no_grad():
        layer.eval()(torch.randn(8, 11))
    assert two_threads == [1, 1, 1, 1]
