"""The contract between a task's process and Kascade, the same locally and on Kubernetes.

Outputs (XCom): the task writes to the file named by ``$KASCADE_OUTPUTS`` either
one JSON object (``{"rows": 42}``) or ``key=value`` lines (values that parse as
JSON are typed: ``rows=42`` gives the number 42). On Kubernetes that file is the
container's termination message, which the kubelet caps at 4096 bytes, so the
same limit is enforced everywhere.

Reserved output names: ``branch`` (a branch task's choice: a task name or a list
of names), ``condition`` (a short-circuit task's verdict).

Sensors: a ``command`` sensor's exit code 0 means the condition is met,
``SENSOR_NOT_MET`` means "not yet, poke again", anything else is an error.
"""

OUTPUTS_ENV = "KASCADE_OUTPUTS"
OUTPUTS_LIMIT_BYTES = 4096
BRANCH_OUTPUT = "branch"
CONDITION_OUTPUT = "condition"
SENSOR_NOT_MET = 100
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
