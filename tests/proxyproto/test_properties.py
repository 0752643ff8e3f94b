"""Property tests: whatever realip builds decodes back to the same header, and no
byte string makes decode, HeaderReader.feed or decode_datagram raise anything but
ProxyProtocolError. The long version of the second property is fuzz/fuzz_decode.py.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realip.errors import IncompleteHeader, ProxyProtocolError
from realip.proxyproto import (
    TLV,
    V2_SIGNATURE,
    Command,
    Family,
    HeaderReader,
    Protocol,
    ProxyHeader,
    decode,
    decode_datagram,
    encode,
    header_to_json,
)

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

ipv4 = st.binary(min_size=4, max_size=4).map(
    lambda b: socket.inet_ntop(socket.AF_INET, b)
)
ipv6 = st.binary(min_size=16, max_size=16).map(
    lambda b: socket.inet_ntop(socket.AF_INET6, b)
)
port = st.integers(0, 0xFFFF)
# No NUL inside a path (sun_path is NUL-padded); a leading NUL is an abstract socket.
# No lone surrogates either: they have no UTF-8 encoding at all.
path_text = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    max_size=40,
).filter(lambda s: len(s.encode()) <= 107)
unix_path = st.one_of(path_text, path_text.filter(bool).map(lambda s: "\x00" + s))


def _tlv_bytes(tlv_type: int, value: bytes) -> bytes:
    return struct.pack("!BH", tlv_type, len(value)) + value


ssl_value = st.builds(
    lambda client, verify, subs: (
        struct.pack("!BI", client, verify) + b"".join(_tlv_bytes(t, v) for t, v in subs)
    ),
    st.integers(0, 7),
    st.integers(0, 0xFFFFFFFF),
    st.lists(st.tuples(st.integers(0x21, 0x28), st.binary(max_size=40)), max_size=5),
)
tlv = st.one_of(
    st.builds(TLV, st.just(0x01), st.binary(max_size=20)),
    st.builds(
        TLV,
        st.just(0x02),
        st.text(max_size=60).map(str.encode).filter(lambda b: len(b) <= 255),
    ),
    st.builds(TLV, st.just(0x04), st.binary(max_size=20)),
    st.builds(TLV, st.just(0x05), st.binary(max_size=128)),
    st.builds(TLV, st.just(0x20), ssl_value),
    st.builds(
        TLV,
        st.just(0x30),
        st.text(st.characters(max_codepoint=127), max_size=20).map(str.encode),
    ),
    st.builds(TLV, st.sampled_from([0xE0, 0xEA, 0xEE]), st.binary(max_size=30)),
    st.builds(
        TLV,
        st.integers(0, 255).filter(lambda t: t not in (0x02, 0x03, 0x05, 0x20, 0x30)),
        st.binary(max_size=60),
    ),
)


@st.composite
def v2_proxy_headers(draw: st.DrawFn) -> ProxyHeader:
    fam = draw(st.sampled_from([0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32]))
    family, protocol = Family(fam >> 4), Protocol(fam & 0x0F)
    source: object
    destination: object
    if family is Family.INET:
        source, destination = (draw(ipv4), draw(port)), (draw(ipv4), draw(port))
    elif family is Family.INET6:
        source, destination = (draw(ipv6), draw(port)), (draw(ipv6), draw(port))
    elif family is Family.UNIX:
        source, destination = draw(unix_path), draw(unix_path)
    else:
        source = destination = None
    tlvs = tuple(draw(st.lists(tlv, max_size=6)))
    return ProxyHeader(2, Command.PROXY, family, protocol, source, destination, tlvs)  # type: ignore[arg-type]


@st.composite
def v1_headers(draw: st.DrawFn) -> ProxyHeader:
    kind = draw(st.sampled_from(["TCP4", "TCP6", "UNKNOWN"]))
    if kind == "UNKNOWN":
        return ProxyHeader(1, Command.PROXY, Family.UNSPEC, Protocol.UNSPEC, None, None)
    ip = ipv4 if kind == "TCP4" else ipv6
    family = Family.INET if kind == "TCP4" else Family.INET6
    return ProxyHeader(
        1,
        Command.PROXY,
        family,
        Protocol.STREAM,
        (draw(ip), draw(port)),
        (draw(ip), draw(port)),
    )


# -- round trips ------------------------------------------------------------------


@SETTINGS
@given(v1_headers())
def test_v1_round_trip(header: ProxyHeader) -> None:
    wire = encode(header)
    assert len(wire) <= 107
    assert decode(wire) == dataclasses.replace(header, length=len(wire))


@SETTINGS
@given(v2_proxy_headers(), st.booleans(), st.one_of(st.just(0), st.integers(16, 700)))
def test_v2_round_trip(header: ProxyHeader, crc32c: bool, pad_to: int) -> None:
    wire = encode(header, crc32c=crc32c, pad_to=pad_to)
    got = decode(wire)
    assert got.length == len(wire) >= pad_to
    # What realip adds after the caller's TLVs: the CRC32C, then the padding.
    extra = got.tlvs[len(header.tlvs) :]
    assert [t.type for t in extra] == [0x03] * crc32c + [0x04] * (len(extra) - crc32c)
    assert len(extra) - crc32c <= 1
    assert (
        dataclasses.replace(got, tlvs=got.tlvs[: len(header.tlvs)], length=0) == header
    )
    json.dumps(header_to_json(got))


@SETTINGS
@given(
    st.sampled_from([0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32]),
    st.lists(tlv, max_size=3),
    st.booleans(),
)
def test_v2_local_discards_the_block(fam: int, tlvs: list[TLV], crc32c: bool) -> None:
    header = ProxyHeader(
        2,
        Command.LOCAL,
        Family(fam >> 4),
        Protocol(fam & 0x0F),
        None,
        None,
        tuple(tlvs),
    )
    wire = encode(header, crc32c=crc32c)
    assert decode(wire) == dataclasses.replace(header, tlvs=(), length=len(wire))


@SETTINGS
@given(
    st.one_of(v1_headers(), v2_proxy_headers()),
    st.binary(max_size=50),
    st.lists(st.integers(1, 40), max_size=30),
)
def test_reader_any_chunking(
    header: ProxyHeader, trailing: bytes, cuts: list[int]
) -> None:
    wire = encode(header)
    data = wire + trailing
    reader = HeaderReader()
    pos = 0
    got = None
    for size in [*cuts, len(data)]:
        chunk = data[pos : pos + size]
        pos += size
        got = reader.feed(chunk)
        if pos < len(wire):
            assert got is None
        if pos >= len(data):
            break
    assert got == dataclasses.replace(header, length=len(wire))
    assert reader.remaining == trailing


# -- nothing but ProxyProtocolError escapes --------------------------------------------

starts = st.sampled_from(
    [
        b"",
        V2_SIGNATURE,
        V2_SIGNATURE + b"\x21",
        V2_SIGNATURE + b"\x21\x11",
        V2_SIGNATURE + b"\x20",
        b"PROXY ",
        b"PROXY TCP4 ",
        b"PROXY TCP6 ",
        b"PROXY UNKNOWN",
        b"PROXY TCP4 192.0.2.7 192.0.2.8 ",
    ]
)
arbitrary = st.builds(bytes.__add__, starts, st.binary(max_size=300))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    header = draw(st.one_of(v1_headers(), v2_proxy_headers()))
    crc32c = header.version == 2 and draw(st.booleans())
    wire = bytearray(encode(header, crc32c=crc32c))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(["flip", "set", "insert", "delete", "truncate", "length"])
        )
        at = draw(st.integers(0, max(len(wire) - 1, 0)))
        if op == "flip" and wire:
            wire[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and wire:
            wire[at] = draw(st.integers(0, 255))
        elif op == "insert":
            wire[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and wire:
            del wire[at]
        elif op == "truncate":
            del wire[at:]
        elif op == "length" and len(wire) >= 16 and wire.startswith(V2_SIGNATURE):
            wire[14:16] = struct.pack("!H", draw(st.integers(0, 0xFFFF)))
    return bytes(wire)


def _only_proxy_errors(data: bytes) -> None:
    try:
        header = decode(data)
    except ProxyProtocolError:
        pass
    else:
        assert 0 < header.length <= len(data)
        json.dumps(header_to_json(header))

    try:
        decode_datagram(data)
    except IncompleteHeader as exc:  # pragma: no cover - the property's failure
        raise AssertionError("decode_datagram raised IncompleteHeader") from exc
    except ProxyProtocolError:
        pass

    reader = HeaderReader()
    try:
        for i in range(0, len(data), 7):
            reader.feed(data[i : i + 7])
    except ProxyProtocolError as exc:
        assert not isinstance(exc, IncompleteHeader)


def test_json_of_ssl_nested_in_ssl() -> None:
    # Found by fuzz/fuzz_decode.py: an SSL type among the SSL sub-TLVs.
    inner = b"\x20\x00\x00"
    ssl = b"\x01\x00\x00\x00\x00" + inner
    wire = V2_SIGNATURE + b"\x21\x00\x00\x0b" + b"\x20\x00\x08" + ssl
    view = header_to_json(decode(wire))
    assert view["tlvs"][0]["ssl"]["tlvs"] == [{"type": 0x20, "value": ""}]


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=300), arbitrary))
def test_arbitrary_bytes_raise_only_proxy_protocol_error(data: bytes) -> None:
    _only_proxy_errors(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_headers_raise_only_proxy_protocol_error(data: bytes) -> None:
    _only_proxy_errors(data)
