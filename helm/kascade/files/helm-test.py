# `helm test` (stdlib only): run a one-task pipeline to success, then read the metrics.
import json
import os
import ssl
import time
import urllib.error
import urllib.request

ENV = os.environ
SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def api(method, path, body=None):
    host, port = ENV["KUBERNETES_SERVICE_HOST"], ENV["KUBERNETES_SERVICE_PORT"]
    request = urllib.request.Request(
        f"https://{host}:{port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": "Bearer " + open(SA + "/token").read(),
            "Content-Type": "application/json",
        },
    )
    context = ssl.create_default_context(cafile=SA + "/ca.crt")
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def run_a_pipeline():
    ns, name = ENV["TEST_NAMESPACE"], ENV["TEST_PIPELINE"]
    base = f"/apis/kascade.io/v1alpha1/namespaces/{ns}"
    api("DELETE", f"{base}/pipelines/{name}")  # a leftover of an interrupted test
    for _ in range(60):
        if api("GET", f"{base}/pipelines/{name}")[0] == 404:
            break
        time.sleep(1)
    pipeline = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "test"}},
        "spec": {
            "suspend": True,
            "tasks": [
                {
                    "name": "hello",
                    "image": ENV["TASK_IMAGE"],
                    "command": ["sh", "-c", 'echo "answer=42" > "$KASCADE_OUTPUTS"'],
                }
            ],
        },
    }
    code, body = api("POST", f"{base}/pipelines", pipeline)
    assert code == 201, f"creating pipeline {ns}/{name}: HTTP {code}: {body.get('message')}"
    run_name = None
    try:
        run = {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "PipelineRun",
            "metadata": {"generateName": name + "-", "labels": {"app.kubernetes.io/component": "test"}},
            "spec": {"pipelineRef": {"name": name}, "trigger": {"kind": "manual", "by": "helm test"}},
        }
        code, body = api("POST", f"{base}/pipelineruns", run)
        assert code == 201, f"creating a run of {name}: HTTP {code}: {body.get('message')}"
        run_name = body["metadata"]["name"]
        deadline = time.monotonic() + int(ENV["TIMEOUT"])
        status = {}
        while time.monotonic() < deadline:
            status = api("GET", f"{base}/pipelineruns/{run_name}")[1].get("status") or {}
            if status.get("phase") in ("success", "failed"):
                break
            time.sleep(2)
        assert status.get("phase") == "success", (
            f"pipelinerun {ns}/{run_name} did not succeed: {json.dumps(status)[:1500]}"
        )
        print(f"pipelinerun {ns}/{run_name}: success ({status.get('progress')} tasks)", flush=True)
    finally:
        if run_name:
            api("DELETE", f"{base}/pipelineruns/{run_name}")
        api("DELETE", f"{base}/pipelines/{name}")


def read_metrics():
    svc = ENV["SVC"]
    env = svc.upper().replace("-", "_")
    host = ENV.get(env + "_SERVICE_HOST") or f"{svc}.{ENV['SVC_NAMESPACE']}.svc"
    url = f"http://{host}:{ENV['SVC_PORT']}/metrics"
    for _ in range(30):
        try:
            body = urllib.request.urlopen(url, timeout=5).read().decode()
            break
        except OSError as exc:
            print(f"{url}: {exc}; retrying", flush=True)
            time.sleep(2)
    else:
        raise SystemExit(f"{url} did not answer")
    names = sorted({line.split("{")[0].split(" ")[0] for line in body.splitlines() if line.startswith("kascade_")})
    assert names, f"no kascade_ metrics at {url}"
    print(f"{url}: {len(names)} kascade_ series names, e.g. {', '.join(names[:5])}")


if ENV.get("CHECK_RUN") == "true":
    run_a_pipeline()
if ENV.get("CHECK_METRICS") == "true":
    read_metrics()
