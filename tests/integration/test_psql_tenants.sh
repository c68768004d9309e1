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

mesh_stop
