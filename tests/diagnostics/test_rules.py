"""The probe's verdict table and the small parsers, without a network."""

from __future__ import annotations

import re

import pytest

from realip.diagnostics import (
    AttemptKind,
    Reading,
    Verdict,
    describe_header,
    hexdump,
    judge,
    parse_endpoint,
    parse_tlv,
    unescape,
)
from realip.errors import ConfigError
from realip.proxyproto import TLV, Command, build_v1, build_v2

A, R, N, S, U = (
    Reading.ACCEPTED,
    Reading.REJECTED,
    Reading.ANSWERED,
    Reading.SILENT,
    Reading.UNREACHABLE,
)

# (no-header, v1, v2, v2-local, v1-spoofed) -> verdict; one block per table row.
VERDICTS = [
    # row 1: nothing could be reached
    ((U, U, U, U, U), Verdict.UNCLEAR),
    # row 2: optional
    ((A, A, A, A, A), Verdict.OPTIONAL),
    ((N, N, N, N, A), Verdict.OPTIONAL),  # raw TCP, the claim came back
    ((A, R, A, R, R), Verdict.OPTIONAL),  # a v2-only sniffer
    # row 3: none
    ((A, R, R, R, R), Verdict.NONE),  # nginx without proxy_protocol
    ((N, R, R, R, R), Verdict.NONE),  # a TCP echo, or headers closed
    ((A, R, S, R, R), Verdict.NONE),  # a header left hanging
    ((A, R, R, A, R), Verdict.NONE),  # LOCAL decides nothing
    # row 4: strict
    ((R, A, A, A, A), Verdict.STRICT),  # nginx/HAProxy requiring it
    ((R, N, N, N, N), Verdict.STRICT),  # raw TCP: plain closed, headers answered
    ((S, A, A, A, A), Verdict.STRICT),  # plain left waiting for a header
    ((R, A, R, A, A), Verdict.STRICT),  # v1 only (old nginx)
    # row 5: unclear
    ((R, R, R, R, R), Verdict.UNCLEAR),  # closes at once / denies this source
    ((S, S, S, S, S), Verdict.UNCLEAR),  # never answers
    ((N, N, N, N, N), Verdict.UNCLEAR),  # raw TCP answers that say nothing
    ((A, S, S, S, S), Verdict.UNCLEAR),  # headers unanswered
    ((S, R, R, R, R), Verdict.UNCLEAR),
]


@pytest.mark.parametrize(("row", "verdict"), VERDICTS)
def test_verdict_table(row: tuple[Reading, ...], verdict: Verdict) -> None:
    readings = dict(zip(AttemptKind, row, strict=True))
    got, reason = judge(readings)
    assert got is verdict
    assert reason


def test_unclear_reasons_name_the_shape() -> None:
    closed = dict.fromkeys(AttemptKind, R)
    silent = dict.fromkeys(AttemptKind, S)
    assert "refused" in judge(closed)[1]
    assert "time limit" in judge(silent)[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpn=h2", TLV(0x01, b"h2")),
        ("AUTHORITY=example.com", TLV(0x02, b"example.com")),
        ("unique-id=abc", TLV(0x05, b"abc")),
        ("0xEA=hex:01766d", TLV(0xEA, b"\x01vm")),
        ("224=", TLV(0xE0, b"")),
        ("netns=a=b", TLV(0x30, b"a=b")),
    ],
)
def test_parse_tlv(text: str, expected: TLV) -> None:
    assert parse_tlv(text) == expected


@pytest.mark.parametrize("text", ["alpn", "0x100=a", "bogus=1", "1=hex:zz", "-1=a"])
def test_parse_tlv_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="--tlv"):
        parse_tlv(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:8080", ("::1", 8080)),
        ("example.com:443", ("example.com", 443)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
    ],
)
def test_parse_endpoint(text: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", ":80", "::1:80", "[x]:1", "a:b", "a:-1"])
def test_parse_endpoint_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(repr(text))):
        parse_endpoint(text)


def test_unescape() -> None:
    assert unescape(r"GET\r\n\t\0\\\x41é") == b"GET\r\n\t\x00\\A" + "é".encode()
    assert unescape(r"\q") == b"\\q"  # unknown escapes stay as typed


def test_hexdump_layout() -> None:
    dump = hexdump(b"PROXY TCP4 1.2.3.4\r\n")
    first, second, end = dump.splitlines()
    assert first == (
        "00000000  50 52 4f 58 59 20 54 43  50 34 20 31 2e 32 2e 33  |PROXY TCP4 1.2.3|"
    )
    assert second.startswith("00000010  2e 34 0d 0a ")
    assert second.endswith("|.4..|")
    assert end == "00000014"


def test_describe_header() -> None:
    v1 = build_v1(("192.0.2.1", 1), ("192.0.2.2", 2))
    assert describe_header(v1) == "PROXY TCP4 192.0.2.1 192.0.2.2 1 2"
    v2 = build_v2(Command.PROXY, ("192.0.2.1", 1), ("192.0.2.2", 2))
    assert describe_header(v2) == "v2 PROXY INET 192.0.2.1:1 -> 192.0.2.2:2 (28 bytes)"
    assert describe_header(build_v2(Command.LOCAL)) == "v2 LOCAL (16 bytes)"
    assert describe_header(b"") == "no header"
