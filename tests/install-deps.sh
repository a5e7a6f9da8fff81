#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 machine (as root):
# the Python test dependencies into .venv, and the real validators through apt.
# Idempotent; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  nix-bin # nix-instantiate: parses and evaluates every generated .nix file
  redis-server # stackgen status probes a real Redis (tests/unit/test_status.py)
  postgresql # stackgen status probes a real PostgreSQL: initdb + postgres, run by the test
)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
