"""kascade.integrations.objectstore against a real S3 server (versitygw, tests/servers/)."""

from __future__ import annotations

import os
import time

import pytest

import servers
from kascade.integrations.objectstore import (
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreError,
    ObjectTooLargeError,
)
from kascade.integrations.settings import ObjectStoreSettings

# The first test may build versitygw from source (cached afterwards).
pytestmark = pytest.mark.timeout(900)

MIB = 1 << 20


def store_for(server: servers.S3Server, bucket: str | None = None, **extra: str) -> ObjectStore:
    settings = ObjectStoreSettings.from_data(server.settings(**extra), "test secret")
    return ObjectStore(settings, bucket or server.make_bucket())


def test_one_mib_round_trip(s3_server: servers.S3Server) -> None:
    store = store_for(s3_server)
    payload = os.urandom(MIB)
    store.put("runs/r1/extract/outputs.json", payload, content_type="application/json")
    assert store.get("runs/r1/extract/outputs.json", max_bytes=MIB) == payload
    info = store.head("runs/r1/extract/outputs.json")
    assert info is not None and (info.key, info.size) == ("runs/r1/extract/outputs.json", MIB)
    # The object is a file on the server's disk: a real store, not a fake.
    on_disk = s3_server.data / store.bucket / "runs/r1/extract/outputs.json"
    assert on_disk.read_bytes() == payload


def test_size_cap_refuses_without_returning_data(s3_server: servers.S3Server) -> None:
    store = store_for(s3_server)
    store.put("big", b"x" * (MIB + 1))
    with pytest.raises(ObjectTooLargeError) as info:
        store.get("big", max_bytes=MIB)
    assert str(info.value) == (
        f"s3://{store.bucket}/big is {MIB + 1} bytes, over the limit of {MIB} bytes"
    )
    assert store.get("big", max_bytes=MIB + 1) == b"x" * (MIB + 1)


def test_missing_object_and_bucket(s3_server: servers.S3Server) -> None:
    store = store_for(s3_server)
    assert store.head("nope") is None
    assert not store.exists("nope")
    with pytest.raises(ObjectNotFoundError, match=rf"get s3://{store.bucket}/nope: no such object"):
        store.get("nope")
    gone = store_for(s3_server, bucket="no-such-bucket")
    with pytest.raises(ObjectNotFoundError, match="put s3://no-such-bucket/k: no such bucket"):
        gone.put("k", b"1")


def test_list_is_a_string_prefix_and_delete_is_idempotent(s3_server: servers.S3Server) -> None:
    store = store_for(s3_server)
    for key in ("logs/2024-01-01.txt", "logs/2024-01-02.txt", "logs/2025-01-01.txt", "other"):
        store.put(key, key.encode())
    assert sorted(i.key for i in store.list("logs/2024")) == [
        "logs/2024-01-01.txt",
        "logs/2024-01-02.txt",
    ]
    assert len(list(store.list())) == 4
    assert list(store.list("nothing/here")) == []
    store.delete("other")
    store.delete("other")
    assert not store.exists("other")


def test_a_prefix_scopes_a_store(s3_server: servers.S3Server) -> None:
    bucket = s3_server.make_bucket()
    run_a = store_for(s3_server, bucket, prefix="kascade/ns-a")
    run_b = store_for(s3_server, bucket, prefix="kascade/ns-b")
    run_a.put("r/out", b"a")
    run_b.put("r/out", b"b")
    assert (run_a.get("r/out"), run_b.get("r/out")) == (b"a", b"b")
    assert [i.key for i in run_a.list()] == ["r/out"]
    whole = store_for(s3_server, bucket)
    assert sorted(i.key for i in whole.list()) == ["kascade/ns-a/r/out", "kascade/ns-b/r/out"]


def test_refused_credentials_are_an_error_without_the_secret(
    s3_server: servers.S3Server,
) -> None:
    bucket = s3_server.make_bucket()
    store_for(s3_server, bucket).put("k", b"v")
    wrong = store_for(s3_server, bucket, secretAccessKey="not-the-secret-1234")
    with pytest.raises(ObjectStoreError) as info:
        wrong.get("k")
    text = str(info.value)
    assert text.startswith(f"get s3://{bucket}/k: ") and "403" in text
    assert "not-the-secret-1234" not in text and s3_server.secret_key not in text
    assert "<?xml" not in text


def test_a_store_that_is_down_fails_in_bounded_time(s3_server: servers.S3Server) -> None:
    port = servers.free_port(("127.0.0.1",))  # nothing listens there
    data = {**s3_server.settings(), "endpoint": f"http://127.0.0.1:{port}", "timeout": "2"}
    store = ObjectStore(ObjectStoreSettings.from_data(data, "test"), "some-bucket")
    started = time.monotonic()
    with pytest.raises(ObjectStoreError, match=r"get s3://some-bucket/k: .*(error|refused)"):
        store.get("k")
    assert time.monotonic() - started < 15
