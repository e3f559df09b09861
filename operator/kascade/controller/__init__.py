"""The operator: kopf handlers (thin) around run drivers that apply the engine's decisions.

Pure translation (names, pod specs, pod observations, scheduling) lives in its own
modules here; all API I/O goes through ``kascade.kube``.
"""
