"""The v1 decoder against an independent reading of the spec's grammar.

The decoder's fast path splits the line and looks fields up in caches; the oracle
here is written differently on purpose: one regular expression for the line's
shape, then ``inet_pton``/``inet_ntop`` for the addresses. Lines are built from
fields that are valid, nearly valid (leading zeros, signs, zone ids, the other
family, upper-case hex) and broken (empty, spaces, lone CR or LF), with single or
double spaces and every ending, so that each rule is crossed from both sides. For
every line, both must agree: the same header, or a refusal.
"""

from __future__ import annotations

import re
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realip.errors import ProxyProtocolError
from realip.proxyproto import Family, decode

_PORT = rb"(0|[1-9][0-9]{0,4})"
_LINE = re.compile(
    rb"PROXY (TCP4|TCP6) ([^ \r\n]+) ([^ \r\n]+) " + _PORT + rb" " + _PORT + rb"\r\n"
)

Oracle = tuple[Family, tuple[str, int], tuple[str, int], int]


def oracle(data: bytes) -> Oracle | None:
    """What a strict reader makes of a TCP4/TCP6 line, or None to refuse it."""
    match = _LINE.match(data)
    if match is None or match.end() > 107:
        return None
    protocol, src, dst, sport, dport = match.groups()
    af = socket.AF_INET if protocol == b"TCP4" else socket.AF_INET6
    try:
        source = socket.inet_ntop(af, socket.inet_pton(af, src.decode("ascii")))
        destination = socket.inet_ntop(af, socket.inet_pton(af, dst.decode("ascii")))
    except (OSError, ValueError):
        return None
    if af == socket.AF_INET and (source != src.decode() or destination != dst.decode()):
        return None  # inet_pton took a form that is not the plain dotted quad
    if int(sport) > 0xFFFF or int(dport) > 0xFFFF:
        return None
    family = Family.INET if af == socket.AF_INET else Family.INET6
    return family, (source, int(sport)), (destination, int(dport)), match.end()


ipv4 = st.builds("{}.{}.{}.{}".format, *(st.integers(0, 255) for _ in range(4))).map(
    str.encode
)
ipv6 = st.ip_addresses(v=6).map(lambda a: str(a).encode())
ipv6_upper = ipv6.map(bytes.upper)
near = st.sampled_from(
    [
        b"010.0.0.1",
        b"1.2.3.04",
        b"1.2.3",
        b"1.2.3.4.5",
        b"256.1.1.1",
        b"+1.2.3.4",
        b"1.2.3.4%eth0",
        b"fe80::1%eth0",
        b"[::1]",
        b"::ffff:1.2.3.4",
        b"::ffff:1.2.3.04",
        b"1::2::3",
        b"12345::1",
        b"",
        b"1.2.3.4\r",
        b"1.2.3.4\n",
        b"1.2.3.4\x00",
        b"\xff\xfe",
        b"0x1.2.3.4",
    ]
)
address = st.one_of(ipv4, ipv6, ipv6_upper, near)
port = st.one_of(
    st.integers(0, 70000).map(lambda p: str(p).encode()),
    st.sampled_from(
        [b"01", b"00", b"+1", b"-1", b" 1", b"1 ", b"", b"1_0", b"0x10", b"\xd9\xa1"]
    ),
)
protocol = st.sampled_from([b"TCP4", b"TCP6", b"tcp4", b"TCP5", b"TCP"])
separator = st.sampled_from([b" ", b" ", b" ", b"  ", b"\t"])
ending = st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r", b"", b"\r\r\n"])
tail = st.sampled_from([b"", b"GET / HTTP/1.1\r\n\r\n", b"\r\n", b"x" * 200])


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    fields = [
        b"PROXY",
        draw(protocol),
        draw(address),
        draw(address),
        draw(port),
        draw(port),
    ]
    out = fields[0]
    for field in fields[1:]:
        out += draw(separator) + field
    return out + draw(ending) + draw(tail)


@settings(
    max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(lines())
def test_decode_agrees_with_the_oracle(data: bytes) -> None:
    expected = oracle(data)
    try:
        header = decode(data)
    except ProxyProtocolError:
        assert expected is None, f"refused a line the oracle reads as {expected}"
        return
    assert expected is not None, f"accepted a line the oracle refuses: {header}"
    family, source, destination, length = expected
    assert (header.family, header.source, header.destination, header.length) == (
        family,
        source,
        destination,
        length,
    )
    assert header.version == 1 and header.tlvs == ()
