#!/usr/bin/env bash
# Show which cluster processes are running (pid, RSS), node and pod summary.
source "$(dirname "$0")/lib.sh"
rc=0
printf '%-24s %-8s %-10s %s\n' COMPONENT PID RSS LOG
for name in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy; do
  f="$STATE/pids/$name.pid"; pid=""; exe=""
  [ -f "$f" ] && read -r pid exe <"$f"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]; then
    rss=$(awk '/^VmRSS/ {printf "%d MiB", $2 / 1024}' "/proc/$pid/status")
    printf '%-24s %-8s %-10s %s\n' "$name" "$pid" "$rss" "$STATE/logs/$name.log"
  else
    printf '%-24s %-8s %-10s %s\n' "$name" - stopped "$STATE/logs/$name.log"; rc=1
  fi
done
shims=0; total=0
for p in /proc/[0-9]*; do
  if tr "\\0" " " 2>/dev/null <"$p/cmdline" | grep -qF -- "-address $STATE/containerd/containerd.sock"; then
    shims=$((shims + 1)); total=$((total + $(awk '/^VmRSS/ {print $2}' "$p/status" 2>/dev/null || echo 0)))
  fi
done
printf '%-24s %-8s %-10s\n' "containerd-shim x$shims" - "$((total / 1024)) MiB"
if [ $rc = 0 ]; then
  echo
  "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" get nodes -o wide || rc=1
  echo
  "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" get pods -A 2>/dev/null | head -20
  echo; echo "export KUBECONFIG=$KUBECONFIG_PATH"
fi
exit $rc
