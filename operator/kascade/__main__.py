"""``python -m kascade`` is the ``kascade`` command."""

from kascade.cli.main import main

if __name__ == "__main__":
    main()
