#!/usr/bin/env bash
# The pgmesh extension on its own, at the SQL level (no pgmesh process): on a cluster of its own
# with shared_preload_libraries = pgmesh, a non-superuser "reader" that owns schema r tries every
# SQL path to change its claims or lift its limits, and each must fail while the claims, the
# rows RLS shows and the limits stay as pgmesh.apply() set them; apply() itself takes only a
# fresh message MACed for this backend. The MACs are computed here with openssl.
. "$(dirname "$0")/lib.sh"
once_without_extension "it starts its own cluster"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/pgcluster.sh
. "$ROOT/scripts/pgcluster.sh"

EXT=$TEST_DIR/ext
EXT_PG=$EXT/pg
EXT_PORT=
KEY=$EXT/pgmesh.key
MAC_SH=$EXT/mac.sh
READER_PW=$(openssl rand -hex 16)
SESSION_TIMEOUT_S=30
EXT_TRACE=${EXT_TRACE:-0} # 1: print every attack's psql output
checks=0

ext_cleanup() {
    pgcluster_stop "$EXT_PG"
}
# lib.sh's own cleanup (pgmesh processes, sanitizer check) still runs, with our exit status.
trap 'st=$?; ext_cleanup; (exit $st); _lib_cleanup' EXIT

ok() {
    checks=$((checks + 1))
    echo "ok   $*"
}

mkdir -p "$EXT"
chmod 755 "$TEST_DIR" "$EXT"
MAKEFLAGS= make -C "$ROOT/extension" > "$TEST_DIR/make.log" 2>&1 || fail "make -C extension (see make.log)"
MAKEFLAGS= make -C "$ROOT/extension" install >> "$TEST_DIR/make.log" 2>&1 ||
    fail "make -C extension install (as root; see make.log)"

(umask 077 && openssl rand -hex 32 > "$KEY")
chown postgres "$KEY"
pgcluster_start_free "$EXT_PG" "" shared_preload_libraries=pgmesh "pgmesh.key_file=$KEY" \
    pgmesh.pinned_settings=hash_mem_multiplier,max_parallel_workers_per_gather ||
    fail "could not start PostgreSQL with the extension"
EXT_PORT=$PGCLUSTER_PORT

su_psql() {
    PGCONNECT_TIMEOUT=10 timeout -k 5 "$SESSION_TIMEOUT_S" psql -X -q -A -t \
        -h "$(pgcluster_socket_dir "$EXT_PG")" -p "$EXT_PORT" -U postgres -d postgres "$@"
}

# As reader over TCP; errors go to stdout too, with their SQLSTATE, and do not stop the script
# (psql's status says only whether the last command failed): every caller asserts on the output.
reader_psql() {
    PGPASSWORD=$READER_PW timeout -k 5 "$SESSION_TIMEOUT_S" psql -X -A -t -q \
        -v VERBOSITY=verbose "host=127.0.0.1 port=$EXT_PORT user=reader dbname=postgres" "$@" 2>&1 ||
        true
}

# HMAC-SHA256 over "pgmesh-v1" and, for the nonce in $PGMESH_NONCE, the counter and each line of
# FIELDS_FILE (name, value, name, value, ...), each as <byte length>:<bytes>. psql runs it from
# a backtick with the nonce it read from the same backend.
cat > "$MAC_SH" <<'EOF'
#!/usr/bin/env bash
# mac.sh COUNTER FIELDS_FILE
set -euo pipefail
export LC_ALL=C
fields=("$PGMESH_NONCE" "$1")
while IFS= read -r line; do fields+=("$line"); done < "$2"
{ printf 'pgmesh-v1'; for f in "${fields[@]}"; do printf '%d:%s' "${#f}" "$f"; done; } |
    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(tr -d ' \n' < "$PGMESH_KEY")" |
    awk '{print $NF}'
EOF
chmod 755 "$MAC_SH"
export PGMESH_KEY=$KEY

# fields FILE NAME VALUE ...: one field per line (values in these tests have no newline).
fields() {
    local file=$1
    shift
    printf '%s\n' "$@" > "$file"
}

# apply_sql COUNTER MAC_FIELDS [ARRAY_FIELDS]: psql lines that read this backend's nonce, MAC
# MAC_FIELDS with it and call apply() (or $CALL_FN) with the array from ARRAY_FIELDS (default: the
# same).
apply_sql() {
    printf '%s\n' 'SELECT pgmesh.nonce() AS nonce \gset' '\setenv PGMESH_NONCE :nonce' \
        "\\set mac \`$MAC_SH $1 $2\`" "SELECT pgmesh.${CALL_FN:-apply}($1, $(array_sql "${3:-$2}"), :'mac');"
}

# array_sql FIELDS_FILE: the lines as an SQL text[] literal.
array_sql() {
    local arr="" line q="'"
    while IFS= read -r line; do arr+="${arr:+, }'${line//$q/$q$q}'"; done < "$1"
    printf 'ARRAY[%s]::text[]' "$arr"
}

STATE_SQL="SELECT 'state:' || concat_ws('/', current_setting('request.jwt.claim.tenant', true),
    current_setting('request.jwt.claim.role', true), (SELECT count(*) FROM d.rows),
    current_setting('work_mem'), current_setting('statement_timeout'),
    current_setting('hash_mem_multiplier'));"
APPLIED=$EXT/applied.fields
fields "$APPLIED" request.jwt.claim.tenant DE request.jwt.claim.role analyst \
    request.jwt.claims '{"tenant": "DE", "role": "analyst"}' \
    statement_timeout 30s work_mem 64MB hash_mem_multiplier 2
# What a reader session shows right after apply(): DE's 3 rows of 8, the limits pgmesh set.
APPLIED_STATE="state:DE/analyst/3/64MB/30s/2"

# session SQL: one backend as reader: apply(1, APPLIED), then SQL, then the state line.
session() {
    { apply_sql 1 "$APPLIED"; printf '%s\n' "$1" "$STATE_SQL"; } | reader_psql -f -
}

# attack WHAT SQL: SQL fails with 42501 and changes neither claims, visible rows nor limits.
attack() {
    local out
    out=$(session "$2")
    [ "$EXT_TRACE" = 1 ] && printf '%s\n' "--- $1" "$out"
    assert_contains "$out" "ERROR:  42501" "$1: SQLSTATE"
    assert_contains "$out" "$APPLIED_STATE" "$1: claims, rows and limits afterwards"
    ok "$1"
}

# allowed WHAT SQL STATE: SQL runs without error and leaves STATE.
allowed() {
    local out
    out=$(session "$2")
    assert_not_contains "$out" "ERROR" "$1"
    assert_contains "$out" "$3" "$1: state afterwards"
    ok "$1"
}

# --- setup: the reader, its schema, a table with RLS on the tenant claim ---
su_psql -v ON_ERROR_STOP=1 -v pw="$READER_PW" > "$TEST_DIR/setup.log" 2>&1 <<'EOF' ||
CREATE EXTENSION pgmesh;
CREATE ROLE reader LOGIN PASSWORD :'pw';
CREATE SCHEMA r AUTHORIZATION reader;
GRANT USAGE ON LANGUAGE plpgsql TO reader;
CREATE SCHEMA d;
GRANT USAGE ON SCHEMA d TO reader;
CREATE TABLE d.rows (tenant text NOT NULL, n int NOT NULL);
INSERT INTO d.rows SELECT 'DE', g FROM generate_series(1, 3) g;
INSERT INTO d.rows SELECT 'FR', g FROM generate_series(1, 5) g;
ALTER TABLE d.rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_tenant ON d.rows FOR SELECT
    USING (tenant = current_setting('request.jwt.claim.tenant', true));
GRANT SELECT ON d.rows TO reader;
-- A reader cannot even create a function with a SET clause on a claim; a superuser can.
CREATE FUNCTION d.claim_set_clause() RETURNS text LANGUAGE sql
    SET request.jwt.claim.tenant = 'FR' AS $$ SELECT current_setting('request.jwt.claim.tenant') $$;
GRANT EXECUTE ON FUNCTION d.claim_set_clause() TO reader;
EOF
    { cat "$TEST_DIR/setup.log"; fail "setup as superuser"; }

PGPASSWORD=$READER_PW timeout -k 5 "$SESSION_TIMEOUT_S" psql -X -q -v ON_ERROR_STOP=1 \
    "host=127.0.0.1 port=$EXT_PORT user=reader dbname=postgres" > "$TEST_DIR/reader_setup.log" 2>&1 <<'EOF' ||
CREATE FUNCTION r.claim_sql() RETURNS text LANGUAGE sql
    AS $$ SET request.jwt.claim.tenant = 'FR'; SELECT 'x' $$;
CREATE FUNCTION r.claim_exec() RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN EXECUTE 'SET request.jwt.claim.tenant = ''FR'''; END $$;
CREATE FUNCTION r.claim_exec_set_config() RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN EXECUTE 'SELECT set_config(''request.jwt.claim.role'', ''global_corporate_audit'', false)'; END $$;
CREATE PROCEDURE r.claim_proc() LANGUAGE plpgsql
    AS $$ BEGIN SET request.jwt.claim.tenant = 'FR'; END $$;
CREATE VIEW r.claim_view AS SELECT set_config('request.jwt.claim.tenant', 'FR', false) AS c;
CREATE TABLE r.ruled (a int);
CREATE RULE sneak AS ON INSERT TO r.ruled
    DO ALSO SELECT set_config('request.jwt.claim.tenant', 'FR', false);
CREATE TABLE r.defaulted (a text DEFAULT set_config('request.jwt.claim.tenant', 'FR', false));
CREATE AGGREGATE r.claim_agg(text, boolean)
    (SFUNC = set_config, STYPE = text, INITCOND = 'request.jwt.claim.tenant');
CREATE FUNCTION r.wm_set_clause() RETURNS text LANGUAGE sql
    SET work_mem = '1GB' AS $$ SELECT current_setting('work_mem') $$;
CREATE FUNCTION r.wm_low_set_clause() RETURNS text LANGUAGE sql
    SET work_mem = '1MB' AS $$ SELECT current_setting('work_mem') $$;
CREATE FUNCTION r.wm_sql() RETURNS text LANGUAGE sql
    AS $$ SET work_mem = '1GB'; SELECT current_setting('work_mem') $$;
CREATE FUNCTION r.wm_sql_reset() RETURNS text LANGUAGE sql
    AS $$ RESET work_mem; SELECT current_setting('work_mem') $$;
CREATE FUNCTION r.st_exec() RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN EXECUTE 'SET statement_timeout = 0'; END $$;
CREATE PROCEDURE r.wm_proc() LANGUAGE plpgsql
    AS $$ BEGIN SET work_mem = '1GB'; END $$;
CREATE FUNCTION r.hm_set_clause() RETURNS text LANGUAGE sql
    SET hash_mem_multiplier = 1000 AS $$ SELECT current_setting('hash_mem_multiplier') $$;
CREATE VIEW r.wm_view AS SELECT set_config('work_mem', '1GB', false) AS c;
EOF
    { cat "$TEST_DIR/reader_setup.log"; fail "setup as reader"; }
ok "setup: reader owns schema r, RLS on d.rows by request.jwt.claim.tenant"

# --- apply(): the claims arrive only with a fresh, authentic message for this backend ---
out=$(reader_psql -c "$STATE_SQL")
assert_contains "$out" "state://0/4MB/0/2" "before apply(): no claims, no rows"
out=$(session "SELECT current_setting('request.jwt.claims');")
assert_contains "$out" "$APPLIED_STATE" "apply() sets claims and limits"
assert_contains "$out" '{"tenant": "DE", "role": "analyst"}' "apply() sets request.jwt.claims"
assert_not_contains "$out" "ERROR" "apply()"
ok "apply() with a MAC made for this backend sets the claims and limits"

# refused WHAT PATTERN: the session on stdin ends at a FATAL matching PATTERN (a failed apply()
# ends its backend, so the statements behind it never run with the claims it had), and a fresh
# backend has no claims.
refused() {
    local out
    out=$({ cat; echo "$STATE_SQL"; } | reader_psql -f -)
    [ "$EXT_TRACE" = 1 ] && printf '%s\n' "--- $1" "$out"
    assert_contains "$out" "FATAL:  $2" "$1"
    assert_contains "$out" "connection to server was lost" "$1: the backend ends"
    assert_not_contains "$out" "state:" "$1: nothing runs after it"
}

apply_sql 1 "$APPLIED" | { cat; echo "SELECT pgmesh.apply(1, $(array_sql "$APPLIED"), :'mac');"; } |
    refused "replay" "42501: pgmesh: claims message replayed or out of order"
ok "the same message again on the same backend (replay) ends the backend with 42501"

fields "$EXT/fr.fields" request.jwt.claim.tenant FR request.jwt.claim.role analyst \
    request.jwt.claims '{"tenant": "DE", "role": "analyst"}' \
    statement_timeout 30s work_mem 64MB hash_mem_multiplier 2
apply_sql 1 "$APPLIED" "$EXT/fr.fields" | refused "tampered value" "42501: pgmesh: claims message is not authentic"
ok "a message with a tampered value ends the backend with 42501"

for pair in "5 3" "5 5" "0" "-1"; do
    set -- $pair
    { for n in "$@"; do apply_sql "$n" "$APPLIED"; done; } |
        refused "counter $pair" "42501: pgmesh: claims message replayed or out of order"
done
ok "counters start above 0, and a lower or equal counter ends the backend"

nonce_a=$(reader_psql -c "SELECT pgmesh.nonce(), pgmesh.nonce() = pgmesh.nonce()")
assert_contains "$nonce_a" "|t" "nonce is stable within a backend"
nonce_a=${nonce_a%%|*}
[[ $nonce_a =~ ^[0-9a-f]{32}$ ]] || fail "nonce is not 32 lowercase hex digits: $nonce_a"
nonce_b=$(reader_psql -c "SELECT pgmesh.nonce()")
[ "$nonce_a" != "$nonce_b" ] || fail "two backends have the same nonce $nonce_a"
mac_a=$(PGMESH_NONCE=$nonce_a "$MAC_SH" 1 "$APPLIED")
echo "SELECT pgmesh.apply(1, $(array_sql "$APPLIED"), '$mac_a');" |
    refused "message for another backend" "42501: pgmesh: claims message is not authentic"
ok "nonces differ between backends; a message made for one backend is refused on another"

fields "$EXT/role.fields" role postgres
fields "$EXT/sp.fields" search_path r
apply_sql 1 "$EXT/role.fields" | refused "apply() naming role" '42501: pgmesh: "role" is not a setting'
apply_sql 1 "$EXT/sp.fields" | refused "apply() naming search_path" '42501: pgmesh: "search_path" is not a setting'

ok "an authentic message naming role or search_path ends the backend with 42501"

for args in "1, ARRAY['work_mem'], repeat('0', 64)" "1, ARRAY['work_mem', NULL], repeat('0', 64)" \
    "1, ARRAY[['work_mem', '1GB']], repeat('0', 64)" "NULL, ARRAY['work_mem', '1GB'], repeat('0', 64)"; do
    echo "SELECT pgmesh.apply($args);" | refused "apply($args)" "22023"
done
for args in "1, ARRAY['work_mem', '1GB'], NULL" "1, ARRAY['work_mem', '1GB'], 'zz'"; do
    echo "SELECT pgmesh.apply($args);" | refused "apply($args)" "42501: pgmesh: claims message is not authentic"
done
ok "odd, NULL-holding, two-dimensional or NULL arguments end the backend with 22023; a missing MAC 42501"

: > "$EXT/none.fields"
out=$({ apply_sql 1 "$APPLIED"; apply_sql 2 "$EXT/none.fields"; echo "$STATE_SQL"; } | reader_psql -f -)
# The server's defaults (work_mem 4MB, statement_timeout 0, hash_mem_multiplier 2), unbounded: the
# next apply() names the next client's limits, and a role without one runs as without pgmesh.
assert_contains "$out" "state://0/4MB/0/2" "apply() naming no setting"
assert_not_contains "$out" "ERROR" "apply() naming no setting"
out=$({ apply_sql 1 "$APPLIED"; apply_sql 2 "$EXT/none.fields"; echo "SET work_mem = '1GB';"
        echo "SELECT set_config('statement_timeout', '0', false);"; echo "$STATE_SQL"; } | reader_psql -f -)
assert_contains "$out" "state://0/1GB/0/2" "limits after apply() naming no setting"
assert_not_contains "$out" "ERROR" "limits after apply() naming no setting"
ok "an authentic apply() naming no setting clears every claim and every limit (pgmesh's reset): back at the server's defaults, no ceiling"

# --- switch(): apply() for a connection passing to another tenant's client, after a scrub ---
# What a DE session leaves behind, each of which the FR client must not find.
LEAVE_SQL="SET search_path = r, public; CREATE TEMP TABLE left_behind (x int);
SELECT pg_advisory_lock(77); LISTEN left_chan; SELECT nextval('r.seq');
BEGIN; DECLARE held CURSOR WITH HOLD FOR SELECT 1; COMMIT;"
LEFT_SQL="SELECT 'left:' || concat_ws('/', current_setting('search_path'),
    (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()),
    (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
    (SELECT count(*) FROM pg_listening_channels()), (SELECT count(*) FROM pg_cursors),
    current_setting('application_name'));"
su_psql -c "CREATE SEQUENCE r.seq; GRANT USAGE, SELECT ON SEQUENCE r.seq TO reader" > /dev/null
fields "$EXT/fr-switch.fields" request.jwt.claim.tenant FR request.jwt.claim.role analyst \
    statement_timeout 20s work_mem 32MB application_name fr-app
out=$({ apply_sql 1 "$APPLIED"; echo "$LEAVE_SQL"; echo "$LEFT_SQL"
        CALL_FN=switch apply_sql 2 "$EXT/fr-switch.fields"; echo "$LEFT_SQL"; echo "$STATE_SQL"
        echo "SELECT currval('r.seq');"; } | reader_psql -f -)
[ "$EXT_TRACE" = 1 ] && printf '%s\n' "--- switch" "$out"
assert_contains "$out" 'left:r, public/1/1/1/1/' "what the DE session leaves, before switch()"
assert_contains "$out" 'left:"$user", public/0/0/0/0/fr-app' "after switch(): nothing left, application_name set"
assert_contains "$out" "state:FR/analyst/" "switch() sets the FR claims"
assert_contains "$out" "/32MB/20s/" "switch() sets the FR limits"
assert_contains "$out" "55000: currval of sequence" "sequence state after switch()"
assert_not_contains "$out" "FATAL" "switch()"
ok "switch() scrubs settings, temporary tables, advisory locks, LISTEN, sequence state and WITH HOLD cursors, then sets the claims, limits and application_name"

fields "$EXT/app.fields" request.jwt.claim.tenant DE application_name x
apply_sql 1 "$EXT/app.fields" | refused "apply() naming application_name" '42501: pgmesh: "application_name" is not a setting'
CALL_FN=switch apply_sql 1 "$EXT/sp.fields" | refused "switch() naming search_path" '42501: pgmesh: "search_path" is not a setting'
{ apply_sql 1 "$APPLIED"; echo "$LEAVE_SQL"; echo "SELECT pgmesh.switch(2, $(array_sql "$EXT/fr-switch.fields"), repeat('0', 64));"; } |
    refused "forged switch()" "42501: pgmesh: claims message is not authentic"
ok "apply() does not take application_name; switch() takes no other setting, and a forged switch() ends the backend"

out=$(reader_psql -c "SHOW pgmesh.key_file" -c "SELECT current_setting('pgmesh.key_file')" \
    -c "SELECT setting FROM pg_settings WHERE name = 'pgmesh.key_file'")
assert_eq 2 "$(grep -c '42501' <<< "$out")" "reader reads pgmesh.key_file"
assert_not_contains "$out" "$KEY" "key file path"
ok "a reader cannot see pgmesh.key_file"

# --- every SQL path to a claim, at every depth ---
claim_forms=""
for c in request.jwt.claim.tenant request.jwt.claim.role request.jwt.claims; do
    claim_forms+="SET $c = 'FR';
BEGIN; SET LOCAL $c = 'FR'; ROLLBACK;
RESET $c;
SELECT set_config('$c', 'FR', false);
"
done
out=$(session "$claim_forms")
assert_eq 12 "$(grep -c 'ERROR:  42501: permission denied to set parameter' <<< "$out")" \
    "SET/SET LOCAL/RESET/set_config of the three claims"
assert_contains "$out" "$APPLIED_STATE" "after SET/RESET/set_config of the claims"
ok "SET, SET LOCAL, RESET and set_config of each claim fail 42501"

attack "SQL function running SET" "SELECT r.claim_sql();"
attack "plpgsql function running EXECUTE 'SET ...'" "SELECT r.claim_exec();"
attack "plpgsql EXECUTE of set_config on the role claim" "SELECT r.claim_exec_set_config();"
attack "procedure via CALL" "CALL r.claim_proc();"
attack "DO block with SET" "DO \$\$ BEGIN SET request.jwt.claim.tenant = 'FR'; END \$\$;"
attack "DO block with set_config" \
    "DO \$\$ BEGIN PERFORM set_config('request.jwt.claim.tenant', 'FR', false); END \$\$;"
attack "view calling set_config" "SELECT * FROM r.claim_view;"
attack "rule calling set_config" "INSERT INTO r.ruled VALUES (1);"
attack "column default calling set_config" "INSERT INTO r.defaulted DEFAULT VALUES;"
attack "aggregate with set_config as state function" "SELECT r.claim_agg('FR', false);"
attack "UPDATE pg_settings" \
    "UPDATE pg_settings SET setting = 'FR' WHERE name = 'request.jwt.claim.tenant';"
attack "ALTER ROLE reader SET" "ALTER ROLE reader SET request.jwt.claim.tenant = 'FR';"
attack "ALTER ROLE reader SET (role claim)" \
    "ALTER ROLE reader SET request.jwt.claim.role = 'global_corporate_audit';"
attack "function SET clause (made by reader)" "CREATE FUNCTION r.claim_set_clause() RETURNS text
    LANGUAGE sql SET request.jwt.claim.tenant = 'FR' AS \$\$ SELECT 'x' \$\$;"
attack "function SET clause (made by a superuser, called by reader)" "SELECT d.claim_set_clause();"
attack "COPY of set_config" "COPY (SELECT set_config('request.jwt.claim.tenant', 'FR', false)) TO STDOUT;"
attack "EXPLAIN ANALYZE of set_config" \
    "EXPLAIN ANALYZE SELECT set_config('request.jwt.claim.tenant', 'FR', false);"
attack "query_to_xml running set_config" \
    "SELECT query_to_xml('SELECT set_config(''request.jwt.claim.tenant'', ''FR'', false)', false, false, '');"
attack "set_config inside an explicit transaction" \
    "BEGIN; SELECT set_config('request.jwt.claim.tenant', 'FR', true); COMMIT;"
out=$(session "DO \$\$ BEGIN PERFORM set_config('request.jwt.claim.tenant', 'FR', false);
    EXCEPTION WHEN others THEN NULL; END \$\$;")
assert_contains "$out" "$APPLIED_STATE" "set_config with the error swallowed"
ok "set_config with the error swallowed by an EXCEPTION block changes nothing"
out=$(session "RESET ALL; DISCARD ALL;")
assert_contains "$out" "$APPLIED_STATE" "RESET ALL and DISCARD ALL"
ok "RESET ALL and DISCARD ALL keep the claims"
out=$(session "SET force_parallel_mode = on; SET parallel_setup_cost = 0;
    EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM d.rows;
    SELECT 'parallel:' || count(*) FROM d.rows;")
assert_contains "$out" "Workers Launched: 1" "parallel plan"
assert_contains "$out" "parallel:3" "parallel workers see the claims"
assert_not_contains "$out" "ERROR" "parallel query"
ok "parallel workers see the claims, and the limits do not refuse them"
attack "pgmesh.clear() (superusers only: it would empty the claims the next client finds here)" \
    "SELECT pgmesh.clear();"

# --- limits pgmesh set: only a top-level SET at or below them ---
allowed "top-level SET work_mem below the ceiling" "SET work_mem = '32MB';" \
    "state:DE/analyst/3/32MB/30s/2"
allowed "top-level SET statement_timeout below the ceiling" "SET statement_timeout = '10s';" \
    "state:DE/analyst/3/64MB/10s/2"
allowed "top-level SET LOCAL work_mem below the ceiling" \
    "BEGIN; SET LOCAL work_mem = '16MB'; SELECT 'local:' || current_setting('work_mem'); COMMIT;" \
    "local:16MB"
allowed "top-level RESET work_mem to a default below the ceiling" "RESET work_mem;" \
    "state:DE/analyst/3/4MB/30s/2"
attack "top-level SET work_mem above the ceiling" "SET work_mem = '1GB';"
attack "top-level SET statement_timeout = 0 (no limit)" "SET statement_timeout = 0;"
attack "top-level SET statement_timeout above the ceiling" "SET statement_timeout = '1h';"
attack "set_config of work_mem above the ceiling" "SELECT set_config('work_mem', '1GB', false);"
attack "set_config of work_mem even below the ceiling" "SELECT set_config('work_mem', '1MB', false);"
attack "view calling set_config of work_mem" "SELECT * FROM r.wm_view;"
attack "UPDATE pg_settings of statement_timeout" \
    "UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout';"
attack "function with SET work_mem = 1GB" "SELECT r.wm_set_clause();"
attack "function with SET work_mem = 1MB" "SELECT r.wm_low_set_clause();"
attack "SQL function body running SET work_mem" "SELECT r.wm_sql();"
attack "SQL function body running RESET work_mem" "SELECT r.wm_sql_reset();"
attack "plpgsql EXECUTE 'SET statement_timeout = 0'" "SELECT r.st_exec();"
attack "procedure running SET work_mem" "CALL r.wm_proc();"
attack "DO block with SET work_mem" "DO \$\$ BEGIN SET work_mem = '1GB'; END \$\$;"
attack "DO block with RESET ALL" "DO \$\$ BEGIN RESET ALL; END \$\$;"
allowed "RESET ALL puts the limits back to their ceilings" \
    "SET work_mem = '1MB'; SET statement_timeout = '1s'; SET hash_mem_multiplier = 1; RESET ALL;" \
    "$APPLIED_STATE"
allowed "DISCARD ALL puts the limits back to their ceilings" \
    "SET work_mem = '1MB'; SET statement_timeout = '1s'; DISCARD ALL;" "$APPLIED_STATE"
allowed "RESET ALL inside a transaction" "BEGIN; SET LOCAL work_mem = '1MB'; RESET ALL; COMMIT;" \
    "$APPLIED_STATE"
allowed "pinned hash_mem_multiplier: top-level SET below the ceiling" \
    "SET hash_mem_multiplier = 1.5;" "state:DE/analyst/3/64MB/30s/1.5"
attack "pinned hash_mem_multiplier: top-level SET above the ceiling" "SET hash_mem_multiplier = 1000;"
attack "pinned hash_mem_multiplier: set_config" \
    "SELECT set_config('hash_mem_multiplier', '1000', false);"
attack "pinned hash_mem_multiplier: function SET clause" "SELECT r.hm_set_clause();"
attack "pinned hash_mem_multiplier: DO block" "DO \$\$ BEGIN SET hash_mem_multiplier = 1000; END \$\$;"

out=$(reader_psql -c "SET work_mem = '1GB'" -c "SELECT set_config('statement_timeout', '0', false)" \
    -c "SELECT r.wm_set_clause()" -c "$STATE_SQL")
assert_not_contains "$out" "ERROR" "before any ceiling"
assert_contains "$out" "state://0/1GB/0/2" "before any ceiling"
ok "before apply() sets a ceiling nothing is refused"

# --- a missing key file: 55000 naming pgmesh.key_file, and never the key ---
su_psql -c "ALTER SYSTEM SET pgmesh.key_file = '$EXT/missing.key'" -c "SELECT pg_reload_conf()" > /dev/null
for _ in $(seq 1 50); do
    [ "$(su_psql -c 'SHOW pgmesh.key_file')" = "$EXT/missing.key" ] && break
    sleep 0.2
done
out=$({ apply_sql 1 "$APPLIED"; echo "$STATE_SQL"; } | reader_psql -f -)
su_psql -c "ALTER SYSTEM RESET pgmesh.key_file" -c "SELECT pg_reload_conf()" > /dev/null
assert_contains "$out" "FATAL:  55000: pgmesh: could not open the shared key file" "missing key file"
assert_contains "$out" "pgmesh.key_file" "missing key file: hint"
assert_not_contains "$out" "$EXT/missing.key" "missing key file: path shown to the reader"
assert_not_contains "$out" "state:" "missing key file: nothing runs after it"
ok "no readable key file: 55000 with a hint naming pgmesh.key_file"

all_logs=$(cat "$EXT_PG/postgres.log" "$TEST_DIR"/*.log)
assert_not_contains "$all_logs" "$(tr -d ' \n' < "$KEY")" "the key in a log"
ok "the key appears in no log"

echo "ok: $checks checks"
