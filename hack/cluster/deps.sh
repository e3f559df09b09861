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
)

apt_install_missing "the cluster" "${PKGS[@]}"
# Debian starts containerd as a system service on install; we run our own instance.
if [ ${#APT_INSTALLED[@]} -gt 0 ] && command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
  systemctl stop containerd || true
  systemctl disable containerd >/dev/null 2>&1 || true
fi
