"""Commands for Python DAG files: ``compile`` and ``apply`` (``run``/``validate`` take them too).

``kascade compile dags/ -o out/`` writes one Pipeline per DAG plus the bundle
ConfigMap; ``kascade apply dags/`` sends the same objects to the cluster with
server-side apply, and with ``--prune`` deletes the Pipelines (and bundles) of
this DAG folder that the files no longer produce.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

EXIT_INVALID = 2
_PATH = click.Path(exists=True, path_type=Path)


def _target_options(f: Any) -> Any:
    f = click.option(
        "--dags-folder",
        metavar="PATH",
        help="With --image: where the image holds the DAG folder (the production path).",
    )(f)
    f = click.option(
        "--image",
        metavar="IMAGE",
        help="Image for Python tasks. With --dags-folder: the image contains the DAGs and "
        "kascade, and no bundle ConfigMap is made.",
    )(f)
    return f


def _compile(
    paths: tuple[Path, ...], image: str | None, dags_folder: str | None, skip: Path | None = None
) -> Any:
    from kascade.sdk.compiler.project import Options, compile_paths

    if dags_folder and not image:
        raise click.UsageError("--dags-folder needs --image (an image that contains the DAGs)")
    target = "image" if dags_folder else "bundle"
    result = compile_paths(list(paths), Options(target, image, dags_folder, skip))
    for problem in result.problems:
        click.echo(str(problem), err=True)
    if result.problems:
        sys.exit(EXIT_INVALID)
    return result


@click.command("compile")
@click.argument("paths", nargs=-1, required=True, type=_PATH)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for the manifests (generated files no longer produced are removed).",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if OUT is not up to date.")
@_target_options
def compile_command(
    paths: tuple[Path, ...], out: Path, check: bool, image: str | None, dags_folder: str | None
) -> None:
    """Compile Python DAG files (or folders of them) into Kascade manifests.

    Deterministic: the same files give the same bytes. Exit code 2 on any
    problem (each printed as file:line), 1 with --check when OUT is stale.
    """
    from kascade.sdk.compiler import output

    result = _compile(paths, image, dags_folder, skip=out)
    files = output.render(result)
    if check:
        drift = output.changed(out, files) + [p.name for p in output.stale(out, files)]
        for name in drift:
            click.echo(f"stale: {out / name}", err=True)
        sys.exit(1 if drift else 0)
    written, removed = output.write(out, files)
    for name in written:
        click.echo(f"wrote {out / name}")
    for path in removed:
        click.echo(f"removed {path}")
    click.echo(
        f"{len(result.dags)} pipeline(s) from {len(result.files)} file(s) in {result.seconds:.2f}s"
        + ("" if written or removed else "; nothing changed")
    )


@click.command("apply")
@click.argument("paths", nargs=-1, required=True, type=_PATH)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
@click.option(
    "--prune",
    is_flag=True,
    help="Delete this DAG folder's Pipelines that the files no longer produce.",
)
@click.option(
    "--project",
    metavar="NAME",
    help="What --prune considers one DAG folder (default: the folder's name).",
)
@_target_options
def apply_command(
    paths: tuple[Path, ...],
    namespace: str,
    kubeconfig: str | None,
    prune: bool,
    project: str | None,
    image: str | None,
    dags_folder: str | None,
) -> None:
    """Compile Python DAG files and apply the manifests to the cluster (server-side apply)."""
    from kascade.cli.sdk_apply import apply_compilation
    from kascade.kube.client import ApiException, Kube, load_config

    result = _compile(paths, image, dags_folder)
    load_config(kubeconfig)
    name = project or _project_of(paths)
    try:
        lines = apply_compilation(Kube(), result, namespace, name, prune, echo=click.echo)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except ApiException as exc:
        raise click.ClickException(
            f"the API server refused: {exc.status} {exc.reason}: {_api_message(exc)}"
        ) from None
    del lines


def _api_message(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body).get("message"))
    except (TypeError, ValueError, AttributeError):
        return str(exc.body or "")[:300]


def _project_of(paths: tuple[Path, ...]) -> str:
    first = paths[0].resolve()
    return (first if first.is_dir() else first.parent).name


def register(group: click.Group) -> None:
    for command in (compile_command, apply_command):
        group.add_command(command)
