"""Airflow-like sensor modules (``kascade.sdk.sensors.http``...), also in ``kascade.sdk``."""
