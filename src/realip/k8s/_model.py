"""Plain values shared by the checker: severities, findings, versions, and small
accessors that read Kubernetes objects without trusting their shape.

Objects come from YAML or JSON written by people and tools, so every accessor
tolerates a missing or mistyped field and returns an empty value instead.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from realip.errors import ConfigError

Obj = Mapping[str, Any]

WORKLOAD_KINDS = frozenset({"Deployment", "DaemonSet", "StatefulSet"})


class Severity(enum.IntEnum):
    """How bad a finding is; ``--fail-on`` compares with ``>=``."""

    AT_RISK = 1  # it depends on something the objects do not show
    DEGRADED = 2  # internal calls work but lose the client address
    BROKEN = 3  # internal calls fail

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> Severity:
        for member in cls:
            if member.label == text:
                return member
        choices = ", ".join(m.label for m in cls)
        raise ConfigError(f"unknown severity {text!r}; expected one of {choices}")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with one object, ready to print or to serialise."""

    kind: str
    namespace: str
    name: str
    severity: Severity
    provider: str
    message: str
    fix: str
    alternatives: tuple[str, ...] = ()
    receiver: str = ""
    addresses: tuple[str, ...] = ()
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "severity": self.severity.label,
            "provider": self.provider,
            "message": self.message,
            "fix": self.fix,
            "alternatives": list(self.alternatives),
            "receiver": self.receiver,
            "addresses": list(self.addresses),
            "source": self.source,
        }


# -- versions --------------------------------------------------------------------

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """A ``major.minor.patch`` version; build suffixes (``-gke.1``) are ignored."""

    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> Version:
        found = _VERSION.match(text.strip())
        if found is None:
            raise ConfigError(
                f"not a version: {text!r} (expected e.g. 1.30 or v1.30.2)"
            )
        major, minor, patch = found.groups()
        return cls(int(major), int(minor), int(patch or 0))

    @classmethod
    def from_image(cls, image: str) -> Version | None:
        """The version in an image tag (``registry/x:v1.21.0``), if it has one."""
        name = image.split("@", 1)[0]
        _, colon, tag = name.rpartition(":")
        if not colon or "/" in tag:
            return None
        try:
            return cls.parse(tag)
        except ConfigError:
            return None

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


# -- tolerant accessors ------------------------------------------------------------


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def seq(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def meta(obj: Obj) -> Mapping[str, Any]:
    return mapping(obj.get("metadata"))


def namespace_of(obj: Obj) -> str:
    return str(meta(obj).get("namespace") or "default")


def name_of(obj: Obj) -> str:
    return str(meta(obj).get("name") or "")


def string_map(value: Any) -> dict[str, str]:
    """Annotations, labels and ConfigMap data: values as strings, as the API has
    them (a YAML ``true`` written without quotes still means ``"true"``)."""
    out: dict[str, str] = {}
    for key, item in mapping(value).items():
        if isinstance(item, bool):
            out[str(key)] = "true" if item else "false"
        elif item is not None:
            out[str(key)] = str(item)
    return out


def annotations_of(obj: Obj) -> dict[str, str]:
    return string_map(meta(obj).get("annotations"))


def labels_of(obj: Obj) -> dict[str, str]:
    return string_map(meta(obj).get("labels"))


def pod_spec(workload: Obj) -> Mapping[str, Any]:
    template = mapping(mapping(workload.get("spec")).get("template"))
    return mapping(template.get("spec"))


def pod_labels(workload: Obj) -> dict[str, str]:
    template = mapping(mapping(workload.get("spec")).get("template"))
    return string_map(mapping(template.get("metadata")).get("labels"))


def containers(workload: Obj) -> Iterator[Mapping[str, Any]]:
    spec = pod_spec(workload)
    for item in seq(spec.get("containers")) + seq(spec.get("initContainers")):
        if isinstance(item, Mapping):
            yield item


def container_args(container: Mapping[str, Any]) -> list[str]:
    """``command`` and ``args`` together: charts put flags in either."""
    return [str(a) for a in seq(container.get("command")) + seq(container.get("args"))]


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in seq(container.get("env")):
        entry = mapping(item)
        if "name" in entry and entry.get("value") is not None:
            out[str(entry["name"])] = str(entry["value"])
    return out


def truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in {"true", "1", "yes", "on"}


@dataclass(slots=True)
class Inventory:
    """The objects of one run, indexed the ways the checker looks them up."""

    services: list[tuple[Obj, str]] = field(default_factory=list)
    configmaps: dict[tuple[str, str], Obj] = field(default_factory=dict)
    workloads: list[Obj] = field(default_factory=list)
    others: list[Obj] = field(default_factory=list)

    def add(self, obj: Obj, source: str) -> None:
        kind = obj.get("kind")
        if kind == "Service":
            self.services.append((obj, source))
        elif kind == "ConfigMap":
            self.configmaps[(namespace_of(obj), name_of(obj))] = obj
        elif kind in WORKLOAD_KINDS:
            self.workloads.append(obj)
        else:
            self.others.append(obj)

    def configmap(self, namespace: str, name: str) -> Obj | None:
        return self.configmaps.get((namespace, name))
