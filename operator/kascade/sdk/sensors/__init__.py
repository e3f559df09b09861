"""Airflow-like sensor modules (``kascade.sdk.sensors.filesystem`` ...); all are also in ``kascade.sdk``."""
