#!/usr/bin/env bash
# Start a single-node Kubernetes as local processes: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd (+runc, bridge CNI), kubelet, kube-proxy.
# Builds binaries and images first when they are missing. Idempotent: components that
# are already running (by recorded pid) are left alone.
source "$(dirname "$0")/lib.sh"
need_root
T_ALL=$(now_ms)
stage() { STAGE_NAME=$1; STAGE_T0=$(now_ms); log "== $1"; }
stage_done() { log "== $STAGE_NAME took $(elapsed "$STAGE_T0")"; }

stage "debian packages"; "$HACK_CLUSTER_DIR/deps.sh"; stage_done
stage "binaries (etcd $ETCD_VERSION, kubernetes $K8S_VERSION)"; "$HACK_CLUSTER_DIR/build.sh"; stage_done
stage "images"; "$HACK_CLUSTER_DIR/images.sh" build; stage_done

mkdir -p "$STATE"/{logs,pids,etcd,containerd,cni/net.d,cni/ipam,kubelet}
chmod 700 "$STATE"
source "$HACK_CLUSTER_DIR/hoststate.sh"
hoststate_save   # remembers the host state we change, once, so cluster-down can put it back
stage "pki + kubeconfigs"; "$HACK_CLUSTER_DIR/pki.sh"; stage_done

PKI="$STATE/pki"
HOST_IP=$(host_ip)
K="$K8S_BIN"
KUBECTL=("$K/kubectl" --kubeconfig "$KUBECONFIG_PATH")

# running NAME -> 0 when the recorded pid is alive and still runs the recorded binary.
running() {
  local f="$STATE/pids/$1.pid" pid exe
  [ -f "$f" ] || return 1
  read -r pid exe <"$f"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]
}
# start NAME BINARY ARGS...  (background, own session, log in $STATE/logs/NAME.log)
start() {
  local name=$1; shift
  if running "$name"; then log "$name already running (pid $(cut -d' ' -f1 "$STATE/pids/$name.pid"))"; return; fi
  echo "---- $(date -u +%FT%TZ) start: $*" >>"$STATE/logs/$name.log"
  setsid nohup "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo "$! $(readlink -f "$1")" >"$STATE/pids/$name.pid"
}
# wait_for WHAT TIMEOUT_S NAME CMD...: poll CMD until it succeeds; fail if NAME died.
wait_for() {
  local what=$1 timeout=$2 name=$3; shift 3
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    running "$name" || { tail -n 30 "$STATE/logs/$name.log" >&2; die "$name exited while waiting for $what (log: $STATE/logs/$name.log)"; }
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 30 "$STATE/logs/$name.log" >&2; die "timed out waiting for $what"; }
    sleep 0.2
  done
}

# render TEMPLATE DEST: fill in @VARS@; DEST is only replaced when its content changes
# (kube-proxy exits when its config file is rewritten under it).
render() {
  local tmp; tmp=$(mktemp "$STATE/.render.XXXXXX")   # not next to DEST: containerd watches net.d
  sed -e "s|@STATE@|$STATE|g" -e "s|@PAUSE_IMAGE@|$PAUSE_IMAGE|g" -e "s|@BRIDGE@|$CNI_BRIDGE|g" \
    -e "s|@POD_CIDR@|$POD_CIDR|g" -e "s|@NODE_NAME@|$NODE_NAME|g" "$HACK_CLUSTER_DIR/config/$1" >"$tmp"
  if cmp -s "$tmp" "$2"; then rm -f "$tmp"; else mv -f "$tmp" "$2"; fi
}

T_START=$(now_ms)

stage "etcd"
start etcd "$ETCD_BIN/etcd" --name kascade --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "kascade=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --log-level warn
wait_for "etcd health" 30 etcd curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
stage_done

stage "kube-apiserver"
start kube-apiserver "$K/kube-apiserver" \
  --advertise-address "$HOST_IP" --secure-port "$APISERVER_PORT" \
  --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" \
  --kubelet-preferred-address-types Hostname,InternalIP \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction \
  --enable-aggregator-routing=true \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --allow-privileged=true \
  --profiling=false \
  --v=1
wait_for "kube-apiserver /readyz" 90 kube-apiserver curl -fsS --cacert "$PKI/ca.crt" "https://127.0.0.1:$APISERVER_PORT/readyz"
stage_done

stage "kube-controller-manager + kube-scheduler"
start kube-controller-manager "$K/kube-controller-manager" \
  --kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --controllers '*' \
  --v=1
start kube-scheduler "$K/kube-scheduler" \
  --kubeconfig "$STATE/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false \
  --v=1
stage_done

stage "containerd"
render containerd.toml "$STATE/containerd/config.toml"
render cni.conflist "$STATE/cni/net.d/10-kascade.conflist"
start containerd /usr/bin/containerd --config "$STATE/containerd/config.toml"
wait_for "containerd socket" 30 containerd ctr --address "$STATE/containerd/containerd.sock" version
"$HACK_CLUSTER_DIR/images.sh" import
stage_done

stage "kubelet"
render kubelet.yaml "$STATE/kubelet/config.yaml"
mkdir -p /var/lib/kubelet /var/log/pods
# containerd answers on its socket before its CRI service has finished initialising; a
# kubelet started in that window exits at once with "server is not initialized yet".
# ctr cannot ask the CRI service, so start the kubelet again until it stays up.
cri_deadline=$(( $(date +%s) + 60 ))
while :; do
  start kubelet "$K/kubelet" \
    --config "$STATE/kubelet/config.yaml" \
    --kubeconfig "$STATE/kubelet.kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$HOST_IP" \
    --v=1
  sleep 1.5
  running kubelet && break
  tail -n 5 "$STATE/logs/kubelet.log" | grep -q "server is not initialized yet" || break
  [ "$(date +%s)" -lt "$cri_deadline" ] || die "containerd's CRI service did not initialise in 60s (log: $STATE/logs/containerd.log)"
  log "containerd's CRI service is still initialising; starting the kubelet again"
done
node_ready() {
  [ "$("${KUBECTL[@]}" get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
wait_for "node $NODE_NAME Ready" 120 kubelet node_ready
stage_done

stage "kube-proxy"
render kube-proxy.yaml "$STATE/kube-proxy.yaml"
start kube-proxy "$K/kube-proxy" --config "$STATE/kube-proxy.yaml" --v=1
wait_for "kube-proxy healthz" 30 kube-proxy curl -fsS http://127.0.0.1:10256/healthz
stage_done

for c in kube-controller-manager kube-scheduler kube-proxy; do
  running "$c" || { tail -n 30 "$STATE/logs/$c.log" >&2; die "$c is not running (log: $STATE/logs/$c.log)"; }
done
log "cluster up: node $NODE_NAME Ready $(elapsed "$T_START") after start (total $(elapsed "$T_ALL"))"
echo "export KUBECONFIG=$KUBECONFIG_PATH"
echo "export PATH=$K8S_BIN:\$PATH   # kubectl $K8S_VERSION"
