"""Programming strategies: one program_weights, the strategy decides how weights get written."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from anatile.inference import PCMLikeNoiseModel
from anatile.tiles import (
    ClosedLoopProgramming,
    InferenceTile,
    NoiseModelProgramming,
    ProgrammingContext,
    ProgrammingStrategy,
    TileWithPeriphery,
)


def test_inference_tile_does_not_override_program_weights() -> None:
    assert InferenceTile.program_weights is TileWithPeriphery.program_weights
    assert isinstance(TileWithPeriphery(2, 3, seed=0).programming, ClosedLoopProgramming)
    assert isinstance(InferenceTile(2, 3, seed=0).programming, NoiseModelProgramming)


def test_closed_loop_options_do_not_apply_to_noise_model_programming() -> None:
    tile = InferenceTile(2, 3, seed=0)
    tile.set_weights(torch.ones(2, 3) * 0.1)
    before = tile.analog_core.weight.clone()
    gen_state = tile.generator.get_state()
    with pytest.raises(TypeError, match="learning_rate"):
        tile.program_weights(learning_rate=0.5)
    with pytest.raises(TypeError, match="x_values"):
        tile.program_weights(True, PCMLikeNoiseModel())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="colour"):
        tile.program_weights(colour="red")
    assert torch.equal(tile.analog_core.weight, before) and not tile.is_programmed()
    assert torch.equal(tile.generator.get_state(), gen_state)


def test_noise_model_option_is_kept_for_later_drifts() -> None:
    tile = InferenceTile(2, 3, seed=0)
    tile.set_weights(torch.ones(2, 3) * 0.1)
    model = PCMLikeNoiseModel(prog_noise_scale=0.0, read_noise_scale=0.0)
    tile.program_weights(noise_model=model)
    assert tile.programmed_noise_model is model and tile.noise_model is model
    tile.program_weights()
    assert tile.programmed_noise_model is None


def test_noise_model_programming_uses_the_given_generator() -> None:
    def programmed(gen_seed: int) -> torch.Tensor:
        tile = InferenceTile(4, 5, seed=0)
        tile.set_weights(torch.linspace(-1, 1, 20).reshape(4, 5))
        tile.program_weights(generator=torch.Generator().manual_seed(gen_seed))
        assert tile.g_programmed is not None
        return tile.g_programmed

    assert torch.equal(programmed(1), programmed(1))
    assert not torch.equal(programmed(1), programmed(2))


@dataclass(frozen=True)
class ExactProgramming(ProgrammingStrategy):
    """Writes the target as it is (an ideal programmer) and reports it."""

    label: str = "exact"

    def program(self, context: ProgrammingContext) -> str:
        context.core.set_weights(context.target)
        context.progress(1, 1, 0.0)
        return self.label


def test_a_new_strategy_plugs_in_without_subclassing_the_tile() -> None:
    tile = TileWithPeriphery(2, 3, seed=0)
    tile.programming = ExactProgramming()
    seen: list[tuple[int, int, float]] = []
    target = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.5, -0.5]])
    tile.set_weights(target, apply_weight_scaling=False)
    tile.analog_core.set_weights(torch.zeros(2, 3))
    tile.program_weights(callback=lambda i, m, e: seen.append((i, m, e)), label="ideal")
    assert torch.equal(tile.analog_core.weight, target)
    assert tile.last_programming == "ideal" and seen == [(1, 1, 0.0)]
    with pytest.raises(TypeError, match="max_iter"):
        tile.program_weights(max_iter=5)  # a closed-loop argument the strategy lacks
