"""The ``kascade`` command group; each area registers its own commands here.

Commands import their heavy dependencies (pydantic models, rich, YAML) inside
the command body, so ``kascade --help`` and every command start fast.
"""

from __future__ import annotations

import click

from kascade.cli import cluster_commands, local_commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kascade", prog_name="kascade")
def cli() -> None:
    """Kascade: Airflow-style data pipelines as Kubernetes manifests."""


local_commands.register(cli)
cluster_commands.register(cli)


def main() -> None:
    cli(prog_name="kascade")
