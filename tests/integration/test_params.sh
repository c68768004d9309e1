#!/usr/bin/env bash
# Session parameters follow the client across server connections in transaction pooling: startup
# values (PGTZ, PGDATESTYLE, PGOPTIONS -c search_path / extra_float_digits, application_name) and
# the client's own SET of them are in force in every transaction wherever it runs, and never reach
# another client.
. "$(dirname "$0")/lib.sh"

mesh_config
ini_set pgmesh default_pool_size 1
mesh_start
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
show="SELECT current_setting('TimeZone') || '|' || current_setting('DateStyle') || '|' || current_setting('search_path') || '|' || current_setting('extra_float_digits')"
base=$(mesh_psql "$fr" -c "$show")

# A long DE session with startup parameters, interleaved with FR sessions on the only server
# connection: every DE transaction sees DE's values, every FR transaction the defaults.
coproc DE { PGTZ=Asia/Tokyo PGDATESTYLE="SQL, DMY" PGOPTIONS="-c search_path=marketing,public -c extra_float_digits=3" \
    PGPASSWORD=$de psql -X -A -t -q "$(mesh_dsn x | sed 's/ password=x//')" 2>&1; }
ask() { echo "$1" >&"${DE[1]}"; read -r -t 10 line <&"${DE[0]}" || fail "DE session did not answer"; echo "$line"; }
for round in 1 2 3; do
    assert_eq "Asia/Tokyo|SQL, DMY|marketing, public|3" "$(ask "$show;")" "DE startup parameters, round $round"
    assert_eq "$base" "$(mesh_psql "$fr" -c "$show")" "FR after DE, round $round"
done
# DE's own SET follows it too; RESET goes back to its startup value's absence (the default).
tell() { echo "$1" >&"${DE[1]}"; }   # statements that print nothing under psql -q
tell "SET TIME ZONE 'Europe/Berlin';"
assert_eq "Europe/Berlin|SQL, DMY|marketing, public|3" "$(ask "$show;")" "DE's own SET TIME ZONE"
assert_eq "$base" "$(mesh_psql "$fr" -c "$show")" "FR after DE's SET"
assert_eq "Europe/Berlin|SQL, DMY|marketing, public|3" "$(ask "$show;")" "DE's SET TIME ZONE after FR ran"
tell "SET search_path = core;"
assert_eq "Europe/Berlin|SQL, DMY|core|3" "$(ask "$show;")" "DE's own SET search_path"
assert_eq "$base" "$(mesh_psql "$fr" -c "$show")" "FR after DE's SET search_path"
assert_eq "Europe/Berlin|SQL, DMY|core|3" "$(ask "$show;")" "DE's SET search_path after FR ran"
assert_eq "3" "$(ask "SELECT count(*) FROM fct_playback_sessions;")" "DE's search_path finds core's table"
# application_name: the startup value (psql's) and then DE's own SET follow DE; FR keeps its own.
app="SELECT current_setting('application_name')"
assert_eq "psql" "$(ask "$app;")" "DE's startup application_name"
tell "SET application_name = 'de_dashboard';"
assert_eq "mesh_psql" "$(mesh_psql "$fr" -c "$app")" "FR's application_name after DE's SET"
assert_eq "de_dashboard" "$(ask "$app;")" "DE's SET application_name after FR ran"
assert_eq "mesh_psql" "$(mesh_psql "$fr" -c "$app")" "FR's, again"
assert_eq "de_dashboard" "$(ask "$app;")" "DE's SET application_name, again"
exec {DE[1]}>&-
mesh_stop
