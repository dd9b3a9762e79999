"""Throttle: coalesced, off-thread redraws with a duty limit (every anatile widget redraws
through one)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["DEFAULT_MIN_INTERVAL_S", "HARD_MAX_DUTY", "Throttle"]

#: the frame-rate floor (``max_interval``) never pushes a view above this duty.
HARD_MAX_DUTY = 0.25

#: default minimum time between two redraws of one panel (bursts are coalesced).
DEFAULT_MIN_INTERVAL_S = 0.1


class Throttle:
    """Coalesce bursts of redraw requests into at most one call per ``min_interval`` seconds.

    ``request()`` never runs the callback on the caller's thread: the first request arms a
    timer thread that fires after the remaining quiet time, so an emitter (a programming loop,
    the optimizer) never pays for a render. All requests that arrive before the timer fires
    are served by that one call (the trailing edge always runs, so the last state is drawn).
    ``flush()`` runs the callback now, on the caller's thread, and cancels the pending timer.

    Args:
        fn: the redraw callable (no arguments).
        min_interval: minimum seconds between two calls.
        max_duty: at most this fraction of wall time is spent in ``fn``: after a call that
            took ``d`` seconds of CPU (the calling thread's ``time.thread_time``) the next
            waits at least ``d · (1/max_duty − 1)``. Keeps a slow render from eating into a
            computation it is watching (1.0 disables it). CPU, not wall time: a render
            waiting for the GIL that a computation holds (a compiled kernel) costs that
            computation nothing, and counting the wait would starve the view.
        on_error: receives any exception raised by ``fn`` (it is never re-raised in the
            timer thread, where it would be lost).
        max_interval: the duty stretch never makes the gap longer than this (a live view
            keeps a minimum frame rate; ``min_interval`` still wins when larger).
    """

    def __init__(
        self,
        fn: Callable[[], None],
        min_interval: float = DEFAULT_MIN_INTERVAL_S,
        on_error: Callable[[BaseException], None] | None = None,
        max_duty: float = 1.0,
        max_interval: float = float("inf"),
    ) -> None:
        if min_interval < 0:
            raise ValueError(f"min_interval: expected >= 0, got {min_interval}")
        if not 0 < max_duty <= 1:
            raise ValueError(f"max_duty: expected a fraction in (0, 1], got {max_duty}")
        self._fn = fn
        self.min_interval = float(min_interval)
        self.max_duty = float(max_duty)
        self.max_interval = float(max_interval)
        self._on_error = on_error
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()  # one call of fn at a time, whichever thread
        self._timer: threading.Timer | None = None
        self._running = False  # a call of fn is in progress
        self._again = False  # a request arrived during that call
        self._next = -float("inf")  # earliest start of the next call
        self.calls = 0
        self.requests = 0
        self.busy_s = 0.0  # total wall seconds spent in fn
        self.busy_cpu_s = 0.0  # total CPU seconds of fn's thread in fn (the benchmark)

    @property
    def pending(self) -> bool:
        """Whether a trailing-edge call is scheduled (or will be, when the running one ends)."""
        return self._timer is not None or self._again

    def request(self) -> None:
        """Ask for a call; it happens on a timer thread within ``min_interval`` seconds."""
        with self._lock:
            self.requests += 1
            if self._running:
                # served by a trailing call scheduled when this one ends (at the start time
                # that call's duration allows, not immediately after it)
                self._again = True
                return
            if self._timer is None:
                self._schedule()

    def _schedule(self) -> None:
        # with self._lock held
        delay = max(0.0, self._next - time.monotonic())
        self._timer = threading.Timer(delay, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
        self._run()

    def flush(self) -> None:
        """Call now (on this thread), cancelling any scheduled call."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._run()

    def cancel(self) -> None:
        """Drop a scheduled call (used when the widget closes)."""
        with self._lock:
            self._again = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _run(self) -> None:
        with self._run_lock:
            with self._lock:
                self._running = True
                self._again = False
            start = time.monotonic()
            cpu_start = time.thread_time()
            try:
                self._fn()
            except Exception as exc:  # reported to the widget's log
                if self._on_error is None:
                    raise
                self._on_error(exc)
            finally:
                self.calls += 1
                end = time.monotonic()
                cpu = time.thread_time() - cpu_start
                self.busy_s += end - start
                self.busy_cpu_s += cpu
                with self._lock:
                    # duty limit: rest `busy` after a call that used `cpu` seconds ...
                    busy = cpu * (1.0 / self.max_duty - 1.0)
                    duty_next = end + max(self.min_interval, busy)
                    # ... but start again within max_interval of this call's start (never
                    # sooner than min_interval after its end, and never above a hard 25 %
                    # duty: on a starved machine a slow render must not eat the CPU)
                    cap = max(start + self.max_interval, end + self.min_interval,
                              end + cpu * (1.0 / HARD_MAX_DUTY - 1.0))
                    self._next = min(duty_next, cap)
                    self._running = False
                    if self._again and self._timer is None:
                        self._again = False
                        self._schedule()
