"""Text for people and JSON for scripts, for whoami, send and probe.

The JSON shapes are the contract scripts rely on; the text is for reading in a
terminal and may change. Every renderer takes plain data and returns a string.
"""

from __future__ import annotations

import json
from typing import Any

from realip.diagnostics._exchange import Exchange, Outcome
from realip.diagnostics._probe import Attempt, AttemptKind, ProbeReport
from realip.errors import ProxyProtocolError
from realip.proxyproto import ProxyHeader, decode

_FIRST_BYTES = 64
_KEY_WIDTH = 13


# -- shared pieces ------------------------------------------------------------------


def show_bytes(data: bytes, limit: int = _FIRST_BYTES) -> str:
    """Bytes as a quoted, escaped string, cut at ``limit``."""
    text = repr(data[:limit])[1:]
    return text + ("..." if len(data) > limit else "")


def hexdump(data: bytes) -> str:
    """The classic 16-bytes-a-line dump: offset, hex in two groups, ASCII."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        left = " ".join(f"{byte:02x}" for byte in chunk[:8])
        right = " ".join(f"{byte:02x}" for byte in chunk[8:])
        text = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in chunk)
        lines.append(f"{offset:08x}  {left:<23}  {right:<23}  |{text}|")
    lines.append(f"{len(data):08x}")
    return "\n".join(lines) + "\n"


def describe_header(data: bytes) -> str:
    """One line for a header we built: the v1 line itself, or v2's fields."""
    if not data:
        return "no header"
    try:
        header = decode(data)
    except ProxyProtocolError:
        return f"{len(data)} bytes that are not a PROXY header"
    return _header_line(header, data)


def _header_line(header: ProxyHeader, data: bytes) -> str:
    if header.version == 1:
        return data[: header.length - 2].decode("ascii")
    if header.is_local:
        return f"v2 LOCAL ({header.length} bytes)"
    return (
        f"v2 PROXY {header.family.name} {_addr(header.source)} -> "
        f"{_addr(header.destination)} ({header.length} bytes)"
    )


def _addr(address: object) -> str:
    if isinstance(address, tuple):
        host, port = address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)


def _endpoint(value: dict[str, Any] | None) -> str:
    if value is None:
        return "-"
    if "path" in value:
        return str(value["path"])
    return _addr((value["address"], value["port"]))


def _line(key: str, value: str, indent: str = "") -> str:
    return f"{indent}{key + ':':<{_KEY_WIDTH - len(indent)}} {value}"


# -- whoami ---------------------------------------------------------------------------


def render_whoami(report: dict[str, Any]) -> str:
    """The text answer of ``realip whoami`` for one connection or request."""
    lines = [
        _line("peer", _endpoint(report["peer"])),
        _line("local", _endpoint(report["local"])),
        _line("action", report["action"]),
    ]
    header = report["proxy_header"]
    ignored = report.get("ignored_proxy_header")
    if header is not None:
        lines.extend(_whoami_header(header))
    elif ignored is not None:
        # Shown in full (it is what the balancer sent), and marked: under the
        # ignore action it was read and discarded, and the client is the peer.
        note = f"IGNORED (action {report['action']}: read and discarded)"
        lines.extend(_whoami_header(ignored, note))
    else:
        lines.append(_line("header", "none"))
    client = report["client"]
    lines.append(_line("client", f"{_endpoint(client)} (from the {client['from']})"))
    http = report.get("http")
    if http is not None:
        lines.append(_line("request", http["request_line"]))
        lines.append(_line("host", http["host"] or "-"))
        forwarded = http["forwarded_headers"]
        if not forwarded:
            lines.append(_line("forwarded", "none"))
        for item in forwarded:
            lines.append(_line("forwarded", f"{item['name']}: {item['value']}"))
    return "\n".join(lines) + "\n"


def _whoami_header(header: dict[str, Any], note: str = "") -> list[str]:
    lines = [
        _line(
            "header",
            f"v{header['version']} {header['command']} {header['family']} "
            f"{header['protocol']}, {header['length']} bytes"
            + (f", {note}" if note else ""),
        ),
        _line("source", _endpoint(header["source"]), "  "),
        _line("destination", _endpoint(header["destination"]), "  "),
    ]
    for tlv in header["tlvs"]:
        lines.append(_line(f"tlv 0x{tlv['type']:02x}", _tlv_text(tlv), "  "))
    return lines


def _tlv_text(tlv: dict[str, Any]) -> str:
    decoded = {
        key: value for key, value in tlv.items() if key not in ("type", "value", "name")
    }
    name = tlv.get("name", "unknown")
    if not decoded:
        return f"{name} hex {tlv['value'] or '(empty)'}"
    parts = [
        f"{key}={json.dumps(value) if isinstance(value, dict | list) else value}"
        for key, value in decoded.items()
    ]
    return f"{name} " + " ".join(parts)


# -- send ---------------------------------------------------------------------------


def describe_exchange(result: Exchange) -> str:
    """The one-line summary ``realip send`` writes to stderr."""
    target = _addr(result.target)
    if result.outcome is Outcome.UNREACHABLE:
        return f"could not connect to {target}: {result.error}"
    header = describe_header(result.header)
    payload = len(result.sent) - len(result.header)
    parts = [
        f"{_addr(result.local)} -> {_addr(result.peer)}",
        f"sent {header} + {payload} payload bytes",
    ]
    if result.outcome is Outcome.RESPONSE:
        ending = result.ending.value if result.ending else "?"
        parts.append(f"received {len(result.received)} bytes, then {ending}")
    else:
        parts.append(f"no answer: {result.outcome.value}")
    parts.append(f"{result.elapsed_s * 1000:.0f} ms")
    if result.error:
        parts.append(result.error)
    return "; ".join(parts)


# -- probe ----------------------------------------------------------------------------


def probe_to_json(report: ProbeReport) -> dict[str, Any]:
    """The JSON document of ``realip probe --json``."""
    spoofed = report.attempt(AttemptKind.V1_SPOOFED)
    return {
        "target": _addr(report.target),
        "mode": report.mode.value,
        "verdict": report.verdict.value,
        "spoofable": report.spoofable,
        "reachable": report.reachable,
        "reason": report.reason,
        "reported_address": spoofed.reported_address,
        "timeout_s": report.timeout,
        "elapsed_ms": _ms(report.elapsed_s),
        "attempts": [_attempt_json(attempt) for attempt in report.attempts],
    }


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    result: Exchange = attempt.exchange
    header = result.header
    return {
        "attempt": attempt.kind.value,
        "sent": {
            "header": describe_header(header) if header else None,
            "header_hex": header.hex() if header else None,
            "header_bytes": len(header),
            "payload_bytes": len(result.sent) - len(header),
            "claimed_source": attempt.claimed,
        },
        "local": _addr(result.local) if result.local else None,
        "outcome": result.outcome.value,
        "ending": result.ending.value if result.ending else None,
        "reading": attempt.reading.value,
        "evidence": attempt.evidence,
        "timing": {
            "connect_ms": _ms(result.connect_s),
            "first_byte_ms": _ms(result.first_byte_s),
            "elapsed_ms": _ms(result.elapsed_s),
        },
        "first_bytes": {
            "text": show_bytes(result.received),
            "hex": result.received[:_FIRST_BYTES].hex(),
            "total": len(result.received),
        },
        "http_status": attempt.http_status,
        "reported_address": attempt.reported_address,
        "tls": attempt.tls,
        "error": result.error,
    }


_VERDICT_TEXT = {
    "strict": "requires a PROXY header",
    "optional": "accepts connections with and without a PROXY header",
    "none": "does not speak the PROXY protocol",
    "unclear": "the answers do not decide",
}


def render_probe(report: ProbeReport) -> str:
    """The text report of ``realip probe``."""
    data = probe_to_json(report)
    lines = [
        f"probe {data['target']} ({data['mode']}): "
        f"{len(data['attempts'])} attempts, {report.timeout:g} s each, "
        f"{data['elapsed_ms']:.0f} ms in all",
        _line("verdict", _verdict_text(data)),
        _line("why", data["reason"]),
        _line("spoofable", _spoof_text(data)),
    ]
    if data["reported_address"]:
        lines.append(
            _line(
                "reported",
                f"{data['reported_address']} for the attempt claiming "
                f"{report.attempt(AttemptKind.V1_SPOOFED).claimed}",
            )
        )
    lines.append("")
    for attempt in data["attempts"]:
        lines.extend(_attempt_lines(attempt))
    return "\n".join(lines) + "\n"


def _verdict_text(data: dict[str, Any]) -> str:
    if not data["reachable"]:
        return f"{data['verdict']}: the endpoint could not be reached"
    return f"{data['verdict']}: {_VERDICT_TEXT[data['verdict']]}"


def _spoof_text(data: dict[str, Any]) -> str:
    if not data["spoofable"]:
        return "no"
    return (
        "YES: it accepted a PROXY header from this machine, which is not its load "
        "balancer; anyone who can connect can claim any address"
    )


def _attempt_lines(attempt: dict[str, Any]) -> list[str]:
    pad = " " * (_KEY_WIDTH + 1)
    lines = [
        _line(attempt["attempt"], f"{attempt['reading']:<10} {attempt['evidence']}")
    ]
    sent = attempt["sent"]
    if attempt["outcome"] not in ("unreachable", "skipped"):
        header = sent["header"] or "no header"
        lines.append(f"{pad}sent: {header} + {sent['payload_bytes']} payload bytes")
    first = attempt["first_bytes"]
    if first["total"]:
        lines.append(f"{pad}got:  {first['text']} ({first['total']} bytes)")
    if attempt["reported_address"]:
        lines.append(f"{pad}reports client {attempt['reported_address']}")
    if attempt["tls"] and attempt["tls"]["error"]:
        lines.append(f"{pad}tls:  {attempt['tls']['error']}")
    return lines


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
