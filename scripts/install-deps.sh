#!/usr/bin/env bash
# Installs what building, the demo and the tests need: Debian packages (postgresql-server-dev-15
# builds the server extension, make extension; core, as the demo is to install it), and
# node-postgres (from npm, locked in tests/clients/node/package-lock.json) for the client-matrix
# tests. With --core, only what building and the demo need (no JDK, Node.js, client libraries,
# cppcheck or clang-format).
# Idempotent and quiet when everything is already there; must run as root on a fresh machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
core=false
[ "${1:-}" = --core ] && core=true
pkgs=(gcc libc6-dev make pkg-config
      libev-dev libssl-dev libpq-dev libjwt-dev libinih-dev libjansson-dev libcmocka-dev
      postgresql-15 postgresql-client-15 postgresql-server-dev-15 pgbouncer openssl procps iproute2
      netcat-openbsd)
# cppcheck and clang-format: make lint (static analysis, and that `make format` would change
# nothing), which make check runs.
# gnuplot-nox: make bench's chart (bench/chart.gp). prometheus: promtool checks /metrics, and a
# real Prometheus scrapes it (test_metrics). haproxy: the load balancer in front of pgmesh that
# sends PROXY protocol headers (test_proxy_protocol, test_haproxy_peers).
$core || pkgs+=(python3-psycopg python3-asyncpg libpostgresql-jdbc-java cppcheck clang-format gnuplot-nox
                prometheus haproxy)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# A JDK or Node.js installed outside Debian's packages serves as well (asked by command, not dpkg).
if ! $core; then
  command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
fi
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

$core && exit 0

# npm ci leaves node_modules/.package-lock.json behind: older than the lock file means stale.
node_dir=$root/tests/clients/node
if ! [ "$node_dir/node_modules/.package-lock.json" -nt "$node_dir/package-lock.json" ]; then
  echo "install-deps: npm ci in tests/clients/node"
  npm_ci() { (cd "$node_dir" && timeout 180 npm ci --no-audit --no-fund --loglevel=error --fetch-retries=1 "$@" >/dev/null); }
  # Behind a TLS-intercepting proxy whose CA the machine's store lacks, npm cannot verify the
  # registry. The lock file pins a sha512 integrity for every package and npm ci refuses a tarball
  # that does not match it, so the second try without certificate checks still installs exactly
  # the locked bytes or nothing.
  if ! npm_ci; then
    echo "install-deps: npm ci failed; again without TLS certificate checks (content still checked against the lock file's sha512)"
    npm_ci --strict-ssl=false
  fi
fi
