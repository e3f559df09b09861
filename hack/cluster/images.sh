#!/usr/bin/env bash
# Build the images the cluster and tests need, without a registry, and cache them as
# docker-save tarballs in ~/.cache/kascade/images/:
#   pause:3.10                  static pause binary (containerd's sandbox_image)
#   busybox:1.36                Debian's busybox-static + applet symlinks
#   python:3.11-slim            Debian bookworm rootfs (mmdebstrap) with python3, `python`, /bin/sh
#   hack/cluster/images.sh build    build missing tarballs
#   hack/cluster/images.sh import   import cached tarballs into the running containerd (when changed)
source "$(dirname "$0")/lib.sh"
IMPORT="$HACK_CLUSTER_DIR/import-rootfs-image.sh"

tarball_for() { echo "$IMAGE_CACHE/$(echo "$1" | tr '/:' '__').tar"; }

build_pause() {
  local out; out=$(tarball_for "$PAUSE_IMAGE"); [ -f "$out" ] && return
  local t0 r; t0=$(now_ms); r=$(mktemp -d)
  mkdir -p "$r/bin"
  gcc -static -Os -s -o "$r/pause" "$HACK_CLUSTER_DIR/pause.c"
  "$IMPORT" --no-import --output "$out" --entrypoint '["/pause"]' "$r" "$PAUSE_IMAGE"
  rm -rf "$r"; log "image $PAUSE_IMAGE built in $(elapsed "$t0")"
}

build_busybox() {
  local out; out=$(tarball_for "$BUSYBOX_IMAGE"); [ -f "$out" ] && return
  local t0 r a; t0=$(now_ms); r=$(mktemp -d)
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,home,dev,proc,sys}
  chmod 1777 "$r/tmp" "$r/var/tmp"; chmod 700 "$r/root"
  cp /bin/busybox "$r/bin/busybox"
  # --list-full gives paths like bin/sh, usr/bin/awk: link each applet to /bin/busybox.
  for a in $("$r/bin/busybox" --list-full); do
    [ "$a" = bin/busybox ] && continue
    mkdir -p "$r/$(dirname "$a")"; ln -sf /bin/busybox "$r/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  "$IMPORT" --no-import --output "$out" --cmd '["sh"]' "$r" "$BUSYBOX_IMAGE"
  rm -rf "$r"; log "image $BUSYBOX_IMAGE built in $(elapsed "$t0")"
}

# Mirror for mmdebstrap: the host's own apt sources, read at run time.
host_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -s "$f" ] && grep -qE '^[[:space:]]*(deb |URIs:)' "$f" && echo "$f"
  done
}

build_python() {
  local out; out=$(tarball_for "$PYTHON_IMAGE"); [ -f "$out" ] && return
  local t0 r suite srcs; t0=$(now_ms); r=$(mktemp -d)
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  mapfile -t srcs < <(host_sources)
  [ ${#srcs[@]} -gt 0 ] || die "no apt sources found on the host for mmdebstrap"
  # merged /usr set up by mmdebstrap's own hook instead of the usrmerge package (saves perl, ~50 MB).
  local hook=()
  [ -d /usr/share/mmdebstrap/hooks/merged-usr ] && hook=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
  mmdebstrap --quiet --variant=essential --mode=root --format=tar "${hook[@]}" \
    --include=python3,ca-certificates,tzdata \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='ln -sf python3 "$1/usr/bin/python"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log' \
    "$suite" "$r/rootfs.tar" "${srcs[@]}"
  "$IMPORT" --no-import --output "$out" --cmd '["python3"]' --env LANG=C.UTF-8 "$r/rootfs.tar" "$PYTHON_IMAGE"
  rm -rf "$r"; log "image $PYTHON_IMAGE built in $(elapsed "$t0")"
}

import_all() {
  local sock="$STATE/containerd/containerd.sock" ref out stamp
  [ -S "$sock" ] || die "containerd is not running ($sock)"
  mkdir -p "$STATE/containerd/imported"
  for ref in "$PAUSE_IMAGE" "$BUSYBOX_IMAGE" "$PYTHON_IMAGE"; do
    out=$(tarball_for "$ref"); stamp="$STATE/containerd/imported/$(basename "$out").sha"
    [ -f "$out" ] || die "$out missing: run hack/cluster/images.sh build"
    # Re-import only when the tarball changed or containerd lost the image.
    local sum; sum=$(stat -c '%s %Y' "$out")
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && \
       have_image "$ref" ctr --address "$sock" -n k8s.io; then
      continue
    fi
    ctr --address "$sock" -n k8s.io images import --snapshotter overlayfs "$out" >/dev/null
    echo "$sum" >"$stamp"
    log "imported $ref"
  done
}

# Is REF in containerd? It stores short names fully qualified, so match on the suffix.
have_image() { "${@:2}" images ls -q | grep -qE "(^|/)$(printf '%s' "$1" | sed 's/[.]/[.]/g')\$"; }

case "${1:-build}" in
  build)
    mkdir -p "$IMAGE_CACHE"
    build_pause; build_busybox; build_python ;;
  import) import_all ;;
  *) die "usage: $0 [build|import]" ;;
esac
