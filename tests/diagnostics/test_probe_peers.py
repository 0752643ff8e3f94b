"""Each verdict of ``realip probe`` against real endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.diagnostics.conftest import (
    PyServer,
    Whoami,
    close_at_once,
    echo,
    haproxy,
    never_answer,
    nginx,
)
from tests.support.net import free_port

from realip.cli._exit import ExitStatus
from realip.diagnostics import (
    AttemptKind,
    Mode,
    Outcome,
    ProbeReport,
    Reading,
    Verdict,
    probe,
)

pytestmark = pytest.mark.peers

LOCALHOST = "127.0.0.1"


def run_probe(*args: str) -> tuple[int, dict[str, Any]]:
    """``realip probe --json`` as a user would run it; exit status and document."""
    done = subprocess.run(
        [sys.executable, "-m", "realip", "probe", "--json", *args],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.stderr == b"" or b"Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def readings(report: ProbeReport) -> dict[str, str]:
    return {a.kind.value: a.reading.value for a in report.attempts}


# -- nginx ---------------------------------------------------------------------------


def test_nginx_without_proxy_protocol_is_none(tmp_path: Path) -> None:
    with nginx(tmp_path, proxy_protocol=False) as port:
        status, doc = run_probe(f"{LOCALHOST}:{port}", "--http")
    assert status == ExitStatus.OK
    assert doc["verdict"] == "none"
    assert doc["spoofable"] is False
    attempts = {a["attempt"]: a for a in doc["attempts"]}
    assert attempts["no-header"]["http_status"] == 200
    # nginx reads the v1 line as a request line and cannot parse it: 400.
    assert attempts["v1"]["http_status"] == 400
    assert attempts["v1"]["reading"] == "rejected"
    for attempt in doc["attempts"]:
        assert set(attempt) >= {"sent", "outcome", "timing", "first_bytes"}
        assert attempt["timing"]["elapsed_ms"] is not None


def test_nginx_with_proxy_protocol_is_strict_and_spoofable(tmp_path: Path) -> None:
    with nginx(tmp_path, proxy_protocol=True) as port:
        status, doc = run_probe(f"{LOCALHOST}:{port}", "--http")
    assert status == ExitStatus.OK
    assert doc["verdict"] == "strict"
    assert doc["spoofable"] is True
    # nginx echoes $proxy_protocol_addr: the claimed address comes back.
    assert doc["reported_address"] == "203.0.113.7"
    attempts = {a["attempt"]: a for a in doc["attempts"]}
    assert attempts["no-header"]["outcome"] in ("close", "reset")
    assert attempts["v1"]["sent"]["header"].startswith("PROXY TCP4 127.0.0.1 ")
    assert attempts["v1-spoofed"]["sent"]["claimed_source"] == "203.0.113.7"


def test_nginx_tls_verdicts(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    with nginx(tmp_path / "a", proxy_protocol=False, tls=tls_files) as port:
        plain = probe((LOCALHOST, port), mode=Mode.TLS, timeout=3)
    with nginx(tmp_path / "b", proxy_protocol=True, tls=tls_files) as port:
        strict = probe((LOCALHOST, port), mode=Mode.TLS, timeout=3)

    assert plain.verdict is Verdict.NONE, readings(plain)
    assert plain.attempt(AttemptKind.NO_HEADER).tls["handshake"] == "complete"  # type: ignore[index]
    assert strict.verdict is Verdict.STRICT, readings(strict)
    assert strict.spoofable
    assert strict.attempt(AttemptKind.V2).tls["handshake"] == "complete"  # type: ignore[index]


@pytest.fixture(autouse=True)
def _tmp_subdirs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()


# -- HAProxy -------------------------------------------------------------------------


def test_haproxy_accept_proxy_is_strict(tmp_path: Path) -> None:
    with haproxy(tmp_path, accept_proxy=True) as port:
        report = probe((LOCALHOST, port), mode=Mode.HTTP, timeout=3)
    assert report.verdict is Verdict.STRICT, readings(report)
    assert report.spoofable
    assert report.attempt(AttemptKind.V1_SPOOFED).reported_address == "203.0.113.7"
    assert report.attempt(AttemptKind.NO_HEADER).reading is Reading.REJECTED


def test_haproxy_expect_proxy_for_some_sources(tmp_path: Path) -> None:
    """``expect-proxy`` only for 127.0.0.2: a header is required from there and is
    a bad request from anywhere else, so the verdict depends on where we stand."""
    with haproxy(tmp_path, expect_from="127.0.0.2") as port:
        elsewhere = probe((LOCALHOST, port), mode=Mode.HTTP, timeout=3)
        listed = probe((LOCALHOST, port), mode=Mode.HTTP, timeout=3, bind="127.0.0.2")
        status, doc = run_probe(
            f"{LOCALHOST}:{port}", "--http", "--bind-source", "127.0.0.2"
        )

    assert elsewhere.verdict is Verdict.NONE, readings(elsewhere)
    assert not elsewhere.spoofable
    assert elsewhere.attempt(AttemptKind.V1).exchange.local[0] == "127.0.0.1"  # type: ignore[index]
    assert listed.verdict is Verdict.STRICT, readings(listed)
    assert listed.spoofable
    assert listed.attempt(AttemptKind.V1).exchange.local[0] == "127.0.0.2"  # type: ignore[index]
    assert (status, doc["verdict"]) == (ExitStatus.OK, "strict")
    assert doc["attempts"][1]["local"].startswith("127.0.0.2:")


# -- realip whoami under each policy action ----------------------------------------

WHOAMI_VERDICTS = [
    ("require", Verdict.STRICT, True),
    ("optional", Verdict.OPTIONAL, True),
    # The header is read and dropped: every attempt is served, and whoami reports
    # our own address for the spoofed one, so nobody can claim another.
    ("ignore", Verdict.OPTIONAL, False),
    ("reject", Verdict.NONE, False),
    ("deny", Verdict.UNCLEAR, False),
]


@pytest.mark.parametrize(("action", "verdict", "spoofable"), WHOAMI_VERDICTS)
def test_whoami_http_under_each_action(
    whoami: Callable[..., Whoami], action: str, verdict: Verdict, spoofable: bool
) -> None:
    server = whoami("--http", "--proxy-protocol", action)
    report = probe((LOCALHOST, server.port or 0), mode=Mode.HTTP, timeout=2)
    assert report.verdict is verdict, readings(report)
    assert report.spoofable is spoofable
    spoofed = report.attempt(AttemptKind.V1_SPOOFED)
    if action in ("require", "optional"):
        assert spoofed.reported_address == "203.0.113.7"
    if action == "ignore":
        assert spoofed.reported_address == LOCALHOST


@pytest.mark.parametrize(
    ("action", "verdict"),
    [("require", "strict"), ("optional", "optional"), ("reject", "none")],
)
def test_whoami_raw_tcp(
    whoami: Callable[..., Whoami], action: str, verdict: str
) -> None:
    """Without --http the answers are judged by close versus answer, and by the
    claimed address coming back."""
    server = whoami("--proxy-protocol", action)
    status, doc = run_probe(server.address, "--timeout", "2")
    assert doc["verdict"] == verdict, doc
    assert status == ExitStatus.OK


def test_whoami_deny_exits_unclear(whoami: Callable[..., Whoami]) -> None:
    server = whoami("--proxy-protocol", "deny")
    status, doc = run_probe(server.address, "--http", "--timeout", "2")
    assert status == ExitStatus.UNCLEAR
    assert doc["verdict"] == "unclear"
    assert {a["reading"] for a in doc["attempts"]} == {"rejected"}


# -- small servers ------------------------------------------------------------------


def test_server_closing_at_once_is_unclear(
    pyserver: Callable[..., PyServer],
) -> None:
    server = pyserver(close_at_once)
    status, doc = run_probe(server.address, "--http", "--timeout", "2")
    assert status == ExitStatus.UNCLEAR
    assert doc["verdict"] == "unclear"
    assert doc["spoofable"] is False
    assert {a["outcome"] for a in doc["attempts"]} <= {"close", "reset"}


def test_server_never_answering_is_unclear_within_limits(
    pyserver: Callable[..., PyServer],
) -> None:
    server = pyserver(never_answer)
    report = probe(("127.0.0.1", server.port), mode=Mode.HTTP, timeout=0.4)
    assert report.verdict is Verdict.UNCLEAR
    assert {a.exchange.outcome for a in report.attempts} == {Outcome.TIMEOUT}
    for attempt in report.attempts:
        assert attempt.exchange.elapsed_s < 1.5
    assert report.elapsed_s < 5 * 0.4 + 2


def test_total_timeout_skips_the_rest(pyserver: Callable[..., PyServer]) -> None:
    server = pyserver(never_answer)
    status, doc = run_probe(
        server.address, "--timeout", "0.5", "--total-timeout", "0.8"
    )
    assert status == ExitStatus.UNCLEAR
    outcomes = [a["outcome"] for a in doc["attempts"]]
    assert outcomes[:2] == ["timeout", "timeout"]
    assert outcomes[2:] == ["skipped"] * 3
    assert doc["elapsed_ms"] < 2500


def test_tcp_echo_is_none(pyserver: Callable[..., PyServer]) -> None:
    """An echo answers everything, but hands the header back: it was data."""
    server = pyserver(echo)
    report = probe(("127.0.0.1", server.port), timeout=2)
    assert report.verdict is Verdict.NONE, readings(report)
    assert report.attempt(AttemptKind.NO_HEADER).reading is Reading.ANSWERED
    assert report.attempt(AttemptKind.V2).reading is Reading.REJECTED


def test_unreachable_exits_3() -> None:
    port = free_port()  # nothing listens there any more
    status, doc = run_probe(f"{LOCALHOST}:{port}", "--timeout", "1")
    assert status == ExitStatus.UNREACHABLE
    assert doc["reachable"] is False
    assert doc["attempts"][0]["outcome"] == "unreachable"
    assert [a["outcome"] for a in doc["attempts"][1:]] == ["skipped"] * 4


def test_text_output_names_verdict_and_evidence(tmp_path: Path) -> None:
    with nginx(tmp_path, proxy_protocol=True) as port:
        done = subprocess.run(
            [sys.executable, "-m", "realip", "probe", f"{LOCALHOST}:{port}", "--http"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "verdict:" in done.stdout and "strict" in done.stdout
    assert "spoofable:    YES" in done.stdout
    assert "v1-spoofed:" in done.stdout and "203.0.113.7" in done.stdout
