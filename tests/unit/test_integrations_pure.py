"""The pure parts of kascade.integrations: settings, recipients, composing, the poke rules.

The I/O against real servers is in tests/integration/.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from kascade.engine import templating
from kascade.integrations import mailing, pokes
from kascade.integrations.settings import (
    ObjectStoreSettings,
    PostgresSettings,
    SettingsError,
    SmtpSettings,
    bucket_name_problem,
    from_env,
)

SRC = Path(__file__).resolve().parents[2] / "operator" / "kascade"


# ---------------------------------------------------------------- settings


def test_smtp_settings_defaults_follow_security() -> None:
    base = {"host": "mail.example.com", "from": "etl@example.com"}
    assert SmtpSettings.from_data(base, "s").port == 587
    assert SmtpSettings.from_data({**base, "security": "tls"}, "s").port == 465
    assert SmtpSettings.from_data({**base, "security": "NONE"}, "s").port == 25
    full = SmtpSettings.from_data(
        {**base, "port": "2525", "user": "u", "password": "p", "timeout": "5s"}, "s"
    )
    assert (full.port, full.user, full.password, full.timeout, full.verify) == (
        2525,
        "u",
        "p",
        5.0,
        True,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"from": "a@b.c"}, "key 'host': is required"),
        ({"host": "h"}, "key 'from': is required"),
        ({"host": "h", "from": "nobody"}, "key 'from': must be an e-mail address"),
        ({"host": "h", "from": "a@b.c", "port": "smtp"}, "key 'port': must be a whole number"),
        ({"host": "h", "from": "a@b.c", "port": "70000"}, "key 'port': must be between 1"),
        ({"host": "h", "from": "a@b.c", "security": "ssl"}, "must be one of starttls, tls, none"),
        ({"host": "h", "from": "a@b.c", "user": "u"}, "key 'password': is required when user is"),
        ({"host": "h", "from": "a@b.c", "password": "p"}, "key 'user': is required when password"),
        ({"host": "h", "from": "a@b.c", "port": "2_5"}, "key 'port': must be a whole number"),
        (
            {"host": "h", "from": "a@b.c", "user": "u", "password": "p", "security": "none"},
            "must be starttls or tls when a password is set",
        ),
        ({"host": "h", "from": "a@b.c", "passwd": "x"}, "unknown key (did you mean password?)"),
        ({"host": "h", "from": "a@b.c", "caCert": "abc"}, "key 'caCert': must be PEM"),
        ({"host": "h", "from": "a@b.c", "insecureSkipVerify": "maybe"}, "must be true or false"),
        ({"host": "h", "from": "a@b.c", "timeout": "0"}, "key 'timeout': must be more than 0"),
    ],
)
def test_smtp_settings_errors_name_the_key(data: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        SmtpSettings.from_data(data, "Secret ns/mail")
    assert str(info.value).startswith("Secret ns/mail: key ")
    assert message in str(info.value)


def test_settings_errors_never_show_values() -> None:
    secret = "s3cr3t-value-123"
    for data in (
        {"host": "h", "from": "a@b.c", "port": secret},
        {"host": "h", "from": "a@b.c", "caCert": secret},
        {"uri": secret},
        {"endpoint": secret},
    ):
        for parse in (SmtpSettings.from_data, PostgresSettings.from_data):
            try:
                parse(data, "src")
            except SettingsError as exc:
                assert secret not in str(exc)
        try:
            ObjectStoreSettings.from_data({"endpoint": secret}, "src")
        except SettingsError as exc:
            assert secret not in str(exc)


def test_passwords_are_not_in_reprs() -> None:
    smtp = SmtpSettings.from_data(
        {"host": "h", "from": "a@b.c", "user": "u", "password": "pw-123"}, "s"
    )
    pg = PostgresSettings.from_data({"host": "h", "password": "pw-456"}, "s")
    uri = PostgresSettings.from_data({"uri": "postgresql://u:pw-789@h/db"}, "s")
    store = ObjectStoreSettings.from_data(
        {"accessKeyId": "AK", "secretAccessKey": "pw-000", "sessionToken": "tok-1"}, "s"
    )
    text = " ".join(map(repr, (smtp, pg, uri, store)))
    for value in ("pw-123", "pw-456", "pw-789", "pw-000", "tok-1"):
        assert value not in text


def test_values_are_stripped() -> None:
    smtp = SmtpSettings.from_data(
        {"host": " h\n", "from": "a@b.c\n", "user": "u", "password": "pw\n"}, "s"
    )
    assert (smtp.host, smtp.sender, smtp.password) == ("h", "a@b.c", "pw")


def test_postgres_settings_uri_or_fields() -> None:
    fields = PostgresSettings.from_data(
        {"host": "db", "database": "w", "user": "u", "password": "p", "sslmode": "require"}, "s"
    )
    assert (fields.host, fields.port, fields.database, fields.sslmode) == (
        "db",
        5432,
        "w",
        "require",
    )
    uri = PostgresSettings.from_data({"uri": "postgresql://u@db/w", "connectTimeout": "3"}, "s")
    assert (uri.uri, uri.host, uri.connect_timeout) == ("postgresql://u@db/w", None, 3.0)
    with pytest.raises(SettingsError, match="give either uri or host, not both"):
        PostgresSettings.from_data({"uri": "postgresql://db/w", "host": "db"}, "s")
    with pytest.raises(SettingsError, match="must start with postgresql://"):
        PostgresSettings.from_data({"uri": "mysql://db/w"}, "s")
    with pytest.raises(SettingsError, match="key 'sslmode': must be one of disable"):
        PostgresSettings.from_data({"host": "db", "sslmode": "on"}, "s")
    with pytest.raises(SettingsError, match="did you mean sslmode"):
        PostgresSettings.from_data({"host": "db", "sslMode": "require"}, "s")


def test_object_store_settings() -> None:
    aws = ObjectStoreSettings.from_data({"region": "eu-west-1", "bucket": "logs"}, "s")
    assert (aws.endpoint, aws.path_style, aws.bucket) == (None, False, "logs")
    local = ObjectStoreSettings.from_data(
        {"endpoint": "http://10.0.0.1:7070/", "prefix": "/kascade/outputs/"}, "s"
    )
    assert (local.endpoint, local.path_style, local.prefix) == (
        "http://10.0.0.1:7070",
        True,
        "kascade/outputs",
    )
    problems = {
        "endpoint": ({"endpoint": "10.0.0.1:7070"}, "must be an http:// or https:// URL"),
        "path": ({"endpoint": "http://h/bucket"}, "must not have a path"),
        "bucket": ({"bucket": "My_Bucket"}, "key 'bucket': must be 3-63 characters"),
        "token": ({"sessionToken": "t"}, "needs accessKeyId and secretAccessKey"),
        "style": ({"addressingStyle": "dns"}, "must be one of path, virtual"),
    }
    for data, message in problems.values():
        with pytest.raises(SettingsError, match=message):
            ObjectStoreSettings.from_data(data, "s")


@pytest.mark.parametrize(
    ("bucket", "ok"),
    [("abc", True), ("my.bucket-1", True), ("ab", False), ("-abc", False), ("abc-", False),
     ("Abc", False), ("a_b_c", False), ("é" * 5, False), ("a" * 63, True), ("a" * 64, False)],
)  # fmt: skip
def test_bucket_names(bucket: str, ok: bool) -> None:
    assert (bucket_name_problem(bucket) is None) is ok


def test_from_env_strips_the_prefix_and_keeps_others_out() -> None:
    environ = {"CONN_WH_host": "db", "CONN_WH_port": "5433", "CONN_WHX_host": "no", "HOME": "/"}
    assert from_env("CONN_WH_", environ) == {"host": "db", "port": "5433"}


# ---------------------------------------------------------------- e-mail


def test_recipients_from_lists_and_strings() -> None:
    assert mailing.parse_recipients("a@x.io, b@y.io;c@z.io ,", "to") == (
        "a@x.io",
        "b@y.io",
        "c@z.io",
    )
    assert mailing.parse_recipients(["a@x.io"], "cc") == ("a@x.io",)
    assert mailing.parse_recipients(None, "cc") == ()


@pytest.mark.parametrize(
    "bad",
    ["nobody", "a@b@c", "a@b.c\r\nBcc: evil@x.io", "Name <a@b.c>", "@b.c", "a@"],
)
def test_bad_recipients_are_refused_with_the_field(bad: str) -> None:
    with pytest.raises(mailing.RecipientError) as info:
        mailing.parse_recipients(["ok@x.io", bad], "email")
    assert str(info.value).startswith("email[1]: ")


def test_too_many_recipients() -> None:
    many = [f"u{i}@x.io" for i in range(mailing.MAX_RECIPIENTS + 1)]
    with pytest.raises(mailing.RecipientError, match="at most 100"):
        mailing.parse_recipients(many, "to")


SMTP = SmtpSettings.from_data({"host": "h", "from": "kascade@example.com"}, "s")


def test_compose_builds_html_with_a_text_twin() -> None:
    email = mailing.Email(
        to=("a@x.io", "b@x.io"),
        cc=("c@x.io",),
        subject="Task load failed\r\nBcc: evil@x.io",
        html="<h1>Run</h1><p>Task <b>load</b> failed:<br>exit 2</p><style>p{}</style>",
    )
    message = mailing.compose(SMTP, email, message_id="run-1.load.failure")
    assert message["From"] == "kascade@example.com"
    assert message["To"] == "a@x.io, b@x.io"
    assert message["Cc"] == "c@x.io"
    assert message["Subject"] == "Task load failed Bcc: evil@x.io"  # one line: no injection
    assert message["Bcc"] is None
    assert message["Message-ID"] == "<run-1.load.failure@example.com>"
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None and "<b>load</b>" in html_part.get_content()
    assert text_part is not None
    assert text_part.get_content().strip() == "Run\nTask load failed:\nexit 2"


def test_compose_needs_a_recipient() -> None:
    with pytest.raises(mailing.RecipientError, match="to: at least one"):
        mailing.compose(SMTP, mailing.Email(to=(), subject="s", html="h"))


def test_render_html_escapes_values_not_markup() -> None:
    ctx = {"reason": "<script>alert(1)</script> & more", "params": {"n": 3}}
    body = "<p>{{ reason }}</p><i>{{ params.n + 1 }}</i>"
    assert mailing.render_html(body, ctx) == (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; more</p><i>4</i>"
    )
    # The same template without escape renders the raw value (the engine's default).
    assert templating.render(body, ctx).startswith("<p><script>")


# ---------------------------------------------------------------- pokes


@pytest.mark.parametrize(
    ("rows", "met"),
    [
        ([], False),
        ([()], False),
        ([(None,)], False),
        ([(0,)], False),
        ([(0.0,)], False),
        ([(Decimal("0"),)], False),
        ([("0",)], False),
        ([("",)], False),
        ([(" ",)], False),
        ([(False,)], False),
        ([(1,)], True),
        ([(Decimal("0.5"),)], True),
        ([("yes",)], True),
        ([("false",)], True),  # Airflow's rule: only 0, '0', '' and None are "not yet"
        ([(True,)], True),
        ([(0,), (1,)], False),  # only the first row counts
    ],
)
def test_first_cell_rule(rows: list[tuple[object, ...]], met: bool) -> None:
    assert pokes.first_cell_met(rows) is met


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [("data/2024-*.csv", "data/2024-"), ("a/b?/c", "a/b"), ("x[0-9]", "x"), ("plain", "plain"),
     ("*", "")],
)  # fmt: skip
def test_wildcard_prefix(pattern: str, prefix: str) -> None:
    assert pokes.wildcard_prefix(pattern) == prefix


def test_sql_poke_without_libpq_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    settings = PostgresSettings.from_data({"host": "db"}, "s")
    with pytest.raises(pokes.PokeError, match="install libpq") as info:
        pokes.sql_poke(settings, "SELECT 1")
    assert info.value.transient is False


# ---------------------------------------------------------------- layers


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_layers_engine_never_imports_integrations_and_integrations_no_kube() -> None:
    for path in (SRC / "engine").rglob("*.py"):
        bad = {n for n in _imports(path) if n.startswith("kascade.integrations")}
        assert not bad, f"{path.name} (engine) imports {bad}"
    for path in (SRC / "integrations").rglob("*.py"):
        bad = {
            n
            for n in _imports(path)
            if n.split(".")[0] in ("kubernetes", "kopf")
            or n.startswith(("kascade.kube", "kascade.controller", "kascade.local", "kascade.cli"))
        }
        assert not bad, f"integrations/{path.name} imports {bad}"


def test_client_libraries_load_only_when_used() -> None:
    """`kascade` starts without psycopg/obstore; a machine without libpq only loses SQL pokes."""
    code = (
        "import sys, kascade.cli.main, kascade.integrations.pokes, "
        "kascade.integrations.objectstore, kascade.integrations.mailing; "
        "print(sorted(m for m in ('psycopg', 'obstore') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC.parent)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
