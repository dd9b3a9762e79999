"""The publish/subscribe hub that tiles and the optimizer emit through."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest

from anatile.events import EventHub


def test_every_subscriber_gets_every_event_in_order() -> None:
    hub, seen = EventHub(), []
    hub.subscribe(lambda e: seen.append(("a", e)))
    hub.subscribe(lambda e: seen.append(("b", e)))
    assert hub.emit(1) is False
    assert seen == [("a", 1), ("b", 1)]


def test_stop_requests_are_reported_and_do_not_skip_other_subscribers() -> None:
    hub, seen = EventHub(), []

    def stop_by_return(e: object) -> bool:
        return True

    def stop_by_raise(e: object) -> None:
        raise StopIteration

    hub.subscribe(stop_by_return)
    hub.subscribe(seen.append)
    assert hub.emit("x") is True
    hub.unsubscribe(stop_by_return)
    hub.subscribe(stop_by_raise)
    assert hub.emit("y") is True
    assert seen == ["x", "y"]  # the later subscriber still received both events


def test_a_broken_subscriber_is_logged_and_kept(caplog: pytest.LogCaptureFixture) -> None:
    hub, seen = EventHub(), []

    def broken(e: object) -> None:
        raise RuntimeError("view bug")

    hub.subscribe(broken)
    hub.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="anatile.events"):
        assert hub.emit(1) is False
    assert seen == [1] and len(hub) == 2
    assert "view bug" in caplog.text


def test_cancel_unsubscribes_and_non_callables_are_rejected() -> None:
    hub, seen = EventHub(), []
    sub = hub.subscribe(seen.append)
    sub.cancel()
    sub.cancel()  # harmless twice
    hub.emit(1)
    assert seen == [] and len(hub) == 0
    with pytest.raises(TypeError, match="callback"):
        hub.subscribe(42)  # type: ignore[arg-type]
    assert len(hub) == 0


def test_copies_and_pickles_start_without_subscribers() -> None:
    hub = EventHub()
    hub.subscribe(print)
    assert len(copy.deepcopy(hub)) == 0
    assert len(pickle.loads(pickle.dumps(hub))) == 0
    assert len(hub) == 1
