"""Clients for what a pipeline talks to besides Kubernetes: SMTP, PostgreSQL, S3.

These are I/O modules at the edge. They take resolved settings (parsed by
:mod:`kascade.integrations.settings` from a Secret's data or from environment
variables) and never import :mod:`kascade.kube`, kopf or the Kubernetes client,
so the operator, the local runner and a task pod (``kascade poke``) call the
same code. The engine never imports them. The heavy client libraries
(psycopg, obstore) are imported inside the functions that use them: importing
``kascade`` stays fast, and a machine without libpq only loses SQL pokes.
"""
