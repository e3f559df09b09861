"""The ``kascade`` command line."""
