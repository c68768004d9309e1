#!/usr/bin/env bash
# Server-side TLS is libpq's: with sslmode=verify-full in a [databases] conninfo, pgmesh's server
# connections are encrypted and verified (pg_stat_ssl), claims and large rows go through, and a
# server whose certificate does not verify is refused with 08006 and libpq's reason.
. "$(dirname "$0")/lib.sh"
once_without_extension "server TLS is libpq's transport, the same with or without it"
. "$(dirname "$0")/../../scripts/pgcluster.sh"

srv=$TEST_DIR/pgtls
certs=$TEST_DIR/pgtls-certs
mkdir -p "$certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$certs/server.key" -out "$certs/server.crt" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=other" \
    -keyout "$certs/other.key" -out "$certs/other.crt" 2>/dev/null
chmod 755 "$certs"; chmod 600 "$certs/server.key"
[ "$(id -u)" = 0 ] && chown postgres "$certs/server.key" "$certs/server.crt"
lib_at_exit 'pgcluster_stop "$srv"'
pgcluster_start_free "$srv" "" ssl=on "ssl_cert_file=$certs/server.crt" "ssl_key_file=$certs/server.key" \
    || fail "PostgreSQL with ssl=on did not start"
port=$PGCLUSTER_PORT
pw=$(openssl rand -hex 16)
pgcluster_psql "$srv" "$port" -d postgres -c "CREATE ROLE marketing_domain_role LOGIN PASSWORD '$pw'" \
    -c "CREATE DATABASE tlsdb OWNER marketing_domain_role" > /dev/null

mesh_config
# Its own cluster has no pgmesh extension: where the suite's has it, prefer uses it there only.
if [ -n "${SERVER_KEY_FILE:-}" ]; then ini_set pgmesh server_enforcement prefer; fi
ini_set databases tlsdb "host=127.0.0.1 port=$port dbname=tlsdb password=$pw sslmode=verify-full sslrootcert=$certs/server.crt"
ini_set databases wrongca "host=127.0.0.1 port=$port dbname=tlsdb password=$pw sslmode=verify-full sslrootcert=$certs/other.crt"
mesh_start
de=$(mint DE regional_analyst)
assert_eq "t|DE" "$(mesh_psql "$de" -d tlsdb -c "SELECT ssl, current_setting('request.jwt.claim.tenant') FROM pg_stat_ssl WHERE pid = pg_backend_pid()")" \
    "server connection encrypted, claims set"
assert_eq "300000" "$(mesh_psql "$de" -d tlsdb -c "SELECT length(repeat('x', 300000))")" "computed on the server"
assert_eq "300000" "$(mesh_psql "$de" -d tlsdb -c "SELECT repeat('x', 300000)" | tr -d '\n' | wc -c)" \
    "a 300 kB row through both TLS links"
out=$(mesh_psql "$de" -d wrongca -c "SELECT 1" 2>&1) || true
assert_contains "$out" "could not connect to the database server" "server certificate from another CA"
assert_contains "$out" "certificate verify failed" "libpq's reason reaches the client"
mesh_stop
