#!/usr/bin/env bash
# psql through pgmesh in transaction pooling: each token sees only its tenant's rows (the audit role
# sees all), and the claims pgmesh sets are visible with SHOW and current_setting, in autocommit
# statements and inside an explicit transaction, over TCP and over the Unix socket.
. "$(dirname "$0")/lib.sh"

mesh_config
mesh_start

de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
audit=$(mint HQ global_corporate_audit)

q_counts='SELECT country_code, count(*) FROM core.fct_playback_sessions GROUP BY 1 ORDER BY 1'
q_product='SELECT country_code, sum(plays) FROM media_consumption.mrt_marketing_weekly_engagement GROUP BY 1 ORDER BY 1'
q_campaigns='SELECT string_agg(campaign_id::text, $$,$$ ORDER BY campaign_id) FROM marketing.stg_local_campaigns'

assert_eq "DE|3" "$(mesh_psql "$de" -c "$q_counts")" "DE rows"
assert_eq "FR|2" "$(mesh_psql "$fr" -c "$q_counts")" "FR rows"
assert_eq $'DE|3\nES|1\nFR|2\nIT|1' "$(mesh_psql "$audit" -c "$q_counts")" "audit rows"

assert_eq "DE|3" "$(mesh_psql "$de" -c "$q_product")" "DE data product"
assert_eq "FR|2" "$(mesh_psql "$fr" -c "$q_product")" "FR data product"
assert_eq $'DE|3\nES|1\nFR|2\nIT|1' "$(mesh_psql "$audit" -c "$q_product")" "audit data product"

assert_eq "11,12" "$(mesh_psql "$de" -c "$q_campaigns")" "DE campaigns"
assert_eq "21" "$(mesh_psql "$fr" -c "$q_campaigns")" "FR campaigns"
assert_eq "11,12,21,31,41" "$(mesh_psql "$audit" -c "$q_campaigns")" "audit campaigns"

# The claims themselves, in autocommit statements.
assert_eq "DE" "$(mesh_psql "$de" -c 'SHOW request.jwt.claim.tenant')" "SHOW tenant (DE)"
assert_eq "regional_analyst" "$(mesh_psql "$de" -c 'SHOW request.jwt.claim.role')" "SHOW role (DE)"
assert_eq "FR|regional_analyst" \
    "$(mesh_psql "$fr" -c "SELECT current_setting('request.jwt.claim.tenant'), current_setting('request.jwt.claim.role')")" \
    "current_setting (FR)"
assert_eq "HQ|global_corporate_audit" \
    "$(mesh_psql "$audit" -c "SELECT current_setting('request.jwt.claim.tenant'), current_setting('request.jwt.claim.role')")" \
    "current_setting (audit)"
# Logged in as the configured server role, never as the client's user name.
assert_eq "marketing_domain_role" "$(mesh_psql "$de" -c 'SELECT current_user')" "server role (DE)"
assert_eq "audit_role" "$(mesh_psql "$audit" -c 'SELECT current_user')" "server role (audit)"

# Several statements and an explicit transaction in one session, several transactions in a row:
# every transaction starts with the token's claims, whichever server connection it lands on.
out=$(mesh_psql "$de" <<'EOF'
SELECT 'a:' || current_setting('request.jwt.claim.tenant');
BEGIN;
SELECT 'b:' || current_setting('request.jwt.claim.tenant');
SHOW request.jwt.claim.role;
SELECT 'c:' || count(*) FROM core.fct_playback_sessions;
COMMIT;
BEGIN;
SELECT 'd:' || string_agg(DISTINCT country_code, ',') FROM core.fct_playback_sessions;
ROLLBACK;
SELECT 'e:' || current_setting('request.jwt.claim.tenant');
EOF
)
assert_eq $'a:DE\nb:DE\nregional_analyst\nc:3\nd:DE\ne:DE' "$out" "DE session with transactions"

# A client that tries to set the claims itself (SET, set_config at session level) must not change
# what its next transactions see, nor leak into the next client of the same server connection
# (pool of one below). pgmesh may refuse such statements; either way the claims stay the token's.
mesh_stop
ini_set pgmesh default_pool_size 1
mesh_start
out=$(mesh_psql "$fr" -v ON_ERROR_STOP=0 2>&1 <<'EOF2'
SET request.jwt.claim.tenant = 'DE';
SELECT set_config('request.jwt.claim.tenant', 'DE', false) IS NOT NULL;
BEGIN;
SELECT set_config('request.jwt.claim.tenant', 'DE', false) IS NOT NULL;
SELECT set_config('request.jwt.claim.role', 'global_corporate_audit', false) IS NOT NULL;
COMMIT;
SELECT 'after:' || current_setting('request.jwt.claim.tenant');
SELECT 'rows:' || string_agg(DISTINCT country_code, ',') FROM core.fct_playback_sessions;
BEGIN;
SELECT 'in tx:' || current_setting('request.jwt.claim.tenant') || '/' || current_setting('request.jwt.claim.role');
COMMIT;
EOF2
) || true
assert_contains "$out" "after:FR" "FR claim after trying to set it"
assert_contains "$out" "rows:FR" "FR rows after trying to set the claim"
assert_contains "$out" "in tx:FR/regional_analyst" "FR claims in the next transaction"
assert_eq "DE|3" "$(mesh_psql "$de" -c "$q_counts")" "next client on the same server connection"
assert_eq "DE|regional_analyst" \
    "$(mesh_psql "$de" -c "SELECT current_setting('request.jwt.claim.tenant'), current_setting('request.jwt.claim.role')")" \
    "claims of the next client on the same server connection"
mesh_stop
ini_set pgmesh default_pool_size 2
mesh_start

# Two tenants interleaved on a pool of two server connections: each keeps its own rows.
pids=()
for i in 1 2 3 4 5; do
    mesh_psql "$de" -c "$q_counts" > "$TEST_DIR/de.$i" &
    pids+=($!)
    mesh_psql "$fr" -c "$q_counts" > "$TEST_DIR/fr.$i" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
for i in 1 2 3 4 5; do
    assert_eq "DE|3" "$(cat "$TEST_DIR/de.$i")" "concurrent DE run $i"
    assert_eq "FR|2" "$(cat "$TEST_DIR/fr.$i")" "concurrent FR run $i"
done

# Writes: INSERT takes the tenant from the claim (column default) and RLS keeps each tenant's rows
# to itself; an INSERT for another tenant is refused by the policy's WITH CHECK (42501).
mesh_psql "$de" -c "INSERT INTO core.scratch (note) VALUES ('de-1'), ('de-2')"
mesh_psql "$fr" -c "INSERT INTO core.scratch (note) VALUES ('fr-1')"
assert_eq "DE|de-1,de-2" "$(mesh_psql "$de" -c "SELECT country_code, string_agg(note, ',' ORDER BY note) FROM core.scratch WHERE note LIKE '__-_' GROUP BY 1")" "DE scratch rows"
assert_eq "FR|fr-1" "$(mesh_psql "$fr" -c "SELECT country_code, string_agg(note, ',' ORDER BY note) FROM core.scratch WHERE note LIKE '__-_' GROUP BY 1")" "FR scratch rows"
out=$(mesh_psql "$de" -v VERBOSITY=verbose -c "INSERT INTO core.scratch (country_code, note) VALUES ('FR', 'spoof')" 2>&1) || true
assert_contains "$out" "42501" "DE inserting an FR row"
assert_contains "$out" "new row violates row-level security policy" "DE inserting an FR row"
assert_eq "0" "$(pg_psql -c "SELECT count(*) FROM core.scratch WHERE note = 'spoof'")" "spoofed row stored"

# COPY out of an RLS table (rows filtered by tenant) and COPY in (core.role_scratch: COPY FROM is
# refused by PostgreSQL on tables with RLS); a large result streams through whole.
out=$(mesh_psql "$fr" -c "COPY (SELECT session_id, country_code FROM core.fct_playback_sessions ORDER BY 1) TO STDOUT WITH (FORMAT csv)")
assert_eq $'2001,FR\n2002,FR' "$out" "FR COPY TO STDOUT"
out=$(mesh_psql "$de" -c 'COPY core.fct_playback_sessions (session_id) TO STDOUT')
assert_eq $'1001\n1002\n1003' "$out" "DE COPY table TO STDOUT"
seq 1 5000 | sed 's/^/copied /' | mesh_psql "$de" -c "COPY core.role_scratch (note) FROM STDIN"
assert_eq "5000" "$(mesh_psql "$de" -c "SELECT count(*) FROM core.role_scratch WHERE note LIKE 'copied %'")" "rows after COPY FROM STDIN"
assert_eq "DE" "$(mesh_psql "$de" -c 'SHOW request.jwt.claim.tenant')" "tenant after COPY"
assert_eq "300000|45000150000" "$(mesh_psql "$de" -c 'SELECT count(*), sum(i) FROM (SELECT i FROM generate_series(1, 300000) i) s')" "aggregate"
assert_eq "300000" "$(mesh_psql "$de" -c 'SELECT i, repeat($$x$$, 100) FROM generate_series(1, 300000) i' | wc -l)" "rows of a large result"

# Errors inside a transaction: after ROLLBACK the next transaction still has the token's claims.
out=$(mesh_psql "$fr" -v ON_ERROR_STOP=0 2>&1 <<'EOF'
BEGIN;
SELECT 1/0;
SELECT 'aborted tx';
ROLLBACK;
SELECT 'next:' || current_setting('request.jwt.claim.tenant') || ':' || count(*) FROM core.fct_playback_sessions;
EOF
) || true
assert_contains "$out" "division by zero" "error in transaction"
assert_contains "$out" "current transaction is aborted" "statement in an aborted transaction"
assert_contains "$out" "next:FR:2" "transaction after ROLLBACK"

# Role limits from [roles].
assert_eq "30s|128MB" "$(mesh_psql "$de" -c "SELECT current_setting('statement_timeout'), current_setting('work_mem')")" "regional_analyst limits"
assert_eq "5min|256MB" "$(mesh_psql "$audit" -c "SELECT current_setting('statement_timeout'), current_setting('work_mem')")" "audit limits"


# Several statements in one simple Query message (psql -c sends the string as one).
out=$(mesh_psql "$fr" -c "SELECT current_setting('request.jwt.claim.tenant'); SELECT count(*) FROM core.fct_playback_sessions; SHOW request.jwt.claim.role")
assert_eq $'FR\n2\nregional_analyst' "$out" "multi-statement query"
out=$(mesh_psql "$de" -c "BEGIN; SELECT current_setting('request.jwt.claim.tenant'); COMMIT; SELECT count(*) FROM core.fct_playback_sessions")
assert_eq $'DE\n3' "$out" "multi-statement query with its own transaction"
out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -c "SELECT 1/0; SELECT 'not reached'" 2>&1) || true
assert_contains "$out" "division by zero" "failing multi-statement query"
assert_not_contains "$out" "not reached" "failing multi-statement query"
assert_eq "DE|3" "$(mesh_psql "$de" -c "$q_counts")" "query after a failed multi-statement query"

# Over the Unix socket in TEST_DIR.
assert_eq "DE|3" "$(mesh_psql "$de" -h "$TEST_DIR" -c "$q_counts")" "DE rows over Unix socket"
assert_eq "FR|FR|2" \
    "$(mesh_psql "$fr" -h "$TEST_DIR" -c "SELECT current_setting('request.jwt.claim.tenant'), country_code, count(*) FROM core.fct_playback_sessions GROUP BY 1, 2")" \
    "FR over Unix socket"
out=$(mesh_psql "$audit" -h "$TEST_DIR" <<'EOF'
BEGIN;
SHOW request.jwt.claim.tenant;
SELECT count(*) FROM core.fct_playback_sessions;
COMMIT;
EOF
)
assert_eq $'HQ\n7' "$out" "audit transaction over Unix socket"


# Session state a client creates (SET, PREPARE, temporary table, LISTEN) is its own: the next
# client of the same server connection (pool of one), here another tenant, starts clean, in both
# pool modes; the client's own SETs hold for its later statements.
for mode in transaction session; do
    mesh_stop
    ini_set pgmesh pool_mode "$mode"
    ini_set pgmesh default_pool_size 1
    mesh_start
    out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 2>&1 <<'EOF'
SET search_path = marketing;
SET application_name = 'leaky';
PREPARE leaky_stmt AS SELECT 1;
CREATE TEMPORARY TABLE leaky_temp (x int);
LISTEN leaky_channel;
SELECT 'own:' || current_setting('search_path') || '/' || current_setting('application_name');
SELECT 'table:' || count(*) FROM stg_local_campaigns;
EOF
    ) || true
    assert_contains "$out" "own:marketing/leaky" "$mode pooling: client's own SET search_path, application_name"
    assert_contains "$out" "table:2" "$mode pooling: unqualified table on the client's search_path"
    out=$(mesh_psql "$fr" -c "SELECT current_setting('request.jwt.claim.tenant'), current_setting('work_mem'), current_setting('search_path'), (SELECT count(*) FROM pg_prepared_statements), (SELECT count(*) FROM pg_class WHERE relpersistence = 't'), (SELECT count(*) FROM pg_listening_channels())")
    assert_eq 'FR|128MB|"$user", public|0|0|0' "$out" \
        "$mode pooling: next client's tenant|work_mem|search_path|prepared|temp tables|channels"
    assert_eq "FR|2" "$(mesh_psql "$fr" -c "$q_counts")" "$mode pooling: next client's rows"
    assert_eq "mesh_psql" "$(mesh_psql "$fr" -c "SELECT current_setting('application_name')")" \
        "$mode pooling: next client's application_name on the server"
done
mesh_stop
