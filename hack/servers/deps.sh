#!/usr/bin/env bash
# Install the Debian packages the test servers need (idempotent: only missing ones):
# PostgreSQL (initdb/postgres for the SQL sensor tests; its libpq5 is what psycopg loads)
# and openssl (the SMTP tests' throw-away TLS certificates). versitygw is built by
# hack/servers/build.sh; the SMTP server (aiosmtpd) is a pinned Python dev dependency.
source "$(dirname "$0")/../cluster/lib.sh"

PKGS=(postgresql-15 libpq5 openssl)

# The tests start their own PostgreSQL in a temporary folder; Debian's packaging would
# also create and start a "main" cluster on port 5432, which nothing here uses.
if ! dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q "install ok installed"; then
  need_root
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/kascade-no-main-cluster.conf
fi
apt_install_missing "the test servers" "${PKGS[@]}"
