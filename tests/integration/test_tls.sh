#!/usr/bin/env bash
# Client TLS under client_tls = require: psql with sslmode=require and verify-full (the test CA, SAN
# IP 127.0.0.1), pgbench over TLS, a clear-text TCP client refused with FATAL 28000 before it is
# asked for its token, the Unix socket exempt, clear-text bytes after an SSLRequest refused (08P01),
# and SIGHUP with a new certificate: new sessions get it, a running session carries on.
. "$(dirname "$0")/lib.sh"
once_without_extension "client TLS ends before any server is reached"

mesh_config
# This test's own copies, so the reload below can replace them.
cp "$MESH_TLS_CERT" "$TEST_DIR/server.crt"
(umask 077 && cp "$MESH_TLS_KEY" "$TEST_DIR/server.key")
ini_set pgmesh client_tls require
ini_set pgmesh tls_cert_file "$TEST_DIR/server.crt"
ini_set pgmesh tls_key_file "$TEST_DIR/server.key"
mesh_start

de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
q_tenant="SELECT current_setting('request.jwt.claim.tenant')"

# tls_psql TOKEN CONNINFO-EXTRA [psql args]: psql through pgmesh over TCP with the given sslmode etc.
tls_psql() {
    local token=$1 extra=$2
    shift 2
    PGPASSWORD=$token timeout -k 5 "$LIB_CMD_TIMEOUT_S" psql -X -A -t -q -w -v ON_ERROR_STOP=1 \
        "host=127.0.0.1 port=$MESH_PORT dbname=media_analytics user=analyst connect_timeout=10 $extra" "$@"
}

# --- TLS clients
assert_eq "DE" "$(tls_psql "$de" "sslmode=require" -c "$q_tenant")" "sslmode=require"
assert_eq "FR" "$(tls_psql "$fr" "sslmode=verify-full sslrootcert=$MESH_TLS_CA" -c "$q_tenant")" \
    "sslmode=verify-full, host=127.0.0.1"
assert_eq "DE|FR" "$(tls_psql "$de" "sslmode=require" -c "SELECT current_setting('request.jwt.claim.tenant')" \
    -c "SELECT 'FR'" | paste -sd '|')" "two queries in one TLS session"
# A result bigger than one TLS record (16 kB) arrives whole.
assert_eq "200000" "$(tls_psql "$de" "sslmode=require" -c "SELECT length(repeat('x', 200000))")" "computed length"
assert_eq "200000" "$(tls_psql "$de" "sslmode=require" -c "SELECT repeat('x', 200000)" | tr -d '\n' | wc -c)" \
    "large row over TLS"
# libpq's default, prefer, takes TLS when offered.
assert_eq "DE" "$(tls_psql "$de" "sslmode=prefer" -c "$q_tenant")" "sslmode=prefer"

# --- a clear-text TCP client is refused before it is asked for its token
logins_before=$(grep -c 'login:' "$MESH_LOG" || true)
plain=$(mint SE regional_analyst)
st=0
out=$(tls_psql "$plain" "sslmode=disable" -c "$q_tenant" 2>&1) || st=$?
[ "$st" != 0 ] || fail "a clear-text client got in under client_tls = require: $out"
assert_contains "$out" "FATAL:  TLS is required" "clear-text client's error"
assert_contains "$out" "sslmode=require" "clear-text client's hint"
wait_log 'FATAL 28000: TLS is required'
assert_eq "$logins_before" "$(grep -c 'login:' "$MESH_LOG" || true)" "login lines after the refusal"
if grep -q 'tenant=SE' "$MESH_LOG"; then
    fail "the clear-text client's token reached pgmesh"
fi

# --- the Unix socket is exempt
assert_eq "DE" "$(PGPASSWORD=$de timeout -k 5 "$LIB_CMD_TIMEOUT_S" psql -X -A -t -q -w -v ON_ERROR_STOP=1 \
    "host=$TEST_DIR port=$MESH_PORT dbname=media_analytics user=analyst sslmode=disable" -c "$q_tenant")" \
    "Unix socket without TLS"

# --- clear-text bytes sent after the SSLRequest, before our answer: a protocol violation
# SSLRequest (length 8, code 80877103) and a startup packet in the same write, over bash's
# /dev/tcp (no python on a fresh machine): the first reply byte and whether 08P01 came back.
raw=$(timeout 10 bash -c '
    exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
    printf "\000\000\000\010\004\322\026\057\000\000\000\010\000\003\000\000" >&3
    cat <&3' _ "$MESH_PORT" | od -An -c | tr -d ' \n') || true
reply="${raw:0:1} $(case $raw in *C08P01*) echo 08P01 ;; *) echo no-08P01 ;; esac)"
assert_eq "E 08P01" "$reply" "bytes after SSLRequest"
wait_log 'received unencrypted data after SSL request'

# --- pgbench -S over TLS
if [ "$(pg_psql -c "SELECT to_regclass('public.pgbench_accounts') IS NOT NULL")" != t ]; then
    timeout 120 "$PGBIN/pgbench" -i -s 1 -q -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres media_analytics \
        > "$TEST_DIR/pgbench-init.txt" 2>&1 || { cat "$TEST_DIR/pgbench-init.txt"; fail "pgbench -i"; }
fi
pg_psql -c "GRANT SELECT ON pgbench_accounts, pgbench_branches, pgbench_tellers TO marketing_domain_role"
st=0
PGPASSWORD=$de PGSSLMODE=require timeout -k 5 120 "$PGBIN/pgbench" -h 127.0.0.1 -p "$MESH_PORT" -U analyst \
    -n -S -c 4 -j 2 -t 100 media_analytics > "$TEST_DIR/pgbench.txt" 2>&1 || st=$?
[ "$st" = 0 ] || { tail -n 20 "$TEST_DIR/pgbench.txt"; fail "pgbench over TLS exited with status $st"; }
assert_contains "$(cat "$TEST_DIR/pgbench.txt")" "number of transactions actually processed: 400/400" "pgbench over TLS"

# --- SIGHUP with a new certificate
# fingerprint: of the certificate pgmesh shows a new TLS client.
fingerprint() {
    timeout 10 openssl s_client -starttls postgres -connect "127.0.0.1:$MESH_PORT" -servername localhost \
        < /dev/null 2> "$TEST_DIR/s_client.log" | openssl x509 -noout -fingerprint -sha256
}
cert_fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
old_fp=$(fingerprint)
assert_eq "$(cert_fingerprint "$TEST_DIR/server.crt")" "$old_fp" "certificate before the reload"

# A session that stays open across the reload.
mkfifo "$TEST_DIR/session.in"
PGPASSWORD=$fr timeout -k 5 60 psql -X -A -t -q -w -v ON_ERROR_STOP=1 \
    "host=127.0.0.1 port=$MESH_PORT dbname=media_analytics user=analyst sslmode=require" \
    < "$TEST_DIR/session.in" > "$TEST_DIR/session.out" 2>&1 &
session_pid=$!
exec 7> "$TEST_DIR/session.in"
wait_session() { # PATTERN
    local i
    for i in $(seq 1 100); do
        grep -q -- "$1" "$TEST_DIR/session.out" && return 0
        sleep 0.1
    done
    cat "$TEST_DIR/session.out" >&2
    fail "the long-lived session did not print [$1]"
}
echo "SELECT 'before:' || current_setting('request.jwt.claim.tenant');" >&7
wait_session 'before:FR'

tls_issue "$TEST_DIR/next"
cp "$TEST_DIR/next.crt" "$TEST_DIR/server.crt"
cp "$TEST_DIR/next.key" "$TEST_DIR/server.key"
kill -HUP "$MESH_PID"
wait_log 'config reload: .* applied'
new_fp=$(fingerprint)
assert_eq "$(cert_fingerprint "$TEST_DIR/next.crt")" "$new_fp" "certificate after the reload"
[ "$new_fp" != "$old_fp" ] || fail "the certificate did not change"
assert_eq "DE" "$(tls_psql "$de" "sslmode=verify-full sslrootcert=$MESH_TLS_CA" -c "$q_tenant")" \
    "verify-full with the new certificate"

echo "SELECT 'after:' || current_setting('request.jwt.claim.tenant');" >&7
wait_session 'after:FR'
exec 7>&-
st=0
wait "$session_pid" || st=$?
[ "$st" = 0 ] || { cat "$TEST_DIR/session.out"; fail "the session across the reload ended with status $st"; }

# A broken key on SIGHUP: the old context stays and says why.
echo "not a key" > "$TEST_DIR/server.key"
kill -HUP "$MESH_PID"
wait_log 'configuration not reloaded, nothing changed: TLS: cannot load tls_key_file'
assert_eq "$new_fp" "$(fingerprint)" "certificate after a failed reload"
assert_eq "FR" "$(tls_psql "$fr" "sslmode=require" -c "$q_tenant")" "TLS after a failed reload"

mesh_stop
echo "ok"
