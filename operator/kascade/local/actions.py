"""Attempts of tasks that run no process: ``sendEmail`` and ``triggerPipeline``, locally.

The engine launched them like any task; here the runner does the work and returns a
Result, as the operator does on a cluster. A triggered pipeline runs in this process,
from the same file or folder (``local/triggering.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kascade.api.runs import AttemptReason
from kascade.engine import actions, addresses, callbacks
from kascade.engine.context import RunContext
from kascade.engine.decisions import Launch, Result
from kascade.integrations import mailing as smtp_client
from kascade.local import mailing
from kascade.local.mailing import LocalSmtp
from kascade.local.triggering import LocalTriggers, TriggerFailed


class LocalActions:
    def __init__(
        self,
        ctx: RunContext,
        smtp: LocalSmtp,
        triggers: LocalTriggers | None,
        notice: Callable[[str], None],
        email_delays: tuple[float, ...] = smtp_client.LOCAL_RETRY_DELAYS,
    ) -> None:
        self.ctx = ctx
        self.smtp = smtp
        self.triggers = triggers
        self.notice = notice
        self.email_delays = email_delays

    async def run(self, launch: Launch, log: Path) -> Result:
        action = actions.action_of(launch.spec)
        with log.open("a") as out:
            if action is actions.Action.EMAIL:
                result = await self._email(launch, out.write)
            else:
                result = await self._trigger(launch, out.write)
            out.write(f"{result.message or 'done'}\n")
        return result

    async def _email(self, launch: Launch, write: Callable[[str], object]) -> Result:
        spec = launch.spec.send_email
        assert spec is not None
        try:
            email = callbacks.sent_email(spec)
        except addresses.RecipientError as exc:
            return _failed(str(exc))
        write(f"sending {email.subject!r} to {', '.join(email.to)}\n")
        ident = smtp_client.message_id(self.ctx.run_id, launch.key, launch.attempt)
        what = f"{launch.key}: e-mail"
        why = await mailing.send(self.smtp, email, ident, self.notice, what, self.email_delays)
        if why is not None:
            return _failed(f"e-mail not sent: {why}")
        return Result(0, outputs={}, message=f"sent to {', '.join(email.to)}")

    async def _trigger(self, launch: Launch, write: Callable[[str], object]) -> Result:
        spec, policy = launch.spec.trigger_pipeline, launch.trigger_policy
        assert spec is not None and policy is not None
        if self.triggers is None:
            return _failed("this local run cannot trigger other pipelines")
        try:
            request = actions.trigger_request(
                spec,
                namespace=self.ctx.namespace,
                parent_run=self.ctx.run_id,
                key=launch.key,
                attempt=launch.attempt,
            )
            child = await self.triggers.trigger(request, policy.reset)
        except (ValueError, TriggerFailed) as exc:
            return _failed(str(exc))
        write(f"triggered {child.pipeline} run {child.run_id}\n")
        outputs = actions.trigger_outputs(child.run_id, child.logical_date)
        if not policy.wait:
            return Result(0, outputs=outputs, message=f"triggered run {child.run_id}")
        while (verdict := policy.verdict(child.phase)) is None and not child.done:
            await child.wait(policy.interval.total_seconds())
        message = f"run {child.run_id} of {child.pipeline} is {child.phase}"
        if verdict is True:
            return Result(0, outputs=outputs, message=message)
        return _failed(message if verdict is False else f"{message}, not an allowed state")


def _failed(message: str) -> Result:
    return Result(None, reason=AttemptReason.ACTION_FAILED, message=message)
