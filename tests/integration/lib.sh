# Helpers for integration tests; sourced by each tests/integration/test_*.sh, which run.sh starts
# in its own process with a fresh TEST_DIR. Gives a test its own pgmesh (ini, port, socket, key),
# tokens and clients. Every wait has a timeout; pgmesh instances are stopped when the test exits.
#
# Environment from run.sh: BUILD, PGMESH, PGMESH_TOKEN, PG_PORT, PG_DIR (cluster directory; also
#   its Unix socket directory, see PG_SOCKET_DIR), PGBIN, TEST_DIR, PG_PASSFILE (libpq passfile
#   with the passwords of marketing_domain_role, audit_role and blocked_role).
#
#   mesh_config                  writes $TEST_DIR/pgmesh.ini (defaults below) and $TEST_DIR/jwt.secret;
#                                exports MESH_INI, MESH_SECRET, MESH_PORT. Transaction pooling, pool of
#                                2, database media_analytics, token roles regional_analyst
#                                (-> marketing_domain_role), global_corporate_audit (-> audit_role),
#                                blocked_analyst (-> blocked_role, which has no grants); TLS with the
#                                run's test certificate and client_tls = allow (see the ini comment)
#   tls_issue PREFIX             writes PREFIX.crt and PREFIX.key: a new server certificate from the
#                                run's test CA for 127.0.0.1 and localhost; exports MESH_TLS_CA (the
#                                CA certificate, for sslrootcert) and MESH_TLS_CERT/MESH_TLS_KEY
#   ini_set SECTION KEY VALUE    sets (or adds) KEY in [SECTION] of $MESH_INI
#   ini_del SECTION KEY          removes KEY from [SECTION]
#   mesh_start                   starts $PGMESH -c $MESH_INI, waits up to 10 s for its listener;
#                                exports MESH_PORT, MESH_PID, MESH_LOG ($TEST_DIR/pgmesh.log)
#                                Several instances: set MESH_INI and MESH_LOG to other names under
#                                $TEST_DIR before each mesh_config/ini_set/mesh_start/mesh_stop
#                                (and keep each one's MESH_PORT and MESH_PID); every log started
#                                is checked for sanitizer reports when the test ends
#   free_ports N                 prints N distinct free loopback ports, one a line
#   mesh_stop                    SIGTERM, waits up to 10 s (then SIGKILL); fails on a sanitizer report
#   mint TENANT ROLE [ARGS...]   prints a token signed with $MESH_SECRET (ARGS go to pgmesh-token)
#   mesh_psql TOKEN [ARGS...]    psql through pgmesh (TCP, dbname media_analytics, user analyst),
#                                -X -A -t -q -w -v ON_ERROR_STOP=1 (no command tags, never prompts);
#                                -h/-p/-d in ARGS override the defaults
#   mesh_dsn TOKEN [DBNAME]      libpq conninfo for pgmesh over TCP
#   pg_psql [ARGS...]            psql as superuser straight to PostgreSQL, database media_analytics,
#                                -X -A -t -q -v ON_ERROR_STOP=1
#   assert_eq EXPECTED ACTUAL [WHAT]
#   assert_contains TEXT NEEDLE [WHAT]    assert_not_contains TEXT NEEDLE [WHAT]
#   wait_log PATTERN [SECONDS]   waits until the pgmesh log matches the grep -E PATTERN (default 10 s)
#   fail MESSAGE                 prints "FAIL: MESSAGE" and exits 1
#
# Tests run with set -euo pipefail; a failing command stops the test with its line number.

set -Eeuo pipefail

: "${TEST_DIR:?run tests through tests/integration/run.sh}"
: "${PGMESH:?}" "${PGMESH_TOKEN:?}" "${PG_PORT:?}" "${PG_DIR:?}" "${PG_PASSFILE:?}"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_SOCKET_DIR=${PG_SOCKET_DIR:-$PG_DIR}
MESH_INI=$TEST_DIR/pgmesh.ini
MESH_SECRET=$TEST_DIR/jwt.secret
MESH_LOG=$TEST_DIR/pgmesh.log
MESH_PID=
export MESH_INI MESH_SECRET MESH_LOG
# Clients and timeouts: no wait below is unbounded.
export PGCONNECT_TIMEOUT=10
LIB_CMD_TIMEOUT_S=${LIB_CMD_TIMEOUT_S:-120}
# Keep sanitizer reports in the pgmesh log, where mesh_stop looks for them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

_lib_pids=()
_lib_logs=() # every pgmesh log mesh_start wrote to, for the sanitizer check at exit

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# The extension suite (SERVER_KEY_FILE set) runs again only what the extension can change: a test
# whose checks are the same either way runs once, in the plain suite, to keep make check short.
once_without_extension() { # why
    [ -z "${SERVER_KEY_FILE:-}" ] && return 0
    echo "skipped: runs once, in the suite without the extension ($1)"
    exit 77
}

_lib_on_err() {
    echo "error: command failed (status $1) at ${BASH_SOURCE[1]:-?}:${BASH_LINENO[0]:-?}: $2" >&2
}
trap '_lib_on_err $? "$BASH_COMMAND"' ERR

# lib_at_exit CMD: a shell command run when the test ends, however it ends, before lib.sh's own
# cleanup (in the order given). Tests use it instead of a trap of their own, which would replace
# the one below and leave pgmesh and the other children running.
_lib_exit_cmds=()
lib_at_exit() {
    _lib_exit_cmds+=("$1")
}

_lib_cleanup() {
    local st=$?
    local pid cmd
    trap - ERR
    for cmd in "${_lib_exit_cmds[@]}"; do
        (set +e; eval "$cmd") > /dev/null 2>&1 || true
    done
    for pid in "${_lib_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${_lib_pids[@]}"; do
        _lib_wait_exit "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
    done
    local log
    for log in "$MESH_LOG" "${_lib_logs[@]}"; do
        if [ -f "$log" ] && grep -qE 'Sanitizer|runtime error:' "$log"; then
            echo "FAIL: sanitizer report in $log" >&2
            st=1
        fi
    done
    exit "$st"
}
trap _lib_cleanup EXIT

# Waits up to SECONDS for PID (a child of ours or not) to exit.
_lib_wait_exit() {
    local pid=$1 secs=$2 i
    for i in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

assert_eq() {
    [ "$1" = "$2" ] || fail "${3:-value}: expected [$1], got [$2]"
}

assert_contains() {
    case $1 in
        *"$2"*) ;;
        *) fail "${3:-output}: expected to contain [$2], got [$1]" ;;
    esac
}

assert_not_contains() {
    case $1 in
        *"$2"*) fail "${3:-output}: expected not to contain [$2], got [$1]" ;;
        *) ;;
    esac
}

_lib_free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))  # below the ephemeral range (32768+)
        [ "$p" = "$PG_PORT" ] && continue
        ss -Htan "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
    done
    fail "no free port"
}

# Distinct even before anyone binds them, which _lib_free_port alone does not promise.
free_ports() {
    local want=$1 got=() p
    while [ "${#got[@]}" -lt "$want" ]; do
        p=$(_lib_free_port)
        case " ${got[*]} " in *" $p "*) continue ;; esac
        got+=("$p")
    done
    printf '%s\n' "${got[@]}"
}

# The test CA and the default server certificate are made once per suite run (openssl req and x509
# take a while) in the run directory next to the tests' own, and shared read-only.
_LIB_TLS_DIR=${TEST_DIR%/t/*}/tls
[ "$_LIB_TLS_DIR" != "$TEST_DIR" ] || _LIB_TLS_DIR=$TEST_DIR/tls
MESH_TLS_CA=$_LIB_TLS_DIR/ca.crt
MESH_TLS_CERT=$_LIB_TLS_DIR/server.crt
MESH_TLS_KEY=$_LIB_TLS_DIR/server.key
export MESH_TLS_CA MESH_TLS_CERT MESH_TLS_KEY

_lib_tls_ca() {
    [ -s "$MESH_TLS_CA" ] && [ -s "$MESH_TLS_CERT" ] && return 0
    local tmp
    mkdir -p "$_LIB_TLS_DIR"
    tmp=$(mktemp -d "$_LIB_TLS_DIR/new.XXXXXX")
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=pgmesh test CA" -addext basicConstraints=critical,CA:true \
        -addext keyUsage=critical,keyCertSign,cRLSign \
        -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>"$tmp/openssl.log") \
        || { cat "$tmp/openssl.log" >&2; fail "openssl: could not make the test CA"; }
    _lib_tls_sign "$tmp/ca.crt" "$tmp/ca.key" "$tmp/server"
    # Readers see either no CA or a complete set.
    mv "$tmp/ca.key" "$_LIB_TLS_DIR/ca.key"
    mv "$tmp/server.crt" "$tmp/server.key" "$_LIB_TLS_DIR/"
    mv "$tmp/ca.crt" "$MESH_TLS_CA"
    rm -rf "$tmp"
}

# _lib_tls_sign CA_CRT CA_KEY PREFIX: a P-256 server certificate for 127.0.0.1 and localhost.
_lib_tls_sign() {
    local ca_crt=$1 ca_key=$2 prefix=$3
    (umask 077 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$prefix.key" -out "$prefix.csr" 2>"$prefix.log" &&
     openssl x509 -req -in "$prefix.csr" -CA "$ca_crt" -CAkey "$ca_key" -CAcreateserial -days 2 \
        -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n') \
        -out "$prefix.crt" 2>>"$prefix.log") \
        || { cat "$prefix.log" >&2; fail "openssl: could not sign $prefix.crt"; }
    rm -f "$prefix.csr" "$prefix.log"
}

tls_issue() {
    [ $# -eq 1 ] || fail "usage: tls_issue PREFIX"
    _lib_tls_ca
    _lib_tls_sign "$MESH_TLS_CA" "$_LIB_TLS_DIR/ca.key" "$1"
}

mesh_config() {
    mkdir -p "$TEST_DIR"
    _lib_tls_ca
    (umask 077 && openssl rand -hex 32 > "$MESH_SECRET")
    MESH_PORT=$(_lib_free_port)
    export MESH_PORT
    cat > "$MESH_INI" <<EOF
[pgmesh]
listen_addr = 127.0.0.1
listen_port = $MESH_PORT
unix_socket_dir = $TEST_DIR
pool_mode = transaction
default_pool_size = 2
max_client_conn = 10000
; One process (the default is one per CPU): the tests' pools of 1 and 2 stay whole, so that a
; pool of 1 really makes attacker and victim share a server connection. test_workers runs 2.
workers = 1
query_wait_timeout = 30s
server_idle_timeout = 10m
server_connect_timeout = 15s
log_level = info
; TLS is set up with the run's test certificate, but allow (not the default, require) keeps clear
; text working: the other tests connect with sslmode=disable (mesh_psql, mesh_dsn) and check
; pooling, not transport. test_tls.sh sets client_tls = require and connects with TLS.
client_tls = allow
tls_cert_file = $MESH_TLS_CERT
tls_key_file = $MESH_TLS_KEY
; Without the pgmesh extension in the suite's cluster, the SET path (prefer would only log that
; it is missing); with it (run.sh PGMESH_EXTENSION=1), every transaction goes through it.
server_enforcement = $([ -n "${SERVER_KEY_FILE:-}" ] && echo require || echo off)
server_key_file = ${SERVER_KEY_FILE:-}

[jwt]
algorithms = HS256
secret_file = $MESH_SECRET
issuer =
audience =
leeway = 30s
tenant_claim = tenant
role_claim = role

[databases]
media_analytics = host=127.0.0.1 port=$PG_PORT dbname=media_analytics passfile=$PG_PASSFILE

[roles]
regional_analyst = server_user=marketing_domain_role statement_timeout=30s work_mem=128MB
global_corporate_audit = server_user=audit_role statement_timeout=5min work_mem=256MB
blocked_analyst = server_user=blocked_role
EOF
}

# ini_set SECTION KEY VALUE: replaces "KEY = ..." inside [SECTION], or appends it to the section
# (creating the section at the end of the file when missing).
ini_set() {
    [ $# -eq 3 ] || fail "usage: ini_set SECTION KEY VALUE"
    local tmp=$MESH_INI.tmp
    awk -v sec="$1" -v key="$2" -v val="$3" '
        function flush() { if (insec && !done) { print key " = " val; done = 1 } }
        /^[ \t]*\[/ {
            if (insec) flush()
            s = $0; gsub(/^[ \t]*\[|\][ \t]*$/, "", s); insec = (s == sec); if (insec) seen = 1
            print; next
        }
        insec {
            k = $0; sub(/[ \t]*=.*/, "", k); gsub(/^[ \t]+/, "", k)
            if (k == key && $0 ~ /=/) { if (!done) { print key " = " val; done = 1 } next }
        }
        { print }
        END { if (insec) flush(); if (!seen) { print ""; print "[" sec "]"; print key " = " val } }
    ' "$MESH_INI" > "$tmp" && mv "$tmp" "$MESH_INI"
}

ini_del() {
    [ $# -eq 2 ] || fail "usage: ini_del SECTION KEY"
    local tmp=$MESH_INI.tmp
    awk -v sec="$1" -v key="$2" '
        /^[ \t]*\[/ { s = $0; gsub(/^[ \t]*\[|\][ \t]*$/, "", s); insec = (s == sec); print; next }
        insec { k = $0; sub(/[ \t]*=.*/, "", k); gsub(/^[ \t]+/, "", k); if (k == key && $0 ~ /=/) next }
        { print }
    ' "$MESH_INI" > "$tmp" && mv "$tmp" "$MESH_INI"
}

_ini_get() {
    awk -v sec="$1" -v key="$2" '
        /^[ \t]*\[/ { s = $0; gsub(/^[ \t]*\[|\][ \t]*$/, "", s); insec = (s == sec); next }
        insec {
            k = $0; sub(/[ \t]*=.*/, "", k); gsub(/^[ \t]+/, "", k)
            if (k == key && $0 ~ /=/) { v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]*(;.*)?$/, "", v); print v; exit }
        }
    ' "$MESH_INI"
}

mesh_start() {
    [ -f "$MESH_INI" ] || fail "mesh_start: call mesh_config first"
    [ -x "$PGMESH" ] || fail "mesh_start: $PGMESH is not built"
    local attempt
    for attempt in 1 2 3; do
        _mesh_start_once && return 0
        # Someone took the port between mesh_config and now: take another one.
        if [ "$attempt" -lt 3 ] && tail -n 5 "$MESH_LOG" | grep -q 'Address already in use'; then
            ini_set pgmesh listen_port "$(_lib_free_port)"
            continue
        fi
        tail -n 20 "$MESH_LOG" >&2
        fail "mesh_start: $_mesh_start_error"
    done
}

_mesh_start_once() {
    MESH_PORT=$(_ini_get pgmesh listen_port)
    local addr sock
    addr=$(_ini_get pgmesh listen_addr)
    sock=$(_ini_get pgmesh unix_socket_dir)
    echo "--- mesh_start $(date +%T.%N)" >> "$MESH_LOG"
    case " ${_lib_logs[*]} " in *" $MESH_LOG "*) ;; *) _lib_logs+=("$MESH_LOG") ;; esac
    "$PGMESH" -c "$MESH_INI" >> "$MESH_LOG" 2>&1 < /dev/null &
    MESH_PID=$!
    _lib_pids+=("$MESH_PID")
    export MESH_PORT MESH_PID
    local i st
    for i in $(seq 1 100); do
        if ! kill -0 "$MESH_PID" 2>/dev/null; then
            st=0
            wait "$MESH_PID" || st=$?
            _mesh_start_error="pgmesh exited during start-up with status $st"
            MESH_PID=
            return 1
        fi
        if [ -n "$addr" ]; then
            ss -Htlnp "sport = :$MESH_PORT" 2>/dev/null | grep -q "pid=$MESH_PID," && return 0
        elif [ -S "$sock/.s.PGSQL.$MESH_PORT" ]; then
            return 0
        fi
        sleep 0.1
    done
    _mesh_start_error="pgmesh not listening on port $MESH_PORT after 10 s"
    return 1
}

mesh_stop() {
    [ -n "$MESH_PID" ] || return 0
    kill -TERM "$MESH_PID" 2>/dev/null || true
    if ! _lib_wait_exit "$MESH_PID" 10; then
        kill -KILL "$MESH_PID" 2>/dev/null || true
        fail "mesh_stop: pgmesh (pid $MESH_PID) did not exit within 10 s of SIGTERM"
    fi
    wait "$MESH_PID" 2>/dev/null || true
    MESH_PID=
    if grep -qE 'Sanitizer|runtime error:' "$MESH_LOG"; then
        fail "mesh_stop: sanitizer report in $MESH_LOG"
    fi
}

mint() {
    [ $# -ge 2 ] || fail "usage: mint TENANT ROLE [pgmesh-token args]"
    local tenant=$1 role=$2
    shift 2
    "$PGMESH_TOKEN" --secret-file "$MESH_SECRET" --tenant "$tenant" --role "$role" "$@"
}

mesh_psql() {
    [ $# -ge 1 ] || fail "usage: mesh_psql TOKEN [psql args]"
    local token=$1
    shift
    PGHOST=127.0.0.1 PGPORT=$MESH_PORT PGDATABASE=media_analytics PGUSER=analyst \
    PGSSLMODE=disable PGPASSWORD=$token PGAPPNAME=mesh_psql \
        timeout -k 5 "$LIB_CMD_TIMEOUT_S" psql -X -A -t -q -w -v ON_ERROR_STOP=1 "$@"
}

mesh_dsn() {
    [ $# -ge 1 ] || fail "usage: mesh_dsn TOKEN [DBNAME]"
    printf 'host=127.0.0.1 port=%s dbname=%s user=analyst password=%s sslmode=disable connect_timeout=10\n' \
        "$MESH_PORT" "${2:-media_analytics}" "$1"
}

pg_psql() {
    timeout -k 5 "$LIB_CMD_TIMEOUT_S" psql -X -A -t -q -v ON_ERROR_STOP=1 \
        -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres -d media_analytics "$@"
}

# http_get URL: the status on the first line, then the body (metrics_listen's endpoints).
http_get() {
    /usr/bin/python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5)
    print(r.status)
    sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
    sys.stdout.write(e.read().decode())
PY
}

# metric_value FILE SERIES: a sample's value in an exposition (the exact series text).
metric_value() { awk -v s="$2" '$1 == s { print $2 }' "$1"; }

# silent_listener PORT SECS: something on 127.0.0.1:PORT that takes TCP connections and never
# answers (a hung server, or a failed machine whose address still accepts), for SECS at most;
# stopped when the test ends.
silent_listener() {
    timeout "$2" /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
time.sleep(int(sys.argv[2]))
' "$1" "$2" &
    lib_at_exit "kill $!"
}

# mesh_reload [PATTERN]: SIGHUP to pgmesh, then wait up to 10 s for one more log line matching
# PATTERN (default: the reload's outcome, applied or not reloaded); fails without one.
mesh_reload() {
    local pattern=${1:-'config reload: .* applied|configuration not reloaded'} before
    before=$(grep -cE -- "$pattern" "$MESH_LOG" || true)
    kill -HUP "$MESH_PID"
    for _ in $(seq 1 100); do
        [ "$(grep -cE -- "$pattern" "$MESH_LOG" || true)" -gt "$before" ] && return 0
        sleep 0.1
    done
    fail "no line matching [$pattern] in $MESH_LOG within 10 s of SIGHUP"
}

wait_log() {
    local pattern=$1 secs=${2:-10} i
    for i in $(seq 1 $((secs * 10))); do
        grep -qE -- "$pattern" "$MESH_LOG" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "wait_log: no line matching [$pattern] in $MESH_LOG after ${secs} s"
}
