"""What receives a LoadBalancer Service's traffic, and how it treats PROXY headers.

The Service's selector leads to the workload (Deployment, DaemonSet or
StatefulSet) behind it; its images say which ingress controller it is, and that
controller's own configuration says whether a PROXY header is required:

- ingress-nginx: ``use-proxy-protocol`` in the ConfigMap named by the
  controller's ``--configmap`` argument (usually
  ``ingress-nginx/ingress-nginx-controller``). nginx's ``proxy_protocol`` listen
  parameter refuses connections without a header.
- Traefik: ``entryPoints.<name>.proxyProtocol`` in its arguments, environment or
  static configuration file. Traefik reads a header when one comes and accepts
  connections without one, so a hairpin only loses the client address.
- HAProxy Kubernetes Ingress (haproxytech): the ConfigMap key ``proxy-protocol``,
  a list of source networks that must send a header (``0.0.0.0/0`` is all).
- HAProxy Ingress (jcmoraisjr): the ConfigMap key ``use-proxy-protocol``.
- Contour: ``contour serve --use-proxy-protocol`` or a ContourConfiguration with
  ``spec.envoy.listener.useProxyProtocol``; Envoy's listener filter then requires
  the header.
- Kong: ``proxy_protocol`` on ``KONG_PROXY_LISTEN`` (or ``KONG_STREAM_LISTEN``).
"""

from __future__ import annotations

import enum
import logging
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from realip.k8s._model import (
    Inventory,
    Obj,
    container_args,
    container_env,
    containers,
    labels_of,
    mapping,
    name_of,
    namespace_of,
    pod_labels,
    pod_spec,
    seq,
    string_map,
    truthy,
)

__all__ = ["Mode", "Receiver", "find_receiver"]

logger = logging.getLogger("realip.k8s")


class Mode(enum.Enum):
    """How the receiver treats a connection that arrives without a header."""

    REQUIRED = "refuses it"
    OPTIONAL = "accepts it, and takes the peer as the client"
    SOME_SOURCES = "refuses it from some source networks"
    OFF = "does not read PROXY headers at all"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Receiver:
    """The receiving side of one Service.

    ``where`` is the evidence, ready to quote in a sentence
    (``use-proxy-protocol=true in ConfigMap ingress-nginx/ingress-nginx-controller``).
    ``enable`` says how to turn PROXY protocol on there, for mismatch fixes.
    """

    name: str
    mode: Mode
    where: str
    sources: tuple[str, ...] = ()
    enable: str = ""


UNKNOWN_RECEIVER = Receiver(
    "the receiver",
    Mode.UNKNOWN,
    "no ingress controller behind this Service is among the objects",
)


# -- identifying the controller ----------------------------------------------------


def _image_name(container: Mapping[str, Any]) -> str:
    """``registry.k8s.io/ingress-nginx/controller:v1.11@sha256:...`` ->
    ``ingress-nginx/controller`` (registry and tag dropped, path kept)."""
    image = str(container.get("image") or "").split("@", 1)[0]
    head, colon, tag = image.rpartition(":")
    if colon and "/" not in tag:
        image = head
    parts = image.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0]):
        parts = parts[1:]
    return "/".join(parts).lower()


def _images(workload: Obj) -> list[str]:
    return [_image_name(c) for c in containers(workload)]


def _is_nginx(workload: Obj) -> bool:
    if any(i.endswith("ingress-nginx/controller") for i in _images(workload)):
        return True
    return any(
        a.endswith("/nginx-ingress-controller")
        for c in containers(workload)
        for a in container_args(c)
    )


def _is_traefik(workload: Obj) -> bool:
    return any(i.rsplit("/", 1)[-1] == "traefik" for i in _images(workload))


def _is_haproxytech(workload: Obj) -> bool:
    return any(i.endswith("haproxytech/kubernetes-ingress") for i in _images(workload))


def _is_haproxy_ingress(workload: Obj) -> bool:
    return any(i.endswith("/haproxy-ingress") for i in _images(workload))


def _is_contour(workload: Obj) -> bool:
    # The Envoy DaemonSet that Contour deploys carries a contour container
    # (shutdown-manager), so both halves are recognised.
    return any(i.endswith("projectcontour/contour") for i in _images(workload))


def _is_kong(workload: Obj) -> bool:
    return any(
        i.rsplit("/", 1)[-1] in {"kong", "kong-gateway"} for i in _images(workload)
    )


# -- reading each controller's setting ---------------------------------------------


def _configmap_ref(workload: Obj | None) -> tuple[str, str] | None:
    """The ``--configmap ns/name`` argument, with ``$(POD_NAMESPACE)`` expanded."""
    if workload is None:
        return None
    for container in containers(workload):
        args = container_args(container)
        for index, arg in enumerate(args):
            if arg.startswith("--configmap="):
                value = arg.split("=", 1)[1]
            elif arg == "--configmap" and index + 1 < len(args):
                value = args[index + 1]
            else:
                continue
            value = value.replace("$(POD_NAMESPACE)", namespace_of(workload))
            namespace, slash, name = value.rpartition("/")
            return (namespace if slash else namespace_of(workload)), name
    return None


def _find_configmap(
    inv: Inventory,
    workload: Obj | None,
    service: Obj,
    usual: tuple[str, str],
) -> tuple[Obj | None, str]:
    """The controller's ConfigMap and its ``ns/name`` (found or expected)."""
    ref = _configmap_ref(workload)
    if ref is not None:
        return inv.configmap(*ref), "/".join(ref)

    # Helm names the controller's Service and ConfigMap alike.
    candidates = [(namespace_of(service), name_of(service)), usual]
    if workload is not None:
        candidates.insert(0, (namespace_of(workload), name_of(workload)))
    for namespace, name in candidates:
        found = inv.configmap(namespace, name)
        if found is not None:
            return found, f"{namespace}/{name}"
    return None, "/".join(usual)


def _data(configmap: Obj) -> dict[str, str]:
    return string_map(configmap.get("data"))


def _workload_label(workload: Obj) -> str:
    return f"{workload.get('kind')} {namespace_of(workload)}/{name_of(workload)}"


def _unknown(name: str, missing: str, enable: str) -> Receiver:
    """A receiver whose setting cannot be read: ``missing`` names the object."""
    return Receiver(
        name, Mode.UNKNOWN, f"{missing} is not among the objects", (), enable
    )


def _read_nginx(inv: Inventory, workload: Obj | None, service: Obj) -> Receiver:
    name = "ingress-nginx"
    usual = ("ingress-nginx", "ingress-nginx-controller")
    configmap, ref = _find_configmap(inv, workload, service, usual)
    enable = (
        f"kubectl patch configmap -n {ref.split('/')[0]} {ref.split('/')[1]} "
        """--type merge -p '{"data":{"use-proxy-protocol":"true"}}'"""
    )
    if configmap is None:
        return _unknown(name, f"its ConfigMap {ref}", enable)
    value = _data(configmap).get("use-proxy-protocol")
    where = f"use-proxy-protocol={value or 'false'} in ConfigMap {ref}"
    mode = Mode.REQUIRED if truthy(value) else Mode.OFF
    return Receiver(name, mode, where, (), enable)


_TRAEFIK_ARG = re.compile(r"^--entry[pP]oints\.([^.=]+)\.proxy[pP]rotocol\b", re.I)
_TRAEFIK_ENV = re.compile(r"^TRAEFIK_ENTRYPOINTS_(.+?)_PROXYPROTOCOL", re.I)


def _traefik_static(text: str, key: str) -> list[str]:
    """Entry points with ``proxyProtocol`` in a traefik.yml/.toml file."""
    try:
        doc = tomllib.loads(text) if key.endswith(".toml") else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        logger.warning("cannot parse Traefik static config %s: %s", key, exc)
        return []
    found: list[str] = []
    for top, points in mapping(doc).items():
        if str(top).lower() != "entrypoints":
            continue
        for point, conf in mapping(points).items():
            if any(str(k).lower() == "proxyprotocol" for k in mapping(conf)):
                found.append(str(point))
    return found


def _read_traefik(inv: Inventory, workload: Obj | None, service: Obj) -> Receiver:
    name = "Traefik"
    enable = (
        "set entryPoints.<name>.proxyProtocol.trustedIPs to the balancer's addresses"
    )
    if workload is None:
        return _unknown(name, "its Deployment", enable)

    points: list[str] = []
    for container in containers(workload):
        for arg in container_args(container):
            if found := _TRAEFIK_ARG.match(arg):
                points.append(found.group(1))
        for key in container_env(container):
            if found := _TRAEFIK_ENV.match(key):
                points.append(found.group(1).lower())
    for volume in seq(pod_spec(workload).get("volumes")):
        ref = name_of({"metadata": mapping(mapping(volume).get("configMap"))})
        configmap = inv.configmap(namespace_of(workload), ref) if ref else None
        for key, text in _data(configmap or {}).items():
            if key.endswith((".yml", ".yaml", ".toml")):
                points.extend(_traefik_static(text, key))

    label = _workload_label(workload)
    if not points:
        return Receiver(name, Mode.OFF, f"no proxyProtocol entry point in {label}")
    unique = ", ".join(sorted(set(points)))
    where = f"proxyProtocol on entry point {unique} of {label}"
    return Receiver(name, Mode.OPTIONAL, where, (), enable)


def _read_haproxytech(inv: Inventory, workload: Obj | None, service: Obj) -> Receiver:
    name = "HAProxy Kubernetes Ingress"
    usual = ("haproxy-controller", "haproxy-kubernetes-ingress")
    configmap, ref = _find_configmap(inv, workload, service, usual)
    enable = f"set proxy-protocol to the balancer's source networks in ConfigMap {ref}"
    if configmap is None:
        return _unknown(name, f"its ConfigMap {ref}", enable)
    value = _data(configmap).get("proxy-protocol", "")
    sources = tuple(s.strip() for s in value.split(",") if s.strip())
    where = f"proxy-protocol={value or '(unset)'} in ConfigMap {ref}"
    if not sources:
        return Receiver(name, Mode.OFF, where, (), enable)
    if {"0.0.0.0/0", "::/0"} & set(sources):
        return Receiver(name, Mode.REQUIRED, where, sources, enable)
    return Receiver(name, Mode.SOME_SOURCES, where, sources, enable)


def _read_haproxy_ingress(
    inv: Inventory, workload: Obj | None, service: Obj
) -> Receiver:
    name = "HAProxy Ingress"
    usual = ("ingress-controller", "haproxy-ingress")
    configmap, ref = _find_configmap(inv, workload, service, usual)
    enable = f'set use-proxy-protocol: "true" in ConfigMap {ref}'
    if configmap is None:
        return _unknown(name, f"its ConfigMap {ref}", enable)
    value = _data(configmap).get("use-proxy-protocol")
    on = truthy(value) or (value or "").lower() in {"v1", "v2"}
    where = f"use-proxy-protocol={value or 'false'} in ConfigMap {ref}"
    return Receiver(name, Mode.REQUIRED if on else Mode.OFF, where, (), enable)


def _contour_serve_flag(workload: Obj) -> bool | None:
    """``True``/``False`` for a ``contour serve`` container, ``None`` otherwise."""
    for container in containers(workload):
        args = container_args(container)
        if "serve" not in args:
            continue
        for arg in args:
            if arg == "--use-proxy-protocol":
                return True
            if arg.startswith("--use-proxy-protocol="):
                return truthy(arg.split("=", 1)[1])
        return False
    return None


def _read_contour(inv: Inventory, workload: Obj | None, service: Obj) -> Receiver:
    name = "Contour (Envoy)"
    enable = "add --use-proxy-protocol to contour serve"
    namespace = namespace_of(service)
    for config in inv.others:
        if config.get("kind") != "ContourConfiguration":
            continue
        listener = mapping(
            mapping(mapping(config.get("spec")).get("envoy")).get("listener")
        )
        if (
            listener.get("useProxyProtocol") is True
            and namespace_of(config) == namespace
        ):
            where = f"useProxyProtocol in ContourConfiguration {name_of(config)}"
            return Receiver(name, Mode.REQUIRED, where, (), enable)

    for candidate in inv.workloads:
        if namespace_of(candidate) != namespace or not _is_contour(candidate):
            continue
        flag = _contour_serve_flag(candidate)
        if flag is None:
            continue
        label = _workload_label(candidate)
        if flag:
            return Receiver(
                name, Mode.REQUIRED, f"--use-proxy-protocol on {label}", (), enable
            )
        return Receiver(
            name, Mode.OFF, f"no --use-proxy-protocol on {label}", (), enable
        )
    return _unknown(name, "the contour serve Deployment", enable)


def _read_kong(inv: Inventory, workload: Obj | None, service: Obj) -> Receiver:
    name = "Kong"
    enable = "add proxy_protocol to each address in KONG_PROXY_LISTEN"
    if workload is None:
        return _unknown(name, "its Deployment", enable)
    label = _workload_label(workload)
    for container in containers(workload):
        env = container_env(container)
        for key in ("KONG_PROXY_LISTEN", "KONG_STREAM_LISTEN"):
            if "proxy_protocol" in env.get(key, ""):
                where = f"proxy_protocol in {key} of {label}"
                return Receiver(name, Mode.REQUIRED, where, (), enable)
    return Receiver(
        name, Mode.OFF, f"no proxy_protocol listener in {label}", (), enable
    )


@dataclass(frozen=True, slots=True)
class _Family:
    names: frozenset[str]  # app.kubernetes.io/name values and Service names
    matches: Callable[[Obj], bool]
    read: Callable[[Inventory, Obj | None, Obj], Receiver]


_FAMILIES = (
    _Family(frozenset({"ingress-nginx", "nginx-ingress"}), _is_nginx, _read_nginx),
    _Family(frozenset({"traefik"}), _is_traefik, _read_traefik),
    _Family(frozenset({"kubernetes-ingress"}), _is_haproxytech, _read_haproxytech),
    _Family(frozenset({"haproxy-ingress"}), _is_haproxy_ingress, _read_haproxy_ingress),
    _Family(frozenset({"contour", "envoy"}), _is_contour, _read_contour),
    _Family(frozenset({"kong"}), _is_kong, _read_kong),
)


def _selected(service: Obj, inv: Inventory) -> Iterator[Obj]:
    selector = string_map(mapping(service.get("spec")).get("selector"))
    if not selector:
        return
    namespace = namespace_of(service)
    for workload in inv.workloads:
        if namespace_of(workload) != namespace:
            continue
        template = pod_labels(workload)
        if all(template.get(k) == v for k, v in selector.items()):
            yield workload


def _family_by_name(service: Obj) -> _Family | None:
    tags = labels_of(service)
    hints = [tags.get("app.kubernetes.io/name", ""), tags.get("app", "")]
    service_name = name_of(service)
    for family in _FAMILIES:
        if any(h in family.names for h in hints):
            return family
    for family in _FAMILIES:
        if any(
            service_name.startswith(n) or f"-{n}" in service_name for n in family.names
        ):
            return family
    return None


def find_receiver(service: Obj, inv: Inventory) -> Receiver:
    """Who receives ``service``'s traffic and what it does without a header."""
    selected = list(_selected(service, inv))
    for workload in selected:
        for family in _FAMILIES:
            if family.matches(workload):
                return family.read(inv, workload, service)

    guessed = _family_by_name(service)
    if guessed is not None:
        namespace = namespace_of(service)
        peers = [
            w
            for w in inv.workloads
            if namespace_of(w) == namespace and guessed.matches(w)
        ]
        return guessed.read(inv, peers[0] if peers else None, service)

    if selected:
        label = _workload_label(selected[0])
        return Receiver(
            f"the application in {label}",
            Mode.UNKNOWN,
            f"{label} is not an ingress controller this check knows",
        )
    return UNKNOWN_RECEIVER
