"""Configurations shared by several test modules."""

from __future__ import annotations

from anatile.config import IOParameters, PulseType, RPUConfig, UpdateParameters


def perfect_config() -> RPUConfig:
    """Default config with exact forward and backward MVMs (pulsed update kept)."""
    cfg = RPUConfig()
    cfg.forward = IOParameters(is_perfect=True)
    cfg.backward = IOParameters(is_perfect=True)
    return cfg


def exact_float_config() -> RPUConfig:
    """Exact MVMs and exact floating-point updates: the tile is a plain linear layer."""
    cfg = perfect_config()
    cfg.update = UpdateParameters(pulse_type=PulseType.NONE)
    return cfg
