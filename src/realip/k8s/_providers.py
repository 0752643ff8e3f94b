"""What each cloud's load balancer does, as data.

For every provider the table says which Service annotations turn on the PROXY
header or TLS termination, what ``status.loadBalancer.ingress`` the cloud
controller manager (CCM) reports, whether and since which release it sets
``ipMode: Proxy`` by itself, and which annotation makes in-cluster calls go
through the balancer. The facts and their sources are collected in the team's
reference ``kubernetes-hairpin.md`` (sections 1 and 2).

Theory of operation: kube-proxy (and the data planes that copy it) programs every
ingress entry that has an ``ip`` and ``ipMode`` ``VIP`` (or none) as a local
address, so pods calling that IP never reach the balancer (KEP-1860). An entry
with a hostname and no IP, or with ``ipMode: Proxy``, is left alone. The table
therefore only has to predict the shape of the status, and the fix is whatever
annotation changes that shape.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from realip.k8s._model import Obj, annotations_of, mapping, seq

__all__ = [
    "ALL_PORTS",
    "PROVIDERS",
    "IpMode",
    "Ports",
    "Provider",
    "Shape",
    "Switch",
    "ccm_image_names",
    "detect_provider",
    "provider_by_key",
]

Ports = frozenset[int]
# "Every port of the Service": a sentinel distinct from any real port set.
ALL_PORTS: Ports = frozenset({-1})

_OFF = frozenset({"", "false", "0", "no", "off", "none", "disabled"})


def _port_list(value: str) -> Ports | None:
    """``*``/``true`` for every port, ``false`` for none, else ``80,443``."""
    text = value.strip().lower()
    if text in _OFF:
        return None
    if text in {"*", "true", "all"}:
        return ALL_PORTS
    ports = {int(p) for p in text.replace(" ", "").split(",") if p.isdigit()}
    return frozenset(ports) or ALL_PORTS


def _json_field(field: str, on: Callable[[str], bool]) -> Callable[[str], bool]:
    def read(value: str) -> bool:
        try:
            return on(str(mapping(json.loads(value)).get(field, "")).lower())
        except ValueError:
            return False

    return read


def _upcloud_outbound(value: str) -> bool:
    # The frontend's inbound_proxy_protocol is about clients talking to the
    # balancer; only the backend's outbound_proxy_protocol reaches the pods.
    try:
        config = mapping(json.loads(value))
    except ValueError:
        return False
    for backend in seq(config.get("backends")):
        props = mapping(mapping(backend).get("properties"))
        if str(props.get("outbound_proxy_protocol") or "").lower() not in _OFF:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Switch:
    """An annotation that turns a balancer feature on.

    ``on`` lists the (lower-case) values that mean on; ``None`` means any value
    not in the usual "off" words. ``ports`` reads the value as a port list.
    ``per_port`` makes ``key`` a prefix followed by a port number (Linode's
    ``...-port-443`` JSON). ``reader`` interprets values that are JSON.
    ``enable`` is the value a fix suggests to turn it on.
    """

    key: str
    on: frozenset[str] | None = None
    ports: bool = False
    per_port: bool = False
    reader: Callable[[str], bool] | None = None
    enable: str = "true"  # the value to suggest when turning it on

    def read(self, notes: Mapping[str, str]) -> tuple[Ports | None, str]:
        """The ports it is on for (``None`` when off) and the evidence."""
        if self.per_port:
            found: set[int] = set()
            evidence = ""
            for key, value in notes.items():
                suffix = key.removeprefix(self.key)
                if suffix != key and suffix.isdigit() and self._is_on(value):
                    found.add(int(suffix))
                    evidence = evidence or f"{key}={value}"
            return (frozenset(found), evidence) if found else (None, "")

        text = notes.get(self.key)
        if text is None:
            return None, ""
        evidence = f"{self.key}={text}"
        if self.ports:
            return _port_list(text), evidence
        return (ALL_PORTS if self._is_on(text) else None), evidence

    def _is_on(self, value: str) -> bool:
        if self.reader is not None:
            return self.reader(value)
        text = value.strip().lower()
        return text in self.on if self.on is not None else text not in _OFF


class Shape(enum.Enum):
    """What the CCM writes into ``status.loadBalancer.ingress`` by default."""

    IP = "an IP address"
    IP_AND_HOSTNAME = "an IP address with a hostname beside it"
    HOSTNAME = "a hostname only"
    HOSTNAME_WHEN_PROXY = "a hostname only when PROXY is on, else an IP address"


class IpMode(enum.Enum):
    """Whether the CCM sets ``ipMode: Proxy`` on its IP entries."""

    NEVER = "never"
    WHEN_PROXY = "when PROXY protocol is on"
    WHEN_ALL_PORTS_PROXY = "when every port of the Service has PROXY protocol"
    OPT_IN = "when the ipMode annotation asks for it"
    DEFAULT = "unless the ipMode annotation says VIP"
    ALWAYS = "whenever it reports an IP"


@dataclass(frozen=True, slots=True)
class Provider:
    key: str
    name: str
    prefixes: tuple[str, ...]
    ccm: str  # the CCM's name, also matched in image names
    shape: Shape = Shape.IP
    proxy: tuple[Switch, ...] = ()
    tls: tuple[Switch, ...] = ()
    tls_passthrough: tuple[Switch, ...] = ()
    ipmode: IpMode = IpMode.NEVER
    ipmode_since: str = ""  # the CCM release that added it
    ipmode_key: str = ""  # opt-in or override annotation
    ipmode_proxy: str = "Proxy"  # its value for Proxy
    hostname_key: str = ""  # the annotation that makes the status hostname-only
    hostname_value: str = ""  # fixed value; empty means "a DNS name"
    hostname_env: str = ""  # a CCM environment variable with the same effect
    ccm_wide_fix: str = ""  # a CCM-wide setting with the same effect, as advice
    proxy_env: str = ""  # a CCM environment variable that turns PROXY on
    ccm_images: tuple[str, ...] = ()  # image names of the CCM, if not ``ccm``
    classes: tuple[str, ...] = ()  # spec.loadBalancerClass values
    hostname_suffixes: tuple[str, ...] = ()
    note: str = ""  # extra advice for the fix, when the table has no annotation


_DO = "service.beta.kubernetes.io/do-loadbalancer-"
_LINODE = "service.beta.kubernetes.io/linode-loadbalancer-"
_SCW = "service.beta.kubernetes.io/scw-loadbalancer-"
_VULTR = "service.beta.kubernetes.io/vultr-loadbalancer-"
_AWS = "service.beta.kubernetes.io/aws-load-balancer-"
_OCI = "service.beta.kubernetes.io/oci-load-balancer-"
_OSC = "service.beta.kubernetes.io/osc-load-balancer-"
_HTTPS = frozenset({"https", "http2", "http3"})

PROVIDERS: tuple[Provider, ...] = (
    Provider(
        key="hetzner",
        name="Hetzner",
        prefixes=("load-balancer.hetzner.cloud/",),
        ccm="hcloud-cloud-controller-manager",
        proxy=(Switch("load-balancer.hetzner.cloud/uses-proxyprotocol"),),
        tls=(Switch("load-balancer.hetzner.cloud/protocol", on=frozenset({"https"})),),
        ipmode=IpMode.WHEN_PROXY,
        ipmode_since="v1.21.0",  # PR #783, fixing issue #727
        hostname_key="load-balancer.hetzner.cloud/hostname",
        proxy_env="HCLOUD_LOAD_BALANCERS_USES_PROXYPROTOCOL",
    ),
    Provider(
        key="digitalocean",
        name="DigitalOcean",
        prefixes=(_DO, "kubernetes.digitalocean.com/"),
        ccm="digitalocean-cloud-controller-manager",
        proxy=(Switch(_DO + "enable-proxy-protocol", on=frozenset({"true"})),),
        tls=(
            Switch(_DO + "protocol", on=_HTTPS),
            Switch(_DO + "tls-ports", ports=True),
        ),
        tls_passthrough=(Switch(_DO + "tls-passthrough", on=frozenset({"true"})),),
        # No ipMode (issue #811 asks for it); the hostname annotation is the fix
        # its docs give, citing kubernetes/kubernetes#66607.
        hostname_key=_DO + "hostname",
    ),
    Provider(
        key="linode",
        name="Linode/Akamai",
        prefixes=(_LINODE,),
        ccm="linode-cloud-controller-manager",
        shape=Shape.IP_AND_HOSTNAME,
        proxy=(
            Switch(
                _LINODE + "default-proxy-protocol",
                on=frozenset({"v1", "v2"}),
                enable="v2",
            ),
            Switch(_LINODE + "proxy-protocol", on=frozenset({"v1", "v2"})),  # old
            Switch(
                _LINODE + "port-",
                per_port=True,
                reader=_json_field("proxy-protocol", lambda v: v in {"v1", "v2"}),
            ),
        ),
        tls=(
            Switch(_LINODE + "default-protocol", on=frozenset({"https"})),
            Switch(
                _LINODE + "port-",
                per_port=True,
                reader=_json_field("protocol", lambda v: v == "https"),
            ),
        ),
        hostname_key=_LINODE + "hostname-only-ingress",
        hostname_value="true",
        hostname_env="LINODE_HOSTNAME_ONLY_INGRESS",
        ccm_wide_fix="or run linode-cloud-controller-manager with "
        "LINODE_HOSTNAME_ONLY_INGRESS=true, for every Service at once",
        hostname_suffixes=(".nodebalancer.linode.com", ".ip.linodeusercontent.com"),
    ),
    Provider(
        key="scaleway",
        name="Scaleway",
        prefixes=(_SCW,),
        ccm="scaleway-cloud-controller-manager",
        proxy=(
            Switch(_SCW + "proxy-protocol-v2", ports=True, enable="*"),
            Switch(_SCW + "proxy-protocol-v1", ports=True),
            Switch(_SCW + "send-proxy-v2", ports=True),  # deprecated spelling
        ),
        ipmode=IpMode.WHEN_ALL_PORTS_PROXY,
        ipmode_since="v0.33.0",  # PR #185
        ipmode_key=_SCW + "ip-mode",
        hostname_key=_SCW + "use-hostname",
        hostname_value="true",
    ),
    Provider(
        key="openstack",
        name="OpenStack Octavia",
        prefixes=("loadbalancer.openstack.org/",),
        ccm="openstack-cloud-controller-manager",
        proxy=(
            Switch(
                "loadbalancer.openstack.org/proxy-protocol",
                on=frozenset({"true", "v1", "v2"}),
                enable="v2",
            ),
        ),
        tls=(Switch("loadbalancer.openstack.org/default-tls-container-ref"),),
        ipmode=IpMode.WHEN_PROXY,
        ipmode_since="v1.30.0",  # PR #2587
        hostname_key="loadbalancer.openstack.org/hostname",
        ccm_wide_fix="or set enable-ingress-hostname=true in the [LoadBalancer] "
        "section of the OpenStack CCM's cloud.conf, for every Service at once",
    ),
    Provider(
        key="ovh-iolb",
        name="OVHcloud IOLB",
        prefixes=("service.beta.kubernetes.io/ovh-loadbalancer-",),
        ccm="the OVHcloud IOLB controller",
        proxy=(
            Switch(
                "service.beta.kubernetes.io/ovh-loadbalancer-proxy-protocol",
                enable="v2",
            ),
        ),
        note="migrate to the Public Cloud Load Balancer (Octavia) with "
        "loadbalancer.openstack.org/proxy-protocol, whose CCM (v1.30.0 or later) "
        "sets ipMode: Proxy; IOLB is deprecated for MKS after 1.31",
    ),
    Provider(
        key="vultr",
        name="Vultr",
        prefixes=(_VULTR,),
        ccm="vultr-cloud-controller-manager",
        shape=Shape.IP_AND_HOSTNAME,
        proxy=(Switch(_VULTR + "proxy-protocol", on=frozenset({"true"})),),
        tls=(
            Switch(_VULTR + "protocol", on=frozenset({"https"})),
            Switch(_VULTR + "https-ports", ports=True),
        ),
        tls_passthrough=(Switch(_VULTR + "ssl-pass-through", on=frozenset({"true"})),),
        hostname_key=_VULTR + "hostname",  # PR #268, "resolve hairpinning"
    ),
    Provider(
        key="civo",
        name="Civo",
        prefixes=("kubernetes.civo.com/",),
        ccm="civo-cloud-controller-manager",
        shape=Shape.HOSTNAME_WHEN_PROXY,  # its own fix, PR #5
        proxy=(
            Switch(
                "kubernetes.civo.com/loadbalancer-enable-proxy-protocol",
                on=frozenset({"send-proxy", "send-proxy-v2"}),
                enable="send-proxy-v2",
            ),
        ),
        note="upgrade the Civo cloud controller manager: since 2022 it reports "
        "only the <id>.lb.civo.com hostname when PROXY protocol is on",
        hostname_suffixes=(".lb.civo.com",),
    ),
    Provider(
        key="upcloud",
        name="UpCloud",
        prefixes=("service.beta.kubernetes.io/upcloud-load-balancer-",),
        ccm="upcloud-cloud-controller-manager",
        shape=Shape.HOSTNAME,
        proxy=(
            Switch(
                "service.beta.kubernetes.io/upcloud-load-balancer-config",
                reader=_upcloud_outbound,
            ),
        ),
    ),
    Provider(
        key="aws",
        name="AWS",
        prefixes=(_AWS, "service.k8s.aws/"),
        ccm="aws-cloud-controller-manager",
        shape=Shape.HOSTNAME,  # toStatus/v2toStatus set only the ELB DNS name
        proxy=(
            Switch(_AWS + "proxy-protocol", on=frozenset({"*"}), enable="*"),
            Switch(_AWS + "proxy-protocol-per-target-group"),
        ),
        tls=(Switch(_AWS + "ssl-cert"),),
        classes=("service.k8s.aws/nlb",),
        hostname_suffixes=(".amazonaws.com",),
    ),
    Provider(
        key="oci",
        name="OCI",
        prefixes=(
            _OCI,
            "oci-network-load-balancer.oraclecloud.com/",
            "oci.oraclecloud.com/",
        ),
        ccm="oci-cloud-controller-manager",
        ccm_images=("cloud-provider-oci", "oci-cloud-controller-manager"),
        proxy=(
            Switch(
                _OCI + "connection-proxy-protocol-version", on=frozenset({"1", "2"})
            ),
            Switch(
                "oci-network-load-balancer.oraclecloud.com/is-ppv2-enabled",
                on=frozenset({"true"}),
            ),
        ),
        tls=(Switch(_OCI + "ssl-ports", ports=True),),
        ipmode=IpMode.OPT_IN,
        ipmode_since="the November 2024 release",  # commit 9e50f1a
        ipmode_key="oci.oraclecloud.com/ingress-ip-mode",
        ipmode_proxy="proxy",
    ),
    Provider(
        key="cloudscale",
        name="cloudscale",
        prefixes=("k8s.cloudscale.ch/",),
        ccm="cloudscale-cloud-controller-manager",
        proxy=(
            Switch(
                "k8s.cloudscale.ch/loadbalancer-pool-protocol",
                on=frozenset({"proxy", "proxyv2"}),
                enable="proxyv2",
            ),
        ),
        ipmode=IpMode.DEFAULT,
        ipmode_since="1.1.0",
        ipmode_key="k8s.cloudscale.ch/loadbalancer-ip-mode",
        hostname_key="k8s.cloudscale.ch/loadbalancer-force-hostname",
    ),
    Provider(
        key="stackit",
        name="STACKIT",
        prefixes=("lb.stackit.cloud/",),
        ccm="cloud-provider-stackit",
        proxy=(Switch("lb.stackit.cloud/tcp-proxy-protocol", on=frozenset({"true"})),),
        ipmode=IpMode.OPT_IN,
        ipmode_key="lb.stackit.cloud/ip-mode-proxy",
        ipmode_proxy="true",
    ),
    Provider(
        key="outscale",
        name="Outscale",
        prefixes=(_OSC,),
        ccm="cloud-provider-osc",
        shape=Shape.HOSTNAME,  # osc-load-balancer-ingress-address defaults to it
        proxy=(Switch(_OSC + "proxy-protocol", ports=True, enable="*"),),
        ipmode=IpMode.ALWAYS,
        hostname_key=_OSC + "ingress-address",
        hostname_value="hostname",
    ),
    Provider(
        key="azure",
        name="Azure",
        prefixes=("service.beta.kubernetes.io/azure-",),
        ccm="azure-cloud-controller-manager",
        # Only the Private Link Service adds the header; the public frontend
        # never does, and the CCM sets no ipMode.
        proxy=(
            Switch(
                "service.beta.kubernetes.io/azure-pls-proxy-protocol",
                on=frozenset({"true"}),
            ),
        ),
    ),
    Provider(
        key="gcp",
        name="GCP",
        prefixes=("cloud.google.com/", "networking.gke.io/"),
        ccm="the GKE control plane",
    ),
    Provider(
        key="exoscale",
        name="Exoscale",
        prefixes=("service.beta.kubernetes.io/exoscale-loadbalancer-",),
        ccm="exoscale-cloud-controller-manager",
    ),
    Provider(
        key="metallb",
        name="MetalLB",
        prefixes=("metallb.universe.tf/", "metallb.io/"),
        ccm="MetalLB",
    ),
)

_BY_KEY = {p.key: p for p in PROVIDERS}

# A Service whose objects name no provider: it reports an IP, as most do.
UNKNOWN = Provider(key="unknown", name="unknown provider", prefixes=(), ccm="")


def ccm_image_names(provider: Provider) -> tuple[str, ...]:
    """Image names (last path part, no tag) that identify the provider's CCM."""
    return provider.ccm_images or (provider.ccm,)


def provider_by_key(key: str) -> Provider | None:
    return UNKNOWN if key == UNKNOWN.key else _BY_KEY.get(key)


def detect_provider(service: Obj, default: Provider | None = None) -> Provider:
    """The provider named by the Service's annotations, class or status hostname;
    ``default`` (from ``--provider``) when none does."""
    notes = annotations_of(service)
    for provider in PROVIDERS:
        if any(key.startswith(provider.prefixes) for key in notes):
            return provider

    spec = mapping(service.get("spec"))
    klass = str(spec.get("loadBalancerClass") or "")
    for provider in PROVIDERS:
        if klass and klass in provider.classes:
            return provider

    ingress = seq(
        mapping(mapping(service.get("status")).get("loadBalancer")).get("ingress")
    )
    for entry in ingress:
        host = str(mapping(entry).get("hostname") or "")
        for provider in PROVIDERS:
            if (
                host
                and provider.hostname_suffixes
                and host.endswith(provider.hostname_suffixes)
            ):
                return provider
    return default or UNKNOWN
