"""Events emitted by tiles and the programming report.

Kinds (``TileEvent.kind``): ``"weights_set"``, ``"scales_changed"``,
``"input_range_changed"``, ``"programming_progress"`` (data: ``iteration``, ``max_iter``,
``error``), ``"programmed"`` (data: ``report``), ``"weights_read"`` (data: ``weight``,
``bias``); inference tiles add ``"programmed_noise"`` and ``"drifted"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from anatile.events import Event

__all__ = ["ProgrammingReport", "TileEvent"]


@dataclass(frozen=True)
class TileEvent(Event):
    """Something changed on a tile.

    Attributes:
        source: the tile.
        kind: what happened (see the module docstring).
        data: details of the event (may be empty).

    Example:
        >>> tile = TileWithPeriphery(2, 3, seed=0)
        >>> kinds = []
        >>> sub = tile.events.subscribe(lambda event: kinds.append(event.kind))
        >>> tile.set_weights(torch.zeros(2, 3))
        >>> "weights_set" in kinds
        True
    """

    kind: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class ProgrammingReport(NamedTuple):
    """Outcome of :meth:`TileWithPeriphery.program_weights` (``tile.last_programming``).

    Attributes:
        iterations: number of read-and-update iterations used.
        error: final relative error ``mean|error| / max|target output|`` (of the last
            verify, averaged over ``verify_reads`` reads).
        converged: whether ``error < tolerance`` was reached before ``max_iter``.
        verify_reads: reads averaged by the last verify.
        total_reads: reads of ``x_values`` over the whole run (the cost of verifying).
        noise_floor: relative error the last verify reports for a perfect array: the
            mean ``|noise|`` of its averaged reads (and the ADC's rounding bias) over
            ``max|target output|``; an error near it is measurement noise.
        reason: why the loop ended: ``"converged"``, ``"max_iter"``, ``"stopped"`` (a
            callback or subscriber) or ``"stalled: ..."`` (the error stopped improving at
            the most reads, with the floor and the reads the tolerance would need).

    Example:
        >>> from anatile.tiles import TileWithPeriphery
        >>> tile = TileWithPeriphery(2, 4, seed=0)
        >>> tile.set_weights(0.3 * torch.ones(2, 4))
        >>> tile.program_weights(max_iter=5)
        >>> report = tile.last_programming
        >>> report.iterations <= 5, isinstance(report.converged, bool)
        (True, True)
    """

    iterations: int
    error: float
    converged: bool
    verify_reads: int = 1
    total_reads: int = 0
    noise_floor: float = 0.0
    reason: str = ""
