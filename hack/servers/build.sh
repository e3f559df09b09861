#!/usr/bin/env bash
# Build the S3-compatible object store the tests run (versitygw, a gateway over a POSIX
# folder) from its pinned Go module, as hack/cluster/build.sh builds Kubernetes.
# The binary lands in ~/.cache/kascade/versitygw-<version>/ and is reused on later runs;
# the path of the binary is printed on stdout (tests/servers.py reads it).
#   hack/servers/build.sh [versitygw]
# Exit codes: 0 built or cached, 3 no Go toolchain here (the tests skip, or fail in CI).
source "$(dirname "$0")/../cluster/lib.sh"

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
VERSITYGW_BIN="$KASCADE_CACHE/versitygw-$VERSITYGW_VERSION"
GOMOD_DIR="$(cd "$(dirname "$0")" && pwd)/gomod/versitygw"

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=0

TIMES_FILE="$KASCADE_CACHE/build-times.txt"
record() { mkdir -p "$KASCADE_CACHE"; printf '%s %s %s\n' "$(date -u +%FT%TZ)" "$1" "$2" >>"$TIMES_FILE"; log "built $1 in $2"; }

build_versitygw() {
  local out="$VERSITYGW_BIN/versitygw" t0
  if [ -x "$out" ]; then log "versitygw $VERSITYGW_VERSION: cached in $VERSITYGW_BIN"; echo "$out"; return; fi
  command -v go >/dev/null || { log "no Go toolchain: cannot build versitygw $VERSITYGW_VERSION"; exit 3; }
  mkdir -p "$VERSITYGW_BIN"
  # One build at a time: parallel test sessions may all ask for the binary.
  exec 9>"$VERSITYGW_BIN/.lock"
  flock 9
  if [ -x "$out" ]; then echo "$out"; return; fi
  t0=$(now_ms)
  if ! grep -qE "github.com/versity/versitygw $VERSITYGW_VERSION( |$)" "$GOMOD_DIR/go.mod" 2>/dev/null; then
    (cd "$GOMOD_DIR" && rm -f go.sum && go get "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >&2)
  fi
  log "go build versitygw $VERSITYGW_VERSION ..."
  (cd "$GOMOD_DIR" && go build -trimpath \
    -ldflags "-s -w -X main.Version=$VERSITYGW_VERSION -X main.Build=module -X main.BuildTime=$(date -u +%FT%TZ)" \
    -o "$out.tmp" github.com/versity/versitygw/cmd/versitygw >&2)
  mv -f "$out.tmp" "$out"
  record "versitygw" "$(elapsed "$t0")"
  echo "$out"
}

case "${1:-versitygw}" in
  versitygw) build_versitygw ;;
  *) die "usage: $0 [versitygw]" ;;
esac
