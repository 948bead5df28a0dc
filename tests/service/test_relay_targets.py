"""The relay's table of request targets (engine/service/protocol.py `_target`): which
(method, URL) a worker answers without the ASGI path, kept per URL and bounded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.service import protocol, routes


@pytest.fixture(autouse=True)
def empty() -> Iterator[None]:
    protocol._TARGETS.clear()
    yield
    protocol._TARGETS.clear()


def test_a_decision_url_is_relayed_with_its_path_query_and_parameters() -> None:
    found = protocol._target(b"POST", b"/v1/decisions/order-holds?explain=1")
    assert found is not None
    method, path, raw_path, query, route, params = found
    assert (method, path, raw_path, query) == (
        "POST",
        "/v1/decisions/order-holds",
        b"/v1/decisions/order-holds",
        b"explain=1",
    )
    assert route.by is routes.By.WORKER and dict(params) == {"policy": "order-holds"}


@pytest.mark.parametrize(
    ("method", "url"),
    [
        (b"GET", b"/healthz"),  # the front answers it
        (b"POST", b"/no/such/path"),  # 404 from the ASGI path
        (b"DELETE", b"/v1/decisions/order-holds"),  # 405
        (b"HEAD", b"/v1/decisions/order-holds"),
        (b"POST", b"/v1/decisions/order%2Dholds"),  # percent-encoded: decoded by uvicorn
        (b"POST", b"/v1/decisions/\xe6\xb3\xa8"),  # not ASCII
    ],
)
def test_what_the_asgi_path_answers_is_not_relayed(method: bytes, url: bytes) -> None:
    assert protocol._target(method, url) is None
    assert protocol._target(method, url) is None  # also when remembered


def test_the_same_url_is_looked_up_once_and_its_parameters_cannot_be_changed() -> None:
    first = protocol._target(b"POST", b"/v1/decisions/np-check")
    assert first is not None and protocol._target(b"POST", b"/v1/decisions/np-check") is first
    with pytest.raises(TypeError):
        first[5]["policy"] = "other"  # type: ignore[index]


def test_the_table_is_emptied_when_full() -> None:
    for n in range(protocol.TARGETS_MAX):
        protocol._target(b"GET", b"/v1/decisions/%d" % n)
    assert len(protocol._TARGETS) == protocol.TARGETS_MAX
    protocol._target(b"POST", b"/v1/decisions/np-check")
    assert len(protocol._TARGETS) == 1


def test_a_long_url_is_relayed_but_not_kept() -> None:
    at_line = b"/v1/decisions/order-holds?" + b"x" * (protocol.TARGET_URL_MAX - 26)
    over = at_line + b"x"
    for url in (at_line, over):
        found = protocol._target(b"POST", url)
        assert found is not None and found[1] == "/v1/decisions/order-holds"
    assert list(protocol._TARGETS) == [(b"POST", at_line)]
    assert len(at_line) == protocol.TARGET_URL_MAX
