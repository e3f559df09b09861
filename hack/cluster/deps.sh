#!/usr/bin/env bash
# Install the Debian packages the local cluster needs (idempotent: only missing ones).
source "$(dirname "$0")/lib.sh"

PKGS=(
  containerd runc containernetworking-plugins   # container runtime + bridge/host-local/loopback CNI
  iptables conntrack iproute2 ethtool socat     # kubelet / CNI host networking helpers
  busybox-static                                 # busybox:1.36 image
  mmdebstrap                                     # python:3.11-slim image (Debian rootfs)
  gcc libc6-dev                                  # static pause binary
  openssl ca-certificates curl                   # cluster PKI, health checks
  util-linux mount procps psmisc kmod e2fsprogs  # nsenter, findmnt, ps, fuser
  prometheus                                     # the real Prometheus tests/e2e/test_dashboards.py starts
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "debian packages: all present"
  exit 0
fi
need_root
t0=$(now_ms)
log "apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Only refresh the index when it is missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  apt-get update -q
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts containerd as a system service on install; we run our own instance.
# So does prometheus; the dashboard test starts its own, on a port of its own.
for service in containerd prometheus; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
    systemctl disable "$service" >/dev/null 2>&1 || true
  fi
done
log "debian packages installed in $(elapsed "$t0")"
