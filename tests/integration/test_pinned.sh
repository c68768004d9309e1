#!/usr/bin/env bash
# Per-role pinned settings ([roles] pin.<setting>=<value>), in both pool modes: the role's
# transactions run with them (SHOW through pgmesh), and a client cannot change them (SET, SET LOCAL,
# RESET, set_config, extended protocol, PGOPTIONS: 42501 from pgmesh), whichever role it has; a role
# that pins nothing keeps the server's defaults; in session pooling a client's DISCARD ALL gets
# them set again. With the extension (suite run with PGMESH_EXTENSION=1, whose cluster lists the
# names in pgmesh.pinned_settings) a SQL function that SETs one fails with 42501 too. A reload
# applies a changed pin from the next transaction. A value the server refuses, a setting the server
# role may not SET, and (with the extension) a name pgmesh.pinned_settings does not list each end
# the client's session at once with FATAL F0000 naming the [roles] setting to fix, never a hang.
. "$(dirname "$0")/lib.sh"

pins="pin.hash_mem_multiplier=1 pin.max_parallel_workers_per_gather=0"
mesh_config
ini_set roles regional_analyst "server_user=marketing_domain_role statement_timeout=30s work_mem=128MB $pins"
ini_set pgmesh default_pool_size 1
settings="SELECT current_setting('hash_mem_multiplier') || '/' || current_setting('max_parallel_workers_per_gather')"

pg_psql -c "CREATE OR REPLACE FUNCTION core.lift_hash_mem() RETURNS text LANGUAGE sql AS \$\$ SET hash_mem_multiplier = 1000; SELECT current_setting('hash_mem_multiplier') \$\$" \
    -c "CREATE OR REPLACE FUNCTION core.lift_hash_mem_config() RETURNS text LANGUAGE sql AS \$\$ SELECT set_config('hash_mem_multiplier', '1000', false) \$\$" \
    -c "GRANT EXECUTE ON FUNCTION core.lift_hash_mem(), core.lift_hash_mem_config() TO marketing_domain_role"
lib_at_exit 'pg_psql -c "DROP FUNCTION IF EXISTS core.lift_hash_mem(), core.lift_hash_mem_config()"'

for mode in transaction session; do
    echo "== pool_mode = $mode"
    ini_set pgmesh pool_mode "$mode"
    mesh_start
    de=$(mint DE regional_analyst)
    audit=$(mint HQ global_corporate_audit)

    assert_eq "1" "$(mesh_psql "$de" -c "SHOW hash_mem_multiplier")" "$mode: SHOW hash_mem_multiplier"
    assert_eq "0" "$(mesh_psql "$de" -c "SHOW max_parallel_workers_per_gather")" "$mode: SHOW max_parallel_workers_per_gather"
    assert_eq "1/0" "$(mesh_psql "$de" -c "BEGIN" -c "$settings" -c "COMMIT")" "$mode: inside a transaction"
    # The role that pins nothing has the server's defaults (its own pool).
    assert_eq "2/2" "$(mesh_psql "$audit" -c "$settings")" "$mode: a role without pins"

    while IFS= read -r sql; do
        for token in "$de" "$audit"; do
            out=$(mesh_psql "$token" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "$sql" -c "$settings" 2>&1) || true
            if [ -n "${SERVER_KEY_FILE:-}" ] && [[ $sql != *set_config* ]]; then
                # With the extension a top-level SET or RESET reaches PostgreSQL, which holds each
                # role's pins as ceilings: refused for the role that pins the setting, allowed for
                # one that does not (and gone for the next client, below).
                [ "$token" = "$de" ] && assert_contains "$out" "cannot be set above" "$mode: refused by the server: $sql"
                continue
            fi
            assert_contains "$out" "42501" "$mode: refused: $sql"
            assert_contains "$out" "is managed by pgmesh" "$mode: refused: $sql"
        done
        assert_eq "2/2" "$(mesh_psql "$audit" -c "$settings")" "$mode: the next client of the role without pins, after: $sql"
        out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -c "$sql" -c "$settings" 2>&1) || true
        assert_contains "$out" "1/0" "$mode: pinned settings after: $sql"
    done <<'SQL'
SET hash_mem_multiplier = 1000
SET LOCAL hash_mem_multiplier = 1000
set Hash_Mem_Multiplier to default
RESET hash_mem_multiplier
SELECT set_config('hash_mem_multiplier', '1000', false)
SET max_parallel_workers_per_gather = 8
SQL

    # Session pooling lets a client DISCARD ALL; pgmesh sets the role's settings again behind it.
    if [ "$mode" = session ]; then
        assert_eq "1/0" "$(mesh_psql "$de" -c "DISCARD ALL" -c "$settings")" "$mode: after DISCARD ALL"
    fi

    # Extended protocol.
    printf '%s\n' "SELECT set_config('hash_mem_multiplier', '1000', false);" > "$TEST_DIR/bad.sql"
    out=$(PGPASSWORD=$de PGSSLMODE=disable timeout -k 5 60 "$PGBIN/pgbench" -h 127.0.0.1 -p "$MESH_PORT" -U analyst \
          -n -M extended -f "$TEST_DIR/bad.sql" -c 1 -t 1 media_analytics 2>&1) || true
    assert_contains "$out" "hash_mem_multiplier is managed by pgmesh" "$mode: extended protocol"

    # Startup options, before the token says which role: any role's pins.
    out=$(PGOPTIONS="-c hash_mem_multiplier=1000" mesh_psql "$audit" -c "SELECT 1" 2>&1) || true
    assert_contains "$out" "sets a setting managed by pgmesh" "$mode: PGOPTIONS"

    # SQL the guard cannot see: with the extension the server refuses it (the ceiling).
    if [ -n "${SERVER_KEY_FILE:-}" ]; then
        for f in lift_hash_mem lift_hash_mem_config; do
            out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "SELECT core.$f()" -c "$settings" 2>&1) || true
            assert_contains "$out" "42501" "$mode: $f (extension)"
            assert_contains "$out" "can only be changed by a top-level SET" "$mode: $f (extension)"
            assert_contains "$out" "1/0" "$mode: pinned settings after $f (extension)"
        done
    fi
    mesh_stop
done

echo "== reload: a changed pin applies from the next transaction"
ini_set pgmesh pool_mode transaction
mesh_start
de=$(mint DE regional_analyst)
ini_set roles regional_analyst "server_user=marketing_domain_role statement_timeout=30s work_mem=128MB pin.hash_mem_multiplier=1.5 pin.max_parallel_workers_per_gather=0"
out=$(printf '%s;\n\\! kill -HUP %s; sleep 1\n%s;\n' "$settings" "$MESH_PID" "$settings" | mesh_psql "$de" 2>&1)
assert_eq "$(printf '1/0\n1.5/0')" "$out" "pinned settings before and after SIGHUP, one session"
wait_log "config reload: role regional_analyst changed"
mesh_stop

# A pin the server refuses ends the session with a clear error (LIB_CMD_TIMEOUT_S: never a hang).
refused() { # PIN: the role's line with it, one client; what it got in $out
    ini_set roles regional_analyst "server_user=marketing_domain_role $1"
    mesh_start
    LIB_CMD_TIMEOUT_S=20 mesh_psql "$(mint DE regional_analyst)" -v VERBOSITY=verbose -c "SELECT 1" \
        > "$TEST_DIR/refused.txt" 2>&1 || true
    mesh_stop
    out=$(cat "$TEST_DIR/refused.txt")
    echo "$out"
}

echo "== a value the server refuses"
refused "pin.hash_mem_multiplier=banana"
assert_contains "$out" "FATAL:  F0000: the server refused pin.hash_mem_multiplier of role \"regional_analyst\"" "bad value"
assert_contains "$out" "Role \"regional_analyst\" has pin.hash_mem_multiplier=banana in pgmesh's [roles]" "bad value"
assert_contains "$out" "invalid value for parameter \"hash_mem_multiplier\": \"banana\"" "bad value"
assert_contains "$out" "Fix pin.hash_mem_multiplier of role \"regional_analyst\" and reload pgmesh" "bad value"
assert_not_contains "$out" "server connection lost" "bad value"
wait_log "the server refused pin.hash_mem_multiplier of role \"regional_analyst\" \($MESH_INI\)"

echo "== a setting the server does not let pgmesh set"
refused "pin.temp_file_limit=1GB"
if [ -n "${SERVER_KEY_FILE:-}" ]; then
    assert_contains "$out" "FATAL:  F0000: the server's pgmesh.pinned_settings does not list temp_file_limit" "unlisted"
    assert_contains "$out" "is not a setting pgmesh.apply() may set" "unlisted"
    assert_contains "$out" "Add temp_file_limit to pgmesh.pinned_settings on the server (scripts/server-setup.sh --pinned" "unlisted"
else
    # temp_file_limit is superuser-only in PostgreSQL; the server role is not one.
    assert_contains "$out" "FATAL:  F0000: the server refused pin.temp_file_limit of role \"regional_analyst\"" "superuser-only"
    assert_contains "$out" "permission denied to set parameter \"temp_file_limit\"" "superuser-only"
    assert_contains "$out" "GRANT SET ON PARAMETER temp_file_limit TO marketing_domain_role" "superuser-only"
fi
