"""The public surface of TileWithPeriphery follows the seed page (names, args, defaults)."""

from __future__ import annotations

import inspect

import pytest
import torch

from anatile.config import ConstantStepDevice, IdealDevice, IOParameters, RPUConfig
from anatile.tiles import AnalogCore, TileWithPeriphery

SEED_SIGNATURES: dict[str, list[tuple[str, object]]] = {
    "apply_input_range": [("values", None), ("update_from_data", False)],
    "apply_out_scaling": [("values", None), ("tensor_view", None)],
    "apply_weight_scaling": [("combined_weights", None), ("weight_scaling_omega", None)],
    "backward": [("d_input", None), ("ctx", None)],
    "backward_indexed": [("d_input", None), ("ctx", None)],
    "cpu": [],
    "cuda": [("device", None)],
    "get_learned_out_scales": [],
    "get_learning_rate": [],
    "get_mapping_scales": [],
    "get_scales": [],
    "get_weights": [("apply_weight_scaling", True), ("realistic", False)],
    "init_input_processing": [],
    "init_learned_out_scales": [],
    "init_mapping_scales": [],
    "is_indexed": [],
    "joint_forward": [("x_input", None), ("is_test", False), ("ctx", None)],
    "joint_forward_indexed": [("x_input", None), ("is_test", False), ("ctx", None)],
    "post_backward": [("d_output", None), ("dim", None), ("ctx", None)],
    "post_forward": [("x_output", None), ("dim", None), ("is_test", False), ("ctx", None)],
    "pre_backward": [("d_input", None), ("dim", None), ("ctx", None)],
    "pre_forward": [("x_input", None), ("dim", None), ("is_test", False), ("ctx", None)],
    "pre_update": [("x_input", None), ("x_dim", None), ("d_input", None), ("d_dim", None)],
    "program_weights": [("from_reference", True), ("x_values", None), ("learning_rate", 0.1),
                        ("max_iter", 10000), ("tolerance", 0.01), ("w_init", 0.01)],
    "read_weights": [("apply_weight_scaling", False), ("x_values", None),
                     ("over_sampling", 10)],
    "remap_weights": [("weight_scaling_omega", 1.0)],
    "set_indexed": [("indices", None), ("image_sizes", None)],
    "set_input_range": [("value", None)],
    "set_learned_out_scales": [("alpha", None)],
    "set_learning_rate": [("learning_rate", None)],
    "set_mapping_scales": [("mapping_scales", None)],
    "set_scales": [("scales", None)],
    "set_weights": [("weight", None), ("bias", None), ("apply_weight_scaling", True),
                    ("realistic", False), ("weight_scaling_omega", None)],
    "update": [("x_input", None), ("d_input", None)],
    "update_indexed": [("x_input", None), ("d_input", None)],
}


@pytest.mark.parametrize("name", sorted(SEED_SIGNATURES))
def test_method_has_seed_signature(name: str) -> None:
    params = [p for p in inspect.signature(getattr(TileWithPeriphery, name)).parameters.values()
              if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
    got = [(p.name, None if p.default is p.empty else p.default) for p in params]
    assert got == SEED_SIGNATURES[name]


def test_supports_indexed_and_constructor_signature() -> None:
    assert TileWithPeriphery.supports_indexed is True
    params = list(inspect.signature(TileWithPeriphery.__init__).parameters)
    assert params[1:7] == ["out_size", "in_size", "rpu_config", "bias", "in_trans", "out_trans"]


def test_analog_core_raw_access_and_device_parameters() -> None:
    cfg = RPUConfig()
    core = AnalogCore(3, 4, cfg, torch.Generator().manual_seed(0))
    assert core.uses_pulses and core.device_parameters is not None
    w = torch.randn(3, 4)
    core.set_weights(w)
    assert torch.equal(core.get_weights(), w)
    with pytest.raises(ValueError, match="weight"):
        core.set_weights(torch.randn(4, 3))
    ideal = AnalogCore(3, 4, RPUConfig(device=IdealDevice()))
    assert not ideal.uses_pulses and ideal.dw_up is None
    ideal.set_weights(w)
    ideal.update(torch.ones(1, 4), torch.ones(1, 3), 0.5)
    assert torch.allclose(ideal.get_weights(), w - 0.5)
    cfg.forward = IOParameters(is_perfect=True)
    core.set_weights(w)
    x = torch.randn(2, 4)
    assert torch.allclose(core(x, io=cfg.forward), x @ w.T)
    assert isinstance(cfg.device, ConstantStepDevice)
