"""Reading a log once its pod is gone: ``kascade logs`` and the UI ask the archive
(``ui/logs.PodLogs`` over ``integrations/log_archive``, the real versitygw server)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

import servers
from kascade.integrations.log_archive import LogArchive
from kascade.integrations.objectstore import ObjectStore
from kascade.integrations.settings import ObjectStoreSettings
from kascade.ui.logs import AttemptRef, PodLogs
from kascade.ui.readers import NotFound


class GoneCore:
    """The API server's answer for a pod that no longer exists (or one RBAC forbids)."""

    def __init__(self, status: int = 404) -> None:
        self.status = status

    def read_namespaced_pod_log(self, *args: Any, **kwargs: Any) -> Any:
        raise ApiException(status=self.status, reason="Not Found" if self.status == 404 else "")


class GoneKube:
    def __init__(self, status: int = 404) -> None:
        self.core = GoneCore(status)


@pytest.fixture()
def archive(s3_server: servers.S3Server) -> LogArchive:
    data = {**s3_server.settings(), "bucket": s3_server.make_bucket(), "prefix": "kascade"}
    return LogArchive(ObjectStore(ObjectStoreSettings.from_data(data, "test")))


def _read(source: PodLogs, ref: AttemptRef) -> bytes:
    return b"".join(source.chunks(ref, follow=False, ended=lambda: True))


def _ref(number: int = 1, note: str | None = None) -> AttemptRef:
    return AttemptRef("ns", "r", "t", number, pod=f"r-t-a{number}", archive_note=note)


def test_a_gone_pods_log_comes_from_the_archive(archive: LogArchive) -> None:
    archive.write("ns", "r", "t", 1, b"kept\n")
    assert _read(PodLogs(GoneKube(), archive=archive), _ref()) == b"kept\n"


def test_neither_pod_nor_archive_names_the_pod_and_the_attempt_and_says_why(
    archive: LogArchive,
) -> None:
    note = "the operator could not archive it: the store did not take it: down (after 5 tries)"
    with pytest.raises(NotFound) as caught:
        _read(PodLogs(GoneKube(), archive=archive), _ref(2, note))
    assert str(caught.value) == (
        f"the pod r-t-a2 of attempt 2 of t is gone and the log archive has no log for it: {note}"
    )
    with pytest.raises(NotFound, match="the pod r-t-a1 of attempt 1 is gone and no log archive"):
        _read(PodLogs(GoneKube()), _ref())


def test_a_user_the_api_server_refuses_never_reaches_the_archive(archive: LogArchive) -> None:
    archive.write("ns", "r", "t", 1, b"kept\n")
    with pytest.raises(ApiException) as caught:
        _read(PodLogs(GoneKube(403), archive=archive), _ref())
    assert caught.value.status == 403


def test_an_archive_that_cannot_be_read_says_so(s3_server: servers.S3Server) -> None:
    data = {**s3_server.settings(), "bucket": s3_server.make_bucket(), "secretAccessKey": "nope-x1"}
    store = ObjectStore(ObjectStoreSettings.from_data(data, "test"), retries=0)
    with pytest.raises(NotFound) as caught:
        _read(PodLogs(GoneKube(), archive=LogArchive(store)), _ref())
    message = str(caught.value)
    assert message.startswith("attempt 1 of t in run r: pod r-t-a1 is gone and the log archive")
    assert "nope-x1" not in message
