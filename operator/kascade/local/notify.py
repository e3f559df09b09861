"""Notifications, locally: webhooks are POSTed, hook tasks run as processes, e-mail is sent.

A notification is a side effect about the run, never part of it: every failure
here becomes a notice for the user and the run's outcome is unchanged. Each one
gets the callback context the engine built (``Fire.context``), with the link to
the log: the attempt's log file here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from kascade.engine import callbacks
from kascade.engine.decisions import Fire
from kascade.integrations import mailing as smtp_client
from kascade.local import mailing, processes
from kascade.local.attempts import Workspace, argv_for
from kascade.local.mailing import LocalSmtp

WEBHOOK_TIMEOUT_SECONDS = 10.0
HOOK_TIMEOUT_SECONDS = 60.0


def post_webhook(url: str, body: Any) -> None:
    import urllib.request  # only runs that notify pay for http.client and ssl

    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as resp:
        resp.read(1024)


class Notifier:
    def __init__(
        self,
        ws: Workspace,
        notice: Callable[[str], None],
        smtp: LocalSmtp | None = None,
        email_delays: tuple[float, ...] = smtp_client.LOCAL_RETRY_DELAYS,
    ) -> None:
        self.ws = ws
        self.notice = notice
        self.smtp = smtp or LocalSmtp(None, "no SMTP settings")
        self.email_delays = email_delays
        self._count = 0

    def log_url(self, fire: Fire) -> str:
        """The attempt's log file (the run's log folder for a run event)."""
        attempt = fire.context.get("try_number")
        if fire.task is not None and isinstance(attempt, int) and attempt > 0:
            return self.ws.log_path(fire.task, attempt).as_uri()
        return (self.ws.root / "logs").as_uri()

    async def fire(self, fire: Fire) -> None:
        n = fire.notification
        what = f"notification {n.name} ({fire.event})"
        ctx = callbacks.with_log_url(fire.context, self.log_url(fire))
        senders = (("webhook", self._webhook), ("hook", self._hook), ("email", self._email))
        for kind, send in senders:
            if getattr(n, kind) is None:
                continue
            try:
                await send(fire, ctx, what)
            except Exception as exc:  # a notification must never break the run
                self.notice(f"{what} {kind} failed: {exc}")

    async def _webhook(self, fire: Fire, ctx: Mapping[str, Any], what: str) -> None:
        webhook = fire.notification.webhook
        assert webhook is not None
        if not webhook.url:
            self.notice(f"{what}: webhook URL is in a Secret, not readable locally")
            return
        body = callbacks.render_body(webhook.body, ctx)
        await asyncio.to_thread(post_webhook, webhook.url, body)
        self.notice(f"{what}: webhook sent")

    async def _hook(self, fire: Fire, ctx: Mapping[str, Any], what: str) -> None:
        hook = fire.notification.hook
        assert hook is not None
        self._count += 1
        name = f"{fire.notification.name}-{self._count}"
        env = dict(self.ws.base_env)
        env.update({e.name: e.value for e in hook.env or [] if e.value is not None})
        env.update(callbacks.hook_env(ctx, fire.task))
        argv = argv_for(hook.command, hook.args, hook.script, self.ws.script_path("_hook", name))
        log = self.ws.hook_log_path(name)
        proc = await processes.spawn(argv, env=env, cwd=self.ws.cwd, log=log)
        code = await processes.wait_or_kill(proc, HOOK_TIMEOUT_SECONDS)
        if code != 0:
            ended = "timed out" if code is None else f"exit code {code}"
            self.notice(f"{what}: hook {ended} (log: {log})")

    async def _email(self, fire: Fire, ctx: Mapping[str, Any], what: str) -> None:
        template = fire.notification.email
        assert template is not None
        email = callbacks.render_email(template, ctx)
        ident = smtp_client.message_id(
            ctx.get("run_id"), fire.notification.name, fire.event, fire.task or "run",
            ctx.get("try_number") or 0,
        )  # fmt: skip
        why = await mailing.send(self.smtp, email, ident, self.notice, what, self.email_delays)
        if why is None:
            self.notice(f"{what}: e-mail sent to {', '.join(email.to)}")
        else:
            self.notice(f"{what}: e-mail not sent: {why}")
