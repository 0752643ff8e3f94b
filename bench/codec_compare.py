"""Decode speed: realip.proxyproto.decode against PyPI's proxy-protocol 0.11.3.

Both parse the same bytes, one complete header each (icgood's ``unpack`` expects
exactly the header; realip's ``decode`` also reports its length). icgood is called
through its parse functions on bytes, ``ProxyProtocolV1().unpack`` and
``ProxyProtocolV2().unpack``, not through its asyncio reader. Runs are
interleaved (realip, icgood, realip, ...) so that noise on a shared machine hits
both sides alike; the table shows medians and the ratio of the medians.

The rows that reuse one header let realip's bounded address caches (see
``src/realip/proxyproto/_addr.py``) answer for the source as well as the
destination; the "cold" rows cycle through more distinct clients, each with its
own source address and port, than the address caches hold, as a busy server sees
them. (Ports are a closed set: the v1 port cache holds a whole ephemeral range,
so a cold row's ports are known after its first round, as a server's would be.)
The work the two sides do differs (printed with the table): see ``NOTES``.

    python3 bench/codec_compare.py [--repeat 31] [--number 20000] [--only NAME]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import proxyprotocol.checksum
from proxyprotocol.v1 import ProxyProtocolV1
from proxyprotocol.v2 import ProxyProtocolV2

import realip.proxyproto._v2 as realip_v2
from realip.proxyproto import TLV, build_v1, build_v2, crc32c_pure, decode

SRC4, DST4 = ("192.0.2.7", 51000), ("198.51.100.1", 443)
SRC6, DST6 = ("2001:db8::7", 51000), ("2001:db8:85a3::8a2e:370:7334", 443)
SSL = (
    b"\x07\x00\x00\x00\x00"
    + b"\x21\x00\x07TLSv1.3"
    + b"\x22\x00\x0eclient.example"
    + b"\x23\x00\x16TLS_AES_128_GCM_SHA256"
)
HAPROXY_TLVS = (
    TLV(0x01, b"h2"),
    TLV(0x02, b"www.example.com"),
    TLV(0x05, b"5f0c2d7e-1b6a-4c7e-9a31-2d4f6b8e0a17"),
    TLV(0x20, SSL),
)


def inputs() -> dict[str, tuple[bytes, int]]:
    """name -> (header bytes, icgood version)."""
    return {
        "v1 TCP4": (build_v1(SRC4, DST4), 1),
        "v1 TCP6": (build_v1(SRC6, DST6), 1),
        "v2 IPv4": (build_v2(source=SRC4, destination=DST4), 2),
        "v2 IPv6": (build_v2(source=SRC6, destination=DST6), 2),
        "v2 IPv4 + ALPN, AUTHORITY, UNIQUE_ID, SSL": (
            build_v2(source=SRC4, destination=DST4, tlvs=HAPROXY_TLVS),
            2,
        ),
        "v2 IPv4 + ALPN, AUTHORITY + CRC32C": (
            build_v2(
                source=SRC4,
                destination=DST4,
                tlvs=HAPROXY_TLVS[:2],
                crc32c=True,
            ),
            2,
        ),
    }


#: What each side does for its figure, so that the ratios are read right.
NOTES = (
    "realip returns address text (canonical IPv6) and checks every spec rule: v1",
    "  grammar (no leading zeros or signs in ports), TLV layout (overruns, stray",
    "  bytes), AUTHORITY <= 255 bytes of UTF-8, UNIQUE_ID <= 128, the SSL TLV's",
    "  sub-TLV layout, CRC32C size, count and value. It splits the TLVs into",
    "  objects only when .tlvs is first read: the '.tlvs read' row pays for that.",
    "icgood returns ipaddress objects and builds no text (v2: from the packed",
    "  bytes; v1: parsed from the text). It splits every TLV into a dict at once,",
    "  does not look inside SSL, and checks no TLV rule: an overrunning TLV is",
    "  cut short and stray bytes are dropped silently; v1 ports such as '+01' or",
    "  '0002' pass. Its CRC32C check re-encodes the TLVs.",
)

_COLD = 4096  # clients per cold row: four times what each address cache holds


def cold_inputs() -> dict[str, tuple[list[bytes], int]]:
    """name -> (distinct headers, icgood version); one source and port each."""
    v4 = [f"198.18.{i >> 8}.{i & 0xFF}" for i in range(_COLD)]  # RFC 2544 range
    v6 = [f"2001:db8:{i >> 8:x}:{i & 0xFF:x}::7" for i in range(_COLD)]
    ports = [1024 + i for i in range(_COLD)]
    return {
        f"v1 TCP4, {_COLD} clients (cold)": (
            [build_v1((a, p), DST4) for a, p in zip(v4, ports, strict=True)],
            1,
        ),
        f"v1 TCP6, {_COLD} clients (cold)": (
            [build_v1((a, p), DST6) for a, p in zip(v6, ports, strict=True)],
            1,
        ),
        f"v2 IPv4, {_COLD} clients (cold)": (
            [
                build_v2(source=(a, p), destination=DST4)
                for a, p in zip(v4, ports, strict=True)
            ],
            2,
        ),
        f"v2 IPv6, {_COLD} clients (cold)": (
            [
                build_v2(source=(a, p), destination=DST6)
                for a, p in zip(v6, ports, strict=True)
            ],
            2,
        ),
    }


def check_same(name: str, data: bytes, icgood: Callable[[bytes], Any]) -> None:
    """Both sides must read the same client from the same bytes."""
    ours = decode(data)
    theirs = icgood(data)
    assert ours.length == len(data), name
    source = (str(theirs.source[0]), theirs.source[1])
    assert ours.source == source, (name, ours.source, source)
    for tlv in ours.tlvs:
        if tlv.type != 0x03:  # icgood keeps one value per type; ours are all unique
            assert theirs.tlv[tlv.type] == tlv.value, (name, tlv)


def measure(
    fns: dict[str, Callable[[], object]], repeat: int, number: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            times[name].append(timeit.timeit(fn, number=number) / number * 1e9)
    return times


Call = Callable[[], object]


def once(fn: Callable[[bytes], object], data: bytes) -> Call:
    return lambda: fn(data)


def cycling(fn: Callable[[bytes], object], headers: list[bytes]) -> Call:
    # One iterator per side, so each sees every client in turn; both pay next().
    clients = itertools.cycle(headers)
    return lambda: fn(next(clients))


def rows() -> dict[str, tuple[int, Call, Call]]:
    """name -> (bytes per header, realip call, icgood call), every row checked."""
    v1, v2 = ProxyProtocolV1(), ProxyProtocolV2()
    table: dict[str, tuple[int, Call, Call]] = {}
    for name, (data, version) in inputs().items():
        unpack = v1.unpack if version == 1 else v2.unpack
        check_same(name, data, unpack)
        table[name] = (len(data), once(decode, data), once(unpack, data))
    # A server that reads the TLVs: realip then builds its TLV objects.
    data = inputs()[_WITH_TLVS][0]
    table["v2 + ALPN, AUTHORITY, UNIQUE_ID, SSL, .tlvs read"] = (
        len(data),
        once(lambda data: decode(data).tlvs, data),
        once(lambda data: v2.unpack(data).tlv, data),
    )
    for name, (headers, version) in cold_inputs().items():
        unpack = v1.unpack if version == 1 else v2.unpack
        for data in headers:
            check_same(name, data, unpack)
        table[name] = (
            len(headers[0]),
            cycling(decode, headers),
            cycling(unpack, headers),
        )
    return table


_WITH_TLVS = "v2 IPv4 + ALPN, AUTHORITY, UNIQUE_ID, SSL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--only", help="run the inputs whose name contains this")
    parser.add_argument(
        "--pure-crc", action="store_true", help="realip with its pure-Python CRC32C"
    )
    args = parser.parse_args()
    if args.pure_crc:
        realip_v2._crc32c = crc32c_pure  # type: ignore[attr-defined]

    icgood_crc = proxyprotocol.checksum.crc32c is not None
    realip_crc = "pure Python" if args.pure_crc else "crc32c package"
    print(
        f"CRC32C: realip verifies it ({realip_crc}); icgood "
        f"{'verifies it (crc32c package importable)' if icgood_crc else 'SKIPS it'}"
    )
    print("\n".join(NOTES))
    print(f"repeats: {args.repeat} x {args.number} calls; figures are ns per call\n")
    header = f"{'input':50} {'bytes':>5} {'realip':>9} {'icgood':>9} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    gc.collect()
    for name, (size, ours, theirs) in rows().items():
        if args.only and args.only not in name:
            continue
        times = measure({"realip": ours, "icgood": theirs}, args.repeat, args.number)
        realip = statistics.median(times["realip"])
        icgood = statistics.median(times["icgood"])
        print(f"{name:50} {size:5} {realip:9.0f} {icgood:9.0f} {icgood / realip:6.1f}x")


if __name__ == "__main__":
    main()
