"""The ``kascade`` command group; each area registers its own commands here.

Commands import their heavy dependencies (pydantic models, rich, YAML) inside
the command body, so ``kascade --help`` and every command start fast.
"""

from __future__ import annotations

import sys

import click

from kascade.cli import (
    cluster_commands,
    local_commands,
    log_commands,
    outputs_command,
    poke_commands,
    sdk_commands,
    view_commands,
)
from kascade.kube import KubeConfigError

EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kascade", prog_name="kascade")
def cli() -> None:
    """Kascade: Airflow-style data pipelines as Kubernetes manifests."""


local_commands.register(cli)
cluster_commands.register(cli)
poke_commands.register(cli)
outputs_command.register(cli)
sdk_commands.register(cli)
view_commands.register(cli)
log_commands.register(cli)


def main() -> None:
    """Like click's standalone mode, except that Ctrl-C exits 130 as shells expect."""
    try:
        code = cli.main(prog_name="kascade", standalone_mode=False)
    except click.Abort as exc:
        click.echo("Aborted!", err=True)
        sys.exit(EXIT_INTERRUPTED if isinstance(exc.__cause__, KeyboardInterrupt) else 1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KubeConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
