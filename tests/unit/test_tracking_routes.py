"""Tracking's timeline consumer hears every case event of intake and dispatch, each class
through its own handler."""

from __future__ import annotations

import inspect
from datetime import timedelta

from services.tracking import consumers, domain
from services.tracking.handlers import CONSUMED
from shared.contract import EVENT_TYPES, CaseDispatched, Topics


def test_every_intake_and_dispatch_event_has_its_own_route():
    routed = [r.event for r in consumers.routes()]
    assert len(routed) == len(set(routed))  # one handler per class
    assert set(routed) == set(CONSUMED)
    assert set(CONSUMED) == {
        cls for cls in EVENT_TYPES.values() if cls.TOPIC in (Topics.INTAKE, Topics.DISPATCH)
    }


def test_each_handler_is_typed_by_its_event_class():
    for route in consumers.routes():
        handler = getattr(route.handler, "func", route.handler)  # through functools.partial
        annotation = inspect.signature(handler).parameters["event"].annotation
        assert annotation == f"Envelope[{route.event.__name__}]", handler.__name__


def test_the_sign_for_override_reaches_the_dispatch_handler():
    route = next(r for r in consumers.routes(timedelta(seconds=5)) if r.event is CaseDispatched)
    assert route.handler.keywords == {"sign_for_deadline": timedelta(seconds=5)}  # type: ignore[attr-defined]


def test_the_clocks_an_event_stops_are_kept_by_event_class():
    assert set(domain.CLOCKS_STOPPED_BY) <= set(CONSUMED)
