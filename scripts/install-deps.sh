#!/usr/bin/env bash
# Installs what building, the demo and the tests need: Debian packages, and node-postgres (from npm,
# locked in tests/clients/node/package-lock.json) for the client-matrix tests.
# Idempotent and quiet when everything is already there; must run as root on a fresh machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pkgs=(gcc libc6-dev make pkg-config
      libev-dev libssl-dev libpq-dev libjwt-dev libinih-dev libjansson-dev libcmocka-dev
      postgresql-15 postgresql-client-15 pgbouncer openssl procps iproute2 netcat-openbsd
      python3-psycopg libpostgresql-jdbc-java)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# A JDK or Node.js installed outside Debian's packages serves as well (asked by command, not dpkg).
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Debian's postgresql-common would create and start a 'main' cluster on port 5432; we run our own.
  mkdir -p /etc/postgresql-common
  [ -f /etc/postgresql-common/createcluster.conf ] || echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci leaves node_modules/.package-lock.json behind: older than the lock file means stale.
node_dir=$root/tests/clients/node
if ! [ "$node_dir/node_modules/.package-lock.json" -nt "$node_dir/package-lock.json" ]; then
  echo "install-deps: npm ci in tests/clients/node"
  (cd "$node_dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
