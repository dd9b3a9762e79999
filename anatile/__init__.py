"""anatile: analog in-memory AI tiles with digital periphery, PCM inference physics,
a fast Weight Programming Optimizer and live Jupyter widgets."""

# The physics layer registers the physics defaults of the configs (anatile.config.physics),
# so it is imported before anything else in the package is used.
import anatile.inference  # noqa: F401
from anatile.exceptions import AnatileError, ConfigError, TileError

__version__ = "0.1.0"

__all__ = ["AnatileError", "ConfigError", "TileError", "__version__"]
