# Shared settings for hack/cluster/*.sh (sourced, not executed).
# Everything version-pinned lives here; binaries are cached outside the repo keyed by version.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.2}"
K8S_STAGING_VERSION="${K8S_STAGING_VERSION:-v0.${K8S_VERSION#v1.}}"   # v1.36.2 -> v0.36.2
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"

HACK_CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_CLUSTER_DIR/../.." && pwd)"

KASCADE_CACHE="${KASCADE_CACHE:-$HOME/.cache/kascade}"
K8S_BIN="$KASCADE_CACHE/k8s-$K8S_VERSION"
ETCD_BIN="$KASCADE_CACHE/etcd-$ETCD_VERSION"
HELM_BIN="$KASCADE_CACHE/helm-$HELM_VERSION"
IMAGE_CACHE="$KASCADE_CACHE/images"

STATE="${KASCADE_CLUSTER_STATE:-$HOME/.local/state/kascade/cluster}"
KUBECONFIG_PATH="$STATE/kubeconfig"

K8S_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy)

# Node identity / networking.
NODE_NAME="${KASCADE_NODE_NAME:-$(hostname)}"
POD_CIDR="${KASCADE_POD_CIDR:-10.88.0.0/16}"
SERVICE_CIDR="${KASCADE_SERVICE_CIDR:-10.96.0.0/16}"
KUBERNETES_SVC_IP="${KASCADE_KUBERNETES_SVC_IP:-10.96.0.1}"
CLUSTER_DNS_IP="${KASCADE_CLUSTER_DNS_IP:-10.96.0.10}"
CNI_BRIDGE="${KASCADE_CNI_BRIDGE:-kascade0}"
APISERVER_PORT="${KASCADE_APISERVER_PORT:-6443}"
ETCD_CLIENT_PORT="${KASCADE_ETCD_PORT:-2479}"   # off the default 2379 so a host etcd does not clash
ETCD_PEER_PORT="${KASCADE_ETCD_PEER_PORT:-2480}"

# Images imported into containerd (k8s.io namespace) under their usual names.
PAUSE_IMAGE="pause:3.10"            # sandbox_image; containerd qualifies short names
BUSYBOX_IMAGE="busybox:1.36"
PYTHON_IMAGE="python:3.11-slim"

now_ms() { date +%s%3N; }
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# elapsed START_MS -> "12.3s"
elapsed() { local d=$(( $(now_ms) - $1 )); printf '%d.%01ds' $((d / 1000)) $(((d % 1000) / 100)); }

# First non-loopback IPv4 address of the host (kube-apiserver's --advertise-address).
host_ip() {
  if [ -n "${KASCADE_HOST_IP:-}" ]; then echo "$KASCADE_HOST_IP"; return; fi
  local dev ip
  dev=$(ip -4 route show default 2>/dev/null | awk '{for(i=1;i<NF;i++) if($i=="dev"){print $(i+1); exit}}')
  if [ -n "$dev" ]; then
    ip=$(ip -4 -o addr show dev "$dev" | awk '{split($4,a,"/"); print a[1]; exit}')
  fi
  if [ -z "${ip:-}" ]; then
    ip=$(ip -4 -o addr show scope global | awk '{split($4,a,"/"); print a[1]; exit}')
  fi
  [ -n "${ip:-}" ] || die "no non-loopback IPv4 address found; set KASCADE_HOST_IP"
  echo "$ip"
}

need_root() { [ "$(id -u)" = 0 ] || die "this needs root (kubelet, containerd, iptables)"; }

# apt_install_missing WHAT PKG...: install the Debian packages that are not installed yet
# (refreshing the index only when it is missing or older than a day). APT_INSTALLED lists
# what it installed, empty when everything was there.
apt_install_missing() {
  local what=$1 p t0; shift
  APT_INSTALLED=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || APT_INSTALLED+=("$p")
  done
  if [ ${#APT_INSTALLED[@]} -eq 0 ]; then log "debian packages for $what: all present"; return 0; fi
  need_root
  t0=$(now_ms)
  log "apt-get install ${APT_INSTALLED[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    apt-get update -q
  fi
  apt-get install -y -q --no-install-recommends "${APT_INSTALLED[@]}"
  log "debian packages for $what installed in $(elapsed "$t0")"
}
