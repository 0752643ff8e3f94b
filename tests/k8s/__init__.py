"""Tests of the Kubernetes hairpin checker (``realip k8s check``)."""
