#!/usr/bin/env bash
# Debian's Chromium for the web UI's browser tests (tests/e2e/test_ui_and_logs.py, make bench).
# Playwright (a pinned dev dependency) drives it with executable_path=/usr/bin/chromium;
# no browser is ever downloaded. Idempotent: does nothing when chromium is installed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium: $(chromium --version 2>/dev/null || echo present)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "hack/browser.sh: chromium is missing; run as root (apt-get install chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $(chromium --version)"
