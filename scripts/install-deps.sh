#!/usr/bin/env bash
# Installs what building, the demo and the tests need, from Debian's registry only.
# Idempotent and quiet when everything is already there; must run as root on a fresh machine.
set -euo pipefail
pkgs=(gcc libc6-dev make pkg-config
      libev-dev libssl-dev libpq-dev libjwt-dev libinih-dev libjansson-dev libcmocka-dev
      postgresql-15 postgresql-client-15 pgbouncer openssl procps iproute2 netcat-openbsd)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
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
