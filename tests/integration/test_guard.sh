#!/usr/bin/env bash
# The claim tampering guard end to end: statements that would change what pgmesh manages are
# refused with ERROR 42501 (simple and extended protocol), an explicit transaction aborts the normal
# way, the connection stays usable with the token's claims, benign look-alikes run, and startup
# options naming a managed setting are refused with FATAL 42501.
. "$(dirname "$0")/lib.sh"

mesh_config
ini_set pgmesh default_pool_size 1
mesh_start
de=$(mint DE regional_analyst)
claims="SELECT current_setting('request.jwt.claim.tenant') || '/' || current_setting('request.jwt.claim.role') || '/' || current_setting('statement_timeout')"

refused=0
while IFS= read -r sql; do
    [ -n "$sql" ] || continue
    out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "$sql" -c "$claims" 2>&1) || true
    assert_contains "$out" "42501" "refused: $sql"
    # With the extension a limit's SET reaches PostgreSQL, which refuses it above the role's value.
    if [ -n "${SERVER_KEY_FILE:-}" ] && [[ $sql =~ ^SET\ (SESSION\ )?(statement_timeout|work_mem|sort_mem) ]]; then
        assert_contains "$out" "cannot be set above" "refused by the server: $sql"
    else
        assert_contains "$out" "is managed by pgmesh" "refused: $sql"
    fi
    assert_contains "$out" "DE/regional_analyst/30s" "claims after refusing: $sql"
    refused=$((refused + 1))
done <<'SQL'
SET request.jwt.claim.tenant = 'FR'
set SESSION Request.Jwt.Claim.Tenant TO 'FR'
SET /* c */ request.jwt.claim.role = 'global_corporate_audit'
SET LOCAL request.jwt.claim.tenant = 'FR'
SET "request.jwt.claim.tenant" = 'FR'
RESET request.jwt.claim.tenant
SET statement_timeout = E'0'
SET SESSION work_mem TO "4GB"
SET sort_mem = E'4194304'
SET ROLE audit_role
SET SESSION AUTHORIZATION audit_role
SELECT set_config('request.jwt.claim.tenant', 'FR', false)
SELECT pg_catalog.set_config('request.jwt.claim.role', 'global_corporate_audit', true)
SELECT set_config('request.jwt.' || 'claim.tenant', 'FR', false)
SELECT 1; SET request.jwt.claim.tenant = 'FR'
SELECT $$;$$; SET request.jwt.claim.tenant = 'FR'
ALTER ROLE marketing_domain_role SET statement_timeout = 0
DISCARD ALL
SQL
[ "$refused" -ge 18 ] || fail "only $refused refusals ran"

# An explicit transaction aborts the normal way and ROLLBACK recovers it.
out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -c "BEGIN" -c "SET request.jwt.claim.tenant = 'FR'" -c "SELECT 1" -c "ROLLBACK" -c "$claims" 2>&1) || true
assert_contains "$out" "current transaction is aborted" "transaction aborted after a refusal"
assert_contains "$out" "DE/regional_analyst/30s" "claims after rollback"

# Extended protocol: pgbench -M extended with a refused statement fails that transaction only.
printf '%s\n' "SELECT set_config('request.jwt.claim.tenant', 'FR', false);" > "$TEST_DIR/bad.sql"
out=$(PGPASSWORD=$de PGSSLMODE=disable timeout -k 5 60 "$PGBIN/pgbench" -h 127.0.0.1 -p "$MESH_PORT" -U analyst \
      -n -M extended -f "$TEST_DIR/bad.sql" -c 1 -t 1 media_analytics 2>&1) || true
assert_contains "$out" "is managed by pgmesh" "extended protocol refusal"

# Benign look-alikes run.
assert_eq "SET request.jwt.claim.tenant = 'FR'" "$(mesh_psql "$de" -c "SELECT 'SET request.jwt.claim.tenant = ''FR'''")" "string literal"
assert_eq "DE" "$(mesh_psql "$de" -c "SHOW request.jwt.claim.tenant")" "SHOW"
assert_eq "DE" "$(mesh_psql "$de" -c "SELECT current_setting('request.jwt.claim.tenant')")" "current_setting"
assert_eq "marketing" "$(mesh_psql "$de" -c "SELECT set_config('search_path', 'marketing', false)")" "set_config of another setting"
assert_eq "1" "$(mesh_psql "$de" -c "SELECT 1 AS set_config_log")" "column named set_config_log"

# LISTEN and SQL-level PREPARE need one server connection for the session: a clear 0A000 in
# transaction pooling (they would be lost at the next transaction), protocol-level statements run.
for sql in "LISTEN mesh_channel" "PREPARE q AS SELECT 1" "SELECT 1; listen x"; do
    out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "$sql" -c "$claims" 2>&1) || true
    assert_contains "$out" "0A000" "refused in transaction pooling: $sql"
    assert_contains "$out" "not supported in transaction pooling" "refused in transaction pooling: $sql"
    assert_contains "$out" "DE/regional_analyst/30s" "claims after: $sql"
done
assert_eq "0" "$(pg_psql -c "SELECT count(*) FROM pg_listening_channels()")" "no channel left anywhere"

# A statement too long to check (over 16 MiB) is refused with 54000; the connection goes on.
{ printf 'SELECT 1 /*'; head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' ' '; printf '*/;\n'; } > "$TEST_DIR/long.sql"
out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -f "$TEST_DIR/long.sql" -c "$claims" 2>&1) || true
assert_contains "$out" "54000" "statement over 16 MiB"
assert_contains "$out" "DE/regional_analyst/30s" "claims after the long statement"

# Startup options: refused before any server connection is used.
out=$(PGOPTIONS="-c request.jwt.claim.tenant=FR" mesh_psql "$de" -c "SELECT 1" 2>&1) || true
assert_contains "$out" "managed by pgmesh" "PGOPTIONS with a managed setting"
wait_log "FATAL 42501" || fail "no FATAL 42501 in the log"
assert_eq "1" "$(PGOPTIONS="-c search_path=marketing" mesh_psql "$de" -c "SELECT 1")" "PGOPTIONS with another setting"
mesh_stop

# Session pooling allows DISCARD ALL, and pgmesh sets its settings again right after it.
ini_set pgmesh pool_mode session
mesh_start
assert_eq "DE/regional_analyst/30s" "$(mesh_psql "$de" -c "DISCARD ALL" -c "$claims" | tail -n 1)" \
    "claims after DISCARD ALL in session pooling"
out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "SET request.jwt.claim.tenant = 'FR'" -c "$claims" 2>&1) || true
assert_contains "$out" "42501" "session pooling still refuses SET of a claim"
assert_contains "$out" "DE/regional_analyst/30s" "claims after the refusal in session pooling"
mesh_stop
