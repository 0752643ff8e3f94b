"""Find the Kubernetes hairpin: in-cluster calls that bypass a load balancer which
adds a PROXY header or terminates TLS.

kube-proxy serves calls to a LoadBalancer Service's external IP locally, so they
never reach the balancer and arrive without what it adds. :func:`check` reads
Services, ingress controller settings and workloads (see :func:`load_paths` and
:func:`load_kubectl`) and returns one :class:`Finding` per affected Service, with
a severity, a two-sentence explanation and the fix for that provider.
"""

from __future__ import annotations

from realip.k8s._check import CheckOptions, Report, check
from realip.k8s._load import (
    Manifest,
    ManifestError,
    kubectl_server_version,
    load_kubectl,
    load_paths,
    load_text,
)
from realip.k8s._model import Finding, Severity, Version
from realip.k8s._providers import PROVIDERS, Provider

__all__ = [
    "PROVIDERS",
    "CheckOptions",
    "Finding",
    "Manifest",
    "ManifestError",
    "Provider",
    "Report",
    "Severity",
    "Version",
    "check",
    "kubectl_server_version",
    "load_kubectl",
    "load_paths",
    "load_text",
]
