#!/usr/bin/env bash
# Stop the local cluster (only the processes up.sh started, by pid) and put the host back:
# pods/containers, mounts, iptables chains, sysctls, CNI bridge, kubelet/pod-log dirs.
# Cached binaries, images and the PKI are kept; etcd data is wiped (next up is a fresh cluster).
source "$(dirname "$0")/lib.sh"
need_root
source "$HACK_CLUSTER_DIR/hoststate.sh"
T0=$(now_ms)
SOCK="$STATE/containerd/containerd.sock"
CTR=(ctr --address "$SOCK" -n k8s.io)

pid_of() {
  local f="$STATE/pids/$1.pid" pid exe
  [ -f "$f" ] || return 1
  read -r pid exe <"$f"
  kill -0 "$pid" 2>/dev/null && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] && echo "$pid"
}
# stop TIMEOUT_S NAME...: SIGTERM them all, wait for them to exit, then SIGKILL leftovers.
stop() {
  local timeout=$1 name pid i; shift
  local -A pids=()
  for name in "$@"; do
    if pid=$(pid_of "$name"); then kill -TERM "$pid" 2>/dev/null || true; pids[$name]=$pid; fi
  done
  for name in "${!pids[@]}"; do
    pid=${pids[$name]}
    for ((i = 0; i < timeout * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "$name did not exit in ${timeout}s, killing"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
    log "stopped $name (pid $pid)"
  done
  for name in "$@"; do rm -f "$STATE/pids/$name.pid"; done
}
running_tasks() { "${CTR[@]}" tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"' | wc -l; }

# 1. Let the kubelet tear pods down properly (stops containers, CNI DEL, unmounts volumes).
if pid_of kube-apiserver >/dev/null && pid_of kubelet >/dev/null && [ -f "$KUBECONFIG_PATH" ]; then
  "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" delete pods --all --all-namespaces \
    --force --grace-period=0 --wait=false >/dev/null 2>&1 || true
  for ((i = 0; i < 100; i++)); do [ "$(running_tasks)" -eq 0 ] && break; sleep 0.2; done
fi
# 2. Stop order matters: node first, then the control plane, etcd last.
stop 20 kubelet kube-proxy
# 3. Whatever is left in containerd goes (without CNI DEL; host state is cleaned below).
if pid_of containerd >/dev/null; then
  for id in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  sleep 0.3
  for id in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks rm -f "$id" >/dev/null 2>&1 || true; done
  for id in $("${CTR[@]}" containers ls -q 2>/dev/null); do "${CTR[@]}" containers rm "$id" >/dev/null 2>&1 || true; done
fi
stop 10 kube-scheduler kube-controller-manager
stop 30 kube-apiserver
stop 15 etcd
stop 15 containerd
# containerd-shim processes started by our containerd (their command line names our socket).
for p in /proc/[0-9]*; do
  if tr "\\0" " " 2>/dev/null <"$p/cmdline" | grep -qF -- "-address $SOCK"; then
    kill -KILL "${p#/proc/}" 2>/dev/null && log "killed leftover shim ${p#/proc/}" || true
  fi
done

# Container processes orphaned by a killed shim are still in the kubelet's cgroups.
for d in $(cgroup_kubepods); do
  grep -qxF "$d" "$HOSTSTATE/cgroups" 2>/dev/null && continue   # not ours: was there before
  for f in $(find "$d" -name cgroup.procs 2>/dev/null); do
    while read -r pid; do kill -KILL "$pid" 2>/dev/null && log "killed leftover container process $pid" || true; done <"$f"
  done
done

# 4. Mounts: kubelet root (bind-mounted onto itself, volumes), container rootfs/shm.
umount_under /var/lib/kubelet
umount_under "$STATE/containerd/state"
umount_under /run/containerd
hoststate_restore
rm -rf "$STATE/etcd" "$STATE/containerd/state" "$STATE/cni/ipam" "$STATE/pids"
log "cluster down in $(elapsed "$T0")"
