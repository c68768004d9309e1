#!/usr/bin/env bash
# PostgreSQL restarts (fast shutdown) under the load of four tenants, through pgmesh and through
# PgBouncer side by side: every pooled server connection dies at once. Figure: how long after the
# database accepts connections again each pooler's clients are back to committing, and how many
# transactions failed in between. No client may see another tenant's rows.
. "$(dirname "$0")/lib.sh"

mesh_config
ini_set pgmesh default_pool_size 2
mesh_start
bouncer_start
load_start mesh mesh
load_start bouncer bouncer
load_wait_ok mesh 200 20
load_wait_ok bouncer 200 20

pg_down
down_ms=$(now_ms)
sleep 1
pg_up
up_ms=$(now_ms)
echo "PostgreSQL was down $((up_ms - down_ms)) ms"

mesh_back=$(load_back_ms mesh "$up_ms" 30)
bouncer_back=$(load_back_ms bouncer "$up_ms" 30)
load_wait_ok mesh 200 20
load_wait_ok bouncer 200 20
mesh_err=$(load_get mesh errors) bouncer_err=$(load_get bouncer errors)
load_stop mesh
load_stop bouncer
verdict=pass
[ "$mesh_back" != never ] && [ "$mesh_back" -le 1000 ] || verdict=FAIL
figure "PostgreSQL restart (fast)" "load committing again after start (ms)" "$mesh_back" "$bouncer_back" "<= 1000" "$verdict"
figure "PostgreSQL restart (fast)" "failed transactions of 8 clients" "$mesh_err" "$bouncer_err" "-" "-"
[ "$verdict" = pass ] || fail "pgmesh's clients were back $mesh_back ms after PostgreSQL"
assert_eq 3 "$(mesh_psql "$(mint DE regional_analyst)" -c 'SELECT count(*) FROM core.fct_playback_sessions')" "a new client after the restart"
mesh_stop
echo ok
