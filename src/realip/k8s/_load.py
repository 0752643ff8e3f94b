"""Read Kubernetes objects from manifests, stdin or ``kubectl``.

Accepted shapes: multi-document YAML (including ``helm template`` output with
its ``# Source:`` comments and empty documents), JSON, a single object, a
``kubectl get -o json`` ``List`` and the API's typed lists (``ServiceList``...),
nested lists included. Every error names the file and, when the parser knows
it, the line.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from realip.errors import ConfigError
from realip.k8s._model import Obj, Version

__all__ = [
    "KUBECTL_RESOURCES",
    "Manifest",
    "ManifestError",
    "kubectl_server_version",
    "load_kubectl",
    "load_paths",
    "load_text",
]

logger = logging.getLogger("realip.k8s")

_SUFFIXES = frozenset({".yaml", ".yml", ".json"})

# What ``realip k8s check`` reads from a live cluster: the Services, and the
# objects that say what receives their traffic (ingress-nginx's ConfigMap, the
# controllers' arguments) and which data plane and CCM run.
KUBECTL_RESOURCES = "services,configmaps,deployments,daemonsets,statefulsets"
_KUBECTL_TIMEOUT = 120.0

try:  # libyaml is several times faster on big Helm renders
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


class ManifestError(ConfigError):
    """Input that cannot be read as Kubernetes objects.

    ``str()`` is ``"<what>, in <source>"``; ``source`` and ``line`` (1-based, or
    ``None``) are kept for callers that format their own message.
    """

    def __init__(self, what: str, source: str, line: int | None = None) -> None:
        where = f"{what} at line {line}" if line is not None else what
        super().__init__(f"{where}, in {source}")
        self.source = source
        self.line = line


@dataclass(frozen=True, slots=True)
class Manifest:
    """One Kubernetes object and where it came from (``file`` or ``file#doc``)."""

    obj: Obj
    source: str


def load_paths(paths: Sequence[str], stdin: IO[str] | None = None) -> list[Manifest]:
    """Objects from files, folders (searched for ``*.yaml``, ``*.yml``,
    ``*.json``) and ``-`` for ``stdin``."""
    out: list[Manifest] = []
    for entry in paths:
        if entry == "-":
            if stdin is None:
                raise ManifestError("no standard input to read", "-")
            out.extend(load_text(stdin.read(), "<stdin>"))
            continue

        path = Path(entry)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES)
            if not files:
                logger.warning("no *.yaml, *.yml or *.json file under %s", path)
            for file in files:
                if file.is_file():
                    out.extend(_load_file(file))
        else:
            out.extend(_load_file(path))
    return out


def _load_file(path: Path) -> list[Manifest]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError("not UTF-8 text", str(path)) from exc
    except OSError as exc:
        raise ManifestError(f"cannot read ({exc.strerror or exc})", str(path)) from exc
    return load_text(text, str(path))


def load_text(text: str, source: str) -> list[Manifest]:
    """Objects from one file's text: JSON when it looks like JSON, else YAML."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            docs: Iterable[Any] = [json.loads(text)]
        except json.JSONDecodeError as exc:
            if stripped.startswith("["):  # a YAML flow sequence is possible too
                docs = _yaml_docs(text, source)
            else:
                raise ManifestError(
                    f"malformed JSON ({exc.msg})", source, exc.lineno
                ) from exc
    else:
        docs = _yaml_docs(text, source)

    out: list[Manifest] = []
    for index, doc in enumerate(docs, start=1):
        label = source if index == 1 else f"{source}#{index}"
        out.extend(Manifest(obj, label) for obj in _flatten(doc, label))
    return out


def _yaml_docs(text: str, source: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "cannot parse"
        raise ManifestError(f"malformed YAML ({problem})", source, line) from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"malformed YAML ({exc})", source) from exc


def _flatten(doc: Any, source: str) -> Iterator[Obj]:
    """Objects out of one document: lists (``List``, ``ServiceList``, a bare YAML
    sequence) are opened recursively; empty documents are skipped."""
    if doc is None:
        return
    if isinstance(doc, list):
        for item in doc:
            yield from _flatten(item, source)
        return
    if not isinstance(doc, Mapping):
        raise ManifestError(
            f"expected Kubernetes objects, found a {type(doc).__name__}", source
        )
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
        items = doc.get("items") or []
        if not isinstance(items, list):
            raise ManifestError(f"{kind} items is not a list", source)
        for item in items:
            yield from _flatten(item, source)
        return
    if not isinstance(kind, str):
        # Helm values files and kustomizations sit beside manifests in folders.
        logger.debug("skipping a document without kind in %s", source)
        return
    yield doc


def _run_kubectl(argv: list[str]) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ManifestError("kubectl is not on PATH", "kubectl")
    command = [kubectl, *argv]
    logger.debug("running %s", " ".join(command))
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=_KUBECTL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ManifestError(
            f"no answer within {_KUBECTL_TIMEOUT:.0f} s", " ".join(command)
        ) from exc
    except OSError as exc:
        raise ManifestError(f"cannot run ({exc.strerror or exc})", kubectl) from exc
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        reason = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise ManifestError(f"kubectl failed: {reason}", " ".join(command))
    return done.stdout


def load_kubectl(context: str | None = None) -> list[Manifest]:
    """The current context's Services, ConfigMaps and workloads, via kubectl."""
    argv = ["get", KUBECTL_RESOURCES, "--all-namespaces", "-o", "json"]
    if context:
        argv[:0] = ["--context", context]
    return load_text(_run_kubectl(argv), "kubectl get " + KUBECTL_RESOURCES)


def kubectl_server_version(context: str | None = None) -> Version | None:
    """The API server's version, or ``None`` when kubectl cannot tell."""
    argv = ["version", "-o", "json"]
    if context:
        argv[:0] = ["--context", context]
    try:
        answer = json.loads(_run_kubectl(argv))
        return Version.parse(str(answer["serverVersion"]["gitVersion"]))
    except (ManifestError, ConfigError, ValueError, KeyError, TypeError) as exc:
        logger.debug("kubectl version gave no server version: %s", exc)
        return None
