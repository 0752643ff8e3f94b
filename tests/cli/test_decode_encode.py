"""`realip decode` and `realip encode`, through main() and as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from realip.cli import main
from realip.proxyproto import decode

V1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n"
V2_CRC_FIRST = bytes.fromhex(
    "0d0a0d0a000d0a515549540a2111001e"  # signature, PROXY, TCP4, len 30
    "c0000207c6336401c73801bb"  # 192.0.2.7:51000 -> 198.51.100.1:443
    "030004" "00000000"  # CRC32C first, as HAProxy sends it (filled in below)
    "0100026832"  # ALPN h2
    "05000369642d"  # UNIQUE_ID "id-"
)  # fmt: skip


def _with_crc(wire: bytes) -> bytes:
    import crc32c

    crc = crc32c.crc32c(wire)
    return wire[:31] + crc.to_bytes(4, "big") + wire[35:]


def run_main(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def run_cli(argv: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "realip", *argv],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


# -- decode ------------------------------------------------------------------------


def test_decode_v1_from_hex(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_main(["decode", "--hex", V1.hex()], capsys)
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "version": 1,
        "command": "PROXY",
        "family": "INET",
        "protocol": "STREAM",
        "source": {"address": "192.0.2.7", "port": 51000},
        "destination": {"address": "198.51.100.1", "port": 443},
        "tlvs": [],
        "length": len(V1),
    }
    assert out.count("\n") == 1


def test_decode_v2_with_tlvs_from_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wire = _with_crc(V2_CRC_FIRST)
    path = tmp_path / "header.bin"
    path.write_bytes(wire + b"GET / HTTP/1.1\r\n")
    status, out, _ = run_main(["decode", str(path)], capsys)
    assert status == 0
    got = json.loads(out)
    assert got["length"] == len(wire)
    assert [(t["type"], t.get("name")) for t in got["tlvs"]] == [
        (3, "CRC32C"),
        (1, "ALPN"),
        (5, "UNIQUE_ID"),
    ]
    assert got["tlvs"][0]["crc32c"] == "0x" + wire[31:35].hex()
    assert got["tlvs"][1] == {"type": 1, "value": "6832", "name": "ALPN", "alpn": "h2"}
    assert got["tlvs"][2]["unique_id"] == "id-"


def test_decode_unix_unknown_and_local(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in [
        (
            ["encode", "--unix", "/run/a.sock", "@abstract", "--hex"],
            {"family": "UNIX", "source": {"path": "/run/a.sock"}},
        ),
        (
            ["encode", "--version", "1", "--hex"],
            {"family": "UNSPEC", "protocol": "UNSPEC", "source": None},
        ),
        (
            ["encode", "--command", "LOCAL", "--hex"],
            {"command": "LOCAL", "family": "UNSPEC", "destination": None},
        ),
    ]:
        assert main(argv) == 0
        hex_out = capsys.readouterr().out.strip()
        assert main(["decode", "--hex", hex_out]) == 0
        got = json.loads(capsys.readouterr().out)
        assert got.items() >= expected.items(), (argv, got)


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["decode", "--hex", "0d0a0d0a000d0a51"], ("incomplete", "8 byte(s)")),
        (["decode", "--hex", ""], ("incomplete", "0 byte(s)")),
        (["decode", "--hex", "zz"], ("--hex", "'zz'")),
        (
            ["decode", "--hex", b"PROXY TCP4 1.2.3.4 5.6.7.8 080 1\r\n".hex()],
            ("source port", "080"),
        ),
        (
            ["decode", "--hex", b"GET / HTTP/1.1\r\n".hex()],
            ("not a PROXY protocol header",),
        ),
        (
            ["decode", "--hex", (_with_crc(V2_CRC_FIRST)[:-1] + b"!").hex()],
            ("CRC32C mismatch",),
        ),
        (
            ["decode", "/nonexistent/header.bin"],
            ("No such file", "/nonexistent/header.bin"),
        ),
    ],
)
def test_decode_errors_are_one_line(
    argv: list[str], fragments: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_main(argv, capsys)
    assert status == 1
    assert out == ""
    assert err.startswith("realip: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err


def test_decode_subprocess_stdin_and_errors() -> None:
    wire = _with_crc(V2_CRC_FIRST)
    done = run_cli(["decode"], stdin=wire + b"payload")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["source"] == {"address": "192.0.2.7", "port": 51000}

    done = run_cli(["decode", "-"], stdin=V1[:20])
    assert done.returncode == 1
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("realip: error: incomplete"), lines
    assert b"Traceback" not in done.stderr

    done = run_cli(["decode"], stdin=b"PROXY TCP6 192.0.2.7 ::1 1 2\r\n")
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "realip: error: v1 source address must be a plain IPv6 address, got '192.0.2.7'"
    ]


# -- encode ------------------------------------------------------------------------


def test_encode_v1_raw(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    argv = ["encode", "--version", "1", "--source", "192.0.2.7:51000"]
    assert main([*argv, "--destination", "198.51.100.1:443"]) == 0
    assert capsysbinary.readouterr().out == V1


def test_encode_v2_matches_the_hand_built_vector(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "encode",
        "--source",
        "192.0.2.7:51000",
        "--destination",
        "198.51.100.1:443",
        "--tlv",
        "crc32c=hex:00000000",
        "--tlv",
        "alpn=h2",
        "--tlv",
        "5=id-",
        "--crc32c",
        "--hex",
    ]
    status, out, _ = run_main(argv, capsys)
    assert status == 0
    assert out == _with_crc(V2_CRC_FIRST).hex() + "\n"


def test_encode_ipv6_tlvs_pad_dgram(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "encode",
        "--source",
        "[2001:db8::7]:1",
        "--destination",
        "[2001:db8::1]:443",
        "--protocol",
        "dgram",
        "--tlv",
        "authority=bücher.example",
        "--tlv",
        "netns=blue",
        "--tlv",
        "0xEA=hex:01 76 70 63 65",
        "--tlv",
        "aws=hex:02",
        "--pad",
        "200",
        "--crc32c",
        "--hex",
    ]
    status, out, _ = run_main(argv, capsys)
    assert status == 0
    header = decode(bytes.fromhex(out))
    assert header.length == 200
    assert header.source == ("2001:db8::7", 1)
    assert header.protocol.name == "DGRAM"
    assert header.authority == "bücher.example"
    assert header.netns == "blue"
    assert header.aws_vpce_id == "vpce"
    assert [t.type for t in header.tlvs] == [0x02, 0x30, 0xEA, 0xEA, 0x03, 0x04]


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--source", "192.0.2.7:1"], ("--source and --destination",)),
        (
            ["--source", "192.0.2.7", "--destination", "192.0.2.8:1"],
            ("--source", "HOST:PORT", "'192.0.2.7'"),
        ),
        (
            ["--source", "192.0.2.7:70000", "--destination", "192.0.2.8:1"],
            ("port", "70000"),
        ),
        (["--source", "::1:80", "--destination", "[::1]:1"], ("in brackets",)),
        (
            ["--source", "192.0.2.7:1", "--destination", "[::1]:1"],
            ("destination address", "'::1'"),
        ),
        (
            ["--source", "192.0.2.300:1", "--destination", "192.0.2.8:1"],
            ("--source", "192.0.2.300"),
        ),
        (["--tlv", "alpn"], ("TYPE=VALUE", "'alpn'")),
        (["--tlv", "bogus=1"], ("--tlv", "'bogus=1'", "type must be")),
        (["--tlv", "300=x"], ("0-255", "300")),
        (["--tlv", "alpn=hex:zz"], ("not hexadecimal", "'zz'")),
        (["--tlv", "authority=" + "a" * 256], ("AUTHORITY", "256")),
        (["--tlv", "unique_id=" + "u" * 129], ("UNIQUE_ID", "129")),
        (["--version", "1", "--tlv", "alpn=h2"], ("v1", "TLV")),
        (["--version", "1", "--command", "LOCAL"], ("--version 1",)),
        (["--unix", "/" + "a" * 120, "/b"], ("source", "108 bytes")),
    ],
)
def test_encode_errors_are_one_line(
    argv: list[str], fragments: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_main(["encode", *argv], capsys)
    assert status == 1
    assert out == ""
    assert err.startswith("realip: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_encode_decode_pipeline_subprocess() -> None:
    built = run_cli(
        [
            "encode",
            "--source",
            "192.0.2.7:51000",
            "--destination",
            "198.51.100.1:443",
            "--tlv",
            "alpn=h2",
            "--crc32c",
        ]
    )
    assert built.returncode == 0, built.stderr
    done = run_cli(["decode"], stdin=built.stdout)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["tlvs"][0]["alpn"] == "h2"
    assert got["tlvs"][1]["name"] == "CRC32C"

    bad = run_cli(["encode", "--tlv", "nope=1"])
    assert bad.returncode == 1
    assert len(bad.stderr.decode().splitlines()) == 1
    assert b"Traceback" not in bad.stderr
