"""The local runner: a pipeline's tasks as subprocesses on this machine (``kascade run``)."""
