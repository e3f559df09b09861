#!/usr/bin/env python3
"""Pod create -> Succeeded latency on the cluster in KUBECONFIG (default: the local one).

Creates busybox pods (`echo`, run as non-root) in a scratch namespace and measures, per pod,
the wall time from the create call returning to the watch seeing phase Succeeded.

    python3 hack/cluster/pod-latency.py                # 10 pods, one after the other
    python3 hack/cluster/pod-latency.py --parallel 30  # 30 pods created at once
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

from kubernetes import client, config, watch

LOCAL_KUBECONFIG = Path.home() / ".local/state/kascade/cluster/kubeconfig"


def pod(name: str, image: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            restart_policy="Never",
            automount_service_account_token=False,
            termination_grace_period_seconds=1,
            containers=[
                client.V1Container(
                    name="main",
                    image=image,
                    image_pull_policy="IfNotPresent",
                    command=["sh", "-c", "echo done"],
                    security_context=client.V1SecurityContext(
                        run_as_non_root=True,
                        run_as_user=65534,
                        allow_privilege_escalation=False,
                        capabilities=client.V1Capabilities(drop=["ALL"]),
                        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
                    ),
                )
            ],
        ),
    )


def wait_done(
    core: client.CoreV1Api, ns: str, pending: dict[str, float], timeout: float
) -> dict[str, float]:
    """Watch pods in ns until every name in `pending` finished; return name -> seconds."""
    done: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(pending):
        if time.monotonic() > deadline:
            raise TimeoutError(f"pods not finished: {sorted(set(pending) - set(done))}")
        w = watch.Watch()
        for ev in w.stream(
            core.list_namespaced_pod, ns, timeout_seconds=max(1, int(deadline - time.monotonic()))
        ):
            p = ev["object"]
            name = p.metadata.name
            if name in pending and name not in done and p.status.phase in ("Succeeded", "Failed"):
                done[name] = time.monotonic() - pending[name]
                if p.status.phase != "Succeeded":
                    print(f"warning: {name} {p.status.phase}", file=sys.stderr)
                if len(done) == len(pending):
                    w.stop()
                    break
    return done


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "-n", "--count", type=int, default=10, help="pods, one after the other (default 10)"
    )
    ap.add_argument(
        "--parallel", type=int, default=0, help="instead: create this many pods at once"
    )
    ap.add_argument("--image", default="busybox:1.36")
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()

    config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or str(LOCAL_KUBECONFIG))
    core = client.CoreV1Api()
    ns = f"pod-latency-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        while True:  # pods are rejected until the default service account exists
            try:
                core.read_namespaced_service_account("default", ns)
                break
            except client.ApiException:
                time.sleep(0.1)
        if args.parallel:
            t0 = time.monotonic()
            pending = {}
            for i in range(args.parallel):
                core.create_namespaced_pod(ns, pod(f"p{i}", args.image))
                pending[f"p{i}"] = time.monotonic()
            lat = wait_done(core, ns, pending, args.timeout)
            total = time.monotonic() - t0
            mode = f"{args.parallel} pods created at once, all done in {total:.2f}s"
        else:
            lat = {}
            for i in range(args.count):
                core.create_namespaced_pod(ns, pod(f"p{i}", args.image))
                lat.update(wait_done(core, ns, {f"p{i}": time.monotonic()}, args.timeout))
            mode = f"{args.count} pods one after the other"
        values = sorted(lat.values())
        print(f"pod create -> Succeeded ({mode}, image {args.image})")
        print(
            f"  min {values[0]:.2f}s  median {statistics.median(values):.2f}s"
            f"  max {values[-1]:.2f}s  (n={len(values)})"
        )
        print("  per pod: " + " ".join(f"{v:.2f}" for v in lat.values()))
    finally:
        core.delete_namespace(ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
