"""Every manifest in the corpus gives the severity, provider and fix we expect.

The corpus holds, per provider, Services as ``kubectl get -o json``, the raw API
and Helm render them, with and without a populated status, before and after the
fix. Each case is checked through the library and through ``realip.cli.main``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from realip.cli import main
from realip.k8s import CheckOptions, Finding, Severity, Version, check, load_paths

CORPUS = Path(__file__).parent / "corpus"

# path -> (severity, provider, receiver, text the fix must contain), or None when
# the Service is safe.
Expected = tuple[str, str, str, str] | None
EXPECTED: dict[str, Expected] = {
    # The story: Hetzner + ingress-nginx, before and after the hostname fix.
    "story-before.yaml": (
        "broken",
        "hetzner",
        "ingress-nginx",
        "kubectl annotate service -n ingress-nginx ingress-nginx-controller "
        "load-balancer.hetzner.cloud/hostname=<dns-name-for-203.0.113.10>",
    ),
    "story-after.yaml": None,
    # Hetzner's automatic ipMode, and what the objects cannot show.
    "hetzner-auto-ipmode.yaml": None,
    "hetzner-no-status.yaml": (
        "at-risk",
        "hetzner",
        "ingress-nginx",
        "load-balancer.hetzner.cloud/hostname=<dns-name-for-the-balancer>",
    ),
    "hetzner-old-ccm.yaml": (
        "broken",
        "hetzner",
        "ingress-nginx",
        "load-balancer.hetzner.cloud/hostname=",
    ),
    "hetzner-global-proxy.yaml": (
        "at-risk",
        "hetzner",
        "ingress-nginx",
        "load-balancer.hetzner.cloud/hostname=<dns-name-for-198.51.100.20>",
    ),
    "hetzner-global-proxy-ccm.yaml": (
        "broken",
        "hetzner",
        "ingress-nginx",
        "load-balancer.hetzner.cloud/hostname=<dns-name-for-198.51.100.20>",
    ),
    # DigitalOcean with ingress-nginx's own render, and its hostname fix.
    "digitalocean-ingress-nginx.yaml": (
        "broken",
        "digitalocean",
        "ingress-nginx",
        "service.beta.kubernetes.io/do-loadbalancer-hostname=<dns-name-for-the-balancer>",
    ),
    "digitalocean-ingress-nginx-fixed.yaml": None,
    # Linode and Vultr put a hostname beside the IP: it does not help.
    "linode-hostname-and-ip.json": (
        "broken",
        "linode",
        "ingress-nginx",
        "service.beta.kubernetes.io/linode-loadbalancer-hostname-only-ingress=true",
    ),
    "linode-hostname-only.json": None,
    "linode-port-proxy-unpopulated.json": (
        "broken",
        "linode",
        "ingress-nginx",
        "linode-loadbalancer-hostname-only-ingress=true",
    ),
    "vultr-hostname-and-ip.yaml": (
        "broken",
        "vultr",
        "ingress-nginx",
        "service.beta.kubernetes.io/vultr-loadbalancer-hostname=<dns-name-for-192.0.2.77>",
    ),
    # AWS reports only the ELB/NLB hostname (a ServiceList plus a ConfigMap).
    "aws": None,
    "tls-aws.yaml": None,
    # Scaleway's automatic ipMode needs PROXY on every port.
    "scaleway-auto-ipmode.yaml": None,
    "scaleway-some-ports.yaml": (
        "broken",
        "scaleway",
        "ingress-nginx",
        "service.beta.kubernetes.io/scw-loadbalancer-ip-mode=Proxy",
    ),
    "openstack-proxy.yaml": None,
    "ovh-iolb.yaml": ("broken", "ovh-iolb", "ingress-nginx", "Octavia"),
    "civo-hostname.yaml": None,
    "upcloud-hostname.yaml": None,
    "oci-vip.yaml": (
        "broken",
        "oci",
        "ingress-nginx",
        "oci.oraclecloud.com/ingress-ip-mode=proxy",
    ),
    "cloudscale-no-status.yaml": (
        "at-risk",
        "cloudscale",
        "ingress-nginx",
        "k8s.cloudscale.ch/loadbalancer-ip-mode=Proxy",
    ),
    "cloudscale-vip.yaml": (
        "broken",
        "cloudscale",
        "ingress-nginx",
        "k8s.cloudscale.ch/loadbalancer-ip-mode=Proxy --overwrite",
    ),
    "stackit-vip.yaml": (
        "broken",
        "stackit",
        "ingress-nginx",
        "lb.stackit.cloud/ip-mode-proxy=true",
    ),
    "outscale-hostname.yaml": None,
    "azure-pls.yaml": (
        "broken",
        "azure",
        "ingress-nginx",
        "realip serve MODULE:APP --proxy-protocol require=<LB CIDR>",
    ),
    # TLS-terminating balancers.
    "tls-digitalocean.yaml": (
        "broken",
        "digitalocean",
        "the receiver",
        "do-loadbalancer-hostname=<dns-name-for-203.0.113.55>",
    ),
    "tls-digitalocean-passthrough.yaml": None,
    "tls-hetzner.yaml": (
        "broken",
        "hetzner",
        "the receiver",
        "load-balancer.hetzner.cloud/hostname=",
    ),
    # Receivers other than ingress-nginx.
    "traefik-args.yaml": (
        "degraded",
        "hetzner",
        "Traefik",
        "load-balancer.hetzner.cloud/hostname=<dns-name-for-198.51.100.30>",
    ),
    "traefik-static-config.yaml": (
        "degraded",
        "digitalocean",
        "Traefik",
        "do-loadbalancer-hostname=",
    ),
    "haproxytech-all.yaml": (
        "broken",
        "linode",
        "HAProxy Kubernetes Ingress",
        "linode-loadbalancer-hostname-only-ingress=true",
    ),
    "haproxytech-cidr.yaml": (
        "at-risk",
        "linode",
        "HAProxy Kubernetes Ingress",
        "linode-loadbalancer-hostname-only-ingress=true",
    ),
    "haproxy-ingress.yaml": (
        "broken",
        "oci",
        "HAProxy Ingress",
        "oci.oraclecloud.com/ingress-ip-mode=proxy",
    ),
    "contour.yaml": (
        "broken",
        "linode",
        "Contour (Envoy)",
        "kubectl annotate service -n projectcontour envoy "
        "service.beta.kubernetes.io/linode-loadbalancer-hostname-only-ingress=true",
    ),
    "kong.yaml": (
        "broken",
        "vultr",
        "Kong",
        "kubectl annotate service -n kong kong-kong-proxy "
        "service.beta.kubernetes.io/vultr-loadbalancer-hostname=",
    ),
    # Configuration mismatches that break every request, not only internal ones.
    "mismatch-nginx-off.yaml": (
        "broken",
        "digitalocean",
        "ingress-nginx",
        """kubectl patch configmap -n ingress-nginx ingress-nginx-controller """
        """--type merge -p '{"data":{"use-proxy-protocol":"true"}}'""",
    ),
    "mismatch-balancer-off.yaml": (
        "broken",
        "digitalocean",
        "ingress-nginx",
        "service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol=true",
    ),
    "unknown-receiver.json": (
        "broken",
        "digitalocean",
        "the receiver",
        "do-loadbalancer-hostname=<dns-name-for-203.0.113.99>",
    ),
    "not-loadbalancer.yaml": None,
}

# "After the fix" versions must not be broken.
FIXED = [
    "story-after.yaml",
    "digitalocean-ingress-nginx-fixed.yaml",
    "linode-hostname-only.json",
]

_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def _findings(name: str, **options: object) -> list[Finding]:
    report = check(load_paths([str(CORPUS / name)]), CheckOptions(**options))  # type: ignore[arg-type]
    return list(report.findings)


def test_every_corpus_file_has_an_expectation() -> None:
    on_disk = {p.name for p in CORPUS.iterdir()}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_case(name: str) -> None:
    expected = EXPECTED[name]
    findings = _findings(name)
    if expected is None:
        assert findings == []
        return

    severity, provider, receiver, fix = expected
    assert len(findings) == 1, [f.message for f in findings]
    finding = findings[0]
    assert finding.kind == "Service"
    assert (finding.severity.label, finding.provider, finding.receiver) == (
        severity,
        provider,
        receiver,
    )
    assert fix in " | ".join((finding.fix, *finding.alternatives))
    # The explanation is two sentences, and the fix leads with an action.
    assert len(_SENTENCE_END.findall(finding.message)) == 2, finding.message
    assert finding.fix and not finding.fix.startswith("or ")


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e))
def test_corpus_case_through_the_cli(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = EXPECTED[name]
    assert expected is not None
    status = main(
        ["k8s", "check", "--json", "--fail-on", "at-risk", str(CORPUS / name)]
    )
    out = json.loads(capsys.readouterr().out)
    assert status == 1
    (finding,) = out["findings"]
    assert {
        "kind",
        "namespace",
        "name",
        "severity",
        "provider",
        "message",
        "fix",
    } <= set(finding)
    assert finding["severity"] == expected[0]
    assert finding["provider"] == expected[1]


@pytest.mark.parametrize("name", FIXED)
def test_after_the_fix_nothing_is_broken(name: str) -> None:
    assert all(f.severity < Severity.BROKEN for f in _findings(name))


def test_story_fix_is_the_hostname_annotation() -> None:
    (before,) = _findings("story-before.yaml")
    assert before.fix.startswith("kubectl annotate service -n ingress-nginx ")
    assert "load-balancer.hetzner.cloud/hostname=" in before.fix
    assert before.addresses == ("203.0.113.10", "2001:db8::10")
    assert "ipMode VIP" in before.message
    assert "use-proxy-protocol=true" in before.message
    assert _findings("story-after.yaml") == []


def test_hostname_beside_ip_is_called_out() -> None:
    (linode,) = _findings("linode-hostname-and-ip.json")
    (vultr,) = _findings("vultr-hostname-and-ip.yaml")
    for finding in (linode, vultr):
        assert "hostname beside" in finding.message


# -- what the objects cannot show, given by flag ------------------------------------


@pytest.mark.parametrize(
    ("kubernetes", "cilium", "severity"),
    [
        (None, None, None),
        (Version(1, 31), None, None),
        (Version(1, 30), None, None),
        (Version(1, 29), None, "at-risk"),
        (Version(1, 28), None, "broken"),
        (None, Version(1, 16, 5), "broken"),
        (None, Version(1, 17, 0), None),
        (None, Version(1, 18, 0), "broken"),
        (None, Version(1, 18, 1), None),
    ],
)
def test_ipmode_proxy_needs_a_data_plane_that_honours_it(
    kubernetes: Version | None, cilium: Version | None, severity: str | None
) -> None:
    findings = _findings(
        "hetzner-auto-ipmode.yaml",
        kubernetes_version=kubernetes,
        cilium_version=cilium,
    )
    assert [f.severity.label for f in findings] == ([severity] if severity else [])


def test_data_plane_fix_is_offered_when_it_ignores_ipmode() -> None:
    (finding,) = _findings(
        "hetzner-auto-ipmode.yaml", kubernetes_version=Version(1, 28)
    )
    assert "kube-proxy 1.28 predates ipMode" in finding.message
    assert any("kube-proxy 1.30 or later" in alt for alt in finding.alternatives)


@pytest.mark.parametrize(
    ("ccm", "severity"),
    [(None, "at-risk"), (Version(1, 20, 0), "broken"), (Version(1, 21, 0), None)],
)
def test_ccm_release_decides_predicted_ipmode(
    ccm: Version | None, severity: str | None
) -> None:
    findings = _findings("hetzner-no-status.yaml", ccm_version=ccm)
    assert [f.severity.label for f in findings] == ([severity] if severity else [])


def test_ccm_release_is_read_from_its_deployment() -> None:
    (finding,) = _findings("hetzner-old-ccm.yaml")
    assert (
        "hcloud-cloud-controller-manager 1.20.0 does not set ipMode" in finding.message
    )
    assert any("v1.21.0 or later" in alt for alt in finding.alternatives)


def test_assume_proxy_protocol_turns_at_risk_into_broken() -> None:
    (unsure,) = _findings("hetzner-global-proxy.yaml")
    assert unsure.severity is Severity.AT_RISK
    assert "HCLOUD_LOAD_BALANCERS_USES_PROXYPROTOCOL" in unsure.message
    (sure,) = _findings("hetzner-global-proxy.yaml", assume_proxy_protocol=True)
    assert sure.severity is Severity.BROKEN
    assert "--assume-proxy-protocol" in sure.message


def test_ccm_environment_turns_proxy_on() -> None:
    (finding,) = _findings("hetzner-global-proxy-ccm.yaml")
    assert "HCLOUD_LOAD_BALANCERS_USES_PROXYPROTOCOL=true" in finding.message


def test_cloudscale_with_a_recent_ccm_is_safe() -> None:
    assert _findings("cloudscale-no-status.yaml", ccm_version=Version(1, 1, 0)) == []


def test_provider_flag_names_an_unannotated_service(tmp_path: Path) -> None:
    text = (CORPUS / "hetzner-global-proxy.yaml").read_text()
    bare = text.replace("    load-balancer.hetzner.cloud/location: nbg1\n", "")
    bare = bare.replace("  annotations:\n", "")
    path = tmp_path / "bare.yaml"
    path.write_text(bare)
    report = check(load_paths([str(path)]))
    (unknown,) = report.findings
    assert unknown.provider == "unknown"
    assert unknown.severity is Severity.AT_RISK

    named = check(load_paths([str(path)]), CheckOptions(provider="hetzner"))
    assert named.findings[0].provider == "hetzner"
    assert "load-balancer.hetzner.cloud/hostname=" in named.findings[0].fix


def test_proxy_turned_off_explicitly_is_a_mismatch(tmp_path: Path) -> None:
    text = (CORPUS / "hetzner-global-proxy-ccm.yaml").read_text()
    path = tmp_path / "off.yaml"
    path.write_text(
        text.replace(
            "    load-balancer.hetzner.cloud/location: nbg1\n",
            '    load-balancer.hetzner.cloud/uses-proxyprotocol: "false"\n',
        )
    )
    (finding,) = check(load_paths([str(path)])).findings
    assert finding.severity is Severity.BROKEN
    assert "requests from outside the cluster fail" in finding.message
    assert finding.fix.endswith(
        "load-balancer.hetzner.cloud/uses-proxyprotocol=true --overwrite"
    )
