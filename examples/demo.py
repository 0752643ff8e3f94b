"""The realip chain on one machine, in a few seconds, on loopback only.

Starts ``realip serve`` with a trust policy and a /login rate limit, then plays
the roles of a load balancer, a pod that hairpins past it, and an attacker, each
from its own loopback address (127.0.0.2, .3, .4), with ``realip send``. Finally
``realip probe`` judges the endpoint from outside. Run: ``python3 examples/demo.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REALIP = [sys.executable, "-m", "realip"]
LB, POD, ATTACKER = "127.0.0.2", "127.0.0.3", "127.0.0.4"
POLICY = [
    f"--proxy-protocol=require={LB}",  # the load balancer always sends a header
    f"--proxy-protocol=optional={POD}",  # pods may reach us without passing it
    "--proxy-protocol=reject",  # anyone else sending a header is spoofing
]


def start_server() -> tuple[subprocess.Popen[str], str]:
    argv = [
        *REALIP,
        "serve",
        "echo_app:app",
        "--app-dir",
        str(HERE),
        "--bind",
        "127.0.0.1:0",
        *POLICY,
        "--limit",
        "/login=3/minute",
    ]
    print("$ realip serve echo_app:app --app-dir examples " + " ".join(argv[9:]))
    server = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    if server.stderr is None:  # for the type checker: PIPE always gives a stream
        raise SystemExit("no stderr pipe")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = server.stderr.readline()
        match = re.search(r"listening on http://([\d.]+):(\d+)", line)
        if match:
            return server, f"{match[1]}:{match[2]}"
        if not line and server.poll() is not None:
            break
    server.kill()
    raise SystemExit("realip serve did not start")


def send(target: str, title: str, *args: str) -> None:
    print(f"\n## {title}\n$ realip send {target} {' '.join(args)}")
    done = subprocess.run(
        [*REALIP, "send", target, *args], capture_output=True, text=True, timeout=30
    )
    lines = done.stdout.strip().splitlines()
    status = lines[0] if lines else "(no answer: the server closed the connection)"
    body = [line for line in lines if line.startswith("{") or line.endswith("Requests")]
    print(f"   -> {status}   {body[-1] if body else ''}")
    if done.stderr.strip():
        print(f"   {done.stderr.strip().splitlines()[-1]}")


def main() -> int:
    server, target = start_server()
    try:
        send(
            target,
            "The load balancer forwards a client: v2 header claiming 203.0.113.7",
            "--bind-source",
            LB,
            "--proxy",
            "v2",
            "--source",
            "203.0.113.7:50000",
            "--http",
            "/",
        )
        send(
            target,
            "A pod calls the balancer's IP; kube-proxy short-circuits it: no header",
            "--bind-source",
            POD,
            "--proxy",
            "none",
            "--http",
            "/",
        )
        send(
            target,
            "The same hairpin call where a header is required (the outage story)",
            "--bind-source",
            LB,
            "--proxy",
            "none",
            "--http",
            "/",
        )
        send(
            target,
            "An attacker claims to be 198.51.100.1 with a header of its own",
            "--bind-source",
            ATTACKER,
            "--proxy",
            "v1",
            "--source",
            "198.51.100.1:1",
            "--http",
            "/",
        )
        for attempt in range(1, 5):
            send(
                target,
                f"Login attempt {attempt} of the client 203.0.113.7 (limit 3/minute)",
                "--bind-source",
                LB,
                "--proxy",
                "v2",
                "--source",
                "203.0.113.7:50000",
                "--http",
                "/login",
            )
        print(f"\n## From outside: realip probe {target} --http")
        subprocess.run([*REALIP, "probe", target, "--http"], timeout=60)
    finally:
        server.terminate()
        _, log = server.communicate(timeout=15)
    print("\n## What the server logged (refusals name their likely cause)")
    for line in log.splitlines():
        if "WARNING" in line:
            print("   " + line.split(" WARNING ", 1)[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
