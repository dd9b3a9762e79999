"""A tiny typed publish/subscribe hub.

Tiles and the optimizer *emit* events; widgets and progress bars *subscribe*. Subscribers
are plain callables taking one event object. The hub is excluded from pickling and deep
copies (callbacks such as widget methods are neither picklable nor meaningful in a copy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "EventHub", "Subscription"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base class of all events. ``source`` is the object that emitted it.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Ping(Event):
        ...     count: int
        >>> hub = EventHub()
        >>> sub = hub.subscribe(lambda e: print(type(e).__name__, e.count))
        >>> hub.emit(Ping(source=None, count=3))
        Ping 3
        False
    """

    source: Any


Callback = Callable[[Any], Any]


class Subscription:
    """Handle returned by :meth:`EventHub.subscribe`; call :meth:`cancel` to unsubscribe.

    Example:
        >>> hub = EventHub()
        >>> sub = hub.subscribe(print)
        >>> len(hub), sub.callback is print
        (1, True)
        >>> sub.cancel()
        >>> len(hub)
        0
    """

    def __init__(self, hub: EventHub, callback: Callback) -> None:
        self._hub = hub
        self.callback = callback

    def cancel(self) -> None:
        """Stop receiving events. Calling it twice is harmless."""
        self._hub.unsubscribe(self.callback)


class EventHub:
    """Ordered list of subscribers that receive every emitted event.

    A subscriber that raises is logged and kept; the emitter is never interrupted, except by
    :class:`StopIteration`, which :meth:`emit` reports to the caller as a stop request
    (the optimizer uses this to end a run cleanly).

    Example:
        >>> from anatile.events import EventHub
        >>> hub = EventHub()
        >>> seen = []
        >>> sub = hub.subscribe(seen.append)
        >>> hub.emit("hello")
        False
        >>> sub.cancel(); hub.emit("unheard")
        False
        >>> seen
        ['hello']
    """

    def __init__(self) -> None:
        self._subscribers: list[Callback] = []

    def subscribe(self, callback: Callback) -> Subscription:
        """Register ``callback``; it receives each event emitted from now on."""
        if not callable(callback):
            raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
        self._subscribers.append(callback)
        return Subscription(self, callback)

    def unsubscribe(self, callback: Callback) -> None:
        """Remove ``callback`` if it is subscribed."""
        self._subscribers = [cb for cb in self._subscribers if cb is not callback]

    def __len__(self) -> int:
        return len(self._subscribers)

    def emit(self, event: Any) -> bool:
        """Deliver ``event`` to every subscriber in order.

        Returns:
            True when at least one subscriber asked to stop (returned ``True`` or raised
            :class:`StopIteration`), False otherwise.
        """
        stop = False
        for callback in list(self._subscribers):
            try:
                if callback(event) is True:
                    stop = True
            except StopIteration:
                stop = True
            except Exception:  # a broken view must never break the physics
                _log.exception("event subscriber %r raised", callback)
        return stop

    # Subscribers are runtime wiring, not state: copies and pickles start with none.
    def __getstate__(self) -> dict[str, Any]:
        return {"_subscribers": []}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._subscribers = []

    def __deepcopy__(self, memo: dict[int, Any]) -> EventHub:
        return EventHub()
