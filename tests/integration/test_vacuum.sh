#!/usr/bin/env bash
# VACUUM, which PostgreSQL refuses inside a transaction block, works
# through pgmesh in transaction pooling: the claims must not be set by wrapping the client's
# statement in BEGIN (that would be 25001), and the next statement still sees the right tenant.
. "$(dirname "$0")/lib.sh"

mesh_config
mesh_start
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)

# core.role_scratch is owned by marketing_domain_role, so that role may VACUUM it.
out=$(mesh_psql "$de" -c 'VACUUM core.role_scratch' 2>&1) || fail "VACUUM through pgmesh: $out"
assert_not_contains "$out" "25001" "VACUUM"
assert_eq "DE" "$(mesh_psql "$de" -c 'SHOW request.jwt.claim.tenant')" "tenant after VACUUM"

# In one session: VACUUM (ANALYZE), then queries and a transaction see the token's tenant.
out=$(mesh_psql "$fr" 2>&1 <<'EOF'
INSERT INTO core.role_scratch (note) VALUES ('before vacuum');
VACUUM (ANALYZE) core.role_scratch;
SELECT 'tenant:' || current_setting('request.jwt.claim.tenant');
SELECT 'rows:' || string_agg(DISTINCT country_code, ',') FROM core.fct_playback_sessions;
VACUUM core.role_scratch;
BEGIN;
SELECT 'tx:' || current_setting('request.jwt.claim.tenant');
COMMIT;
EOF
) || fail "VACUUM session through pgmesh: $out"
assert_eq $'tenant:FR\nrows:FR\ntx:FR' "$(grep -v '^INSERT\|^VACUUM\|^CREATE' <<<"$out")" "FR session with VACUUM"

# VACUUM is refused by PostgreSQL itself inside an explicit transaction: the client sees 25001
# from the server, as it would without pgmesh, and its session goes on.
out=$(mesh_psql "$de" -v VERBOSITY=verbose -v ON_ERROR_STOP=0 2>&1 <<'EOF'
BEGIN;
VACUUM core.role_scratch;
ROLLBACK;
SELECT 'still:' || current_setting('request.jwt.claim.tenant');
EOF
) || true
assert_contains "$out" "25001" "VACUUM inside BEGIN"
assert_contains "$out" "VACUUM cannot run inside a transaction block" "VACUUM inside BEGIN"
assert_contains "$out" "still:DE" "session after the refused VACUUM"

# The server saw the VACUUM from marketing_domain_role.
last=$(pg_psql -c "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relid = 'core.role_scratch'::regclass")
assert_eq "t" "$last" "pg_stat_user_tables.last_vacuum"
# After VACUUM the server connection goes back to the pool: with a pool of one, a client that ran
# VACUUM and then sits idle must not hold it, or the next client waits for query_wait_timeout.
mesh_stop
ini_set pgmesh default_pool_size 1
ini_set pgmesh query_wait_timeout 5s
mesh_start
mkfifo "$TEST_DIR/idle.in"
mesh_psql "$de" < "$TEST_DIR/idle.in" > "$TEST_DIR/idle.out" 2>&1 &
idle_pid=$!
exec 3> "$TEST_DIR/idle.in"
echo "VACUUM core.role_scratch;" >&3
echo "SELECT 'vacuumed';" >&3
for i in $(seq 1 100); do
    grep -q '^vacuumed$' "$TEST_DIR/idle.out" && break
    sleep 0.1
done
grep -q '^vacuumed$' "$TEST_DIR/idle.out" || fail "idle session: $(cat "$TEST_DIR/idle.out")"
out=$(mesh_psql "$fr" -c "SELECT 'other:' || current_setting('request.jwt.claim.tenant')" 2>&1) || true
assert_eq "other:FR" "$out" "another client while the VACUUM client is idle (pool of one)"
echo "VACUUM core.role_scratch;" >&3
sleep 0.2
out=$(mesh_psql "$fr" -c "SELECT 'other:' || current_setting('request.jwt.claim.tenant')" 2>&1) || true
assert_eq "other:FR" "$out" "another client right after an idle client's last statement was VACUUM"
echo '\q' >&3
exec 3>&-
wait "$idle_pid" || fail "idle session: $(cat "$TEST_DIR/idle.out")"

mesh_stop
