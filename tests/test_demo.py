"""The README's first command: the demo must show the failure and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def test_demo_shows_real_client_hairpin_spoofing_and_limit() -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # The balancer's header is believed: the app sees the claimed client.
    assert '"client": "203.0.113.7"' in out
    # The hairpinning pod is served as itself under `optional`.
    assert '"client": "127.0.0.3"' in out
    # The fourth login attempt is refused by the limiter.
    assert out.count("429 Too Many Requests") == 1
    # Refusals are logged with their likely cause.
    assert "Kubernetes hairpin?" in out
    assert "which is not a trusted proxy" in out
    # The probe from this machine sees that headers from it are refused.
    assert "spoofable:    no" in out
