"""The handshake's rules, as pure functions: which engine a session replaces, what a hello is."""

from __future__ import annotations

from typing import Any

import pytest

from wtls import __version__
from wtls.daemon import hello


def _reply(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **hello.identity(), **fields}


@pytest.mark.parametrize(
    ("fields", "replace"),
    [
        ({}, False),  # the same code
        ({"wtls": "0.0.9"}, True),  # older
        ({"wtls": "999.0"}, False),  # newer: used as it is
        ({"build": "edited"}, True),  # same version, another build
        ({"wtls": "999.0", "build": "edited"}, False),  # newer wins whatever its build
        ({"protocol": 2}, True),  # another handshake
        ({"wtls": None}, True),  # unreadable: older than everything
    ],
)
def test_which_engine_a_session_replaces(fields: dict[str, Any], replace: bool) -> None:
    assert hello.should_replace(_reply(**fields)) is replace


def test_versions_compare_as_numbers() -> None:
    key = hello._version_key
    assert key("0.10.0") > key("0.9.9")
    assert key("1.0") == key("1.0.0") == key("1")
    assert key("1.2.0rc1") == key("1.2")
    assert key(__version__) == key(__version__ + ".0")


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"not json\n", "not JSON"),
        (b"42\n", "not a JSON object"),
        (b'{"a": 1}', "no end"),
        (b"{" + b" " * hello.MAX_LINE_BYTES + b"}\n", "longer than"),
    ],
)
def test_a_line_that_is_no_hello_is_refused(line: bytes, error: str) -> None:
    with pytest.raises(hello.HelloError, match=error):
        hello.decode(line)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"protocol": 2, "kind": "lsp", "repository": "/r"}, "protocol 2"),
        ({"protocol": 1, "kind": "shell", "repository": "/r"}, "unknown hello kind"),
        ({"protocol": 1, "kind": "lsp"}, "no repository"),
    ],
)
def test_a_request_the_engine_cannot_answer_is_refused(message: dict[str, Any], error: str) -> None:
    with pytest.raises(hello.HelloError, match=error):
        hello.check_request(message)


def test_a_client_hello_round_trips() -> None:
    line = hello.encode(hello.client_hello("query", "/r/.git", {"query": "list"}))
    message = hello.decode(line)
    assert hello.check_request(message) == "query"
    assert message["query"] == "list" and message["repository"] == "/r/.git"
    assert message["build"] == hello.build_id() and message["wtls"] == __version__


def test_an_engine_reports_the_test_only_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hello.FAKE_VERSION_ENV, "0.0.1")
    monkeypatch.setenv(hello.FAKE_BUILD_ENV, "other")
    assert hello.identity(engine=True)["wtls"] == "0.0.1"
    assert hello.identity(engine=True)["build"] == "other"
    assert hello.identity() == {"protocol": 1, "wtls": __version__, "build": hello.build_id()}
