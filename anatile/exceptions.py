"""Exceptions raised by anatile.

Every error anatile raises on purpose derives from :class:`AnatileError`. The two concrete
kinds also derive from the built-in exception a caller would naturally catch, so
``except ValueError`` still catches a bad configuration value.
"""

from __future__ import annotations

__all__ = ["AnatileError", "ConfigError", "TileError"]


class AnatileError(Exception):
    """Base class of every anatile error.

    Example:
        >>> from anatile.exceptions import AnatileError, ConfigError, TileError
        >>> issubclass(ConfigError, AnatileError) and issubclass(TileError, AnatileError)
        True
    """


class ConfigError(AnatileError, ValueError):
    """A configuration is invalid: an unknown key, a bad value or an unsupported option.

    Example:
        >>> from anatile.config import IOParameters
        >>> from anatile.exceptions import ConfigError
        >>> try:
        ...     IOParameters(out_noise=-1.0)
        ... except ConfigError as err:
        ...     print("out_noise" in str(err))
        True
    """


class TileError(AnatileError, RuntimeError):
    """A tile is used in a way its current state does not allow.

    Example:
        >>> from anatile.tiles import TileWithPeriphery
        >>> tile = TileWithPeriphery(2, 3, seed=0)
        >>> try:
        ...     tile.joint_forward_indexed(torch.ones(1, 1, 2, 2))
        ... except TileError as err:
        ...     print(type(err).__name__)
        TileError
    """
