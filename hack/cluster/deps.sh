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

apt_install_missing "the cluster" "${PKGS[@]}"
# Debian starts containerd (and prometheus) as system services on install; we run our
# own instances (the dashboard test starts its own Prometheus on a port of its own).
if [ ${#APT_INSTALLED[@]} -gt 0 ] && command -v systemctl >/dev/null; then
  for service in containerd prometheus; do
    if systemctl is-active --quiet "$service" 2>/dev/null; then
      systemctl stop "$service" || true
      systemctl disable "$service" >/dev/null 2>&1 || true
    fi
  done
fi
