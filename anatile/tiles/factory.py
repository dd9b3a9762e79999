"""Pick the tile class a configuration calls for."""

from __future__ import annotations

from anatile.config import InferenceRPUConfig, RPUConfig
from anatile.tiles.inference_tile import InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["make_tile"]


def make_tile(
    out_size: int,
    in_size: int,
    rpu_config: RPUConfig | None = None,
    bias: bool = False,
    *,
    seed: int | None = None,
) -> TileWithPeriphery:
    """Build the tile for ``rpu_config``: an :class:`InferenceTile` for an
    :class:`~anatile.config.InferenceRPUConfig`, else a :class:`TileWithPeriphery`.

    Args:
        out_size: number of outputs.
        in_size: number of inputs.
        rpu_config: the configuration (default ``RPUConfig()``).
        bias: whether the tile has a bias (digital or analog, per the mapping).
        seed: seed of the tile's generator.

    Returns:
        The new tile.

    Example:
        >>> from anatile.config import InferenceRPUConfig, RPUConfig
        >>> from anatile.tiles import make_tile
        >>> type(make_tile(4, 8, RPUConfig())).__name__
        'TileWithPeriphery'
        >>> type(make_tile(4, 8, InferenceRPUConfig())).__name__
        'InferenceTile'
    """
    if isinstance(rpu_config, InferenceRPUConfig):
        return InferenceTile(out_size, in_size, rpu_config, bias=bias, seed=seed)
    return TileWithPeriphery(out_size, in_size, rpu_config, bias=bias, seed=seed)
