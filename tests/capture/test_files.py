"""``realip capture`` on the committed corner-case captures and on captures built
here byte by byte: link types, reassembly, damage, filters, summary readings."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import dpkt
import pytest

from realip.capture import ScanOptions, scan
from realip.proxyproto import (
    Command,
    Family,
    Protocol,
    ProxyHeader,
    build_v1,
    build_v2,
    encode,
)
from tests.capture._support import capture_json, run_capture
from tests.capture.data.make_captures import (
    ACK,
    SYN,
    T0,
    Connection,
    client_hello,
    ip_packet,
    link,
    tcp_segment,
    write_pcap,
)

DATA = Path(__file__).parent / "data"


def _frames(*connections: Connection, kind: str = "eth") -> list[tuple[float, bytes]]:
    return sorted((t, link(kind, p)) for c in connections for t, p in c.packets)


def _by_port(document: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {flow["client"]["port"]: flow for flow in document["connections"]}


# -- committed captures ------------------------------------------------------------


def test_pcapng_with_several_interfaces_and_sections(
    capsys: pytest.CaptureFixture[str],
) -> None:
    flows = _by_port(capture_json(capsys, str(DATA / "multi_interface.pcapng")))
    assert sorted(flows) == [40001, 40002, 40003, 40004]
    eth, sll2, raw, sll = (flows[p] for p in (40001, 40002, 40003, 40004))
    assert eth["header"]["version"] == 2 and eth["opens_with"]["target"] == "/eth"
    # Interface 1 counts nanoseconds: its start is still right to the microsecond.
    assert sll2["start_epoch"] == pytest.approx(T0 + 0.0005, abs=1e-6)
    assert sll2["opens_with"]["sni"] == "sll2.example"
    assert raw["header"]["version"] == 1 and raw["opens_with"]["target"] == "/raw"
    # The second section is big-endian, its interface Linux cooked v1.
    assert sll["opens_with"] == {"kind": "ssh", "detail": "SSH-2.0-OpenSSH_9.2p1"}
    assert sll["start_epoch"] == pytest.approx(T0 + 1, abs=1e-6)


def test_ipv6_reassembly_out_of_order_and_retransmitted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = capture_json(capsys, str(DATA / "ipv6.pcap"))
    flows = _by_port(document)
    split = flows[50001]
    assert split["client"]["address"] == "2001:db8:1::10"
    assert split["header"]["source"] == {"address": "2001:db8:ffff::9", "port": 6000}
    assert split["opens_with"]["target"] == "/v6"
    assert "header split over 3 segments" in split["notes"]
    assert "out-of-order segments reassembled" in split["notes"]
    assert "retransmitted segments ignored" in split["notes"]
    assert flows[50002]["opens_with"]["sni"] == "v6.example"
    udp = flows[50003]
    assert udp["transport"] == "udp" and udp["header"]["protocol"] == "DGRAM"
    labels = [n["label"] for n in document["summary"]["networks"]]
    assert labels == ["2001:db8:1::10", "2001:db8:2::20", "2001:db8:3::30"]


def test_truncated_last_packet_warns_and_keeps_the_rest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run_capture(capsys, str(DATA / "truncated_last.pcap"))
    assert status == 0
    assert "ends inside packet 21" in err and "packets 1-20 were read" in err
    assert out.count(" tcp ") == 3
    assert "from 10.0.1.2: 1 of 1 carry v1" in out


# -- damage ------------------------------------------------------------------------


def _damaged_pcap(tmp_path: Path) -> Path:
    first = Connection(("10.0.0.2", 41000), ("10.0.9.1", 80), T0)
    first.handshake().send(
        build_v1(("1.2.3.4", 5), ("10.0.9.1", 80)) + b"GET / HTTP/1.1\r\n"
    )
    path = tmp_path / "damaged.pcap"
    write_pcap(path, _frames(first))
    data = bytearray(path.read_bytes())
    # Packet 5 claims a caplen of 200 MB: no capture holds that.
    data += struct.pack("<IIII", int(T0) + 5, 0, 200_000_000, 200_000_000) + b"x" * 64
    path.write_bytes(bytes(data))
    return path


def test_damage_part_way_reports_what_came_before_then_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _damaged_pcap(tmp_path)
    status, out, err = run_capture(capsys, str(path))
    assert status == 1
    assert "v1 PROXY" in out  # the connection before the damage is reported
    assert err.count("\n") == 1 and err.startswith("realip: error: ")
    assert "packet 5 claims 200000000 bytes" in err
    status, out, err = run_capture(capsys, "--json", str(path))
    document = json.loads(out)
    assert status == 1 and document["error"]["packet"] == 5
    assert document["connections"][0]["header"]["version"] == 1


def test_damaged_pcapng_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray((DATA / "multi_interface.pcapng").read_bytes())
    # The trailing length of the first packet block no longer matches.
    first_epb = data.index(struct.pack("<I", 6))
    length = struct.unpack_from("<I", data, first_epb + 4)[0]
    struct.pack_into("<I", data, first_epb + length - 4, length + 4)
    path = tmp_path / "damaged.pcapng"
    path.write_bytes(bytes(data))
    status, _, err = run_capture(capsys, str(path))
    assert status == 1
    assert "block after packet 0" in err and "damaged" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"GET / HTTP/1.1\r\n", "is not a pcap or pcapng file"),
        (b"", "is not a pcap or pcapng file"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "damaged pcap file header"),
    ],
)
def test_not_a_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    for flags in ([], ["--json"]):
        status, out, err = run_capture(capsys, *flags, str(path))
        assert (status, out) == (1, "")
        assert err.startswith("realip: error: ") and message in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_capture(capsys, str(tmp_path / "nope.pcap"))
    assert status == 1 and "No such file" in err and "Traceback" not in err


def test_unparsable_packets_are_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = Connection(("10.0.0.2", 41000), ("10.0.9.1", 80), T0)
    good.handshake().send(b"GET / HTTP/1.1\r\n\r\n").close()
    frames = _frames(good)
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\x00" * 28
    icmp = link("eth", ip_packet("10.0.0.2", "10.0.9.1", 1, b"\x08\x00" + b"\x00" * 6))
    fragment = bytearray(
        link("eth", ip_packet("10.0.0.2", "10.0.9.1", 17, b"\x00" * 16))
    )
    fragment[14 + 6 : 14 + 8] = b"\x20\x00"  # more fragments
    frames[2:2] = [(T0, arp), (T0, icmp), (T0, bytes(fragment)), (T0, b"\x00" * 5)]
    path = tmp_path / "mixed.pcap"
    write_pcap(path, frames)
    document = capture_json(capsys, str(path))
    skipped = document["packets"]["skipped"]
    assert skipped == {
        "not IP": {"count": 1, "first_packet": 3},
        "not TCP or UDP": {"count": 1, "first_packet": 4},
        "IP fragment": {"count": 1, "first_packet": 5},
        "malformed": {"count": 1, "first_packet": 6},
    }
    assert len(document["connections"]) == 1


def test_unsupported_link_type_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "wifi.pcap"
    write_pcap(path, [(T0, b"\x00" * 40)], linktype=105)
    status, out, err = run_capture(capsys, str(path))
    assert status == 0 and "no connections" in out
    assert "unsupported link type 105" in err


# -- link types and timestamps -----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "linktype", "nano"),
    [
        ("null", dpkt.pcap.DLT_NULL, False),
        ("raw", 101, True),
        ("sll", 113, False),
        ("sll2", 276, True),
        ("vlan", 1, False),
    ],
)
def test_link_types(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    linktype: int,
    nano: bool,
) -> None:
    conn = Connection(("10.0.0.2", 41000), ("10.0.9.1", 80), T0 + 0.123456)
    conn.handshake().send(
        build_v2(Command.PROXY, ("1.1.1.1", 1), ("2.2.2.2", 2))
    ).close()
    path = tmp_path / f"{kind}.pcap"
    write_pcap(path, _frames(conn, kind=kind), linktype=linktype, nano=nano)
    (flow,) = capture_json(capsys, str(path))["connections"]
    assert flow["header"]["source"] == {"address": "1.1.1.1", "port": 1}
    assert flow["start_epoch"] == pytest.approx(T0 + 0.123456, abs=1e-6)


# -- TCP: who is the client, how it ends -------------------------------------------


def test_without_a_syn_the_client_is_guessed_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Joined mid-stream: the server (port 443) speaks first in the capture.
    mid = Connection(("10.0.0.3", 50000), ("10.0.9.1", 443), T0)
    mid.cseq, mid.sseq = 5000, 7000
    mid.reply(b"\x17\x03\x03\x00\x05hello").send(b"\x17\x03\x03\x00\x02hi")
    # The SYN is lost but the SYN-ACK tells where the client's stream starts.
    lost = Connection(("10.0.0.4", 50001), ("10.0.9.1", 8080), T0 + 1)
    lost.handshake(syn=False).send(b"GET /late HTTP/1.1\r\n\r\n").close()
    path = tmp_path / "nosyn.pcap"
    write_pcap(path, _frames(mid, lost))
    document = capture_json(capsys, str(path))
    flows = _by_port(document)
    guessed = flows[50000]
    assert guessed["client_by"] == "port-guess" and guessed["start_seen"] is False
    assert "client guessed from the port numbers" in guessed["notes"]
    assert flows[50001]["client_by"] == "syn-ack"
    assert flows[50001]["opens_with"]["target"] == "/late"
    lines = capture_json(capsys, str(path))["summary"]["networks"]
    # Both in 10.0.0.0/24: the mid-stream one is listed apart, not counted.
    assert (lines[0]["mid_stream"], lines[0]["connections"]) == (1, 1)


def test_rst_idle_and_gaps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reset = Connection(("10.0.0.5", 50010), ("10.0.9.1", 80), T0)
    reset.handshake().send(b"GET /r HTTP/1.1\r\n\r\n").reset()
    idle = Connection(("10.0.0.6", 50011), ("10.0.9.1", 80), T0)
    idle.handshake().send(b"PROXY TCP4 1.2.3.4 ")  # the rest never comes
    gap = Connection(("10.0.0.7", 50012), ("10.0.9.1", 80), T0)
    gap.handshake().send(b"GET /g").skip(10).send(b"never placed")
    late = Connection(("10.0.0.8", 50013), ("10.0.9.1", 80), T0 + 100)
    late.handshake()
    path = tmp_path / "ends.pcap"
    write_pcap(path, _frames(reset, idle, gap, late))
    flows = _by_port(capture_json(capsys, str(path), "--idle", "30"))
    assert flows[50010]["end"] == "rst"
    assert flows[50011]["end"] == "idle"
    assert flows[50011]["status"] == "invalid"
    assert flows[50011]["error"].startswith(
        "header incomplete after the first 19 bytes"
    )
    assert flows[50012]["opens_with"]["kind"] == "unknown"
    assert any("bytes missing" in note for note in flows[50012]["notes"])
    assert flows[50013]["end"] == "capture-end"


def test_snap_length_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conn = Connection(("10.0.0.9", 50020), ("10.0.9.1", 443), T0)
    conn.handshake().send(client_hello("cut.example")).close()
    frames = [(t, f[:80]) for t, f in _frames(conn)]  # tcpdump -s 80
    path = tmp_path / "snap.pcap"
    write_pcap(path, frames)
    (flow,) = capture_json(capsys, str(path))["connections"]
    assert flow["opens_with"]["kind"] == "tls"
    assert "no SNI seen" in flow["opens_with"]["detail"]
    assert "payload cut by the capture's snap length" in flow["notes"]


def test_port_reuse_starts_a_new_connection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = Connection(("10.0.0.2", 41000), ("10.0.9.1", 80), T0)
    one.handshake().send(b"GET /1 HTTP/1.1\r\n\r\n")
    two = Connection(("10.0.0.2", 41000), ("10.0.9.1", 80), T0 + 1)
    two.cseq = 77777
    two.handshake().send(b"GET /2 HTTP/1.1\r\n\r\n")
    path = tmp_path / "reuse.pcap"
    write_pcap(path, _frames(one, two))
    flows = capture_json(capsys, str(path))["connections"]
    assert [(f["opens_with"]["target"], f["end"]) for f in flows] == [
        ("/1", "reused"),
        ("/2", "capture-end"),
    ]


def test_memory_is_bounded_by_open_connections(tmp_path: Path) -> None:
    frames: list[tuple[float, bytes]] = []
    for index in range(2000):
        conn = Connection(("10.0.0.2", 20000 + index), ("10.0.9.1", 80), T0 + index)
        conn.handshake().send(b"GET / HTTP/1.1\r\n\r\n").close()
        frames += [(t, link("eth", p)) for t, p in conn.packets]
    path = tmp_path / "many.pcap"
    write_pcap(path, frames)
    seen: list[int] = []
    result = scan(path, emit=lambda c: seen.append(c.number))
    assert len(seen) == 2000 and result.peak_open == 1


# -- summary and its readings ------------------------------------------------------


def _summary_capture(tmp_path: Path) -> Path:
    frames: list[Connection] = []
    start = T0
    for index in range(4):  # the load balancer: v2 always
        conn = Connection(("10.0.0.5", 30000 + index), ("10.0.9.1", 443), start)
        conn.handshake().send(
            build_v2(Command.PROXY, ("203.0.113.1", 1000 + index), ("10.0.9.1", 443))
            + client_hello("shop.example")
        ).close()
        frames.append(conn)
    for index in range(3):  # pods calling the LB IP: short-circuited, no header
        conn = Connection((f"10.244.1.{index + 2}", 31000), ("10.0.9.1", 443), start)
        conn.handshake().send(client_hello("shop.example")).close()
        frames.append(conn)
    for index in range(2):  # health checks: LOCAL and empty
        local = encode(
            ProxyHeader(2, Command.LOCAL, Family.UNSPEC, Protocol.UNSPEC, None, None)
        )
        conn = Connection(("10.0.0.200", 32000 + index), ("10.0.9.1", 443), start)
        conn.handshake().send(local if index else b"").close()
        frames.append(conn)
    old = Connection(("10.0.0.9", 33000), ("10.0.9.1", 443), start)  # an old proxy
    old.handshake().send(build_v1(("203.0.113.9", 9), ("10.0.9.1", 443))).close()
    frames.append(old)
    path = tmp_path / "summary.pcap"
    write_pcap(path, _frames(*frames))
    return path


def test_summary_by_named_network_and_readings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _summary_capture(tmp_path)
    status, out, _ = run_capture(
        capsys, str(path), "--summary",
        "--network", "pods=10.244.0.0/16",
        "--network", "load balancer=10.0.0.5",
        "--network", "checks=10.0.0.200/32",
    )  # fmt: skip
    assert status == 0
    assert " tcp " not in out  # --summary: no per-connection lines
    assert "from 10.244.0.0/16 (pods): 0 of 3 carry a header; without: 3 TLS" in out
    assert "from 10.0.0.5/32 (load balancer): 4 of 4 carry v2" in out
    assert "from 10.0.0.9: 1 of 1 carry v1" in out
    assert "hairpin traffic likely: to 10.0.9.1:443, 10.244.0.0/16 (pods)" in out
    assert "wrong version: 10.0.0.9 sends v1 headers to 10.0.9.1:443" in out
    assert "health checks: 10.0.0.200/32 (checks) only opens 1 empty" in out


def test_summary_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _summary_capture(tmp_path)
    document = capture_json(capsys, str(path), "--summary")
    assert document["connections"] == []
    networks = {n["network"]: n for n in document["summary"]["networks"]}
    pods = networks["10.244.1.0/24"]
    assert (pods["connections"], pods["with_header"], pods["hosts"]) == (3, 0, 3)
    lan = networks["10.0.0.0/24"]  # the LB, the checks and the old proxy
    assert (lan["v2"], lan["local"], lan["v1"], lan["hosts"]) == (4, 1, 1, 3)
    assert lan["without_header"] == {"empty": 1}
    assert document["summary"]["readings"]


# -- flags -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "http"], "--port must be a port 0-65535, got 'http'"),
        (["--port", "70000"], "--port must be a port 0-65535"),
        (["--server", "db.internal:5432"], "--server host must be an IP address"),
        (["--server", "[::1"], "--server must be HOST, HOST:PORT or [IPV6]:PORT"),
        (["--network", "pods"], "--network must be NAME=CIDR, got 'pods'"),
        (["--network", "pods=10.244.0.0/33"], "is not a CIDR"),
        (["--since", "yesterday"], "--since must be an ISO 8601 time or epoch"),
        (["--since", "20", "--until", "10"], "--until 10 is not after --since 20"),
        (["--idle", "0"], "--idle must be a number of seconds above 0"),
    ],
)
def test_bad_flags_give_one_line(
    capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    status, out, err = run_capture(capsys, str(DATA / "ipv6.pcap"), *flags)
    assert (status, out) == (1, "")
    assert err.count("\n") == 1 and message in err


def test_server_filter_with_ipv6_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    document = capture_json(
        capsys, str(DATA / "ipv6.pcap"), "--server", "[2001:db8::1]:8443"
    )
    assert [f["client"]["port"] for f in document["connections"]] == [50002]
    document = capture_json(capsys, str(DATA / "ipv6.pcap"), "--server", "2001:db8::1")
    assert len(document["connections"]) == 2


def test_segment_builder_is_sane() -> None:
    # The frames the tests build are what dpkt itself parses back.
    frame = link(
        "eth", ip_packet("10.0.0.1", "10.0.0.2", 6, tcp_segment(1, 2, 3, 4, SYN | ACK))
    )
    tcp = dpkt.ethernet.Ethernet(frame).data.data
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags) == (
        1,
        2,
        3,
        4,
        SYN | ACK,
    )
    assert isinstance(ScanOptions().idle, float)


def test_reads_standard_input() -> None:
    # tcpdump -w - | realip capture -: a pipe, which cannot seek.
    with open(DATA / "multi_interface.pcapng", "rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "realip", "capture", "--json", "-"],
            stdin=stdin,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["connections"]) == 4
