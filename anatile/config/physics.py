"""Slots of an inference config that hold physics objects, and who fills their defaults.

``InferenceRPUConfig.noise_model`` and ``.drift_compensation`` hold objects of the physics
layer (``anatile.inference``), which sits *above* ``config`` (it serializes through
:mod:`anatile.config.base` and reads :mod:`anatile.functional`). So that ``config`` never
imports upward, it only declares the slots here; the physics layer registers, when it is
imported, the base class a slot accepts and the factory of its default
(``anatile/inference/__init__.py``). ``import anatile`` imports the physics layer, so the
defaults are there before any config is built, and users keep aihwkit's idiom
``InferenceRPUConfig().noise_model.g_converter = ...``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anatile.exceptions import ConfigError

__all__ = ["PhysicsSlot", "check_physics", "physics_default", "register_physics_slot"]


@dataclass(frozen=True)
class PhysicsSlot:
    """What a physics slot of a config accepts and how its default is made.

    Attributes:
        base: the base class every value must be an instance of.
        default: builds the default value (called once per config).
        allow_none: whether None is a valid value (e.g. "no drift compensation").
        expected: how the error message names the accepted values.
    """

    base: type
    default: Callable[[], Any]
    allow_none: bool
    expected: str


_SLOTS: dict[str, PhysicsSlot] = {}


def register_physics_slot(
    name: str,
    *,
    base: type,
    default: Callable[[], Any],
    allow_none: bool = False,
    expected: str = "",
) -> None:
    """Declare the base class and default factory of the physics slot ``name``."""
    _SLOTS[name] = PhysicsSlot(base, default, allow_none, expected or base.__name__)


def _slot(name: str) -> PhysicsSlot:
    try:
        return _SLOTS[name]
    except KeyError:  # only reachable if anatile/__init__ stopped importing the physics
        raise ConfigError(
            f"{name}: no physics registered for this slot; import anatile.inference first"
        ) from None


def physics_default(name: str) -> Callable[[], Any]:
    """A ``default_factory`` that builds the registered default of slot ``name``."""

    def factory() -> Any:
        return _slot(name).default()

    factory.__name__ = f"default_{name}"
    return factory


def check_physics(owner: str, name: str, value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` fits the physics slot ``name``."""
    slot = _slot(name)
    if value is None and slot.allow_none:
        return
    if not isinstance(value, slot.base):
        raise ConfigError(
            f"{owner}.{name}: expected {slot.expected}, got {type(value).__name__}"
        )
