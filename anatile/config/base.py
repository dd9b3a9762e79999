"""Shared machinery of the configuration dataclasses: validation and (de)serialization.

Configs stay mutable (notebook users tweak them in place, as in every aihwkit tutorial);
tiles call :meth:`ConfigBase.validate` and deep-copy the config when they are built, so later
edits never reach a live tile.

Serialization (the one system of the package): :meth:`ConfigBase.to_dict` returns plain
JSON types. Nested objects carry a ``"__type__"`` tag so that polymorphic fields (a device
model, a noise model, a drift compensation) round-trip. Two front-ends share it:

* :class:`ConfigBase` for dataclasses (the fields are the dataclass fields);
* :class:`InitFieldsMixin` for the physics objects of ``anatile.inference``, plain classes
  that list the constructor arguments they store in ``_init_fields``.

Both convert values with :func:`config_to_dict` / :func:`config_from_dict` and read a dict
with :func:`fields_from_dict`; any registered class (:func:`register_config_type`) with
``to_dict()`` and a ``from_dict()`` classmethod takes part.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import typing
from typing import Any, ClassVar, TypeVar

from anatile.exceptions import ConfigError

__all__ = [
    "ConfigBase",
    "InitFieldsMixin",
    "register_config_type",
    "config_from_dict",
    "config_to_dict",
    "fields_from_dict",
    "check_number",
]

T = TypeVar("T", bound="ConfigBase")
F = TypeVar("F", bound="InitFieldsMixin")

_TYPE_KEY = "__type__"
_REGISTRY: dict[str, Any] = {}


def register_config_type(cls: type) -> type:
    """Register ``cls`` for tagged (de)serialization; usable as a class decorator.

    Example:
        >>> from dataclasses import dataclass
        >>> @register_config_type
        ... @dataclass
        ... class Dial(ConfigBase):
        ...     turns: int = 3
        >>> Dial.from_dict(Dial().to_dict()).turns
        3
    """
    _REGISTRY[cls.__name__] = cls
    return cls


def check_number(
    owner: str,
    name: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number inside the bounds."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise ConfigError(f"{owner}.{name}: expected {kind}, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{owner}.{name}: expected a finite number, got {value!r}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        rel = ">" if lo_open else ">="
        raise ConfigError(f"{owner}.{name}: expected {rel} {lo}, got {value!r}")
    if hi is not None and (value >= hi if hi_open else value > hi):
        rel = "<" if hi_open else "<="
        raise ConfigError(f"{owner}.{name}: expected {rel} {hi}, got {value!r}")


def config_to_dict(value: Any) -> Any:
    """Convert a config value (dataclass, registered object, enum, list, scalar) to JSON types."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = [f.name for f in dataclasses.fields(value) if f.init]
        return {_TYPE_KEY: type(value).__name__, **_fields_to_dict(value, names)}
    if hasattr(value, "to_dict") and type(value).__name__ in _REGISTRY:
        return {_TYPE_KEY: type(value).__name__, **value.to_dict()}
    if isinstance(value, (list, tuple)):
        return [config_to_dict(v) for v in value]
    if isinstance(value, dict):
        return {str(k): config_to_dict(v) for k, v in value.items()}
    if hasattr(value, "tolist"):  # tensors and arrays
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"cannot serialize a value of type {type(value).__name__}")


def _fields_to_dict(obj: Any, names: Any) -> dict[str, Any]:
    return {name: config_to_dict(getattr(obj, name)) for name in names}


def fields_from_dict(
    owner: str, data: Any, names: Any, hints: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The constructor arguments in ``data`` (a :meth:`to_dict` output), converted back.

    Args:
        owner: class name for the messages.
        data: the dict (its ``"__type__"`` tag is ignored).
        names: the field / constructor-argument names the class takes.
        hints: annotated types of the fields (enums and nested configs are rebuilt).

    Raises:
        ConfigError: if ``data`` is not a dict, has an unknown key or a bad value.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{owner}.from_dict: expected a dict, got {type(data).__name__}")
    body = {k: v for k, v in data.items() if k != _TYPE_KEY}
    unknown = sorted(set(body) - set(names))
    if unknown:
        raise ConfigError(f"{owner}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    kwargs = {}
    for name, value in body.items():
        try:
            kwargs[name] = config_from_dict(value, (hints or {}).get(name))
        except ConfigError as err:
            raise ConfigError(f"{owner}.{name}: {err}") from err
    return kwargs


def config_from_dict(data: Any, expected: Any = None) -> Any:
    """Inverse of :func:`config_to_dict`; ``expected`` is the annotated field type, if any."""
    if isinstance(data, dict) and _TYPE_KEY in data:
        name = data[_TYPE_KEY]
        cls = _REGISTRY.get(name)
        if cls is None:
            raise ConfigError(f"{_TYPE_KEY}: unknown config type {name!r}")
        body = {k: v for k, v in data.items() if k != _TYPE_KEY}
        return cls.from_dict(body)
    if isinstance(expected, type) and issubclass(expected, enum.Enum) and data is not None:
        try:
            return expected(data)
        except ValueError as err:
            allowed = [m.value for m in expected]
            raise ConfigError(f"expected one of {allowed}, got {data!r}") from err
    if isinstance(expected, type) and issubclass(expected, ConfigBase) and isinstance(data, dict):
        return expected.from_dict(data)
    return data


class ConfigBase:
    """Mixin for config dataclasses: validation on creation and a JSON round trip.

    Example:
        >>> from dataclasses import dataclass
        >>> @register_config_type
        ... @dataclass
        ... class Knob(ConfigBase):
        ...     level: float = 1.0
        >>> Knob.from_dict(Knob(level=2.0).to_dict())
        Knob(level=2.0)
    """

    _enum_fields: ClassVar[dict[str, type]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register_config_type(cls)

    def __post_init__(self) -> None:
        self._coerce_enums()
        self.validate()

    def _coerce_enums(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            hint = hints.get(f.name)
            value = getattr(self, f.name)
            if isinstance(hint, type) and issubclass(hint, enum.Enum) and not isinstance(
                value, hint
            ):
                try:
                    object.__setattr__(self, f.name, hint(value))
                except ValueError as err:
                    allowed = [m.value for m in hint]
                    raise ConfigError(
                        f"{type(self).__name__}.{f.name}: expected one of {allowed}, "
                        f"got {value!r}"
                    ) from err

    def validate(self) -> None:
        """Check every field (and nested config); raise :class:`ConfigError` naming the field.

        Subclasses extend this with their own rules and call ``super().validate()``.
        """
        self._coerce_enums()
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, ConfigBase):
                value.validate()
            elif hasattr(value, "validate") and callable(value.validate):
                value.validate()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary of this config (nested configs are tagged with their type)."""
        out = config_to_dict(self)
        assert isinstance(out, dict)
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Build the config from :meth:`to_dict` output.

        Raises:
            ConfigError: on an unknown key, a wrong ``__type__`` or an invalid value.
        """
        if not isinstance(data, dict):
            raise ConfigError(
                f"{cls.__name__}.from_dict: expected a dict, got {type(data).__name__}"
            )
        tag = data.get(_TYPE_KEY, cls.__name__)
        if tag != cls.__name__:
            target = _REGISTRY.get(tag)
            if target is None or not issubclass(target, cls):
                raise ConfigError(f"{cls.__name__}.from_dict: {_TYPE_KEY} is {tag!r}")
            return target.from_dict({k: v for k, v in data.items() if k != _TYPE_KEY})
        names = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
        return cls(**fields_from_dict(cls.__name__, data, names, typing.get_type_hints(cls)))

    def to_json(self, **kwargs: Any) -> str:
        """Standard JSON text of :meth:`to_dict` (validated first, so never ``NaN``).

        Args:
            **kwargs: passed to :func:`json.dumps` (``allow_nan`` is False by default).

        Raises:
            ConfigError: if a field is invalid (e.g. set to NaN after construction), so
                that :meth:`from_json` can always read what this wrote.
        """
        self.validate()
        kwargs.setdefault("allow_nan", False)
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


class InitFieldsMixin:
    """Serialization, ``replace``, ``__eq__`` and ``__repr__`` from ``_init_fields``.

    For plain classes (the physics objects: converters, noise models, drift compensations)
    that store each constructor argument listed in ``_init_fields`` under the same
    attribute name, so that an object is never serialized from untyped ``__dict__`` state.
    """

    _init_fields: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary of the constructor arguments (nested objects are tagged)."""
        return _fields_to_dict(self, self._init_fields)

    @classmethod
    def from_dict(cls: type[F], data: dict[str, Any]) -> F:
        """Rebuild the object from :meth:`to_dict` output.

        Raises:
            ConfigError: on an unknown key or a value the constructor rejects.
        """
        kwargs = fields_from_dict(cls.__name__, data, cls._init_fields)
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{cls.__name__}: {err}") from err

    def replace(self: F, **changes: Any) -> F:
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
