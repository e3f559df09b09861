#!/usr/bin/env bash
# Turn a root filesystem (directory or tar) into a single-layer image and import it into
# the local cluster's containerd (namespace k8s.io) under NAME:TAG, without any registry.
#
#   hack/cluster/import-rootfs-image.sh [options] <rootfs-dir|rootfs.tar[.gz|.xz|.zst]> <name:tag>
#     --cmd JSON          image CMD as a JSON array, e.g. '["python3"]'
#     --entrypoint JSON   image ENTRYPOINT as a JSON array
#     --env K=V           image environment (repeatable; PATH has a sane default)
#     --workdir DIR       working directory
#     --user USER         default user (e.g. 65534)
#     --output FILE       also keep the docker-save style tarball at FILE
#     --no-import         only write --output (no running cluster needed)
#
# The tarball follows `docker save` layout (manifest.json with RepoTags, a config whose
# rootfs.diff_ids is the sha256 of the uncompressed layer tar, the layer tar), which is
# what `ctr images import` reads. Short names (busybox:1.36) are normalised by containerd
# exactly like on a real cluster, so manifests and imagePullPolicy: IfNotPresent work.
source "$(dirname "$0")/lib.sh"

CMD_JSON=""; ENTRYPOINT_JSON=""; WORKDIR=""; USER_=""; OUTPUT=""; DO_IMPORT=1; ENVS=()
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cmd) CMD_JSON=$2; shift 2 ;;
    --entrypoint) ENTRYPOINT_JSON=$2; shift 2 ;;
    --env) ENVS+=("$2"); shift 2 ;;
    --workdir) WORKDIR=$2; shift 2 ;;
    --user) USER_=$2; shift 2 ;;
    --output) OUTPUT=$2; shift 2 ;;
    --no-import) DO_IMPORT=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ ${#ARGS[@]} -eq 2 ] || die "usage: $0 [options] <rootfs-dir|tar> <name:tag>  (see --help)"
SRC=${ARGS[0]}; REF=${ARGS[1]}
[ -e "$SRC" ] || die "$SRC does not exist"
[ $DO_IMPORT = 1 ] || [ -n "$OUTPUT" ] || die "--no-import needs --output"

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
layer="$work/layer.tar"
if [ -d "$SRC" ]; then
  tar --numeric-owner --sort=name --mtime=@0 --xattrs -C "$SRC" -cf "$layer" .
else
  case "$SRC" in
    *.gz|*.tgz) gzip -dc "$SRC" >"$layer" ;;
    *.xz) xz -dc "$SRC" >"$layer" ;;
    *.zst) zstd -dc "$SRC" >"$layer" ;;
    *) cp "$SRC" "$layer" ;;
  esac
fi

python3 - "$work" "$REF" "$CMD_JSON" "$ENTRYPOINT_JSON" "$WORKDIR" "$USER_" "${ENVS[@]}" <<'PY'
import hashlib, json, os, sys
work, ref, cmd, entrypoint, workdir, user, *envs = sys.argv[1:]
h = hashlib.sha256()
with open(os.path.join(work, "layer.tar"), "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
diff_id = h.hexdigest()
env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
for e in envs:
    k, _, v = e.partition("=")
    env[k] = v
config = {"Env": [f"{k}={v}" for k, v in env.items()]}
if cmd:
    config["Cmd"] = json.loads(cmd)
if entrypoint:
    config["Entrypoint"] = json.loads(entrypoint)
if workdir:
    config["WorkingDir"] = workdir
if user:
    config["User"] = user
image = {
    "architecture": "amd64",
    "os": "linux",
    "created": "1970-01-01T00:00:00Z",
    "config": config,
    "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
    "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "kascade import-rootfs-image.sh"}],
}
blob = json.dumps(image, sort_keys=True).encode()
config_name = hashlib.sha256(blob).hexdigest() + ".json"
with open(os.path.join(work, config_name), "wb") as f:
    f.write(blob)
os.makedirs(os.path.join(work, diff_id))
os.rename(os.path.join(work, "layer.tar"), os.path.join(work, diff_id, "layer.tar"))
with open(os.path.join(work, "manifest.json"), "w") as f:
    json.dump([{"Config": config_name, "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}], f)
PY

tarball="$work/image.tar"
tar -C "$work" --sort=name --mtime=@0 --exclude=image.tar -cf "$tarball" .
if [ -n "$OUTPUT" ]; then
  mkdir -p "$(dirname "$OUTPUT")"
  cp "$tarball" "$OUTPUT.tmp" && mv "$OUTPUT.tmp" "$OUTPUT"
  log "wrote $OUTPUT ($(du -h "$OUTPUT" | cut -f1))"
fi
if [ $DO_IMPORT = 1 ]; then
  sock="$STATE/containerd/containerd.sock"
  [ -S "$sock" ] || die "containerd socket $sock not found: run make cluster-up first (or use --no-import --output FILE)"
  ctr --address "$sock" -n k8s.io images import --snapshotter overlayfs "$tarball" >&2
  log "imported $REF into containerd (k8s.io)"
fi
