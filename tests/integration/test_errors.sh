#!/usr/bin/env bash
# Every error pgmesh promises, with its exact SQLSTATE read off the wire (errors.c): unknown
# database 3D000; bad tokens 28P01 with their reason; an unconfigured role; oversized token; pool
# wait timeout 53300; max_client_conn 53300; unreachable server and refused server login 08006;
# malformed and oversized packets 08P01 and the close. After each, clients keep working.
. "$(dirname "$0")/lib.sh"
C=$BUILD/tests/integration/errors

# A port nothing listens on, for a database whose server is unreachable.
closed_port() { _lib_free_port; }

mesh_config
ini_set jwt issuer pgmesh-it
ini_set jwt audience media_analytics
mesh_start

ok=(--iss pgmesh-it --aud media_analytics)
now=$(date +%s)
openssl rand -hex 32 > "$TEST_DIR/other.secret"
TOK_GOOD=$(mint DE regional_analyst "${ok[@]}")
TOK_EXPIRED=$(mint DE regional_analyst "${ok[@]}" --exp $((now - 3600)))
TOK_NOT_YET_VALID=$(mint DE regional_analyst "${ok[@]}" --nbf $((now + 3600)))
TOK_BAD_SIGNATURE=$("$PGMESH_TOKEN" --secret-file "$TEST_DIR/other.secret" --tenant DE \
    --role regional_analyst "${ok[@]}")
TOK_ALG_NONE=$(mint DE regional_analyst "${ok[@]}" --alg none)
TOK_ALG_HS512=$(mint DE regional_analyst "${ok[@]}" --alg HS512)
TOK_WRONG_ISSUER=$(mint DE regional_analyst --iss someone-else --aud media_analytics)
TOK_WRONG_AUDIENCE=$(mint DE regional_analyst --iss pgmesh-it --aud another_service)
TOK_NO_TENANT=$(mint DE regional_analyst "${ok[@]}" --omit tenant)
TOK_NO_ROLE=$(mint DE regional_analyst "${ok[@]}" --omit role)
TOK_BAD_TENANT=$(mint "$(printf 'X%.0s' $(seq 1 70))" regional_analyst "${ok[@]}")
TOK_UNKNOWN_ROLE=$(mint DE intern "${ok[@]}")
export TOK_GOOD TOK_EXPIRED TOK_NOT_YET_VALID TOK_BAD_SIGNATURE TOK_ALG_NONE TOK_ALG_HS512 \
    TOK_WRONG_ISSUER TOK_WRONG_AUDIENCE TOK_NO_TENANT TOK_NO_ROLE TOK_BAD_TENANT TOK_UNKNOWN_ROLE

echo "== authentication and routing errors"
"$C" auth
# No token (nor its signature) may reach the log.
assert_not_contains "$(cat "$MESH_LOG")" "${TOK_GOOD##*.}" "pgmesh log (token signature)"
assert_not_contains "$(cat "$MESH_LOG")" "${TOK_EXPIRED##*.}" "pgmesh log (token signature)"

echo "== malformed and oversized packets"
"$C" malformed

echo "== server unreachable, server login refused"
mesh_stop
ini_set databases deadend "host=127.0.0.1 port=$(closed_port) dbname=media_analytics"
ini_set databases badauth \
    "host=127.0.0.1 port=$PG_PORT dbname=media_analytics password=not-the-password"
mesh_start
"$C" server deadend "refused"
"$C" server badauth "password authentication failed"

echo "== pool wait timeout"
mesh_stop
ini_set pgmesh default_pool_size 1
ini_set pgmesh query_wait_timeout 1s
mesh_start
"$C" wait-timeout

echo "== max_client_conn"
mesh_stop
ini_set pgmesh default_pool_size 2
ini_set pgmesh query_wait_timeout 30s
ini_set pgmesh max_client_conn 3
mesh_start
"$C" max-conn
mesh_stop
