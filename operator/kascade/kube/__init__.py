"""The only modules that talk to the Kubernetes API."""


class KubeConfigError(Exception):
    """No usable way to reach a cluster: no in-cluster account and no (valid) kubeconfig.

    Defined here, apart from the client, so that the command line can catch it without
    importing the Kubernetes client.
    """
