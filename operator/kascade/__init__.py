"""Kascade: Airflow-style data pipelines run the Kubernetes way.

Layers, from the inside out (an inner layer never imports an outer one):

- ``api``: pydantic models, the single source of truth for the CRDs.
- ``engine``: pure DAG semantics (compile, trigger rules, schedule, templating,
  decisions). No Kubernetes import, no clock: ``now`` is always passed in.
- ``local``: the local runner, which drives the engine with subprocesses.
- ``kube`` / ``controller``: the only code that talks to the Kubernetes API.
- ``cli``: the ``kascade`` command.
"""

__version__ = "0.1.0"
