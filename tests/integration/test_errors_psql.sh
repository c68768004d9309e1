#!/usr/bin/env bash
# What psql users see when pgmesh refuses them: unknown database, expired / not yet valid token,
# wrong signature, alg none, unknown role, missing tenant, garbage. Each refusal ends only that
# connection: a psql session opened before keeps working throughout, with its own tenant.
# psql prints connection-time errors before VERBOSITY applies, so it shows no SQLSTATE for these
# FATALs: the message and DETAIL are checked in psql's output, the SQLSTATE in the pgmesh log line.
. "$(dirname "$0")/lib.sh"
once_without_extension "refused before any server is reached"

mesh_config
mesh_start
de=$(mint DE regional_analyst)

# A long-lived session on a FIFO, fed while the refusals happen.
mkfifo "$TEST_DIR/session.in"
mesh_psql "$de" < "$TEST_DIR/session.in" > "$TEST_DIR/session.out" 2>&1 &
session_pid=$!
exec 3> "$TEST_DIR/session.in"
echo "SELECT 'ready:' || current_setting('request.jwt.claim.tenant');" >&3
for i in $(seq 1 100); do
    grep -q '^ready:DE$' "$TEST_DIR/session.out" && break
    kill -0 "$session_pid" 2>/dev/null || fail "long-lived session ended: $(cat "$TEST_DIR/session.out")"
    sleep 0.1
done
grep -q '^ready:DE$' "$TEST_DIR/session.out" || fail "long-lived session not ready after 10 s"

n=0
# refused NAME TOKEN EXPECTED_TEXT [psql args]: psql must fail with EXPECTED_TEXT in its output,
# and the long-lived session must still answer with its tenant.
refused() {
    local name=$1 token=$2 expected=$3 out st=0
    shift 3
    out=$(mesh_psql "$token" -v VERBOSITY=verbose -c 'SELECT 1' "$@" 2>&1) || st=$?
    [ "$st" != 0 ] || fail "$name: psql succeeded, output [$out]"
    assert_contains "$out" "FATAL" "$name"
    assert_contains "$out" "$expected" "$name"
    assert_not_contains "$out" "$token" "$name (token echoed back)"
    n=$((n + 1))
    echo "SELECT 'alive $n:' || current_setting('request.jwt.claim.tenant') || ':' || count(*) FROM core.fct_playback_sessions;" >&3
    local i
    for i in $(seq 1 100); do
        grep -q "^alive $n:DE:3$" "$TEST_DIR/session.out" && break
        sleep 0.1
    done
    grep -q "^alive $n:DE:3$" "$TEST_DIR/session.out" || fail "session stopped answering after $name: $(tail -n 5 "$TEST_DIR/session.out")"
    printf '%s\n' "$out" > "$TEST_DIR/refused-$name.txt"
}

now=$(date +%s)

refused unknown-database "$de" 'database "nope" does not exist' -d nope
refused expired "$(mint DE regional_analyst --exp $((now - 3600)))" "token expired"
out=$(cat "$TEST_DIR/refused-expired.txt")
assert_contains "$out" "DETAIL:" "expired token detail"
refused not-yet-valid "$(mint DE regional_analyst --nbf $((now + 3600)))" "token is not yet valid"

openssl rand -hex 32 > "$TEST_DIR/other.secret"
refused wrong-signature "$("$PGMESH_TOKEN" --secret-file "$TEST_DIR/other.secret" --tenant DE --role regional_analyst)" \
    "token signature is invalid"
refused alg-none "$(mint DE regional_analyst --alg none)" "token algorithm not allowed"
refused alg-hs512 "$(mint DE regional_analyst --alg HS512)" "token algorithm not allowed"
refused unknown-role "$(mint DE x)" 'not configured'
assert_contains "$(cat "$TEST_DIR/refused-unknown-role.txt")" '"x"' "unknown role names the role"
refused missing-tenant "$(mint DE regional_analyst --omit tenant)" "token is missing a required claim"
refused garbage "not-a-token" "token is malformed"
# Claims go into SQL (quoted), but a tenant that is not a plain name is refused before that.
refused quote-in-tenant "$(mint "DE' OR true --" regional_analyst)" "token claim is invalid"
refused quote-in-role "$(mint DE "regional_analyst'; RESET ALL; --")" "token claim is invalid"

# Within the leeway (30 s) an expired token is still accepted.
assert_eq "DE" "$(mesh_psql "$(mint DE regional_analyst --exp $((now - 10)))" -c 'SHOW request.jwt.claim.tenant')" "token expired 10 s ago"

# A valid token after all that, over TCP and the Unix socket.
assert_eq "DE|3" "$(mesh_psql "$de" -c 'SELECT country_code, count(*) FROM core.fct_playback_sessions GROUP BY 1')" "fresh DE login"
assert_eq "DE|3" "$(mesh_psql "$de" -h "$TEST_DIR" -c 'SELECT country_code, count(*) FROM core.fct_playback_sessions GROUP BY 1')" "fresh DE login over Unix socket"

# A server-side error inside a session is the server's, with its SQLSTATE, and the session goes on.
out=$(mesh_psql "$de" -v VERBOSITY=verbose -v ON_ERROR_STOP=0 2>&1 <<'EOF'
SELECT * FROM core.no_such_table;
SELECT 1/0;
SELECT 'after errors:' || current_setting('request.jwt.claim.tenant');
EOF
) || true
assert_contains "$out" "42P01" "unknown table"
assert_contains "$out" 'relation "core.no_such_table" does not exist' "unknown table"
assert_contains "$out" "22012" "division by zero"
assert_contains "$out" "after errors:DE" "session after errors"

# blocked_role may connect but has no grants: the server's 42501, through pgmesh.
blocked=$(mint DE blocked_analyst)
out=$(mesh_psql "$blocked" -v VERBOSITY=verbose -c 'SELECT count(*) FROM core.fct_playback_sessions' 2>&1) || true
assert_contains "$out" "42501" "blocked role"
assert_contains "$out" "permission denied for schema core" "blocked role"

# Each refusal is in the pgmesh log with its SQLSTATE, without the token.
log=$(cat "$MESH_LOG")
for line in 'FATAL 3D000: database "nope" does not exist' "FATAL 28P01: token expired" \
        "FATAL 28P01: token is not yet valid" "FATAL 28P01: token signature is invalid" \
        "FATAL 28P01: token algorithm not allowed" 'FATAL 28P01: token role "x" is not configured' \
        "FATAL 28P01: token is missing a required claim" "FATAL 28P01: token is malformed" \
        "FATAL 28P01: token claim is invalid"; do
    assert_contains "$log" "$line" "pgmesh log"
done
assert_not_contains "$log" "$de" "pgmesh log (token logged)"

# Tokens over the 16384-byte limit, whatever the size of the password message.
refused too-large-17000 "$(head -c 17000 /dev/zero | tr '\0' a)" "token is too large"
refused too-large-20000 "$(head -c 20000 /dev/zero | tr '\0' a)" "token is too large"
refused too-large-100000 "$(head -c 100000 /dev/zero | tr '\0' a)" "token is too large"
assert_contains "$(cat "$MESH_LOG")" "FATAL 28P01: token is too large" "pgmesh log"

# The long-lived session ends cleanly.
echo "SELECT 'bye:' || current_setting('request.jwt.claim.tenant');" >&3
echo '\q' >&3
exec 3>&-
for i in $(seq 1 100); do kill -0 "$session_pid" 2>/dev/null || break; sleep 0.1; done
st=0
wait "$session_pid" || st=$?
assert_eq 0 "$st" "long-lived session exit status"
assert_contains "$(cat "$TEST_DIR/session.out")" "bye:DE" "long-lived session"

# Limits. open_session NAME: a psql session fed from a FIFO on fd 4+, ready when it returns.
mesh_stop
ini_set pgmesh max_client_conn 3
ini_set pgmesh default_pool_size 1
ini_set pgmesh query_wait_timeout 2s
mesh_start
declare -A session_fd session_pid
open_session() {
    local name=$1 fd i
    mkfifo "$TEST_DIR/$name.in"
    mesh_psql "$de" < "$TEST_DIR/$name.in" > "$TEST_DIR/$name.out" 2>&1 &
    session_pid[$name]=$!
    exec {fd}> "$TEST_DIR/$name.in"
    session_fd[$name]=$fd
    echo "SELECT 'ready';" >&"$fd"
    for i in $(seq 1 100); do
        grep -q '^ready$' "$TEST_DIR/$name.out" && return 0
        sleep 0.1
    done
    fail "session $name not ready: $(cat "$TEST_DIR/$name.out")"
}
close_session() {
    echo '\q' >&"${session_fd[$1]}"
    exec {session_fd[$1]}>&-
    wait "${session_pid[$1]}" || true
}

# The only server connection is held by an open transaction: the next query waits, then fails.
open_session holder
echo "BEGIN; SELECT 'in tx';" >&"${session_fd[holder]}"
for i in $(seq 1 100); do grep -q '^in tx$' "$TEST_DIR/holder.out" && break; sleep 0.1; done
out=$(mesh_psql "$de" -v VERBOSITY=verbose -c "SELECT 'waiter'" 2>&1) && fail "query ran while the pool was held: $out"
assert_contains "$out" "53300: query_wait_timeout expired" "waiting for a server connection"
echo "COMMIT;" >&"${session_fd[holder]}"
assert_eq "free" "$(mesh_psql "$de" -c "SELECT 'free'")" "query after the transaction ended"

# Three clients connected (idle between transactions): a fourth is refused, at the limit only.
open_session idle1
open_session idle2
out=$(mesh_psql "$de" -c "SELECT 'fourth'" 2>&1) && fail "fourth client accepted: $out"
assert_contains "$out" "too many client connections" "fourth client"
close_session idle2
out=$(mesh_psql "$de" -c "SELECT 'third again'" 2>&1) || fail "client after one left: $out"
assert_eq "third again" "$out" "client after one left"
close_session idle1
close_session holder
assert_contains "$(cat "$MESH_LOG")" "FATAL 53300: too many client connections" "pgmesh log"
mesh_stop
