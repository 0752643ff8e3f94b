"""What a stream opens with: the ClientHello parser on OpenSSL's real bytes, cut
and fuzzed, and the classifier on each kind of opening, whole and byte by byte."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realip.capture import classify_datagram, classify_stream, parse_client_hello
from realip.proxyproto import Command, build_v1, build_v2


def _openssl_hello(server_name: str | None, *, tls13_only: bool = False) -> bytes:
    context = ssl.create_default_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    if tls13_only:
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    if server_name is None:
        context.check_hostname = False
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_openssl_client_hello() -> None:
    hello = parse_client_hello(_openssl_hello("api.example.org", tls13_only=True))
    assert not isinstance(hello, (int, str))
    assert hello.sni == "api.example.org"
    assert hello.alpn == ("h2", "http/1.1")
    assert hello.version == "TLS 1.3"


def test_client_hello_without_sni() -> None:
    hello = parse_client_hello(_openssl_hello(None))
    assert not isinstance(hello, (int, str)) and hello.sni is None


def test_every_prefix_asks_for_more() -> None:
    data = _openssl_hello("cut.example")
    for size in range(len(data)):
        needed = parse_client_hello(data[:size])
        assert isinstance(needed, int) and size < needed <= len(data)


def test_hello_split_over_two_records() -> None:
    record = _openssl_hello("two.example")
    message = record[5:]
    half = len(message) // 2
    split = (
        b"\x16\x03\x01" + half.to_bytes(2, "big") + message[:half]
        + b"\x16\x03\x01" + (len(message) - half).to_bytes(2, "big") + message[half:]
    )  # fmt: skip
    hello = parse_client_hello(split)
    assert not isinstance(hello, (int, str)) and hello.sni == "two.example"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x16\x03\x01\x00\x04\x02\x00\x00\x00", "handshake of type 2"),
        (b"\x16\x03\x01\x00\x00", "record length 0"),
        (b"\x16\x02\x00\x00\x05", "is not TLS"),
        (b"\x16\x03\x01\x00\x06\x01\x00\x00\x02\x03\x03", "run past its end"),
    ],
)
def test_not_a_client_hello(data: bytes, reason: str) -> None:
    answer = parse_client_hello(data)
    assert isinstance(answer, str) and reason in answer


@given(st.binary(max_size=300))
def test_parser_never_raises(tail: bytes) -> None:
    for data in (b"\x16\x03\x01" + tail, b"\x16\x03\x03\x01\x00\x01" + tail, tail):
        parse_client_hello(data)
        classify_stream(data, final=True)
        classify_stream(data, final=False)
        classify_datagram(data)


@given(st.integers(min_value=0, max_value=400))
def test_mutated_real_hello_never_raises(position: int) -> None:
    data = bytearray(_HELLO)
    for value in (0x00, 0xFF, 0x7F):
        data[position % len(data)] = value
        parse_client_hello(bytes(data))


_HELLO = _openssl_hello("fuzz.example")

_V2 = build_v2(Command.PROXY, ("192.0.2.1", 1), ("192.0.2.2", 2))
_CASES = [
    (b"", "none", "empty", ""),
    (b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n", "none", "http", "GET /x HTTP/1.1"),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "none", "http2", None),
    (b"SSH-2.0-Go\r\n", "none", "ssh", "SSH-2.0-Go"),
    (b"\x00\x01\x02binary", "none", "unknown", "\\x00\\x01\\x02binary"),
    (_V2 + b"GET / HTTP/1.0\r\n\r\n", "header", "http", "GET / HTTP/1.0"),
    (build_v1(("192.0.2.1", 1), ("192.0.2.2", 2)), "header", "empty", ""),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", "invalid", None, None),
]


@pytest.mark.parametrize(("data", "status", "kind", "detail"), _CASES)
def test_classify_whole_and_byte_by_byte(
    data: bytes, status: str, kind: str | None, detail: str | None
) -> None:
    whole = classify_stream(data, final=True)
    assert not isinstance(whole, int)
    assert whole.status == status
    if kind is not None:
        assert whole.payload is not None and whole.payload.kind == kind
    if detail is not None:
        assert whole.payload is not None and whole.payload.detail == detail
    # Fed a byte at a time, as a split header arrives: never a different answer.
    # The first answer may come before the end, but never says something else.
    for size in range(len(data) + 1):
        partial = classify_stream(data[:size], final=False)
        if isinstance(partial, int):
            assert partial > size  # it always asks for more than it has
            continue
        assert partial.status == whole.status
        assert partial.error == whole.error
        kinds = [o.payload.kind if o.payload else None for o in (partial, whole)]
        assert kinds[0] == kinds[1]
        break


def test_stream_that_ends_inside_a_header_is_invalid() -> None:
    opening = classify_stream(_V2[:20], final=True)
    assert not isinstance(opening, int)
    assert opening.status == "invalid"
    assert (
        opening.error is not None
        and "incomplete after the first 20 bytes" in opening.error
    )
    assert classify_stream(_V2[:20], final=False) == len(_V2)


def test_datagram_cut_inside_its_header_is_invalid() -> None:
    opening = classify_datagram(_V2[:20])
    assert opening.status == "invalid"
    assert opening.error is not None and "ends inside its PROXY header" in opening.error
