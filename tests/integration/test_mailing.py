"""E-mail through real SMTP servers (aiosmtpd on loopback): plain, STARTTLS and TLS."""

from __future__ import annotations

import time
import uuid

import pytest

import servers
from kascade.integrations import mailing
from kascade.integrations.settings import SmtpSettings


def settings(server: servers.SmtpServer, **extra: str) -> SmtpSettings:
    return SmtpSettings.from_data(server.settings(**extra), "Secret ns/smtp")


def unique_subject() -> str:
    return f"Task load failed {uuid.uuid4().hex[:8]}"


def deliver(server: servers.SmtpServer, subject: str, **extra: str) -> servers.Received:
    smtp = settings(server, **extra)
    email = mailing.Email(
        to=("data-team@example.test", "oncall@example.test"),
        cc=("lead@example.test",),
        subject=subject,
        html=mailing.render_html(
            "<p>Task <b>{{ task }}</b> of {{ run_id }} failed: {{ reason }}</p>",
            {"task": "load", "run_id": "daily-etl-2024-01-01", "reason": "exit 2 <oom>"},
        ),
    )
    mailing.send(smtp, mailing.compose(smtp, email, message_id=f"{subject.split()[-1]}.load"))
    # send() returns after the server's 250 to DATA: the message is in the mailbox.
    (received,) = server.mailbox.with_subject(subject)
    return received


def test_plain_smtp_delivers_what_was_composed(smtp_server: servers.SmtpServer) -> None:
    subject = unique_subject()
    got = deliver(smtp_server, subject)
    assert got.mail_from == "kascade@example.test"
    assert sorted(got.recipients) == [
        "data-team@example.test",
        "lead@example.test",
        "oncall@example.test",
    ]
    assert got.message["To"] == "data-team@example.test, oncall@example.test"
    assert got.message["Cc"] == "lead@example.test"
    assert got.message["Bcc"] is None
    assert got.html().strip() == (
        "<p>Task <b>load</b> of daily-etl-2024-01-01 failed: exit 2 &lt;oom&gt;</p>"
    )
    assert got.text().strip() == "Task load of daily-etl-2024-01-01 failed: exit 2 <oom>"
    assert got.authenticated_as is None and got.tls is False


def test_starttls_with_login(smtp_starttls_server: servers.SmtpServer) -> None:
    got = deliver(smtp_starttls_server, unique_subject())
    assert got.tls is True
    assert got.authenticated_as == smtp_starttls_server.user


def test_implicit_tls_with_login(smtp_tls_server: servers.SmtpServer) -> None:
    got = deliver(smtp_tls_server, unique_subject())
    assert got.tls is True
    assert got.authenticated_as == smtp_tls_server.user


def send_expecting_error(
    server: servers.SmtpServer, to: tuple[str, ...] = ("a@example.test",), **extra: str
) -> mailing.DeliveryError:
    smtp = settings(server, **extra)
    message = mailing.compose(smtp, mailing.Email(to=to, subject="s", html="h"))
    with pytest.raises(mailing.DeliveryError) as info:
        mailing.send(smtp, message)
    return info.value


def test_a_refused_password_is_permanent_and_not_shown(
    smtp_starttls_server: servers.SmtpServer,
) -> None:
    error = send_expecting_error(smtp_starttls_server, password="wrong-pass-77")
    assert "login as 'mailer' refused (535)" in str(error)
    assert "wrong-pass-77" not in str(error)
    assert smtp_starttls_server.password is not None
    assert smtp_starttls_server.password not in str(error)
    assert error.transient is False


def test_an_untrusted_certificate_is_refused(smtp_tls_server: servers.SmtpServer) -> None:
    error = send_expecting_error(smtp_tls_server, caCert="")
    assert "TLS certificate not trusted" in str(error)
    assert error.transient is False
    # The explicit opt-out (tests only) gets through.
    got = deliver(smtp_tls_server, unique_subject(), caCert="", insecureSkipVerify="true")
    assert got.tls is True


def test_starttls_required_but_not_offered(smtp_server: servers.SmtpServer) -> None:
    data = {**smtp_server.settings(), "security": "starttls"}
    smtp = SmtpSettings.from_data(data, "test")
    message = mailing.compose(smtp, mailing.Email(to=("a@example.test",), subject="s", html="h"))
    with pytest.raises(mailing.DeliveryError, match="does not offer STARTTLS") as info:
        mailing.send(smtp, message)
    assert info.value.transient is False


def test_a_server_that_is_down_is_transient_and_quick(smtp_server: servers.SmtpServer) -> None:
    port = servers.free_port(("127.0.0.1",))
    started = time.monotonic()
    error = send_expecting_error(smtp_server, port=str(port), timeout="3")
    assert error.transient is True
    assert "ConnectionRefusedError" in str(error)
    assert time.monotonic() - started < 10


def test_refused_and_deferred_recipients(smtp_server: servers.SmtpServer) -> None:
    refused = send_expecting_error(smtp_server, to=("unknown@example.test",))
    assert "every recipient was refused (unknown@example.test: 550 5.1.1 No such user)" in str(
        refused
    )
    assert refused.transient is False
    deferred = send_expecting_error(smtp_server, to=("busy@example.test",))
    assert "451" in str(deferred) and deferred.transient is True
    before = len(smtp_server.mailbox.messages)
    partial = send_expecting_error(smtp_server, to=("ok@example.test", "unknown@example.test"))
    assert "some recipients were refused (unknown@example.test: 550" in str(partial)
    assert partial.transient is False  # a retry would send the others a second copy
    assert [m.recipients for m in smtp_server.mailbox.messages[before:]] == [("ok@example.test",)]


def test_settings_that_cannot_work_are_permanent(smtp_server: servers.SmtpServer) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    bad_ca = send_expecting_error(smtp_server, security="starttls", caCert=pem)
    assert "caCert is not a readable PEM certificate" in str(bad_ca)
    assert bad_ca.transient is False
    plain_port = send_expecting_error(smtp_server, security="tls", timeout="5")
    assert "TLS handshake failed" in str(plain_port) and "check security and port" in str(
        plain_port
    )
    assert plain_port.transient is False
