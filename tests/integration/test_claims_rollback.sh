#!/usr/bin/env bash
# The claims cannot fall back to another client's when a transaction is rolled back: on a pool of
# one server connection, FR commits first, then DE rolls back inside one Query (and after a
# failed block) and keeps running statements. DE must still see DE, never FR.
. "$(dirname "$0")/lib.sh"

mesh_config
ini_set pgmesh default_pool_size 1
mesh_start

de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
q="SELECT current_setting('request.jwt.claim.tenant', true) || ':' || (SELECT string_agg(DISTINCT country_code, ',') FROM core.fct_playback_sessions)"

assert_eq "FR:FR" "$(mesh_psql "$fr" -c "$q")" "FR first, on the only server connection"

out=$(mesh_psql "$de" -c "BEGIN" -c "ROLLBACK; $q" -c "BEGIN; SELECT 1; ROLLBACK; $q")
assert_eq $'DE:DE\nDE:DE' "$(printf '%s\n' "$out" | grep ':')" "DE after ROLLBACK inside its Query"

# A failed explicit block, rolled back and followed by a statement in the same Query.
out=$(PGPASSWORD=$de psql -X -A -t "$(mesh_dsn "$de")" -c "BEGIN" -c "SELECT 1/0" -c "ROLLBACK; $q" 2>&1 || true)
assert_contains "$out" "division by zero" "the failure reached the client"
assert_contains "$out" "DE:DE" "DE after a failed block"
assert_not_contains "$out" "FR" "no FR claim or row leaked"

# FR again on the same server connection: its own claims, nothing of DE's.
assert_eq "FR:FR" "$(mesh_psql "$fr" -c "$q")" "FR after DE"
mesh_stop
