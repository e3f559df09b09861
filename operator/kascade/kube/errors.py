"""The Kubernetes client's errors, for layers that may not import the client itself."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

__all__ = ["ApiException", "ConfigException"]
