"""Notifications, locally: webhooks are POSTed, hook tasks run as processes.

A notification is a side effect about the run, never part of it: every failure
here becomes a notice for the user and the run's outcome is unchanged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from kascade.engine.decisions import Fire
from kascade.local import processes
from kascade.local.attempts import Workspace, argv_for

WEBHOOK_TIMEOUT_SECONDS = 10.0
HOOK_TIMEOUT_SECONDS = 60.0


def post_webhook(url: str, text: str) -> None:
    import urllib.request  # only runs that notify pay for http.client and ssl

    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as resp:
        resp.read(1024)


class Notifier:
    def __init__(self, ws: Workspace, notice: Callable[[str], None]) -> None:
        self.ws = ws
        self.notice = notice
        self._count = 0

    async def fire(self, fire: Fire) -> None:
        n = fire.notification
        what = f"notification {n.name} ({fire.event})"
        try:
            if n.webhook is not None:
                if n.webhook.url:
                    await asyncio.to_thread(post_webhook, n.webhook.url, fire.message)
                    self.notice(f"{what}: webhook sent")
                else:
                    self.notice(f"{what}: webhook URL is in a Secret, not readable locally")
            if n.hook is not None:
                await self._hook(fire, what)
        except Exception as exc:  # a notification must never break the run
            self.notice(f"{what} failed: {exc}")

    async def _hook(self, fire: Fire, what: str) -> None:
        hook = fire.notification.hook
        assert hook is not None
        self._count += 1
        name = f"{fire.notification.name}-{self._count}"
        env = dict(self.ws.base_env)
        env.update({e.name: e.value for e in hook.env or [] if e.value is not None})
        env["KASCADE_EVENT"] = fire.event
        env["KASCADE_TASK"] = fire.task or ""
        env["KASCADE_MESSAGE"] = fire.message
        argv = argv_for(hook.command, hook.args, hook.script, self.ws.script_path("_hook", name))
        log = self.ws.hook_log_path(name)
        proc = await processes.spawn(argv, env=env, cwd=self.ws.cwd, log=log)
        code = await processes.wait_or_kill(proc, HOOK_TIMEOUT_SECONDS)
        if code != 0:
            ended = "timed out" if code is None else f"exit code {code}"
            self.notice(f"{what}: hook {ended} (log: {log})")
