"""The shared widget machinery: throttling, the error log, the static fallback."""

from __future__ import annotations

import threading
import time

import pytest

from anatile.inference import SinglePairConductanceConverter
from anatile.widgets import ConductanceMapView
from anatile.widgets._base import Throttle

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_throttle_coalesces_a_burst_and_runs_the_trailing_call() -> None:
    calls: list[float] = []
    done = threading.Event()

    def fn() -> None:
        calls.append(time.monotonic())
        done.set()

    throttle = Throttle(fn, min_interval=0.5)
    throttle.flush()  # a call just happened: the burst below falls into the quiet time
    done.clear()
    for _ in range(200):
        throttle.request()
    assert done.wait(3.0)
    time.sleep(0.2)
    assert throttle.requests == 200
    assert len(calls) == 2  # the flush, then one trailing call for the whole burst


def test_throttle_keeps_min_interval_between_calls() -> None:
    calls: list[float] = []
    throttle = Throttle(lambda: calls.append(time.monotonic()), min_interval=0.1)
    throttle.flush()
    throttle.request()
    deadline = time.monotonic() + 2.0
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.09


def test_throttle_never_runs_on_the_requesting_thread() -> None:
    threads: list[threading.Thread] = []
    throttle = Throttle(lambda: threads.append(threading.current_thread()), min_interval=0.0)
    throttle.request()
    deadline = time.monotonic() + 2.0
    while not threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threads and threads[0] is not threading.current_thread()


def test_throttle_reports_errors_instead_of_raising_in_the_timer() -> None:
    seen: list[BaseException] = []

    def boom() -> None:
        raise RuntimeError("render failed")

    throttle = Throttle(boom, min_interval=0.0, on_error=seen.append)
    throttle.request()
    deadline = time.monotonic() + 2.0
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [str(e) for e in seen] == ["render failed"]


def _spin(seconds: float) -> None:
    """Use ``seconds`` of this thread's CPU (the duty limit counts CPU, not waiting)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_throttle_duty_cycle_stretches_the_gap_after_a_slow_call() -> None:
    throttle = Throttle(lambda: _spin(0.05), min_interval=0.0, max_duty=0.25)
    throttle.flush()
    assert throttle._next - time.monotonic() >= 0.05 * 3 * 0.9 - 0.05


def test_throttle_max_interval_caps_the_duty_stretch_from_the_call_start() -> None:
    throttle = Throttle(lambda: _spin(0.05), min_interval=0.01, max_duty=0.01,
                        max_interval=0.2)
    start = time.monotonic()
    throttle.flush()
    # the duty limit alone would rest ~5 s; the cap restarts 0.2 s after the call began
    assert throttle._next <= max(start + 0.2, time.monotonic() + 0.05 * 3) + 0.05
    assert throttle._next >= time.monotonic() + 0.01 - 0.2  # and not before min_interval


def test_throttle_duty_counts_cpu_not_waiting() -> None:
    """A call that waits (for the GIL a compiled kernel holds, here: sleeps) costs the
    watched computation nothing: it does not stretch the gap."""
    throttle = Throttle(lambda: time.sleep(0.2), min_interval=0.01, max_duty=0.01)
    throttle.flush()
    assert throttle._next - time.monotonic() < 0.1
    assert throttle.busy_s >= 0.19 and throttle.busy_cpu_s < 0.05


@pytest.mark.parametrize("bad", [{"min_interval": -1.0}, {"max_duty": 0.0}, {"max_duty": 2.0}])
def test_throttle_rejects_bad_arguments(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Throttle(lambda: None, **bad)


def test_panel_error_goes_to_the_visible_log_and_stays() -> None:
    view = ConductanceMapView(SinglePairConductanceConverter())

    def broken() -> None:
        raise ValueError("broken panel update")

    view._panels["map"].update = broken
    view.refresh("map")
    view.refresh("map")
    assert len(view.errors) == 2
    assert "broken panel update" in view.errors[0]
    texts = [o["text"] for o in view.log_area.outputs]
    assert len(texts) == 2 and all("ValueError: broken panel update" in t for t in texts)
    assert "2 error(s)" in view._error_label.value


def test_static_fallback_png_and_save(tmp_path) -> None:
    view = ConductanceMapView(SinglePairConductanceConverter())
    png = view._repr_png_()
    assert png.startswith(PNG_MAGIC)
    path = view.save(tmp_path / "view.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    # the panel image the notebook shows is a PNG too
    assert bytes(view.map_panel.image.value).startswith(PNG_MAGIC)


def test_ipython_display_bundle_has_widget_view_and_png_fallback() -> None:
    from IPython.core.formatters import DisplayFormatter

    view = ConductanceMapView(SinglePairConductanceConverter())
    data, _ = DisplayFormatter().format(view)
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "image/png" in data
