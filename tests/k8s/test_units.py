"""The checker's building blocks: loading, versions, provider annotations."""

from __future__ import annotations

import json

import pytest

from realip.errors import ConfigError
from realip.k8s import ManifestError, Version, load_text
from realip.k8s._providers import ALL_PORTS, Switch, detect_provider


def test_helm_render_with_empty_documents_and_comments() -> None:
    text = (
        "---\n# Source: chart/templates/a.yaml\n\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
        "---\n# Source: chart/templates/b.yaml\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n---\n"
    )
    manifests = load_text(text, "render.yaml")
    assert [m.obj["kind"] for m in manifests] == ["ConfigMap", "Service"]
    assert [m.source for m in manifests] == ["render.yaml#2", "render.yaml#3"]


def test_nested_lists_and_bare_sequences() -> None:
    inner = {"kind": "ServiceList", "items": [{"kind": "Service", "metadata": {}}]}
    outer = {"kind": "List", "items": [inner, {"kind": "ConfigMap"}]}
    assert [m.obj["kind"] for m in load_text(json.dumps(outer), "x")] == [
        "Service",
        "ConfigMap",
    ]
    seq = "- kind: Service\n- kind: Deployment\n"
    assert [m.obj["kind"] for m in load_text(seq, "x")] == ["Service", "Deployment"]


def test_documents_without_kind_are_skipped() -> None:
    assert load_text("controller:\n  replicaCount: 2\n", "values.yaml") == []


def test_json_flow_sequence_falls_back_to_yaml() -> None:
    assert [m.obj["kind"] for m in load_text("[{kind: Service}]", "x")] == ["Service"]


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("kind: [\n", "malformed YAML"),
        ('{"kind": }', "malformed JSON"),
        ("kind: List\nitems: 3\n", "List items is not a list"),
        ("42\n", "found a int"),
    ],
)
def test_bad_input_names_the_source(text: str, what: str) -> None:
    with pytest.raises(ManifestError) as caught:
        load_text(text, "in.yaml")
    assert what in str(caught.value)
    assert str(caught.value).endswith(", in in.yaml")
    assert isinstance(caught.value, ConfigError)


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("1.30", Version(1, 30, 0)),
        ("v1.29.4", Version(1, 29, 4)),
        ("1.31.2-gke.1000", Version(1, 31, 2)),
        (" v1.18.0 ", Version(1, 18, 0)),
    ],
)
def test_version_parse(text: str, version: Version) -> None:
    assert Version.parse(text) == version


def test_version_rejects_words() -> None:
    with pytest.raises(ConfigError, match="not a version: 'latest'"):
        Version.parse("latest")


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("registry.k8s.io/kube-proxy:v1.30.2", Version(1, 30, 2)),
        ("quay.io/cilium/cilium:v1.18.0@sha256:abcd", Version(1, 18, 0)),
        ("localhost:5000/hcloud-cloud-controller-manager", None),
        ("traefik:latest", None),
    ],
)
def test_version_from_image(image: str, version: Version | None) -> None:
    assert Version.from_image(image) == version


@pytest.mark.parametrize(
    ("switch", "value", "ports"),
    [
        (Switch("k", ports=True), "*", ALL_PORTS),
        (Switch("k", ports=True), "true", ALL_PORTS),
        (Switch("k", ports=True), "80, 443", frozenset({80, 443})),
        (Switch("k", ports=True), "false", None),
        (Switch("k"), "true", ALL_PORTS),
        (Switch("k"), "False", None),
        (Switch("k", on=frozenset({"v1", "v2"})), "V2", ALL_PORTS),
        (Switch("k", on=frozenset({"v1", "v2"})), "none", None),
    ],
)
def test_switch_values(
    switch: Switch, value: str, ports: frozenset[int] | None
) -> None:
    found, evidence = switch.read({"k": value})
    assert found == ports
    assert evidence == f"k={value}"


def test_switch_absent_and_per_port() -> None:
    assert Switch("k").read({}) == (None, "")
    per_port = Switch(
        "p-", per_port=True, reader=lambda v: json.loads(v).get("on") is True
    )
    notes = {"p-443": '{"on": true}', "p-80": '{"on": false}', "p-x": '{"on": true}'}
    assert per_port.read(notes)[0] == frozenset({443})


@pytest.mark.parametrize(
    ("service", "key"),
    [
        (
            {"metadata": {"annotations": {"k8s.cloudscale.ch/loadbalancer-x": "1"}}},
            "cloudscale",
        ),
        ({"spec": {"loadBalancerClass": "service.k8s.aws/nlb"}}, "aws"),
        (
            {
                "status": {
                    "loadBalancer": {"ingress": [{"hostname": "abc.lb.civo.com"}]}
                }
            },
            "civo",
        ),
        ({"metadata": {"annotations": {"team": "web"}}}, "unknown"),
    ],
)
def test_detect_provider(service: dict[str, object], key: str) -> None:
    assert detect_provider(service).key == key
