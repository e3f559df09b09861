"""Transient API errors are retried with backoff; real answers (404, 409 on create) are not."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from kascade.kube.client import Kube


class _Flaky:
    """Fails with the given errors, one per call, then answers."""

    def __init__(self, *errors: BaseException, answer: Any = None) -> None:
        self.errors = list(errors)
        self.answer = answer
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.answer


def _kube() -> Kube:
    return Kube(retry_wait=0)


@pytest.mark.parametrize(
    "error",
    [
        ApiException(status=429),
        ApiException(status=500),
        ApiException(status=503),
        ApiException(status=409),  # a conflicting patch: read again, patch again
        ConnectionResetError(),
        urllib3.exceptions.ProtocolError("connection reset"),
    ],
)
def test_a_transient_error_is_retried(error: BaseException) -> None:
    kube = _kube()
    patch = _Flaky(error, error)
    kube.custom.patch_namespaced_custom_object_status = patch  # type: ignore[method-assign]
    kube.patch_status("taskruns", "ns", "tr", {"state": "success"})
    assert patch.calls == 3


def test_a_create_that_conflicts_means_it_exists_and_is_not_retried() -> None:
    kube = _kube()
    create = _Flaky(ApiException(status=409))
    kube.custom.create_namespaced_custom_object = create  # type: ignore[method-assign]
    assert kube.create("taskruns", "ns", {"metadata": {"name": "x"}}) is None
    assert create.calls == 1
    pod = _Flaky(ApiException(status=503), ApiException(status=409))
    kube.core.create_namespaced_pod = pod  # type: ignore[method-assign]
    assert kube.create_pod("ns", {"metadata": {"name": "p"}}) is False
    assert pod.calls == 2


def test_a_real_answer_is_not_retried() -> None:
    kube = _kube()
    get = _Flaky(ApiException(status=404))
    kube.custom.get_namespaced_custom_object = get  # type: ignore[method-assign]
    assert kube.get("pipelines", "ns", "gone") is None
    assert get.calls == 1
    forbidden = _Flaky(ApiException(status=403))
    kube.custom.patch_namespaced_custom_object = forbidden  # type: ignore[method-assign]
    with pytest.raises(ApiException):
        kube.patch("pipelineruns", "ns", "r", {})
    assert forbidden.calls == 1
