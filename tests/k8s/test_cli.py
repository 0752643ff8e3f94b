"""``realip k8s check`` as a user runs it: exit statuses, inputs, errors.

Exit statuses are checked in a real subprocess; the kubectl path runs a small
fake ``kubectl`` script (an external program, not a network peer) that prints a
committed JSON List.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from realip.cli import main

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
CLUSTER = HERE / "kubectl-cluster.json"


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "realip", "k8s", "check", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


# -- exit statuses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["story-before.yaml"], 1),
        (["story-after.yaml"], 0),
        (["traefik-args.yaml"], 0),
        (["traefik-args.yaml", "--fail-on", "degraded"], 1),
        (["haproxytech-cidr.yaml"], 0),
        (["haproxytech-cidr.yaml", "--fail-on", "degraded"], 0),
        (["haproxytech-cidr.yaml", "--fail-on", "at-risk"], 1),
        (["story-before.yaml", "--fail-on", "at-risk"], 1),
        (["hetzner-auto-ipmode.yaml", "--kubernetes-version", "1.28"], 1),
        (["hetzner-auto-ipmode.yaml", "--kubernetes-version", "v1.31.4"], 0),
        (["hetzner-global-proxy.yaml"], 0),
        (["hetzner-global-proxy.yaml", "--assume-proxy-protocol"], 1),
    ],
)
def test_exit_status(args: list[str], status: int) -> None:
    done = run(str(CORPUS / args[0]), *args[1:])
    assert done.returncode == status, done.stderr
    assert done.stderr == ""


def test_human_output_names_the_fix() -> None:
    done = run(str(CORPUS / "story-before.yaml"))
    lines = done.stdout.splitlines()
    assert (
        lines[0] == "BROKEN  Service ingress-nginx/ingress-nginx-controller  [hetzner]"
    )
    fix = next(line for line in lines if line.startswith("  fix: "))
    # Printed whole, never wrapped, so it can be pasted.
    assert fix == (
        "  fix: kubectl annotate service -n ingress-nginx ingress-nginx-controller "
        "load-balancer.hetzner.cloud/hostname=<dns-name-for-203.0.113.10>"
    )
    assert lines[-1] == "1 broken, 0 degraded, 0 at-risk in 1 LoadBalancer Service."


def test_clean_output_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["k8s", "check", str(CORPUS / "story-after.yaml")]) == 0
    assert capsys.readouterr().out == "No hairpin problem in 1 LoadBalancer Service.\n"


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["k8s", "check", "--json", str(CORPUS / "story-before.yaml")])
    document = json.loads(capsys.readouterr().out)
    assert status == 1
    assert list(document) == ["findings"]
    (finding,) = document["findings"]
    assert finding["kind"] == "Service"
    assert finding["namespace"] == "ingress-nginx"
    assert finding["name"] == "ingress-nginx-controller"
    assert finding["severity"] == "broken"
    assert finding["provider"] == "hetzner"
    assert finding["fix"].startswith("kubectl annotate service")
    assert finding["message"].count(". ") == 1


def test_json_output_when_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["k8s", "check", "--json", str(CORPUS / "aws")]) == 0
    assert json.loads(capsys.readouterr().out) == {"findings": []}


# -- inputs ------------------------------------------------------------------------


def test_stdin_in_a_subprocess() -> None:
    text = (CORPUS / "story-before.yaml").read_text()
    done = run("-", "--json", stdin=text)
    assert done.returncode == 1, done.stderr
    (finding,) = json.loads(done.stdout)["findings"]
    assert finding["source"].startswith("<stdin>")


def test_stdin_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO((CORPUS / "kong.yaml").read_text()))
    assert main(["k8s", "check", "--json", "-"]) == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert finding["provider"] == "vultr"


def test_folder_and_several_paths(capsys: pytest.CaptureFixture[str]) -> None:
    # aws/ is a folder holding a ServiceList and a lone ConfigMap.
    paths = [str(CORPUS / "aws"), str(CORPUS / "traefik-args.yaml")]
    assert main(["k8s", "check", "--json", "--fail-on", "degraded", *paths]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["provider"], f["severity"]) for f in findings] == [
        ("hetzner", "degraded")
    ]


def test_whole_corpus_folder_reads(capsys: pytest.CaptureFixture[str]) -> None:
    # Objects with the same names overwrite one another here, so only the
    # reading and the count of Services are checked, not the verdicts.
    texts = [p.read_text() for p in CORPUS.rglob("*") if p.is_file()]
    expected = sum(
        t.count("type: LoadBalancer") + t.count('"type": "LoadBalancer"') for t in texts
    )
    status = main(["k8s", "check", str(CORPUS)])
    out = capsys.readouterr().out
    assert status == 1
    assert out.rstrip().endswith(f"in {expected} LoadBalancer Services.")


def test_kubectl_list_servicelist_and_single_object(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, provider in [
        ("linode-hostname-and-ip.json", "linode"),
        ("unknown-receiver.json", "digitalocean"),
    ]:
        assert main(["k8s", "check", "--json", str(CORPUS / name)]) == 1
        (finding,) = json.loads(capsys.readouterr().out)["findings"]
        assert finding["provider"] == provider
    assert main(["k8s", "check", str(CORPUS / "aws" / "service-list.json")]) == 0


def test_no_loadbalancer_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["k8s", "check", str(CORPUS / "not-loadbalancer.yaml")]) == 0
    assert "in 0 LoadBalancer Services" in capsys.readouterr().out


# -- bad input: exit 2, one line, no traceback -------------------------------------


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  - oops\n")
    line = _one_error_line(run(str(bad)))
    assert line.startswith("realip: error: malformed YAML")
    assert "at line 5" in line
    assert line.endswith(f", in {bad}")


def test_malformed_yaml_on_stdin() -> None:
    line = _one_error_line(run("-", stdin="kind: Service\n  bad: [\n"))
    assert line.startswith("realip: error: malformed YAML")
    assert line.endswith(", in <stdin>")


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "kind": "List",\n  "items": [\n}\n')
    line = _one_error_line(run(str(bad)))
    assert line.startswith("realip: error: malformed JSON")
    assert "at line 4" in line
    assert line.endswith(f", in {bad}")


def test_bad_document_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text((CORPUS / "story-after.yaml").read_text())
    (tmp_path / "b.yml").write_text("just a string\n")
    line = _one_error_line(run(str(tmp_path)))
    assert "expected Kubernetes objects, found a str" in line
    assert line.endswith("b.yml")


def test_missing_file(tmp_path: Path) -> None:
    line = _one_error_line(run(str(tmp_path / "nope.yaml")))
    assert "cannot read (No such file or directory)" in line
    assert line.endswith("nope.yaml")


@pytest.mark.parametrize(
    "args",
    [
        ["--fail-on", "bad"],
        ["--kubernetes-version", "latest"],
        ["--cilium-version", "one"],
        ["--provider", "nowhere"],
    ],
)
def test_bad_usage_exits_2(args: list[str]) -> None:
    done = run(str(CORPUS / "story-after.yaml"), *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_k8s_without_a_check_exits_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "realip", "k8s"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


# -- no input: kubectl -------------------------------------------------------------

# What the check must ask kubectl for: Services, the ingress controllers'
# ConfigMaps and workloads, and the data plane's DaemonSets.
RESOURCES = "services,configmaps,deployments,daemonsets,statefulsets"

FAKE_KUBECTL = """#!/bin/sh
printf '%s\\n' "$*" >> "{log}"
case "$*" in
  *version*) printf '{{"serverVersion": {{"gitVersion": "v1.31.2"}}}}\\n' ;;
  *"get {resources} --all-namespaces -o json"*) cat "{cluster}" ;;
  *) echo "error: unexpected arguments: $*" >&2; exit 1 ;;
esac
"""

FAILING_KUBECTL = """#!/bin/sh
echo "E0101 memcache.go:265] couldn't get current server API group list" >&2
echo "The connection to the server localhost:8080 was refused" >&2
exit 1
"""


def _fake_path(tmp_path: Path, script: str) -> dict[str, str]:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(script)
    kubectl.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin"
    return env


def test_kubectl_is_read_without_input(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    env = _fake_path(
        tmp_path,
        FAKE_KUBECTL.format(log=log, cluster=CLUSTER, resources=RESOURCES),
    )
    done = run("--json", env=env)
    assert done.returncode == 1, done.stderr
    (finding,) = json.loads(done.stdout)["findings"]
    # ipMode is Proxy, but the cluster's cilium-config and DaemonSet show Cilium
    # 1.18.0 replacing kube-proxy, which ignores it.
    assert finding["severity"] == "broken"
    assert "Cilium 1.18.0" in finding["message"]
    calls = log.read_text()
    assert "--all-namespaces -o json" in calls
    assert "version -o json" in calls


def test_kubectl_context_and_flag_override(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    env = _fake_path(
        tmp_path,
        FAKE_KUBECTL.format(log=log, cluster=CLUSTER, resources=RESOURCES),
    )
    done = run("--context", "prod", "--cilium-version", "1.18.1", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "No hairpin problem in 1 LoadBalancer Service.\n"
    assert "--context prod get services" in log.read_text()


def test_kubectl_failure_exits_2(tmp_path: Path) -> None:
    env = _fake_path(tmp_path, FAILING_KUBECTL)
    line = _one_error_line(run(env=env))
    assert (
        "kubectl failed: The connection to the server localhost:8080 was refused"
        in line
    )


def test_no_input_and_no_kubectl_exits_2(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))
    line = _one_error_line(run(env=env))
    assert "no input" in line
