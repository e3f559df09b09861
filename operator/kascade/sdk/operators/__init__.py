"""Airflow-like operator modules (``kascade.sdk.operators.bash``...), also in ``kascade.sdk``."""
