"""anatile: analog in-memory AI tiles with digital periphery, PCM inference physics,
a fast Weight Programming Optimizer and live Jupyter widgets."""

from anatile.exceptions import AnatileError, ConfigError, TileError

__version__ = "0.1.0"

__all__ = ["AnatileError", "ConfigError", "TileError", "__version__"]
