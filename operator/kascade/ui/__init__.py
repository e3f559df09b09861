"""What users see of their runs: the web UI (``kascade ui``) and the read model
shared with ``kascade get`` and ``kascade logs``."""
