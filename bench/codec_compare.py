"""Decode speed: realip.proxyproto.decode against PyPI's proxy-protocol 0.11.3.

Both parse the same bytes, one complete header each (icgood's ``unpack`` expects
exactly the header; realip's ``decode`` also reports its length). icgood is called
through its parse functions on bytes, ``ProxyProtocolV1().unpack`` and
``ProxyProtocolV2().unpack``, not through its asyncio reader. Runs are
interleaved (realip, icgood, realip, ...) so that noise on a shared machine hits
both sides alike; the table shows medians and the ratio of the medians.

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
        realip_v2._crc32c = crc32c_pure  # type: ignore[assignment]

    v1, v2 = ProxyProtocolV1(), ProxyProtocolV2()
    icgood_crc = proxyprotocol.checksum.crc32c is not None
    realip_crc = "pure Python" if args.pure_crc else "crc32c package"
    print(
        f"CRC32C: realip verifies it ({realip_crc}); icgood "
        f"{'verifies it (crc32c package importable)' if icgood_crc else 'SKIPS it'}"
    )
    print(f"repeats: {args.repeat} x {args.number} calls; figures are ns per call\n")
    header = f"{'input':44} {'bytes':>5} {'realip':>9} {'icgood':>9} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    gc.collect()
    for name, (data, version) in inputs().items():
        if name == _DISTINCT:
            continue
        if args.only and args.only not in name:
            continue
        unpack = v1.unpack if version == 1 else v2.unpack
        check_same(name, data, unpack)
        times = measure(
            {
                "realip": lambda data=data: decode(data),
                "icgood": lambda data=data, unpack=unpack: unpack(data),
            },
            args.repeat,
            args.number,
        )
        ours = statistics.median(times["realip"])
        theirs = statistics.median(times["icgood"])
        print(
            f"{name:44} {len(data):5} {ours:9.0f} {theirs:9.0f} {theirs / ours:6.1f}x"
        )
    if not args.only or args.only in _DISTINCT:
        distinct(v2, args.repeat, args.number)


_DISTINCT = "v2 IPv6, 4096 distinct sources (cold cache)"


def distinct(v2: ProxyProtocolV2, repeat: int, number: int) -> None:
    """realip remembers IPv6 text (bounded caches, see proxyproto/_addr.py); the
    rows above reuse one header, so this row cycles through more distinct
    clients than the cache holds, and both sides pay the per-call next()."""
    headers = [
        build_v2(
            source=(f"2001:db8:{i >> 8:x}:{i & 0xFF:x}::7", 51000), destination=DST6
        )
        for i in range(4096)
    ]
    ours_it, theirs_it = itertools.cycle(headers), itertools.cycle(headers)
    times = measure(
        {
            "realip": lambda: decode(next(ours_it)),
            "icgood": lambda: v2.unpack(next(theirs_it)),
        },
        repeat,
        number,
    )
    ours = statistics.median(times["realip"])
    theirs = statistics.median(times["icgood"])
    print(
        f"{_DISTINCT:44} {len(headers[0]):5} {ours:9.0f} {theirs:9.0f} "
        f"{theirs / ours:6.1f}x"
    )


if __name__ == "__main__":
    main()
