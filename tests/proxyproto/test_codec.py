"""Table-driven codec tests: every vector parsed whole, byte by byte, with trailing
data, and built back; every invalid vector refused with a message naming the field
and the value. The CRC32C cases run twice, with the C package and the pure
fallback."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

import realip.proxyproto._v2 as v2_module
from realip.errors import ChecksumError, IncompleteHeader, ProxyProtocolError
from realip.proxyproto import (
    TLV,
    Command,
    Family,
    HeaderReader,
    Protocol,
    ProxyHeader,
    Sniff,
    crc32c,
    crc32c_pure,
    decode,
    encode,
    sniff,
)
from tests.proxyproto.vectors import (
    A4,
    INVALID,
    VALID,
    VALID_FAM_BYTES,
    Invalid,
    Valid,
    tlv,
    v2,
)

TRAILING = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\r\n\r\nPROXY "


@pytest.fixture(params=["c", "pure"])
def crc_impl(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Run the test with the ``crc32c`` package, then with the pure fallback."""
    if request.param == "pure":
        monkeypatch.setattr(v2_module, "_crc32c", crc32c_pure)
    else:
        assert v2_module._crc32c is not crc32c_pure, "the crc32c package is not in use"
    yield request.param


def _ids(cases: list[Valid] | list[Invalid]) -> list[str]:
    return [case.name for case in cases]


# -- valid input ----------------------------------------------------------------------


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_decode_whole(case: Valid, crc_impl: str) -> None:
    assert decode(case.wire) == case.expected
    assert decode(bytearray(case.wire)) == case.expected
    assert decode(memoryview(case.wire)) == case.expected


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_decode_with_trailing_data(case: Valid, crc_impl: str) -> None:
    data = case.wire + TRAILING
    got = decode(data)
    assert got == case.expected
    assert data[got.length :] == TRAILING


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_every_prefix_is_incomplete(case: Valid, crc_impl: str) -> None:
    for size in range(len(case.wire)):
        with pytest.raises(IncompleteHeader):
            decode(case.wire[:size])


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_reader_one_byte_at_a_time(case: Valid, crc_impl: str) -> None:
    reader = HeaderReader()
    data = case.wire + TRAILING
    for i in range(len(data)):
        got = reader.feed(data[i : i + 1])
        if i < len(case.wire) - 1:
            assert got is None, f"header returned after {i + 1} bytes"
            assert reader.remaining == b""
        else:
            assert got == case.expected
    assert reader.header == case.expected
    assert reader.remaining == TRAILING
    assert reader.buffered == len(data)


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_reader_whole_and_in_two_chunks(case: Valid) -> None:
    reader = HeaderReader()
    assert reader.feed(case.wire + TRAILING) == case.expected
    assert reader.remaining == TRAILING

    for cut in (1, len(case.wire) // 2, len(case.wire) - 1, len(case.wire)):
        reader = HeaderReader()
        assert reader.feed(memoryview(case.wire[:cut])) is None or cut == len(case.wire)
        assert reader.feed(bytearray(case.wire[cut:] + TRAILING)) == case.expected
        assert reader.remaining == TRAILING


@pytest.mark.parametrize(
    "case", [c for c in VALID if c.build], ids=_ids([c for c in VALID if c.build])
)
def test_encode_gives_the_vector(case: Valid, crc_impl: str) -> None:
    header = case.expected
    if case.pad_to:
        # the padding is what ``pad_to`` must add back
        header = dataclasses.replace(header, tlvs=header.tlvs[:-1])
    assert encode(header, crc32c=case.crc32c, pad_to=case.pad_to) == case.wire


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_sniff(case: Valid) -> None:
    kind = Sniff.V1 if case.expected.version == 1 else Sniff.V2
    assert sniff(case.wire) is kind
    assert sniff(case.wire[:1]) is Sniff.NEED_MORE
    assert sniff(b"") is Sniff.NEED_MORE


def test_sniff_rejects_early() -> None:
    assert sniff(b"G") is Sniff.NOT_PROXY
    assert sniff(b"\x16\x03") is Sniff.NOT_PROXY
    assert sniff(b"PROXZ") is Sniff.NOT_PROXY
    assert sniff(b"\r\n\r\n\x01") is Sniff.NOT_PROXY
    assert sniff(b"PROX") is Sniff.NEED_MORE


def test_exactly_seven_fam_bytes_are_accepted() -> None:
    accepted = set()
    for fam in range(256):
        try:
            decode(v2(bytes(216), fam=fam))
        except ProxyProtocolError as exc:
            assert exc.field == "family", (hex(fam), exc)
        else:
            accepted.add(fam)
    assert accepted == VALID_FAM_BYTES


def test_local_keeps_the_real_endpoints_whatever_the_command_nibble_carries() -> None:
    got = decode(v2(A4 + tlv(3, b"bad crc"), ver_cmd=0x20))
    assert got.command is Command.LOCAL
    assert got.is_local and not got.carries_address
    assert got.tlvs == ()


def test_max_size_limits_v2() -> None:
    wire = v2(A4 + tlv(0xF0, bytes(100)))
    assert decode(wire, max_size=len(wire)).length == len(wire)
    with pytest.raises(ProxyProtocolError, match=r"131 bytes is larger than the 130"):
        decode(wire[:16], max_size=130)
    reader = HeaderReader(max_size=130)
    with pytest.raises(ProxyProtocolError, match="larger than"):
        reader.feed(wire[:16])


# -- invalid input -------------------------------------------------------------------


def _check_message(exc: ProxyProtocolError, case: Invalid) -> None:
    assert not isinstance(exc, IncompleteHeader), exc
    assert type(exc) is case.error, repr(exc)
    message = str(exc)
    for fragment in case.fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "\n" not in message


@pytest.mark.parametrize("case", INVALID, ids=_ids(INVALID))
def test_decode_refuses(case: Invalid, crc_impl: str) -> None:
    with pytest.raises(ProxyProtocolError) as info:
        decode(case.wire + TRAILING)
    _check_message(info.value, case)


@pytest.mark.parametrize("case", INVALID, ids=_ids(INVALID))
def test_reader_refuses_byte_by_byte(case: Invalid, crc_impl: str) -> None:
    reader = HeaderReader()
    data = case.wire + TRAILING
    with pytest.raises(ProxyProtocolError) as info:
        for i in range(len(data)):
            assert reader.feed(data[i : i + 1]) is None
    _check_message(info.value, case)


@pytest.mark.parametrize("crc", [crc32c, crc32c_pure], ids=["c", "pure"])
def test_crc32c_known_answers(crc: object) -> None:
    fn = crc  # RFC 3720 B.4 and the usual check value
    assert fn(b"123456789", 0) == 0xE3069283  # type: ignore[operator]
    assert fn(bytes(32), 0) == 0x8A9136AA  # type: ignore[operator]
    assert fn(b"\xff" * 32, 0) == 0x62A8AB43  # type: ignore[operator]
    assert fn(bytes(range(32)), 0) == 0x46DD794E  # type: ignore[operator]
    assert fn(b"6789", fn(b"12345", 0)) == 0xE3069283  # type: ignore[operator]
    assert fn(memoryview(b"123456789")[3:], fn(bytearray(b"123"), 0)) == 0xE3069283  # type: ignore[operator]


# -- building --------------------------------------------------------------------------


def test_build_fills_crc_where_it_stands_and_pads() -> None:
    h = ProxyHeader(
        2,
        Command.PROXY,
        Family.INET,
        Protocol.STREAM,
        ("192.0.2.7", 1),
        ("192.0.2.8", 2),
        (TLV(3, b"\xaa" * 4), TLV(1, b"h2")),
    )
    wire = encode(h, crc32c=True, pad_to=100)
    assert len(wire) == 100
    got = decode(wire)
    assert [t.type for t in got.tlvs] == [3, 1, 4]
    assert got.tlvs[0].value != b"\xaa" * 4
    # padding that needs fewer than 3 bytes still gives a whole NOOP TLV
    assert len(encode(dataclasses.replace(h, tlvs=()), pad_to=30)) == 31


@pytest.mark.parametrize(
    ("header", "fragments"),
    [
        (
            ProxyHeader(
                1,
                Command.PROXY,
                Family.INET,
                Protocol.STREAM,
                ("192.0.2.7", 1),
                ("::1", 2),
            ),
            ("destination address", "'::1'"),
        ),
        (
            ProxyHeader(
                1,
                Command.PROXY,
                Family.INET,
                Protocol.STREAM,
                ("192.0.2.7", 65536),
                ("192.0.2.7", 2),
            ),
            ("source port", "65536"),
        ),
        (
            ProxyHeader(1, Command.PROXY, Family.UNIX, Protocol.STREAM, "/a", "/b"),
            ("UNIX", "'/a'"),
        ),
        (
            ProxyHeader(1, Command.LOCAL, Family.UNSPEC, Protocol.UNSPEC, None, None),
            ("v1", "LOCAL"),
        ),
        (
            ProxyHeader(
                1,
                Command.PROXY,
                Family.INET,
                Protocol.DGRAM,
                ("192.0.2.7", 1),
                ("192.0.2.7", 2),
            ),
            ("v1", "DGRAM"),
        ),
        (
            ProxyHeader(
                1,
                Command.PROXY,
                Family.INET,
                Protocol.STREAM,
                ("192.0.2.7", 1),
                ("192.0.2.7", 2),
                (TLV(1, b"h2"),),
            ),
            ("v1", "TLV"),
        ),
        (
            ProxyHeader(3, Command.PROXY, Family.UNSPEC, Protocol.UNSPEC, None, None),
            ("version", "3"),
        ),
        (
            ProxyHeader(
                2,
                Command.PROXY,
                Family.INET,
                Protocol.STREAM,
                ("192.0.2.7", -1),
                ("192.0.2.7", 2),
            ),
            ("source port", "-1"),
        ),
        (
            ProxyHeader(
                2,
                Command.PROXY,
                Family.INET6,
                Protocol.STREAM,
                ("192.0.2.7", 1),
                ("::1", 2),
            ),
            ("source address", "IPv6", "192.0.2.7"),
        ),
        (
            ProxyHeader(2, Command.PROXY, Family.INET, Protocol.STREAM, None, None),
            ("needs a source",),
        ),
        (
            ProxyHeader(
                2, Command.PROXY, Family.UNIX, Protocol.STREAM, "/" + "a" * 108, "/b"
            ),
            ("source", "108 bytes", "109"),
        ),
        (
            ProxyHeader(2, Command.PROXY, Family.UNSPEC, Protocol.STREAM, None, None),
            ("UNSPEC", "STREAM"),
        ),
        (
            ProxyHeader(
                2,
                Command.PROXY,
                Family.UNSPEC,
                Protocol.UNSPEC,
                None,
                None,
                (TLV(256, b""),),
            ),
            ("type", "256"),
        ),
        (
            ProxyHeader(
                2,
                Command.PROXY,
                Family.UNSPEC,
                Protocol.UNSPEC,
                None,
                None,
                (TLV(2, b"a" * 256),),
            ),
            ("AUTHORITY", "256"),
        ),
        (
            ProxyHeader(
                2,
                Command.PROXY,
                Family.UNSPEC,
                Protocol.UNSPEC,
                None,
                None,
                (TLV(3, b"abc"),),
            ),
            ("CRC32C", "got 3"),
        ),
        (
            ProxyHeader(
                2,
                Command.PROXY,
                Family.UNSPEC,
                Protocol.UNSPEC,
                None,
                None,
                (TLV(0xF0, bytes(65534)),),
            ),
            ("65535",),
        ),
    ],
)
def test_encode_refuses(header: ProxyHeader, fragments: tuple[str, ...]) -> None:
    with pytest.raises(ProxyProtocolError) as info:
        encode(header)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_checksum_error_is_a_proxy_protocol_error() -> None:
    assert issubclass(ChecksumError, ProxyProtocolError)
    assert issubclass(IncompleteHeader, ProxyProtocolError)
    assert issubclass(ProxyProtocolError, ValueError)
