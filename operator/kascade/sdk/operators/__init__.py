"""Airflow-like operator modules (``kascade.sdk.operators.bash`` ...); all are also in ``kascade.sdk``."""
