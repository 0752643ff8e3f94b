"""``realip probe``: does an endpoint speak the PROXY protocol, and will it believe
anyone who does?

Theory of operation. Five connections are made one after another, each with the
same payload (an HTTP request with ``--http``, a TLS ClientHello with ``--tls``, a
short line otherwise) and a different start:

========== ===================================================================
attempt    what precedes the payload
========== ===================================================================
no-header  nothing
v1         a truthful v1 line (source = this socket, destination = the peer)
v2         the same addresses as a v2 PROXY header
v2-local   a v2 LOCAL header (a balancer's health check: "use the real
           connection's addresses", spec section 2.2)
v1-spoofed a v1 line claiming the documentation address 203.0.113.7
           (2001:db8::7 over IPv6; RFC 5737 / RFC 3849)
========== ===================================================================

Each answer is first read as one of five *readings*:

=========== ==================================================================
reading     evidence
=========== ==================================================================
accepted    HTTP: a response whose status is not 400, 408, 501 or 505.
            TLS: the server's first record is a handshake record
            (ServerHello). Any mode: the endpoint reports back the address
            the header claimed.
rejected    a close or reset before any byte; HTTP: 400/408/501/505 (the
            bytes were not understood as a request); TLS: an alert or bytes
            that are not TLS; any mode: the header came back in the answer
            (an echo: the endpoint took it as data).
answered    raw TCP only: bytes came back that say neither (an error message
            of the service looks just like a greeting).
silent      nothing within the attempt's time limit.
unreachable the connection could not be made.
=========== ==================================================================

Then the verdict follows from the no-header reading (P) and the readings of the
three headers that carry an address (H = v1, v2, v1-spoofed); the first row that
matches wins. The LOCAL attempt is shown but decides nothing, since a LOCAL header
asks the receiver to use the real addresses.

=== ========================== ==================================== ==========
row P                          H                                    verdict
=== ========================== ==================================== ==========
1   every attempt unreachable                                       unclear,
                                                                    exit 3
2   accepted or answered       one or more accepted                 optional
3   accepted or answered       none accepted or answered, one or    none
                               more rejected
4   rejected or silent         one or more accepted or answered     strict
5   anything else              (everything rejected: the endpoint   unclear
                               refuses this source or this payload;
                               everything silent; answers in raw
                               TCP that cannot be told apart)
=== ========================== ==================================== ==========

Known shapes: nginx without ``proxy_protocol`` answers 400 to a v1 line (it is not
a request line) and 200 without one: row 3, none. nginx or HAProxy requiring the
header closes a plain request and serves the others: row 4, strict. A TCP echo
returns the header: rejected, so row 3, none. A server that closes at once (or
denies this source) and one that never answers: row 5, unclear.

``spoofable`` is true when the endpoint accepted a header from this machine, which
is no load balancer of it: anyone who can connect can then claim any address. When
the endpoint reports back an address for the spoofed attempt, that decides it
(203.0.113.7 reported: true; our own address reported: the header was parsed but
its address not used, false).
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from realip.diagnostics._endpoint import format_endpoint
from realip.diagnostics._exchange import (
    Exchange,
    Framing,
    HostPort,
    HttpFraming,
    Outcome,
    RawFraming,
    TlsFraming,
    exchange,
)
from realip.diagnostics._payload import http_request
from realip.errors import ConfigError
from realip.proxyproto import V2_SIGNATURE, Command, build_v1, build_v2

#: Documentation addresses (RFC 5737, RFC 3849) claimed by the spoofed attempt.
SPOOF_V4 = "203.0.113.7"
SPOOF_V6 = "2001:db8::7"

#: HTTP statuses that say "your bytes were not a request I understand".
_NOT_UNDERSTOOD = frozenset({400, 408, 501, 505})
#: After the first bytes of a raw TCP answer, how long a silence ends it.
_RAW_QUIET = 0.3
_RAW_PAYLOAD = b"realip probe\r\n"
_TLS_HANDSHAKE = 0x16


class Mode(enum.Enum):
    TCP = "tcp"
    HTTP = "http"
    TLS = "tls"


class Verdict(enum.Enum):
    STRICT = "strict"  # requires a PROXY header
    OPTIONAL = "optional"  # accepts connections with and without one
    NONE = "none"  # does not speak the PROXY protocol
    UNCLEAR = "unclear"  # the answers do not decide


class Reading(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ANSWERED = "answered"
    SILENT = "silent"
    UNREACHABLE = "unreachable"


class AttemptKind(enum.Enum):
    NO_HEADER = "no-header"
    V1 = "v1"
    V2 = "v2"
    V2_LOCAL = "v2-local"
    V1_SPOOFED = "v1-spoofed"


#: The attempts whose header carries an address: they decide the verdict.
CARRYING = (AttemptKind.V1, AttemptKind.V2, AttemptKind.V1_SPOOFED)
_OK = frozenset({Reading.ACCEPTED, Reading.ANSWERED})


@dataclass(slots=True)
class Attempt:
    """One connection of the probe, with the evidence it gave."""

    kind: AttemptKind
    exchange: Exchange
    reading: Reading
    evidence: str
    claimed: str | None = None
    http_status: int | None = None
    reported_address: str | None = None
    tls: dict[str, Any] | None = None


@dataclass(slots=True)
class ProbeReport:
    target: HostPort
    mode: Mode
    verdict: Verdict
    spoofable: bool
    reachable: bool
    reason: str
    attempts: list[Attempt] = field(default_factory=list)
    timeout: float = 3.0
    elapsed_s: float = 0.0

    def attempt(self, kind: AttemptKind) -> Attempt:
        for attempt in self.attempts:
            if attempt.kind is kind:
                return attempt
        raise KeyError(kind)


def probe(
    target: HostPort,
    *,
    mode: Mode = Mode.TCP,
    timeout: float = 3.0,
    total_timeout: float | None = None,
    bind: str | None = None,
    path: str = "/",
) -> ProbeReport:
    """Run the five attempts against ``target`` one after another and judge.

    Each attempt may take ``timeout`` seconds; all of them together
    ``total_timeout`` (default: ``timeout`` times the number of attempts, plus
    one second). Attempts that the overall limit leaves no time for are reported
    as skipped. Network failures are evidence, never exceptions.
    """
    if timeout <= 0:
        raise ConfigError(f"timeout must be more than 0 seconds, got {timeout:g}")
    if total_timeout is None:
        total_timeout = timeout * len(AttemptKind) + 1.0
    elif total_timeout <= 0:
        raise ConfigError(
            f"total timeout must be more than 0 seconds, got {total_timeout:g}"
        )

    started = time.monotonic()
    overall = started + total_timeout
    attempts: list[Attempt] = []
    for kind in AttemptKind:
        now = time.monotonic()
        if now >= overall or (attempts and attempts[0].reading is Reading.UNREACHABLE):
            attempts.append(_skipped(kind, target, now >= overall))
            continue
        framing = _framing(mode, target, path)
        claimed: list[str] = []
        result = exchange(
            target,
            _header_builder(kind, claimed),
            framing,
            connect_timeout=timeout,
            deadline=min(now + timeout, overall),
            bind=bind,
        )
        attempts.append(_read(kind, result, framing, claimed[0] if claimed else None))

    verdict, reason = judge({a.kind: a.reading for a in attempts})
    reachable = any(a.reading is not Reading.UNREACHABLE for a in attempts)
    if not reachable:
        reason = attempts[0].evidence
    return ProbeReport(
        target=target,
        mode=mode,
        verdict=verdict,
        spoofable=_spoofable(verdict, attempts),
        reachable=reachable,
        reason=reason,
        attempts=attempts,
        timeout=timeout,
        elapsed_s=time.monotonic() - started,
    )


# -- the verdict, as the table in the module docstring says --------------------------


def judge(readings: Mapping[AttemptKind, Reading]) -> tuple[Verdict, str]:
    """The verdict and a one-line reason, from each attempt's reading."""
    plain = readings[AttemptKind.NO_HEADER]
    carrying = [readings[kind] for kind in CARRYING]
    if all(reading is Reading.UNREACHABLE for reading in readings.values()):
        return Verdict.UNCLEAR, "the endpoint could not be reached"

    if plain in _OK and Reading.ACCEPTED in carrying:
        return (
            Verdict.OPTIONAL,
            "it serves connections with and without a PROXY header",
        )
    if plain in _OK and not _OK.intersection(carrying) and Reading.REJECTED in carrying:
        return (
            Verdict.NONE,
            "it serves connections without a header and refuses PROXY headers",
        )
    if plain in (Reading.REJECTED, Reading.SILENT) and _OK.intersection(carrying):
        return (
            Verdict.STRICT,
            "it refuses connections without a header and serves those with one",
        )
    return Verdict.UNCLEAR, _unclear_reason(plain, carrying)


def _unclear_reason(plain: Reading, carrying: list[Reading]) -> str:
    readings = {plain, *carrying}
    if readings == {Reading.REJECTED}:
        return (
            "every attempt was refused, header or not: the endpoint denies this "
            "source, or the payload is wrong for its service"
        )
    if readings <= {Reading.SILENT, Reading.UNREACHABLE}:
        return "nothing answered within the time limit"
    if readings <= {Reading.ANSWERED, Reading.SILENT}:
        return (
            "every attempt got an answer that raw TCP cannot interpret; try "
            "--http or --tls if the service speaks it"
        )
    return "the answers do not fit one behaviour"


def _spoofable(verdict: Verdict, attempts: Iterable[Attempt]) -> bool:
    by_kind = {attempt.kind: attempt for attempt in attempts}
    spoofed = by_kind[AttemptKind.V1_SPOOFED]
    if spoofed.reported_address is not None and spoofed.reading in _OK:
        return spoofed.reported_address == spoofed.claimed
    if verdict not in (Verdict.STRICT, Verdict.OPTIONAL):
        return False
    return any(by_kind[kind].reading in _OK for kind in CARRYING)


# -- one attempt ----------------------------------------------------------------------


def _framing(mode: Mode, target: HostPort, path: str) -> Framing:
    host, port = target
    if mode is Mode.HTTP:
        request = http_request(
            host, port, path, agent="probe", accept="application/json, */*;q=0.5"
        )
        return HttpFraming(request, quiet=_RAW_QUIET)
    if mode is Mode.TLS:
        return TlsFraming(None if _is_ip(host) else host)
    return RawFraming(_RAW_PAYLOAD, quiet=_RAW_QUIET)


def _header_builder(
    kind: AttemptKind, claimed: list[str]
) -> Callable[[HostPort, HostPort], bytes] | None:
    """The header of each attempt; ``claimed`` receives the source it claims."""
    if kind is AttemptKind.NO_HEADER:
        return None

    def build(local: HostPort, peer: HostPort) -> bytes:
        source = local
        if kind is AttemptKind.V1_SPOOFED:
            source = (SPOOF_V6 if ":" in local[0] else SPOOF_V4, local[1])
        claimed.append(source[0])
        if kind is AttemptKind.V2:
            return build_v2(Command.PROXY, source, peer)
        if kind is AttemptKind.V2_LOCAL:
            return build_v2(Command.LOCAL)
        return build_v1(source, peer)

    return build


def _skipped(kind: AttemptKind, target: HostPort, out_of_time: bool) -> Attempt:
    why = (
        "not tried: the probe's overall time limit was spent"
        if out_of_time
        else "not tried: the first connection could not be made"
    )
    return Attempt(
        kind,
        Exchange(target, Outcome.SKIPPED),
        Reading.SILENT if out_of_time else Reading.UNREACHABLE,
        why,
    )


def _read(
    kind: AttemptKind, result: Exchange, framing: Framing, claimed: str | None
) -> Attempt:
    """Turn one exchange into a reading with its evidence (the second table)."""
    attempt = Attempt(kind, result, Reading.SILENT, "", claimed=claimed)
    if isinstance(framing, TlsFraming):
        attempt.tls = framing.to_json()
    outcome = result.outcome
    if outcome is not Outcome.RESPONSE:
        attempt.reading, attempt.evidence = _NO_ANSWER[outcome](result)
        return attempt

    body = result.received
    if isinstance(framing, HttpFraming):
        attempt.http_status = framing.status
        if framing.status is not None:
            body = bytes(framing.body)
    if not isinstance(framing, TlsFraming):
        attempt.reported_address = _reported_address(body, claimed, result.local)
    attempt.reading, attempt.evidence = _judge_response(attempt, framing)
    return attempt


_NO_ANSWER: dict[Outcome, Callable[[Exchange], tuple[Reading, str]]] = {
    Outcome.CLOSE: lambda r: (
        Reading.REJECTED,
        f"closed without an answer after {_ms(r.elapsed_s)}",
    ),
    Outcome.RESET: lambda r: (
        Reading.REJECTED,
        f"reset without an answer after {_ms(r.elapsed_s)}",
    ),
    Outcome.TIMEOUT: lambda r: (
        Reading.SILENT,
        f"no answer within {_ms(r.elapsed_s)}",
    ),
    Outcome.UNREACHABLE: lambda r: (
        Reading.UNREACHABLE,
        r.error or "could not connect",
    ),
}


def _judge_response(attempt: Attempt, framing: Framing) -> tuple[Reading, str]:
    result = attempt.exchange
    header = result.header
    echoed = bool(header) and (
        header in result.received
        or (header.startswith(V2_SIGNATURE) and V2_SIGNATURE in result.received)
    )
    if echoed:
        return Reading.REJECTED, "the header came back in the answer: taken as data"
    reading, evidence = Reading.ANSWERED, f"answered {len(result.received)} bytes"
    if isinstance(framing, HttpFraming) and framing.status is not None:
        status = framing.status
        if status in _NOT_UNDERSTOOD:
            return Reading.REJECTED, f"HTTP {status}: not understood as a request"
        reading, evidence = Reading.ACCEPTED, f"HTTP {status}"
    spoofed = attempt.kind is AttemptKind.V1_SPOOFED
    if spoofed and attempt.claimed and attempt.reported_address == attempt.claimed:
        return Reading.ACCEPTED, f"{evidence}, reports the claimed {attempt.claimed}"
    if isinstance(framing, TlsFraming):
        if result.received[0] == _TLS_HANDSHAKE:
            state = "completed" if framing.completed else "went on"
            return Reading.ACCEPTED, f"TLS handshake {state}"
        if result.received[0] == 0x15:
            return Reading.REJECTED, "TLS alert instead of a ServerHello"
        return Reading.REJECTED, "answered with bytes that are not TLS"
    return reading, evidence


# -- the address an endpoint reports back ---------------------------------------------

_JSON_KEYS = ("client", "client_ip", "clientIp", "remote_addr", "remoteAddr", "origin")
_CLIENT_LINE = re.compile(rb"^\s*client\w*\s*[:=]\s*\"?([^\s\",]+)", re.I | re.M)


def _reported_address(
    body: bytes, claimed: str | None, local: HostPort | None
) -> str | None:
    """The client address the answer names: a JSON ``client`` (realip whoami),
    ``origin`` (httpbin)... field, a ``client: ADDRESS`` line, or failing those the
    claimed or our own address appearing anywhere in it."""
    found = _from_json(body)
    if found is None:
        match = _CLIENT_LINE.search(body)
        if match is not None:
            found = _as_ip(match.group(1).decode("ascii", "replace"))
    if found is not None:
        return found
    for candidate in (claimed, local[0] if local else None):
        if candidate and candidate.encode() in body:
            return candidate
    return None


def _from_json(body: bytes) -> str | None:
    stripped = body.strip()
    if not stripped.startswith(b"{"):
        return None
    try:
        document = json.loads(stripped)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    for key in _JSON_KEYS:
        value = document.get(key)
        if isinstance(value, dict):
            value = value.get("address")
        if isinstance(value, str):
            return _as_ip(value.split(",")[0].strip())
    return None


def _as_ip(text: str) -> str | None:
    """An IP from ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80`` or ``::1``."""
    for candidate in (text, text.rpartition(":")[0], text.strip("[]")):
        candidate = candidate.strip("[]")
        if _is_ip(candidate):
            return str(ipaddress.ip_address(candidate))
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def describe_target(target: HostPort) -> str:
    return format_endpoint(*target)
