#!/usr/bin/env bash
# Install the Debian packages the test servers need (idempotent: only missing ones):
# PostgreSQL (initdb/postgres for the SQL sensor tests; its libpq5 is what psycopg loads)
# and openssl (the SMTP tests' throw-away TLS certificates). versitygw is built by
# hack/servers/build.sh; the SMTP server (aiosmtpd) is a pinned Python dev dependency.
source "$(dirname "$0")/../cluster/lib.sh"

PKGS=(postgresql-15 libpq5 openssl)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "debian packages for the test servers: all present"
  exit 0
fi
need_root
t0=$(now_ms)
log "apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  apt-get update -q
fi
# The tests start their own PostgreSQL in a temporary folder; Debian's packaging would
# also create and start a "main" cluster on port 5432, which nothing here uses.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/kascade-no-main-cluster.conf
apt-get install -y -q --no-install-recommends "${missing[@]}"
log "debian packages for the test servers installed in $(elapsed "$t0")"
