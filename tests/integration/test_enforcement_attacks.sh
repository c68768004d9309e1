#!/usr/bin/env bash
# The SQL attacks of issue 10 through pgmesh, with the pgmesh extension in the server (the suite's
# run with PGMESH_EXTENSION=1). The attacker is a tenant-DE reader (token role regional_analyst,
# server role marketing_domain_role, which owns schema marketing as a data mesh domain's role does:
# demo/mesh.sql) and may use plpgsql (granted here, to show the extension alone holds). Each class
# below tries to set the tenant or role claim, or lift statement_timeout or work_mem:
#   SQL function and procedure (CALL) bodies running SET or set_config; a view, a rule, a column
#   default and an aggregate (set_config as its state function) that run them for the reader's
#   SELECT or INSERT; DO blocks with SET and PERFORM set_config; EXECUTE 'SET ...' in plpgsql;
#   UPDATE pg_settings through a view over it; ALTER ROLE [IN DATABASE] ... SET; function SET
#   clauses.
# Where pgmesh's guard refuses the text (the table says "guard"), the same thing also reaches the
# server another way, through EXECUTE in plpgsql or a function built with format() ("server").
# Every attempt runs in simple protocol (psql) inside an explicit transaction and in extended
# protocol (psycopg 3, attack_sql.py) inside a transaction and in autocommit, in both pool modes,
# through a pool of one: attacker and victim share one server connection. After each: 42501 with
# the message of the layer named, and on the same connection the claims are DE/regional_analyst,
# the reader counts exactly DE's rows, the limits are 30s/128MB; a tenant-FR victim of the same role
# reads its own. FunctionCall messages and replayed pgmesh.apply(): test_enforcement_wire.sh.
. "$(dirname "$0")/lib.sh"
if [ -z "${SERVER_KEY_FILE:-}" ]; then
    echo "skipped: needs the pgmesh extension in the suite's cluster (make integration-ext)"
    exit 77
fi
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"

# Everything the test makes is called marketing.atk_*; the superuser drops it however the test
# ends, with the plpgsql grant and any claim default an attack might have left on the role.
cleanup_attacks() {
    pg_psql <<'EOF'
DO $$ DECLARE o record; BEGIN
    FOR o IN SELECT p.oid::regprocedure AS f, p.prokind FROM pg_proc p
             WHERE p.pronamespace = 'marketing'::regnamespace AND p.proname LIKE 'atk\_%' LOOP
        EXECUTE format('DROP %s IF EXISTS %s CASCADE',
            CASE o.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, o.f);
    END LOOP;
    FOR o IN SELECT c.oid::regclass AS t, c.relkind FROM pg_class c
             WHERE c.relnamespace = 'marketing'::regnamespace AND c.relname LIKE 'atk\_%'
               AND c.relkind IN ('r', 'v') LOOP
        EXECUTE format('DROP %s IF EXISTS %s CASCADE', CASE o.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, o.t);
    END LOOP;
END $$;
REVOKE USAGE ON LANGUAGE plpgsql FROM marketing_domain_role;
ALTER ROLE marketing_domain_role RESET "request.jwt.claim.tenant";
ALTER ROLE marketing_domain_role RESET "request.jwt.claim.role";
ALTER ROLE marketing_domain_role IN DATABASE media_analytics RESET "request.jwt.claim.tenant";
EOF
}
lib_at_exit cleanup_attacks

count() { pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions WHERE country_code = '$1'"; }
de_rows=$(count DE)
fr_rows=$(count FR)
all_rows=$(pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions")
[ "$de_rows" -gt 0 ] && [ "$de_rows" -lt "$all_rows" ] && [ "$fr_rows" != "$de_rows" ] ||
    fail "the sample mesh must give DE some rows, fewer than all, and not as many as FR"

mesh_config
ini_set pgmesh default_pool_size 1
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)

# What a session reads after an attack: claims, visible rows, limits; and its server connection.
STATE_SQL="SELECT concat_ws('|', current_setting('request.jwt.claim.tenant'), current_setting('request.jwt.claim.role'), (SELECT count(*) FROM core.fct_playback_sessions), current_setting('statement_timeout'), current_setting('work_mem')), pg_backend_pid()::text"
WANT_DE="DE|regional_analyst|$de_rows|30s|128MB"
WANT_FR="FR|regional_analyst|$fr_rows|30s|128MB"

# The reader's tools. PUBLIC may use plpgsql in this cluster anyway; the grant says the test means it.
pg_psql -c "GRANT USAGE ON LANGUAGE plpgsql TO marketing_domain_role" \
    -c "CREATE FUNCTION marketing.atk_su_clause_tenant() RETURNS text LANGUAGE sql
            SET request.jwt.claim.tenant = 'FR' AS \$\$ SELECT current_setting('request.jwt.claim.tenant') \$\$" \
    -c "GRANT EXECUTE ON FUNCTION marketing.atk_su_clause_tenant() TO marketing_domain_role"
# As the reader, through pgmesh. What the guard would refuse as text is made with EXECUTE.
SETUP=$(cat <<'EOF'
CREATE FUNCTION marketing.atk_sql_tenant() RETURNS text LANGUAGE sql
    AS $$ SET request.jwt.claim.tenant = 'FR'; SELECT current_setting('request.jwt.claim.tenant') $$;
CREATE FUNCTION marketing.atk_sql_role() RETURNS text LANGUAGE sql
    AS $$ SET request.jwt.claim.role = 'global_corporate_audit'; SELECT 'x' $$;
CREATE FUNCTION marketing.atk_sql_set_config() RETURNS text LANGUAGE sql
    AS $$ SELECT set_config('request.jwt.claim.tenant', 'FR', false) $$;
CREATE FUNCTION marketing.atk_sql_timeout() RETURNS text LANGUAGE sql
    AS $$ SET statement_timeout = 0; SELECT 'x' $$;
CREATE FUNCTION marketing.atk_sql_work_mem() RETURNS text LANGUAGE sql
    AS $$ SELECT set_config('work_mem', '4GB', false) $$;
CREATE PROCEDURE marketing.atk_proc_tenant() LANGUAGE sql AS $$ SET request.jwt.claim.tenant = 'FR' $$;
CREATE PROCEDURE marketing.atk_proc_limits() LANGUAGE sql
    AS $$ SET work_mem = '4GB'; SET statement_timeout = 0 $$;
CREATE VIEW marketing.atk_view_tenant AS SELECT marketing.atk_sql_tenant() AS t;
CREATE VIEW marketing.atk_view_limits AS SELECT marketing.atk_sql_timeout() AS t;
CREATE TABLE marketing.atk_ruled (a int);
DO $$ BEGIN EXECUTE 'CREATE RULE atk_rule AS ON INSERT TO marketing.atk_ruled
    DO ALSO SELECT set_config(''request.jwt.claim.tenant'', ''FR'', false)'; END $$;
CREATE TABLE marketing.atk_defaulted (a text DEFAULT marketing.atk_sql_tenant());
CREATE AGGREGATE marketing.atk_agg_tenant(text, boolean)
    (SFUNC = set_config, STYPE = text, INITCOND = 'request.jwt.claim.tenant');
CREATE AGGREGATE marketing.atk_agg_timeout(text, boolean)
    (SFUNC = set_config, STYPE = text, INITCOND = 'statement_timeout');
CREATE FUNCTION marketing.atk_exec_tenant() RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN EXECUTE 'SET request.jwt.claim.tenant = ''FR'''; END $$;
CREATE FUNCTION marketing.atk_exec_limits() RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN EXECUTE 'SET work_mem = ''4GB'''; EXECUTE 'SET statement_timeout = 0'; END $$;
CREATE FUNCTION marketing.atk_alter_role() RETURNS void LANGUAGE plpgsql AS $$ BEGIN
    EXECUTE format('ALTER ROLE %I SET %s = %L', current_user, 'request.jwt.claim.role', 'global_corporate_audit');
END $$;
CREATE VIEW marketing.atk_settings AS SELECT * FROM pg_settings;
-- Without check_function_bodies PostgreSQL does not apply a new function's SET clause to check
-- its body, so these exist, and the extension's refusal comes when they are called.
DO $$ BEGIN
    SET LOCAL check_function_bodies = off;
    EXECUTE 'CREATE FUNCTION marketing.atk_clause_timeout() RETURNS text LANGUAGE sql
        SET statement_timeout = 0 AS ''SELECT current_setting(''''statement_timeout'''')''';
    EXECUTE 'CREATE FUNCTION marketing.atk_clause_work_mem() RETURNS text LANGUAGE sql
        SET work_mem = ''4GB'' AS ''SELECT current_setting(''''work_mem'''')''';
END $$;
EOF
)
mesh_start
mesh_psql "$de" -c "$SETUP" > "$TEST_DIR/setup.log" 2>&1 || { cat "$TEST_DIR/setup.log"; fail "setup as the reader"; }
mesh_stop

# name TAB layer TAB SQL: "guard" = pgmesh refuses the text (42501 "... is managed by pgmesh"),
# "server" = PostgreSQL (claims) or the extension (limits) refuses it (42501).
ATTACKS=$TEST_DIR/attacks.tsv
cat > "$ATTACKS" <<'EOF'
SQL function: SET tenant claim	server	SELECT marketing.atk_sql_tenant()
SQL function: SET role claim	server	SELECT marketing.atk_sql_role()
SQL function: set_config of the tenant claim	server	SELECT marketing.atk_sql_set_config()
SQL function: SET statement_timeout = 0	server	SELECT marketing.atk_sql_timeout()
SQL function: set_config of work_mem = 4GB	server	SELECT marketing.atk_sql_work_mem()
procedure (CALL): SET tenant claim	server	CALL marketing.atk_proc_tenant()
procedure (CALL): SET work_mem, statement_timeout	server	CALL marketing.atk_proc_limits()
view calling a function that SETs the tenant claim	server	SELECT * FROM marketing.atk_view_tenant
view calling a function that lifts statement_timeout	server	SELECT * FROM marketing.atk_view_limits
rule with set_config, as text	guard	CREATE RULE atk_rule_text AS ON INSERT TO marketing.atk_ruled DO ALSO SELECT set_config('request.jwt.claim.tenant', 'FR', false)
rule with set_config (made with EXECUTE), by INSERT	server	INSERT INTO marketing.atk_ruled VALUES (1)
column default with set_config, as text	guard	CREATE TABLE marketing.atk_default_text (a text DEFAULT set_config('request.jwt.claim.tenant', 'FR', false))
column default calling a function that SETs the tenant claim, by INSERT	server	INSERT INTO marketing.atk_defaulted DEFAULT VALUES
aggregate with set_config as state function: tenant claim	server	SELECT marketing.atk_agg_tenant('FR', false)
aggregate with set_config as state function: statement_timeout	server	SELECT marketing.atk_agg_timeout('0', false)
DO block: SET tenant claim	server	DO $$ BEGIN SET request.jwt.claim.tenant = 'FR'; END $$
DO block: PERFORM set_config of the role claim	server	DO $$ BEGIN PERFORM set_config('request.jwt.claim.role', 'global_corporate_audit', false); END $$
DO block: SET statement_timeout = 0	server	DO $$ BEGIN SET statement_timeout = 0; END $$
DO block: PERFORM set_config of work_mem = 4GB	server	DO $$ BEGIN PERFORM set_config('work_mem', '4GB', false); END $$
plpgsql EXECUTE 'SET tenant claim'	server	SELECT marketing.atk_exec_tenant()
plpgsql EXECUTE 'SET work_mem', 'SET statement_timeout'	server	SELECT marketing.atk_exec_limits()
UPDATE pg_settings, as text	guard	UPDATE pg_settings SET setting = 'FR' WHERE name = 'request.jwt.claim.tenant'
UPDATE of a view over pg_settings: tenant claim	server	UPDATE marketing.atk_settings SET setting = 'FR' WHERE name = 'request.jwt.claim.tenant'
UPDATE of a view over pg_settings: statement_timeout	server	UPDATE marketing.atk_settings SET setting = '0' WHERE name = 'statement_timeout'
ALTER ROLE SET tenant claim, as text	guard	ALTER ROLE marketing_domain_role SET request.jwt.claim.tenant = 'FR'
ALTER ROLE IN DATABASE SET tenant claim, as text	guard	ALTER ROLE marketing_domain_role IN DATABASE media_analytics SET request.jwt.claim.tenant = 'FR'
ALTER ROLE SET tenant claim, with EXECUTE in a DO block	server	DO $$ BEGIN EXECUTE 'ALTER ROLE marketing_domain_role SET request.jwt.claim.tenant = ''FR'''; END $$
ALTER ROLE IN DATABASE SET tenant claim, with EXECUTE in a DO block	server	DO $$ BEGIN EXECUTE 'ALTER ROLE marketing_domain_role IN DATABASE media_analytics SET request.jwt.claim.tenant = ''FR'''; END $$
ALTER ROLE SET role claim, from a function built with format()	server	SELECT marketing.atk_alter_role()
function SET clause on the tenant claim, as text	guard	CREATE FUNCTION marketing.atk_clause_text() RETURNS text LANGUAGE sql SET request.jwt.claim.tenant = 'FR' AS $$ SELECT 'x' $$
function SET clause statement_timeout = 0, as text	guard	CREATE FUNCTION marketing.atk_clause_text() RETURNS text LANGUAGE sql SET statement_timeout = 0 AS $$ SELECT 'x' $$
function SET clause on the tenant claim, made with EXECUTE (refused when made)	server	DO $$ BEGIN EXECUTE 'CREATE FUNCTION marketing.atk_clause_exec() RETURNS text LANGUAGE sql SET request.jwt.claim.tenant = ''FR'' AS ''SELECT 1::text'''; END $$
function SET clause statement_timeout = 0, made with EXECUTE (refused when made)	server	DO $$ BEGIN EXECUTE 'CREATE FUNCTION marketing.atk_clause_exec() RETURNS text LANGUAGE sql SET statement_timeout = 0 AS ''SELECT 1::text'''; END $$
function SET clause statement_timeout = 0, called	server	SELECT marketing.atk_clause_timeout()
function SET clause work_mem = 4GB, called	server	SELECT marketing.atk_clause_work_mem()
function SET clause on the tenant claim made by a superuser, called	server	SELECT marketing.atk_su_clause_tenant()
EOF
classes=$(wc -l < "$ATTACKS")

# attack_simple MODE NAME LAYER SQL: psql sends BEGIN, the attack, the state (refused: the block is
# aborted), COMMIT and the state again, each its own Query; then the victim reads its state.
attack_simple() {
    local mode=$1 name=$2 layer=$3 sql=$4 out err pattern states pid vstate
    out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c BEGIN -c "$sql" \
        -c "$STATE_SQL" -c COMMIT -c "$STATE_SQL" 2>&1) || true
    err=$(grep -m1 -E '^(ERROR|FATAL):' <<< "$out" || true)
    case $layer in
        guard) pattern='^ERROR:  42501: .* is managed by pgmesh$' ;;
        server) pattern='^ERROR:  42501: (permission denied to set parameter|pgmesh: )' ;;
    esac
    grep -qE "$pattern" <<< "$err" || fail "$mode, simple protocol: $name: want 42501 from the $layer layer, got: $out"
    [ "$(grep -c '25P02' <<< "$out")" = 1 ] || fail "$mode, simple protocol: $name: the block went on: $out"
    states=$(grep -E '^[A-Z]{2}\|' <<< "$out" || true)
    [ "$(wc -l <<< "$states")" = 1 ] && [ "${states%|*}" = "$WANT_DE" ] ||
        fail "$mode, simple protocol: $name: state afterwards [$states], want $WANT_DE"
    pid=${states##*|}
    vstate=$(mesh_psql "$fr" -c "$STATE_SQL")
    [ "$vstate" = "$WANT_FR|$pid" ] || fail "$mode: victim after $name: [$vstate], want $WANT_FR on backend $pid"
    pids+=("$pid")
    echo "ok   $mode pooling, simple protocol, in a transaction: $name: ${err#ERROR:  }; state $WANT_DE (backend $pid)"
}

total=0
for mode in transaction session; do
    echo "== pool_mode = $mode"
    ini_set pgmesh pool_mode "$mode"
    mesh_start
    pids=()
    while IFS=$'\t' read -r name layer sql; do
        attack_simple "$mode" "$name" "$layer" "$sql"
        total=$((total + 1))
    done < "$ATTACKS"
    [ "$(printf '%s\n' "${pids[@]}" | sort -u | wc -l)" = 1 ] ||
        fail "$mode: the attempts ran on more than one server connection: ${pids[*]}"
    out=$(MESH_DSN_DE=$(mesh_dsn "$de") MESH_DSN_FR=$(mesh_dsn "$fr") ATTACKS=$ATTACKS STATE_SQL=$STATE_SQL \
        WANT_DE=$WANT_DE WANT_FR=$WANT_FR POOL_MODE=$mode "$PYTHON" "$(dirname "$0")/attack_sql.py" 2>&1) ||
        { printf '%s\n' "$out"; fail "$mode: extended protocol"; }
    printf '%s\n' "$out"
    total=$((total + $(sed -n 's/^attacks: //p' <<< "$out")))
    vstate=$(mesh_psql "$fr" -c "$STATE_SQL")
    [ "${vstate%|*}" = "$WANT_FR" ] || fail "$mode: victim after the extended protocol attacks: [$vstate]"
    mesh_stop
done

# No attack left a role or database default behind for the next server connection.
settings=$(pg_psql -c "SELECT count(*) FROM pg_db_role_setting WHERE setrole = 'marketing_domain_role'::regrole")
assert_eq 0 "$settings" "role settings of marketing_domain_role"
echo "ok: $total attacks refused ($classes attacks x (simple in a transaction + extended in a transaction and in autocommit) x 2 pool modes); claims DE/regional_analyst, $de_rows of $all_rows rows, limits 30s/128MB after each"
