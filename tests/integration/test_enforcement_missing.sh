#!/usr/bin/env bash
# server_enforcement against a database without the pgmesh extension (the suite's cluster):
# require refuses to lend its server connections, with an error that names the missing setup;
# prefer logs once per pool what is unprotected and keeps setting the claims with SET; a config
# that requires the extension without server_key_file does not start.
. "$(dirname "$0")/lib.sh"
if [ -n "${SERVER_KEY_FILE:-}" ]; then
    echo "skipped: the suite's cluster has the extension in this run"
    exit 77
fi

mesh_config
(umask 077 && openssl rand -hex 32 > "$TEST_DIR/server.key")
ini_set pgmesh server_key_file "$TEST_DIR/server.key"
TOK=$(mint DE regional_analyst)

echo "== require"
ini_set pgmesh server_enforcement require
mesh_start
out=$(mesh_psql "$TOK" -c "SELECT 1" 2>&1) && fail "require: a client got a server without the extension: $out"
grep -q 'has no pgmesh extension, and server_enforcement = require' <<<"$out" ||
    fail "require: the error does not name the missing extension: $out"
grep -q 'server-setup.sh' <<<"$out" || fail "require: the error does not say how to set it up: $out"
mesh_stop

echo "== prefer"
ini_set pgmesh server_enforcement prefer
mesh_start
for i in 1 2 3; do
    got=$(mesh_psql "$TOK" -c "SELECT current_setting('request.jwt.claim.tenant')")
    [ "$got" = DE ] || fail "prefer: tenant claim '$got', want DE"
done
n=$(grep -c 'has no pgmesh extension: claims and limits are set with plain SET' "$MESH_LOG" || true)
[ "$n" = 1 ] || fail "prefer: $n warnings about the missing extension, want 1 for the pool"
mesh_stop

echo "== require without server_key_file"
ini_set pgmesh server_key_file ""
ini_set pgmesh server_enforcement require
if "$PGMESH" -c "$MESH_INI" > "$TEST_DIR/start.out" 2>&1; then fail "pgmesh started without server_key_file"; fi
grep -q 'server_enforcement = require needs server_key_file' "$TEST_DIR/start.out" ||
    fail "no clear config error: $(cat "$TEST_DIR/start.out")"
echo "ok"
