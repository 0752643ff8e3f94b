"""``realip k8s check``: find the Kubernetes hairpin before it breaks production.

Reads manifests (files, folders, ``-`` for stdin) or, with no input, the current
kubectl context, and prints one finding per LoadBalancer Service whose in-cluster
callers would bypass a balancer that adds a PROXY header or terminates TLS.

Exit status: 0 when no finding reaches ``--fail-on``, 1 when one does, 2 for
unreadable input or bad usage (1 is taken by findings, so input errors are
reported here rather than by the top-level error boundary).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from typing import Any

from realip.cli._exit import ExitStatus
from realip.errors import ConfigError
from realip.k8s import (
    PROVIDERS,
    CheckOptions,
    Finding,
    ManifestError,
    Report,
    Severity,
    Version,
    check,
    kubectl_server_version,
    load_kubectl,
    load_paths,
)

_WIDTH = 88


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "k8s",
        help="check Kubernetes objects for PROXY-protocol hairpin problems",
        description="Kubernetes checks.",
    )
    commands = parser.add_subparsers(dest="k8s_command", metavar="CHECK")
    parser.set_defaults(handler=_missing_check(parser))

    run = commands.add_parser(
        "check",
        help="find LoadBalancer Services whose in-cluster callers bypass the balancer",
        description="Find LoadBalancer Services whose in-cluster callers would "
        "bypass a balancer that adds a PROXY header or terminates TLS (the "
        "kube-proxy hairpin), and print the fix for each provider. With no PATH, "
        "read the current kubectl context.",
        epilog="Exit status: 0 when no finding reaches --fail-on, 1 when one does, "
        "2 for unreadable input or bad usage.",
    )
    run.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="manifest file or folder (YAML or JSON); - reads standard input",
    )
    run.add_argument("--json", action="store_true", help='print {"findings": [...]}')
    run.add_argument(
        "--fail-on",
        choices=[s.label for s in sorted(Severity, reverse=True)],
        default=Severity.BROKEN.label,
        help="exit 1 when a finding is at least this severe (default: broken)",
    )
    run.add_argument(
        "--assume-proxy-protocol",
        action="store_true",
        help="treat balancers without a PROXY annotation as sending PROXY headers "
        "(a cloud-controller-wide default such as "
        "HCLOUD_LOAD_BALANCERS_USES_PROXYPROTOCOL)",
    )
    run.add_argument(
        "--kubernetes-version",
        type=_version,
        metavar="X.Y",
        help="the kube-proxy/cluster version; ipMode Proxy needs 1.30 (1.29 with "
        "the LoadBalancerIPMode gate)",
    )
    run.add_argument(
        "--cilium-version",
        type=_version,
        metavar="X.Y.Z",
        help="Cilium replaces kube-proxy at this version (ipMode honoured from 1.17, "
        "not in 1.18.0)",
    )
    run.add_argument(
        "--ccm-version",
        type=_version,
        metavar="X.Y.Z",
        help="the cloud controller manager's release (decides whether it sets "
        "ipMode Proxy)",
    )
    run.add_argument(
        "--provider",
        choices=sorted(p.key for p in PROVIDERS),
        help="the provider of Services whose annotations name none",
    )
    run.add_argument("--context", help="kubectl context to read when no PATH is given")
    run.set_defaults(handler=_check)


def _missing_check(parser: argparse.ArgumentParser) -> Any:
    def handler(args: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        print("realip: error: name a check, e.g. realip k8s check", file=sys.stderr)
        return ExitStatus.USAGE

    return handler


def _version(text: str) -> Version:
    try:
        return Version.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _check(args: argparse.Namespace) -> int:
    try:
        report = _run(args)
    except ManifestError as exc:
        print(f"realip: error: {exc}", file=sys.stderr)
        return ExitStatus.USAGE

    if args.json:
        findings = [f.to_dict() for f in report.findings]
        print(json.dumps({"findings": findings}, indent=2))
    else:
        _print_text(report)
    threshold = Severity.parse(args.fail_on)
    failed = any(f.severity >= threshold for f in report.findings)
    return ExitStatus.ERROR if failed else ExitStatus.OK


def _run(args: argparse.Namespace) -> Report:
    server_version: Version | None = None
    if args.paths:
        manifests = load_paths(args.paths, sys.stdin)
    elif shutil.which("kubectl"):
        manifests = load_kubectl(args.context)
        if args.kubernetes_version is None:
            server_version = kubectl_server_version(args.context)
    else:
        raise ManifestError(
            "no input: give a PATH (or - for stdin), or put kubectl on PATH",
            "the command line",
        )
    options = CheckOptions(
        assume_proxy_protocol=args.assume_proxy_protocol,
        kubernetes_version=args.kubernetes_version,
        server_version=server_version,
        cilium_version=args.cilium_version,
        ccm_version=args.ccm_version,
        provider=args.provider,
    )
    return check(manifests, options)


def _print_text(report: Report) -> None:
    for finding in report.findings:
        print(_render(finding))
    counts = {s: 0 for s in Severity}
    for finding in report.findings:
        counts[finding.severity] += 1
    noun = "Service" if report.services == 1 else "Services"
    if not report.findings:
        print(f"No hairpin problem in {report.services} LoadBalancer {noun}.")
        return
    summary = ", ".join(
        f"{counts[s]} {s.label}" for s in sorted(Severity, reverse=True)
    )
    print(f"{summary} in {report.services} LoadBalancer {noun}.")


def _render(finding: Finding) -> str:
    head = (
        f"{finding.severity.label.upper()}  {finding.kind} "
        f"{finding.namespace}/{finding.name}  [{finding.provider}]"
    )
    lines = [head]
    lines += textwrap.wrap(
        finding.message,
        _WIDTH,
        initial_indent="  ",
        subsequent_indent="  ",
        break_on_hyphens=False,
    )
    # Commands are printed whole, never wrapped, so they can be pasted.
    lines.append(f"  fix: {finding.fix}")
    for alt in finding.alternatives:
        if alt.startswith("then "):
            lines.append(f" then: {alt.removeprefix('then ')}")
        else:
            lines.append(f"   or: {alt.removeprefix('or ')}")
    if finding.source:
        lines.append(f"  from: {finding.source}")
    return "\n".join(lines) + "\n"
