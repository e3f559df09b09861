"""The Kascade runtime: runs one task of a Python DAG file inside its pod or process.

Like Airflow's workers (``task_runner.py``), it runs the DAG file again, finds
the task, builds Airflow's context from the environment the engine rendered
(run, params, upstream outputs, templated arguments), calls ``execute`` (or
``poke``, or a callback) and writes the outputs. Standard library only: the pod
has a plain Python image. Entry point: ``python -m kascade.sdk.execution``.
"""
