"""Long fuzz run of the PROXY protocol decoder, outside the test suite.

Feeds inputs to ``decode``, ``HeaderReader.feed`` (in 1-, 3- and 7-byte chunks)
and ``decode_datagram``, and fails on any exception that is not a
``ProxyProtocolError`` (or on ``IncompleteHeader`` from the datagram path, where a
short datagram is invalid, not incomplete). Uses atheris (coverage-guided) when it
is installed, otherwise a mutation loop over a seed corpus of valid headers.

    python3 fuzz/fuzz_decode.py --seconds 300 [--engine atheris|mutate]

Prints how many inputs ran and whether anything unexpected escaped; exits 1 if so.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import traceback

from realip.errors import IncompleteHeader, ProxyProtocolError
from realip.proxyproto import (
    TLV,
    HeaderReader,
    build_v1,
    build_v2,
    decode,
    decode_datagram,
    header_to_json,
)

SSL = b"\x07\x00\x00\x00\x00\x21\x00\x07TLSv1.3\x22\x00\x0bclient.test"


def seeds() -> list[bytes]:
    src4, dst4 = ("192.0.2.7", 51000), ("198.51.100.1", 443)
    src6, dst6 = ("2001:db8::7", 51000), ("2001:db8::1", 443)
    tlvs = (TLV(1, b"h2"), TLV(2, b"a.example"), TLV(5, b"id-1"), TLV(0x20, SSL))
    return [
        build_v1(src4, dst4),
        build_v1(src6, dst6),
        build_v1(None, None),
        b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n",
        build_v2(source=src4, destination=dst4),
        build_v2(source=src6, destination=dst6, tlvs=tlvs, crc32c=True),
        build_v2(source="/run/a.sock", destination="\x00abstract"),
        build_v2(source=src4, destination=dst4, tlvs=tlvs, pad_to=300),
        build_v2(),
        build_v2(
            source=src4,
            destination=dst4,
            tlvs=(TLV(3, bytes(4)), TLV(0xEA, b"\x01vpce-1"), TLV(0xEE, b"\x01abcd")),
            crc32c=True,
        ),
    ]


class Escaped(Exception):
    pass


def one_input(data: bytes) -> None:
    try:
        header = decode(data)
    except ProxyProtocolError:
        pass
    else:
        json.dumps(header_to_json(header))
    try:
        decode_datagram(data)
    except IncompleteHeader as exc:
        raise Escaped("decode_datagram raised IncompleteHeader") from exc
    except ProxyProtocolError:
        pass
    for step in (1, 3, 7):
        reader = HeaderReader()
        try:
            for i in range(0, len(data), step):
                reader.feed(data[i : i + step])
        except IncompleteHeader as exc:
            raise Escaped("HeaderReader.feed raised IncompleteHeader") from exc
        except ProxyProtocolError:
            pass


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(8)
        at = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[at % len(buf)] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[at % len(buf)] = rng.choice((0, 1, 3, 0x20, 0x30, 0x0D, 0x0A, 0xFF, 48))
        elif op == 2:
            buf[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 3 and buf:
            del buf[at : at + rng.randint(1, 8)]
        elif op == 4:
            del buf[at:]
        elif op == 5 and len(buf) >= 16:
            buf[14:16] = rng.randrange(0x10000).to_bytes(2, "big")
        elif op == 6:
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            buf[at:] = other[cut:]
        elif op == 7 and len(buf) > 2:
            i = rng.randrange(len(buf) - 1)
            buf[i : i + 2] = rng.randrange(0x10000).to_bytes(2, "big")
    return bytes(buf)


def run_mutate(seconds: float, seed: int) -> int:
    rng = random.Random(seed)
    corpus = seeds()
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        for _ in range(1000):
            data = mutate(rng, rng.choice(corpus), corpus)
            one_input(data)
            count += 1
            # Keep inputs that still decode, so mutations go deeper.
            if len(corpus) < 5000 and rng.random() < 0.01:
                try:
                    decode(data)
                except ProxyProtocolError:
                    continue
                corpus.append(data)
    return count


def run_atheris(seconds: float) -> None:
    """Runs until ``seconds`` have passed, prints the summary and exits the
    process. An escaping exception makes atheris print it with the crashing
    input and exit non-zero (the atexit hook then prints the FAIL summary)."""
    import atexit

    import atheris

    count = 0
    started = time.monotonic()
    deadline = started + seconds

    failed = False

    def target(data: bytes) -> None:
        nonlocal count, failed
        count += 1
        try:
            one_input(data)
        except BaseException:
            failed = True
            raise
        if count % 1000 == 0 and time.monotonic() >= deadline:
            # libFuzzer's own time limit exits from C, past Python's atexit hooks.
            summary()
            os._exit(0)

    def summary() -> None:
        elapsed = time.monotonic() - started
        verdict = (
            "FAIL: an unexpected exception escaped (see above)"
            if failed
            else "no unexpected exception escaped"
        )
        print(
            f"engine=atheris inputs={count} seconds={elapsed:.0f} "
            f"rate={count / elapsed:.0f}/s: {verdict}",
            flush=True,
        )

    # Re-import realip under instrumentation so that coverage guides the search
    # (instrumenting every loaded module instead is far slower).
    for name in [n for n in sys.modules if n == "realip" or n.startswith("realip.")]:
        del sys.modules[name]
    with atheris.instrument_imports(include=["realip"]):
        import realip.errors
        import realip.proxyproto
    pp = realip.proxyproto
    globals().update(
        ProxyProtocolError=realip.errors.ProxyProtocolError,
        IncompleteHeader=realip.errors.IncompleteHeader,
        HeaderReader=pp.HeaderReader,
        decode=pp.decode,
        decode_datagram=pp.decode_datagram,
        header_to_json=pp.header_to_json,
    )
    argv = [
        sys.argv[0],
        f"-max_total_time={int(seconds) + 60}",  # a backstop only
        "-max_len=600",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={tempfile.gettempdir()}/realip-fuzz-",
    ]
    atheris.Setup(argv, target)
    atexit.register(summary)
    atheris.Fuzz()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument(
        "--engine", choices=["atheris", "mutate", "auto"], default="auto"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401
        except ImportError:
            engine = "mutate"
        else:
            engine = "atheris"
    started = time.monotonic()
    try:
        if engine == "atheris":
            run_atheris(args.seconds)  # exits the process when done
        count = run_mutate(args.seconds, args.seed)
    except Exception:
        traceback.print_exc()
        print("FAIL: an unexpected exception escaped the decoder", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    print(
        f"engine={engine} inputs={count} seconds={elapsed:.0f} "
        f"rate={count / elapsed:.0f}/s: no unexpected exception escaped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
