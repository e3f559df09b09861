"""End-to-end tests against a real Kubernetes cluster (pytest -m e2e)."""
