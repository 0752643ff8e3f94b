"""Decide, per LoadBalancer Service, whether in-cluster calls bypass the balancer
and what that does to them.

Three questions, answered from the objects (and from flags for what the objects
cannot show):

1. What does the balancer do that a bypass loses? It adds a PROXY header, or it
   terminates TLS (the provider table in ``_providers``).
2. Is the balancer bypassed? kube-proxy programs every ingress entry that has an
   ``ip`` and ``ipMode`` ``VIP`` or none (the API server defaults a missing
   ``ipMode`` to ``VIP``) as a local address, so pods calling it are served
   without the balancer; a hostname beside that IP changes nothing. Entries with
   only a hostname, or with ``ipMode: Proxy`` on a data plane that honours it
   (kube-proxy 1.30+, 1.29 with the feature gate; Cilium 1.17+ except 1.18.0),
   go through the balancer. Without a status yet, the provider's controller
   predicts it.
3. What receives the bypassing calls? A receiver that requires the header
   refuses them (broken); one that reads it when present serves them with the
   pod's or node's address (degraded); see ``_receivers``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from realip.k8s._load import Manifest
from realip.k8s._model import (
    Finding,
    Inventory,
    Obj,
    Severity,
    Version,
    annotations_of,
    container_env,
    containers,
    mapping,
    name_of,
    namespace_of,
    seq,
    string_map,
    truthy,
)
from realip.k8s._providers import (
    ALL_PORTS,
    PROVIDERS,
    UNKNOWN,
    IpMode,
    Ports,
    Provider,
    Shape,
    Switch,
    ccm_image_names,
    detect_provider,
    provider_by_key,
)
from realip.k8s._receivers import Mode, Receiver, find_receiver

__all__ = ["CheckOptions", "Report", "check"]

logger = logging.getLogger("realip.k8s")

_RECEIVER_POLICY = (
    "or accept both on the receiving side: realip serve MODULE:APP "
    "--proxy-protocol require=<LB CIDR> "
    "--proxy-protocol optional=<pod CIDR>,<node CIDR>"
)


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """Settings the objects do not show, given on the command line.

    ``kubernetes_version`` is the data plane's (kube-proxy's) version;
    ``server_version`` is a weaker hint (what ``kubectl version`` reports), used
    only when neither the flag nor a kube-proxy DaemonSet says more.
    ``cilium_version`` means Cilium replaces kube-proxy. ``ccm_version`` is the
    provider's cloud controller manager release. ``provider`` names the provider
    of Services whose annotations name none.
    """

    assume_proxy_protocol: bool = False
    kubernetes_version: Version | None = None
    server_version: Version | None = None
    cilium_version: Version | None = None
    ccm_version: Version | None = None
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    findings: tuple[Finding, ...]
    services: int  # LoadBalancer Services checked


# -- facts about the cluster -------------------------------------------------------


class Tri(enum.Enum):
    YES = "yes"
    NO = "no"
    MAYBE = "maybe"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class _Facts:
    kube: Version | None = None
    cilium: Version | None = None
    ccm_versions: dict[str, Version] = field(default_factory=dict)
    ccm_env: dict[str, dict[str, str]] = field(default_factory=dict)
    ccm_flag: Version | None = None  # --ccm-version, for whichever provider

    def ccm_version(self, provider: Provider) -> Version | None:
        return self.ccm_flag or self.ccm_versions.get(provider.key)

    def ipmode_support(self) -> tuple[Tri, str]:
        """Whether the data plane honours ``ipMode: Proxy``, and why."""
        if self.cilium is not None:
            v = self.cilium
            if v < Version(1, 17):
                return Tri.NO, f"Cilium {v} ignores ipMode (support came in 1.17)"
            if v == Version(1, 18, 0):
                return Tri.NO, "Cilium 1.18.0 ignores ipMode (cilium/cilium#40913)"
            return Tri.YES, f"Cilium {v} honours ipMode"
        if self.kube is not None:
            v = self.kube
            if v < Version(1, 29):
                return Tri.NO, f"kube-proxy {v.major}.{v.minor} predates ipMode"
            if v < Version(1, 30):
                return (
                    Tri.MAYBE,
                    "kube-proxy 1.29 runs with the LoadBalancerIPMode feature gate "
                    "on, which the objects do not show",
                )
            return Tri.YES, f"kube-proxy {v.major}.{v.minor} honours ipMode"
        return Tri.UNKNOWN, ""


def _image_base(image: str) -> str:
    name = image.split("@", 1)[0]
    head, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        name = head
    return name.rsplit("/", 1)[-1].lower()


def _gather_facts(inv: Inventory, options: CheckOptions) -> _Facts:
    """Versions and CCM settings from the workloads, overridden by flags."""
    facts = _Facts()
    kube_proxy: Version | None = None
    cilium: Version | None = None
    for workload in inv.workloads:
        for container in containers(workload):
            image = str(container.get("image") or "")
            base = _image_base(image)
            version = Version.from_image(image)
            if base == "kube-proxy" and version is not None:
                kube_proxy = version
            elif base == "cilium" and version is not None:
                cilium = version
            for provider in PROVIDERS:
                if base in ccm_image_names(provider):
                    if version is not None:
                        facts.ccm_versions[provider.key] = version
                    facts.ccm_env.setdefault(provider.key, {}).update(
                        container_env(container)
                    )

    config = inv.configmap("kube-system", "cilium-config")
    replaces = config is not None and string_map(config.get("data")).get(
        "kube-proxy-replacement", ""
    ).lower() in {"true", "strict"}
    facts.cilium = options.cilium_version or (cilium if replaces else None)
    facts.kube = options.kubernetes_version or kube_proxy or options.server_version
    facts.ccm_flag = options.ccm_version
    return facts


# -- what the balancer does --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Effect:
    proxy: Ports | None
    proxy_evidence: str
    tls: Ports | None
    tls_evidence: str
    proxy_explicit_off: bool


def _read_switches(
    switches: tuple[Switch, ...], notes: Mapping[str, str]
) -> tuple[Ports | None, str, bool]:
    """Union of the ports the switches turn on, the first evidence, and whether
    some switch is present but off."""
    ports: set[int] = set()
    evidence = ""
    present_off = False
    for switch in switches:
        found, said = switch.read(notes)
        if found is None:
            present_off = present_off or bool(said)
            continue
        ports |= found
        evidence = evidence or said
    if not ports:
        return None, "", present_off
    return (ALL_PORTS if -1 in ports else frozenset(ports)), evidence, False


def _effect(
    provider: Provider, service: Obj, facts: _Facts, opts: CheckOptions
) -> _Effect:
    notes = annotations_of(service)
    proxy, proxy_evidence, off = _read_switches(provider.proxy, notes)
    if proxy is None and not off:
        env = facts.ccm_env.get(provider.key, {})
        if provider.proxy_env and truthy(env.get(provider.proxy_env)):
            proxy = ALL_PORTS
            proxy_evidence = f"{provider.proxy_env}=true on {provider.ccm}"
        elif opts.assume_proxy_protocol:
            proxy = ALL_PORTS
            proxy_evidence = "--assume-proxy-protocol"

    tls, tls_evidence, _ = _read_switches(provider.tls, notes)
    passthrough, _, _ = _read_switches(provider.tls_passthrough, notes)
    if passthrough is not None:
        tls, tls_evidence = None, ""
    return _Effect(proxy, proxy_evidence, tls, tls_evidence, off)


# -- is the balancer bypassed? ------------------------------------------------------


class Reach(enum.Enum):
    EXPOSED = "short-circuited"
    SAFE = "through the balancer"
    UNCERTAIN = "depends"


@dataclass(frozen=True, slots=True)
class _Exposure:
    reach: Reach
    reason: str  # why, as a clause: "... because <reason>" or "only if <reason>"
    addresses: tuple[str, ...] = ()
    observed: bool = True
    dataplane_blocks: bool = False  # ipMode Proxy is set but ignored
    proxy_set: bool = False  # the status already has ipMode Proxy


def _ingress(service: Obj) -> list[Mapping[str, object]]:
    status = mapping(mapping(service.get("status")).get("loadBalancer"))
    return [mapping(e) for e in seq(status.get("ingress")) if mapping(e)]


def _listing(addresses: Iterable[str]) -> str:
    items = list(addresses)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _observed(entries: list[Mapping[str, object]], facts: _Facts) -> _Exposure:
    exposed = [e for e in entries if e.get("ip") and e.get("ipMode") != "Proxy"]
    proxied = [
        str(e["ip"]) for e in entries if e.get("ip") and e.get("ipMode") == "Proxy"
    ]
    if exposed:
        ips = tuple(str(e["ip"]) for e in exposed)
        if all(e.get("ipMode") == "VIP" for e in exposed):
            reason = "status.loadBalancer.ingress gives them ipMode VIP"
        else:
            reason = (
                "status.loadBalancer.ingress gives them no ipMode, "
                "which the API server treats as VIP"
            )
        if any(e.get("hostname") for e in exposed):
            reason += ", and a hostname beside an IP does not help"
        return _Exposure(Reach.EXPOSED, reason, ips)

    if proxied:
        support, why = facts.ipmode_support()
        ips = tuple(proxied)
        if support is Tri.NO:
            reason = f"their ipMode is Proxy but {why}"
            return _Exposure(
                Reach.EXPOSED, reason, ips, dataplane_blocks=True, proxy_set=True
            )
        if support is Tri.MAYBE:
            return _Exposure(Reach.UNCERTAIN, why, ips, proxy_set=True)
        return _Exposure(Reach.SAFE, "ipMode Proxy", ips, proxy_set=True)
    return _Exposure(Reach.SAFE, "hostname only")


def _hostname_annotated(provider: Provider, notes: Mapping[str, str]) -> bool:
    value = notes.get(provider.hostname_key) if provider.hostname_key else None
    if value is None:
        return False
    if provider.hostname_value == "true":
        return truthy(value)
    if provider.hostname_value:
        return value.strip().lower() == provider.hostname_value
    return bool(value.strip())


def _all_ports(service: Obj, ports: Ports | None) -> bool:
    if ports is None:
        return False
    if ports == ALL_PORTS:
        return True
    spec_ports = {
        mapping(p).get("port") for p in seq(mapping(service.get("spec")).get("ports"))
    }
    return bool(spec_ports) and spec_ports <= ports


def _predicted(
    provider: Provider, service: Obj, effect: _Effect, facts: _Facts
) -> _Exposure:
    """The exposure once the controller fills in the status."""
    notes = annotations_of(service)
    ccm_env = facts.ccm_env.get(provider.key, {})
    if _hostname_annotated(provider, notes):
        reason = f"{provider.hostname_key} makes the status a hostname only"
        return _Exposure(Reach.SAFE, reason, observed=False)
    if provider.hostname_env and truthy(ccm_env.get(provider.hostname_env)):
        reason = f"{provider.hostname_env}=true makes the status a hostname only"
        return _Exposure(Reach.SAFE, reason, observed=False)
    if provider.shape is Shape.HOSTNAME or (
        provider.shape is Shape.HOSTNAME_WHEN_PROXY and effect.proxy is not None
    ):
        return _Exposure(Reach.SAFE, "the status is a hostname only", observed=False)

    keeps_vip = _why_vip(provider, service, effect)
    if keeps_vip is not None:
        return _Exposure(Reach.EXPOSED, keeps_vip, observed=False)
    return _predicted_proxy(provider, facts)


def _why_vip(provider: Provider, service: Obj, effect: _Effect) -> str | None:
    """Why the controller will leave ipMode at VIP, or ``None`` if it sets Proxy."""
    mode = provider.ipmode
    override = annotations_of(service).get(provider.ipmode_key, "").strip()
    asks_proxy = override.lower() == provider.ipmode_proxy.lower()
    if mode is IpMode.NEVER:
        if provider is UNKNOWN:
            return "most controllers report an IP address and no ipMode"
        shape = provider.shape.value
        return f"{provider.name}'s controller will report {shape} and no ipMode"
    if mode is IpMode.WHEN_PROXY and effect.proxy is None:
        return f"{provider.ccm} sets ipMode Proxy only when PROXY protocol is on"
    if mode is IpMode.WHEN_ALL_PORTS_PROXY:
        if override:
            return None if asks_proxy else f"{provider.ipmode_key}={override} keeps VIP"
        if not _all_ports(service, effect.proxy):
            return "the controller keeps VIP because not every port has PROXY"
    if mode is IpMode.OPT_IN and not asks_proxy:
        return (
            f"{provider.name}'s controller keeps ipMode VIP unless "
            f"{provider.ipmode_key}={provider.ipmode_proxy}"
        )
    if mode is IpMode.DEFAULT and override and not asks_proxy:
        return f"{provider.ipmode_key}={override} keeps ipMode VIP"
    return None


def _predicted_proxy(provider: Provider, facts: _Facts) -> _Exposure:
    """The controller will set ``ipMode: Proxy``, if it is recent enough and the
    data plane honours it."""
    since = _since(provider)
    running = facts.ccm_version(provider)
    if since is not None and running is not None and running < since:
        why = f"{provider.ccm} {running} does not set ipMode (it does from {since})"
        return _Exposure(Reach.EXPOSED, why, observed=False)

    support, why = facts.ipmode_support()
    if support is Tri.NO:
        reason = f"the controller will set ipMode Proxy but {why}"
        return _Exposure(Reach.EXPOSED, reason, observed=False, dataplane_blocks=True)
    if support is Tri.MAYBE:
        return _Exposure(Reach.UNCERTAIN, why, observed=False)
    if since is not None and running is None:
        why = (
            f"{provider.ccm} is {provider.ipmode_since} or later, which sets ipMode "
            "Proxy, and the objects show no release of it (see --ccm-version)"
        )
        return _Exposure(Reach.UNCERTAIN, why, observed=False)
    return _Exposure(Reach.SAFE, "ipMode Proxy", observed=False)


def _since(provider: Provider) -> Version | None:
    try:
        return Version.parse(provider.ipmode_since) if provider.ipmode_since else None
    except ValueError:
        return None  # a release named by date, not by number


# -- fixes -------------------------------------------------------------------------


def _annotate(service: Obj, key: str, value: str) -> str:
    overwrite = " --overwrite" if key in annotations_of(service) else ""
    return (
        f"kubectl annotate service -n {namespace_of(service)} {name_of(service)} "
        f"{key}={value}{overwrite}"
    )


def _hairpin_fixes(
    provider: Provider,
    service: Obj,
    exposure: _Exposure,
    facts: _Facts,
    proxy_on: bool = True,
) -> list[str]:
    """Ways to make in-cluster calls go through the balancer, best first.
    ``proxy_on`` is false for a balancer that only terminates TLS."""
    fixes: list[str] = []
    support, _ = facts.ipmode_support()
    ipmode_usable = support is not Tri.NO
    if (
        provider.ipmode_key
        and ipmode_usable
        and provider.ipmode is not IpMode.WHEN_PROXY
    ):
        fixes.append(_annotate(service, provider.ipmode_key, provider.ipmode_proxy))
    if provider.hostname_key:
        value = provider.hostname_value
        if not value:
            ipv4 = [a for a in exposure.addresses if ":" not in a]
            target = ipv4[0] if ipv4 else (exposure.addresses or ("the-balancer",))[0]
            value = f"<dns-name-for-{target}>"
        fixes.append(_annotate(service, provider.hostname_key, value))
    since = _since(provider)
    running = facts.ccm_version(provider)
    if (
        provider.ipmode is IpMode.WHEN_PROXY
        and proxy_on
        and ipmode_usable
        and not exposure.proxy_set
        and (since is None or running is None or running < since)
    ):
        fixes.append(
            f"or upgrade {provider.ccm} to {provider.ipmode_since} or later: it sets "
            "ipMode Proxy when PROXY protocol is on (Kubernetes 1.30 or later)"
        )
    uses_ipmode = provider.ipmode is not IpMode.NEVER or exposure.proxy_set
    if exposure.dataplane_blocks or (uses_ipmode and support in (Tri.MAYBE, Tri.NO)):
        fixes.append(
            "or make the data plane honour ipMode Proxy: kube-proxy 1.30 or later "
            "(1.29 with the LoadBalancerIPMode feature gate), or Cilium 1.17 or "
            "later except 1.18.0"
        )
    if provider.ccm_wide_fix:
        fixes.append(provider.ccm_wide_fix)
    if provider.note:
        fixes.append(provider.note if not fixes else "or " + provider.note)
    return fixes


# -- sentences ---------------------------------------------------------------------


def _first_sentence(provider: Provider, exposure: _Exposure) -> str:
    lb = "the balancer" if provider is UNKNOWN else f"the {provider.name} balancer"
    if exposure.reach is Reach.UNCERTAIN:
        target = (
            f"calls to {_listing(exposure.addresses)}"
            if exposure.addresses
            else "calls"
        )
        lead = "" if exposure.observed else "The status is not populated yet, and "
        return _cap(f"{lead}in-cluster {target} reach {lb} only if {exposure.reason}.")
    if exposure.observed:
        return (
            f"In-cluster calls to {_listing(exposure.addresses)} never reach {lb}: "
            f"kube-proxy short-circuits them because {exposure.reason}."
        )
    return (
        f"The status is not populated yet, but {exposure.reason}, so kube-proxy will "
        f"short-circuit in-cluster calls to that IP and they will never reach {lb}."
    )


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _proxy_sentence(receiver: Receiver, evidence: str, lead: str) -> str:
    calls = (
        f"{lead}those calls arrive without the PROXY header the balancer adds "
        f"({evidence})"
    )
    if receiver.mode is Mode.REQUIRED:
        text = (
            f"{calls}, and {receiver.name} requires it ({receiver.where}), "
            "so it refuses them."
        )
    elif receiver.mode is Mode.OPTIONAL:
        text = (
            f"{calls}; {receiver.name} accepts them ({receiver.where}) but sees the "
            "pod's or node's address instead of the client's."
        )
    elif receiver.mode is Mode.SOME_SOURCES:
        text = (
            f"{calls}, and {receiver.name} refuses them if their pod or node "
            f"addresses fall in {', '.join(receiver.sources)} ({receiver.where})."
        )
    else:
        text = (
            f"{calls}, and receivers that require one (ingress-nginx, Contour, "
            f"HAProxy, Kong) refuse them; {receiver.where}."
        )
    return _cap(text)


def _tls_sentence(evidence: str, lead: str) -> str:
    return _cap(
        f"{lead}those calls reach a plaintext port although the balancer terminates "
        f"TLS ({evidence}), so HTTPS clients inside the cluster fail their handshakes."
    )


# -- the decision ------------------------------------------------------------------


_BY_RECEIVER = {
    Mode.REQUIRED: Severity.BROKEN,
    Mode.UNKNOWN: Severity.BROKEN,
    Mode.OPTIONAL: Severity.DEGRADED,
    Mode.SOME_SOURCES: Severity.AT_RISK,
}


def _finding(
    service: Obj,
    source: str,
    provider: Provider,
    severity: Severity,
    sentences: tuple[str, str],
    fixes: list[str],
    receiver: Receiver,
    addresses: tuple[str, ...],
) -> Finding:
    fixes = fixes or [_RECEIVER_POLICY.removeprefix("or ")]
    first, *rest = fixes
    return Finding(
        kind="Service",
        namespace=namespace_of(service),
        name=name_of(service),
        severity=severity,
        provider=provider.key,
        message=" ".join(sentences),
        fix=first.removeprefix("or "),
        alternatives=tuple(rest),
        receiver=receiver.name,
        addresses=addresses,
        source=source,
    )


def _check_service(
    service: Obj, source: str, inv: Inventory, facts: _Facts, opts: CheckOptions
) -> Finding | None:
    default = provider_by_key(opts.provider) if opts.provider else None
    provider = detect_provider(service, default)
    effect = _effect(provider, service, facts, opts)
    receiver = find_receiver(service, inv)
    entries = _ingress(service)
    exposure = (
        _observed(entries, facts)
        if entries
        else _predicted(provider, service, effect, facts)
    )
    logger.debug(
        "service=%s/%s provider=%s proxy=%s tls=%s reach=%s receiver=%s/%s",
        namespace_of(service),
        name_of(service),
        provider.key,
        effect.proxy is not None,
        effect.tls is not None,
        exposure.reach.name,
        receiver.name,
        receiver.mode.name,
    )

    def make(
        severity: Severity, sentences: tuple[str, str], fixes: list[str]
    ) -> Finding:
        return _finding(
            service,
            source,
            provider,
            severity,
            sentences,
            fixes,
            receiver,
            exposure.addresses,
        )

    if effect.proxy is not None and receiver.mode is Mode.OFF:
        return make(
            *_receiver_off(provider, effect, receiver, service, exposure, facts)
        )

    lead = "If not, " if exposure.reach is Reach.UNCERTAIN else ""
    candidates: list[Finding] = []
    hairpin_fixes = _hairpin_fixes(
        provider, service, exposure, facts, proxy_on=effect.proxy is not None
    )
    if exposure.reach is not Reach.SAFE and effect.proxy is not None:
        severity = _BY_RECEIVER[receiver.mode]
        if exposure.reach is Reach.UNCERTAIN:
            severity = Severity.AT_RISK
        fixes = list(hairpin_fixes)
        if receiver.mode is Mode.OPTIONAL:
            fixes.append(
                "or accept pod and node addresses for internal calls, and keep "
                "entryPoints.<name>.proxyProtocol.trustedIPs to the balancer's "
                "addresses (never insecure)"
            )
        elif receiver.mode is Mode.SOME_SOURCES:
            fixes.append(f"or check that {receiver.where} lists no pod or node network")
        elif receiver.mode is Mode.UNKNOWN or not fixes:
            fixes.append(_RECEIVER_POLICY)
        sentences = (
            _first_sentence(provider, exposure),
            _proxy_sentence(receiver, effect.proxy_evidence, lead),
        )
        candidates.append(make(severity, sentences, fixes))

    if exposure.reach is not Reach.SAFE and effect.tls is not None:
        severity = (
            Severity.AT_RISK if exposure.reach is Reach.UNCERTAIN else Severity.BROKEN
        )
        sentences = (
            _first_sentence(provider, exposure),
            _tls_sentence(effect.tls_evidence, lead),
        )
        candidates.append(make(severity, sentences, list(hairpin_fixes)))

    if effect.proxy is None and receiver.mode is Mode.REQUIRED:
        assumed = _hairpin_fixes(provider, service, exposure, facts)
        unseen = _unseen_proxy(
            provider, service, receiver, exposure, assumed, effect.proxy_explicit_off
        )
        if unseen is not None:
            candidates.append(make(*unseen))

    return max(candidates, key=lambda f: f.severity, default=None)


def _receiver_off(
    provider: Provider,
    effect: _Effect,
    receiver: Receiver,
    service: Obj,
    exposure: _Exposure,
    facts: _Facts,
) -> tuple[Severity, tuple[str, str], list[str]]:
    """The balancer sends headers that the receiver does not read."""
    lb = "the balancer" if provider is UNKNOWN else f"the {provider.name} balancer"
    sentences = (
        _cap(
            f"{lb} adds a PROXY header ({effect.proxy_evidence}), but "
            f"{receiver.name} does not read one ({receiver.where})."
        ),
        "Every connection through the balancer then starts with bytes the receiver "
        "cannot parse, so requests from outside the cluster fail as well.",
    )
    fixes = [receiver.enable] if receiver.enable else []
    hairpin = _hairpin_fixes(provider, service, exposure, facts)
    if exposure.reach is not Reach.SAFE and hairpin:
        then = hairpin[0].removeprefix("or ")
        fixes.append(f"then, so that in-cluster calls keep working: {then}")
    return Severity.BROKEN, sentences, fixes


def _unseen_proxy(
    provider: Provider,
    service: Obj,
    receiver: Receiver,
    exposure: _Exposure,
    hairpin_fixes: list[str],
    explicit_off: bool,
) -> tuple[Severity, tuple[str, str], list[str]] | None:
    """The receiver requires a header, but no annotation turns PROXY on."""
    only_switch = provider is not UNKNOWN and provider.proxy and not provider.proxy_env
    if only_switch or explicit_off:
        # The annotation is the only way this provider's balancer sends a header,
        # so no request at all can succeed: a plain configuration mismatch.
        switch = provider.proxy[0]
        sentences = (
            f"{receiver.name} requires a PROXY header ({receiver.where}), but no "
            f"annotation turns PROXY protocol on for the {provider.name} balancer.",
            "Every connection through the balancer then arrives without a header "
            "and is refused, so requests from outside the cluster fail as well.",
        )
        fixes = [_annotate(service, switch.key, switch.enable)]
        return Severity.BROKEN, sentences, fixes + hairpin_fixes
    if exposure.reach is Reach.SAFE:
        return None

    setting = (
        f"{provider.proxy_env}=true on {provider.ccm}"
        if provider.proxy_env
        else "a setting of the cloud controller manager or a proxy in front"
    )
    target = (
        f"calls to {_listing(exposure.addresses)}"
        if exposure.addresses
        else "calls to the balancer's IP"
    )
    sentences = (
        f"{receiver.name} requires a PROXY header ({receiver.where}), but no "
        f"annotation on this Service turns PROXY protocol on, so it must come from "
        f"something the objects do not show, such as {setting}.",
        f"If so, in-cluster {target} are short-circuited by kube-proxy because "
        f"{exposure.reason}, and arrive without the header and are refused.",
    )
    fixes = list(hairpin_fixes) or [_RECEIVER_POLICY]
    fixes.append("or run this check again with --assume-proxy-protocol to confirm")
    return Severity.AT_RISK, sentences, fixes


def check(manifests: Iterable[Manifest], options: CheckOptions | None = None) -> Report:
    """Every hairpin finding for the LoadBalancer Services among ``manifests``."""
    opts = options or CheckOptions()
    inv = Inventory()
    for manifest in manifests:
        inv.add(manifest.obj, manifest.source)
    facts = _gather_facts(inv, opts)

    findings: list[Finding] = []
    services = 0
    for service, source in inv.services:
        if mapping(service.get("spec")).get("type") != "LoadBalancer":
            continue
        services += 1
        finding = _check_service(service, source, inv, facts, opts)
        if finding is not None:
            findings.append(finding)
    findings.sort(key=lambda f: (-f.severity, f.namespace, f.name))
    return Report(tuple(findings), services)
