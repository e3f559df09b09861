#!/usr/bin/env bash
# Build the operator image without a Docker engine: the same image operator/Dockerfile
# describes (Debian bookworm's python3 3.11, kascade pip-installed under /usr/local,
# non-root user 65532, ENTRYPOINT ["kascade", "operator"]), made from an mmdebstrap
# rootfs and imported into the local cluster's containerd with
# hack/cluster/import-rootfs-image.sh.
#
#   hack/image/build-operator-image.sh [--no-import --output FILE]
#
# Environment:
#   IMAGE=kascade-operator:dev   name:tag to import as
#   SRC_DIR=<repo root>          source tree to install (pyproject.toml + operator/)
#   KASCADE_CACHE=~/.cache/kascade
#                                the base rootfs (python3, ca-certificates, tzdata) is cached
#                                there as images/kascade-operator-base-<hash>.tar; delete it
#                                to rebuild. Wheels are built on the host (no network in the
#                                chroot) and installed with the rootfs's own python3.
# Prints the image size and the build time at the end.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
IMPORT="$REPO_ROOT/hack/cluster/import-rootfs-image.sh"
IMAGE="${IMAGE:-kascade-operator:dev}"
SRC_DIR="${SRC_DIR:-$REPO_ROOT}"
KASCADE_CACHE="${KASCADE_CACHE:-$HOME/.cache/kascade}"
PYTHON="${PYTHON:-python3}"
IMAGE_UID=65532

now_ms() { date +%s%3N; }
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
elapsed() { local d=$(( $(now_ms) - $1 )); printf '%d.%01ds' $((d / 1000)) $(((d % 1000) / 100)); }

IMPORT_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-import) IMPORT_ARGS+=(--no-import); shift ;;
    --output) IMPORT_ARGS+=(--output "$2"); shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap --mode=root, chroot)"
for tool in mmdebstrap chroot tar; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install mmdebstrap)"
done
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip"

T0=$(now_ms)
SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
# libpq5: the PostgreSQL client library psycopg loads for SQL sensor pokes (kascade poke sql).
PACKAGES="python3,ca-certificates,tzdata,libpq5"
KEY=$(printf '%s|%s|%s' "$SUITE" "$PACKAGES" "v1" | sha256sum | cut -c1-12)
BASE="$KASCADE_CACHE/images/kascade-operator-base-$KEY.tar"

# Mirror for mmdebstrap: the host's own apt sources, read at run time.
host_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -s "$f" ] && grep -qE '^[[:space:]]*(deb |URIs:)' "$f" && echo "$f"
  done
  return 0
}

if [ ! -f "$BASE" ]; then
  t=$(now_ms)
  mkdir -p "$(dirname "$BASE")"
  mapfile -t srcs < <(host_sources)
  [ ${#srcs[@]} -gt 0 ] || die "no apt sources found on the host for mmdebstrap"
  log "base rootfs ($SUITE: $PACKAGES) -> $BASE"
  mmdebstrap --quiet --variant=essential --mode=root --format=tar \
    --include="$PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log' \
    "$SUITE" "$BASE.tmp" "${srcs[@]}"
  mv "$BASE.tmp" "$BASE"
  log "base rootfs built in $(elapsed "$t")"
fi

work=$(mktemp -d)
cleanup() {
  for m in "$work/rootfs/proc" "$work/rootfs/dev"; do mountpoint -q "$m" && umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs" "$work/wheels"

# 1. Wheels on the host: kascade from the source tree and all its pinned dependencies
#    (cp311 wheels, the same ABI as bookworm's python3.11; pip's own cache makes rebuilds
#    fast), plus pip itself to run the install inside the rootfs without keeping pip.
t=$(now_ms)
src="$work/src"
mkdir -p "$src"
cp "$SRC_DIR/pyproject.toml" "$src/"
[ -f "$SRC_DIR/README.md" ] && cp "$SRC_DIR/README.md" "$src/"
tar -C "$SRC_DIR" --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' -cf - operator/kascade \
  | tar -C "$src" -xf -
export PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS
"$PYTHON" -m pip wheel -q -w "$work/wheels" "$src"
"$PYTHON" -m pip download -q --no-cache-dir --no-deps \
  --only-binary=:all: -d "$work/pip" pip
log "wheels built in $(elapsed "$t") ($(ls "$work/wheels" | wc -l) wheels)"

# 2. The rootfs: cached base + kascade under /usr/local, installed by the image's python3.
t=$(now_ms)
tar -C "$rootfs" -xf "$BASE"
mkdir -p "$rootfs/wheels" "$rootfs/pip"
cp "$work"/wheels/*.whl "$rootfs/wheels/"
cp "$work"/pip/pip-*.whl "$rootfs/pip/"
mount --bind /dev "$rootfs/dev"
mount -t proc proc "$rootfs/proc"
pipwhl=$(cd "$rootfs/pip" && ls pip-*.whl | head -1)
# Debian's python3 installs into /usr/local (its posix_local scheme) by default: kascade
# lands in /usr/local/lib/python3.11/dist-packages and /usr/local/bin/kascade. The image
# holds no Debian python packages besides the interpreter, so PEP 668's guard is moot.
chroot "$rootfs" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root \
  /usr/bin/python3 "/pip/$pipwhl/pip" install -q --no-cache-dir \
  --root-user-action=ignore --disable-pip-version-check --break-system-packages \
  --no-index --find-links /wheels kascade
umount -l "$rootfs/proc" "$rootfs/dev"
rm -rf "$rootfs/wheels" "$rootfs/pip"
[ -x "$rootfs/usr/local/bin/kascade" ] || die "kascade entry point missing in the rootfs"
head -1 "$rootfs/usr/local/bin/kascade" | grep -q '^#!/usr/bin/python3' \
  || die "unexpected shebang in /usr/local/bin/kascade: $(head -1 "$rootfs/usr/local/bin/kascade")"

# Non-root user 65532 (the "nonroot" convention of distroless images), a writable /tmp.
echo "kascade:x:$IMAGE_UID:$IMAGE_UID:kascade:/home/kascade:/usr/sbin/nologin" >>"$rootfs/etc/passwd"
echo "kascade:x:$IMAGE_UID:" >>"$rootfs/etc/group"
mkdir -p "$rootfs/home/kascade"
chown "$IMAGE_UID:$IMAGE_UID" "$rootfs/home/kascade"
chmod 1777 "$rootfs/tmp"
# Slimmer: no apt/dpkg caches, no tests of the bundled libraries.
rm -rf "$rootfs"/var/cache/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/root/.cache
# kubernetes' asyncio client (kubernetes/aio, ~70 MB with bytecode) is never imported: kascade
# uses the sync client, kopf its own aiohttp calls.
rm -rf "$rootfs"/usr/local/lib/python3.11/dist-packages/kubernetes/aio
# Smoke: the entry point starts (as the image user) and knows the operator command.
chroot --userspec="$IMAGE_UID:$IMAGE_UID" "$rootfs" /usr/bin/env -i /usr/local/bin/kascade operator --help >/dev/null \
  || die "kascade operator --help failed inside the rootfs"
# Sensor pods run `kascade poke sql|s3` from this image: their clients must load.
chroot --userspec="$IMAGE_UID:$IMAGE_UID" "$rootfs" /usr/bin/env -i /usr/bin/python3 -c \
  'import obstore.store, psycopg; psycopg.pq.version()' \
  || die "the sensor clients (psycopg with libpq5, obstore) do not load inside the rootfs"
log "rootfs ready in $(elapsed "$t") ($(du -sh "$rootfs" | cut -f1))"

# 3. Image config mirrors operator/Dockerfile.
"$IMPORT" "${IMPORT_ARGS[@]}" \
  --entrypoint '["kascade","operator"]' --cmd '["--all-namespaces"]' \
  --env LANG=C.UTF-8 --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 --env HOME=/home/kascade \
  --workdir /home/kascade --user "$IMAGE_UID:$IMAGE_UID" \
  "$rootfs" "$IMAGE"
log "image $IMAGE: $(du -sh --apparent-size "$rootfs" | cut -f1) uncompressed, built in $(elapsed "$T0")"
