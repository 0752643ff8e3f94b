"""Diagnostics for a PROXY protocol chain: what a server sees (``whoami``), one
hand-made connection (``send``), and a verdict on an endpoint (``probe``).

>>> from realip.diagnostics import judge, AttemptKind, Reading, Verdict
>>> readings = dict.fromkeys(AttemptKind, Reading.ACCEPTED)
>>> readings[AttemptKind.NO_HEADER] = Reading.REJECTED
>>> judge(readings)[0] is Verdict.STRICT
True
"""

from realip.diagnostics._endpoint import (
    format_endpoint,
    parse_endpoint,
    parse_ip,
    parse_ip_endpoint,
)
from realip.diagnostics._exchange import (
    Ending,
    Exchange,
    HttpFraming,
    Outcome,
    RawFraming,
    TlsFraming,
    exchange,
)
from realip.diagnostics._payload import http_request, parse_tlv, unescape
from realip.diagnostics._probe import (
    CARRYING,
    SPOOF_V4,
    SPOOF_V6,
    Attempt,
    AttemptKind,
    Mode,
    ProbeReport,
    Reading,
    Verdict,
    judge,
    probe,
)
from realip.diagnostics._render import (
    describe_exchange,
    describe_header,
    hexdump,
    probe_to_json,
    render_probe,
    render_whoami,
)
from realip.diagnostics._send import HeaderSpec, HeaderVersion, send
from realip.diagnostics._whoami import WhoamiService, connection_report, run_whoami

__all__ = [
    "CARRYING",
    "SPOOF_V4",
    "SPOOF_V6",
    "Attempt",
    "AttemptKind",
    "Ending",
    "Exchange",
    "HeaderSpec",
    "HeaderVersion",
    "HttpFraming",
    "Mode",
    "Outcome",
    "ProbeReport",
    "RawFraming",
    "Reading",
    "TlsFraming",
    "Verdict",
    "WhoamiService",
    "connection_report",
    "describe_exchange",
    "describe_header",
    "exchange",
    "format_endpoint",
    "hexdump",
    "http_request",
    "judge",
    "parse_endpoint",
    "parse_ip",
    "parse_ip_endpoint",
    "parse_tlv",
    "probe",
    "probe_to_json",
    "render_probe",
    "render_whoami",
    "run_whoami",
    "send",
    "unescape",
]
