import sys

from kascade.sdk.execution.runner import main

sys.exit(main(sys.argv[1:]))
