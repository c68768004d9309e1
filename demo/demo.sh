#!/usr/bin/env bash
# The pgmesh demo (make demo): a throwaway PostgreSQL 15 with the sample data mesh, pgmesh in front
# of it, and the same queries run with a DE, an FR and an audit token, showing that each sees only
# what its claims allow. The pgmesh extension is installed and set up in that PostgreSQL
# (scripts/server-setup.sh) and pgmesh requires it, so not even SQL sent straight to the server
# can change a claim. Run as root (the extension installs into PostgreSQL). Leaves both running in demo/run/ (stop with demo/stop.sh or make demo-stop)
# and prints a psql command to try it. Exits non-zero if any result is not the expected one.
# Env: BUILD (build), PG_PORT (55432 if free), MESH_PORT (6432 if free).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
PGMESH=$BUILD/pgmesh
PGMESH_TOKEN=$BUILD/pgmesh-token
RUN=$ROOT/demo/run
. "$ROOT/scripts/pgcluster.sh"

if [ -t 1 ]; then say() { printf "\n\033[1m== %s\033[0m\n" "$*"; }; else say() { printf "\n== %s\n" "$*"; }; fi
die() { printf '\ndemo: FAILED: %s\n(logs in demo/run/; demo/stop.sh stops what was started)\n' "$*" >&2; exit 1; }

for bin in "$PGMESH" "$PGMESH_TOKEN"; do
    [ -x "$bin" ] || die "$bin is not built; run make all"
done

# A previous demo, if any, goes first: make demo runs twice in a row.
"$ROOT/demo/stop.sh" --quiet
rm -rf "$RUN"
mkdir -p "$RUN"
chmod 755 "$RUN"

say "PostgreSQL 15 with the sample data mesh"
pgcluster_start_free "$RUN/pg" "${PG_PORT:-55432}" || die "PostgreSQL did not start (log: $RUN/pg/postgres.log)"
PG_PORT=$PGCLUSTER_PORT
echo "$PG_PORT" > "$RUN/pg.port"
pw_marketing=$(openssl rand -hex 16)
pw_audit=$(openssl rand -hex 16)
pw_blocked=$(openssl rand -hex 16)
pgcluster_psql "$RUN/pg" "$PG_PORT" -d postgres -v marketing_password="$pw_marketing" \
    -v audit_password="$pw_audit" -v blocked_password="$pw_blocked" -f "$ROOT/demo/mesh.sql" \
    > "$RUN/mesh.log" 2>&1 || { cat "$RUN/mesh.log" >&2; die "loading demo/mesh.sql"; }
echo "PostgreSQL on 127.0.0.1:$PG_PORT, data in $RUN/pg/data; database media_analytics loaded."

say "The pgmesh extension in that PostgreSQL (make extension, scripts/server-setup.sh)"
# As a user would on a database host: install the extension, then set the cluster up; the
# setup restarts the cluster once, to preload the library.
make -C "$ROOT" --no-print-directory extension > "$RUN/extension.log" 2>&1 ||
    { tail -n 20 "$RUN/extension.log" >&2; die "make extension failed"; }
"$ROOT/scripts/server-setup.sh" --pgdata "$RUN/pg/data" --port "$PG_PORT" --database media_analytics \
    --key-out "$RUN/pgmesh-server.key" > "$RUN/server-setup.log" 2>&1 ||
    { tail -n 20 "$RUN/server-setup.log" >&2; die "scripts/server-setup.sh failed (as root? it installs the extension)"; }
echo "Installed, preloaded and created in media_analytics; shared key $RUN/pgmesh-server.key (log: $RUN/server-setup.log)."

# The server roles' passwords live only in this passfile, which pgmesh reads.
(
    umask 077
    for r in marketing_domain_role:$pw_marketing audit_role:$pw_audit blocked_role:$pw_blocked; do
        echo "127.0.0.1:$PG_PORT:media_analytics:${r%%:*}:${r#*:}"
    done > "$RUN/pgpass"
)
# Development HMAC key; production would use RS256/ES256 with the identity provider's public key.
(umask 077 && openssl rand -hex 32 > "$RUN/jwt.secret")
# Self-signed development certificate: clients must use TLS (client_tls = require, the default), so
# the token never crosses the network in clear text. Production would use a CA-issued certificate.
(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$RUN/tls.key" -out "$RUN/tls.crt" > "$RUN/openssl.log" 2>&1) \
    || { cat "$RUN/openssl.log" >&2; die "openssl could not make the development certificate"; }

MESH_PORT=$(pgcluster_free_port "${MESH_PORT:-6432}")
cat > "$RUN/pgmesh.ini" <<EOF
; Written by demo/demo.sh.
[pgmesh]
listen_addr = 127.0.0.1
listen_port = $MESH_PORT
unix_socket_dir =
pool_mode = transaction
default_pool_size = 20
max_client_conn = 10000
query_wait_timeout = 30s
server_idle_timeout = 10m
server_connect_timeout = 15s
log_level = info
client_tls = require
tls_cert_file = $RUN/tls.crt
tls_key_file = $RUN/tls.key
; From scripts/server-setup.sh: claims and limits go through the pgmesh extension, and a server
; without it is refused.
server_key_file = $RUN/pgmesh-server.key
server_enforcement = require

[jwt]
algorithms = HS256
secret_file = $RUN/jwt.secret
issuer =
audience =
leeway = 30s
tenant_claim = tenant
role_claim = role

[databases]
media_analytics = host=127.0.0.1 port=$PG_PORT dbname=media_analytics passfile=$RUN/pgpass

[roles]
regional_analyst = server_user=marketing_domain_role statement_timeout=30s work_mem=128MB
global_corporate_audit = server_user=audit_role statement_timeout=5min work_mem=256MB
EOF

say "pgmesh"
# Its own session, so it outlives make; the pid file is how stop.sh finds it.
setsid "$PGMESH" -c "$RUN/pgmesh.ini" >> "$RUN/pgmesh.log" 2>&1 < /dev/null &
echo $! > "$RUN/pgmesh.pid"
for i in $(seq 1 100); do
    kill -0 "$(cat "$RUN/pgmesh.pid")" 2>/dev/null || { tail -n 20 "$RUN/pgmesh.log" >&2; die "pgmesh exited"; }
    ss -Htln "sport = :$MESH_PORT" | grep -q . && break
    [ "$i" = 100 ] && { tail -n 20 "$RUN/pgmesh.log" >&2; die "pgmesh not listening on $MESH_PORT after 10 s"; }
    sleep 0.1
done
echo "pgmesh on 127.0.0.1:$MESH_PORT (pid $(cat "$RUN/pgmesh.pid"), log $RUN/pgmesh.log)"

token() { "$PGMESH_TOKEN" --secret-file "$RUN/jwt.secret" --tenant "$1" --role "$2" --ttl 3600; }
tok_de=$(token DE regional_analyst)
tok_fr=$(token FR regional_analyst)
tok_audit=$(token HQ global_corporate_audit)

dsn="host=127.0.0.1 port=$MESH_PORT dbname=media_analytics user=analyst sslmode=require connect_timeout=10"
q_sessions='SELECT country_code, count(*) AS sessions FROM core.fct_playback_sessions GROUP BY 1 ORDER BY 1'
q_product='SELECT week, country_code, plays, minutes_played FROM media_consumption.mrt_marketing_weekly_engagement ORDER BY 1, 2'

# show LABEL TOKEN QUERY: prints the result as a table; leaves it unaligned in $rows for checks.
show() {
    local label=$1 tok=$2 q=$3
    echo
    echo "-- $label"
    PGPASSWORD=$tok timeout 30 psql -X -q -w -v ON_ERROR_STOP=1 -P footer=off "$dsn" -c "$q" \
        || die "query as $label failed (pgmesh log: $RUN/pgmesh.log)"
    rows=$(PGPASSWORD=$tok timeout 30 psql -X -q -w -A -t -v ON_ERROR_STOP=1 "$dsn" -c "$q") \
        || die "query as $label failed"
}
expect() { [ "$rows" = "$1" ] || die "$2: expected [$1], got [$rows]"; }

say "The same query, three tokens: $q_sessions"
show "tenant DE, role regional_analyst" "$tok_de" "$q_sessions"
expect "DE|3" "DE sessions"
rows_de=$rows
show "tenant FR, role regional_analyst" "$tok_fr" "$q_sessions"
expect "FR|2" "FR sessions"
[ "$rows" != "$rows_de" ] || die "DE and FR see the same rows"
show "role global_corporate_audit" "$tok_audit" "$q_sessions"
expect $'DE|3\nES|1\nFR|2\nIT|1' "audit sessions"

say "The data product media_consumption.mrt_marketing_weekly_engagement"
show "tenant DE" "$tok_de" "$q_product"
expect $'2024-03-04|DE|2|36.0\n2024-03-11|DE|1|45.2' "DE data product"
show "tenant FR" "$tok_fr" "$q_product"
expect $'2024-03-04|FR|1|16.3\n2024-03-11|FR|1|52.0' "FR data product"
show "role global_corporate_audit" "$tok_audit" "$q_product"
[ "$(wc -l <<<"$rows")" = 6 ] || die "audit data product: expected 6 rows, got [$rows]"

say "What pgmesh set for the DE token's transaction"
show "tenant DE" "$tok_de" "SELECT current_user AS server_role, current_setting('request.jwt.claim.tenant') AS tenant, current_setting('request.jwt.claim.role') AS role, current_setting('statement_timeout') AS statement_timeout, current_setting('work_mem') AS work_mem"
expect "marketing_domain_role|DE|regional_analyst|30s|128MB" "DE settings"

say "A reader cannot SET a claim even straight on PostgreSQL (the pgmesh extension)"
echo
echo "-- marketing_domain_role on 127.0.0.1:$PG_PORT, with its password: SET request.jwt.claim.tenant = 'FR'"
if out=$(PGPASSFILE=$RUN/pgpass timeout 30 psql -X -q -w \
        "host=127.0.0.1 port=$PG_PORT dbname=media_analytics user=marketing_domain_role connect_timeout=10" \
        -c "SET request.jwt.claim.tenant = 'FR'" 2>&1); then
    die "marketing_domain_role set request.jwt.claim.tenant straight on PostgreSQL"
fi
echo "$out"
[[ $out == *'permission denied to set parameter "request.jwt.claim.tenant"'* ]] ||
    die "SET straight on PostgreSQL: expected PostgreSQL's permission error, got [$out]"

say "A clear-text client is refused before it is asked for its token (client_tls = require)"
if out=$(PGPASSWORD=$tok_de timeout 30 psql -X -q -w "${dsn/sslmode=require/sslmode=disable}" -c 'SELECT 1' 2>&1); then
    die "a clear-text client got in"
fi
echo "$out"
[[ $out == *"TLS is required"* ]] || die "clear-text client: expected \"TLS is required\", got [$out]"

say "Try it (the token is valid for one hour; mint another with: make token TENANT=FR)"
echo "PGPASSWORD=$tok_de psql \"host=127.0.0.1 port=$MESH_PORT dbname=media_analytics user=analyst sslmode=require\""
echo "(TLS with the self-signed $RUN/tls.crt; to check it too: sslmode=verify-full sslrootcert=$RUN/tls.crt)"
echo
echo "pgmesh and PostgreSQL keep running; stop both with: make demo-stop   (or demo/stop.sh)"
