"""Shared plumbing of the inference objects: validation helpers, dict/JSON round trip, repr.

Each class lists the constructor arguments it stores under the same attribute names in
``_init_fields``; ``to_dict``/``from_dict``/``__eq__``/``__repr__`` are derived from that list,
so a converter or noise model is never serialized from untyped ``__dict__`` state.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, TypeVar

from anatile.config.base import config_from_dict, config_to_dict
from anatile.exceptions import ConfigError

__all__ = ["InitFieldsMixin", "check_positive", "check_non_negative", "check_float_list"]

T = TypeVar("T", bound="InitFieldsMixin")


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return value


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as float; raise ``ValueError`` naming ``name`` unless finite and > 0."""
    out = _as_float(name, value)
    if out <= 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return out


def check_non_negative(name: str, value: Any) -> float:
    """Return ``value`` as float; raise ``ValueError`` naming ``name`` unless finite and >= 0."""
    out = _as_float(name, value)
    if out < 0:
        raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
    return out


def check_float_list(name: str, value: Any, *, min_len: int = 1) -> list[float]:
    """Return ``value`` as a list of finite floats of at least ``min_len`` entries."""
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name}: expected a list of numbers, got {type(value).__name__}")
    if len(value) < min_len:
        raise ValueError(f"{name}: expected at least {min_len} entries, got {len(value)}")
    return [_as_float(f"{name}[{i}]", v) for i, v in enumerate(value)]


class InitFieldsMixin:
    """Derive ``to_dict``, ``from_dict``, ``__eq__`` and ``__repr__`` from ``_init_fields``."""

    _init_fields: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary of the constructor arguments (nested objects are tagged)."""
        return {name: config_to_dict(getattr(self, name)) for name in self._init_fields}

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Rebuild the object from :meth:`to_dict` output.

        Raises:
            ConfigError: on an unknown key or a value the constructor rejects.
        """
        if not isinstance(data, dict):
            raise ConfigError(
                f"{cls.__name__}.from_dict: expected a dict, got {type(data).__name__}"
            )
        body = {k: v for k, v in data.items() if k != "__type__"}
        unknown = sorted(set(body) - set(cls._init_fields))
        if unknown:
            raise ConfigError(
                f"{cls.__name__}: unknown key(s) {unknown}; expected some of "
                f"{sorted(cls._init_fields)}"
            )
        kwargs = {k: config_from_dict(v) for k, v in body.items()}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{cls.__name__}: {err}") from err

    def replace(self: T, **changes: Any) -> T:
        """A copy with some constructor arguments changed (like ``dataclasses.replace``).

        Raises:
            TypeError: on an argument name the constructor does not take.
            ValueError: on a value the constructor rejects.
        """
        unknown = sorted(set(changes) - set(self._init_fields))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.replace: unknown argument(s) {unknown}; expected some "
                f"of {sorted(self._init_fields)}"
            )
        kwargs = {name: getattr(self, name) for name in self._init_fields}
        kwargs.update(changes)
        return type(self)(**kwargs)

    def validate(self) -> None:
        """Re-check the arguments (they may have been edited in place since construction).

        Called by the owning :class:`~anatile.config.InferenceRPUConfig` whenever a tile is
        built from it.

        Raises:
            ConfigError: naming the class and the offending argument.
        """
        for name in self._init_fields:
            value = getattr(self, name)
            if isinstance(value, InitFieldsMixin):
                value.validate()
        try:
            self.replace()
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{type(self).__name__}: {err}") from err

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._init_fields)
        return f"{type(self).__name__}({args})"
