/* Unit tests for policy/guard.c: a table of tampering attempts, each refused with the setting or
 * construct it names and the statement it is in; a table of look-alikes that must pass; the
 * session-pooling option; guard_is_managed_setting spellings; startup parameters and PGOPTIONS
 * strings; every entry of policy/managed.c's table in every form that sets it; and every prefix of
 * some attacks checked from an exact-size heap copy (no crash, no read past the end under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/guard.h"
#include "policy/managed.h"
#include "policy/quickplain.h"
#include "policy/quote.h"

struct refused_case {
    const char *sql;
    const char *setting;
    size_t statement_index;
};

static const struct refused_case refused_cases[] = {
    /* SET of a claim, every spelling */
    {"SET request.jwt.claim.tenant = 'FR'", "request.jwt.claim.tenant", 0},
    {"set request.jwt.claim.tenant to 'FR'", "request.jwt.claim.tenant", 0},
    {"sEt ReQuEsT.JwT.ClAiM.TeNaNt = 'FR'", "request.jwt.claim.tenant", 0},
    {"SET/**/request.jwt.claim.tenant='FR'", "request.jwt.claim.tenant", 0},
    {"SET /* a /* nested */ comment */ request . jwt . claim . tenant = 'FR'", "request.jwt.claim.tenant", 0},
    {"SET -- x\n request.jwt.claim.tenant = 'FR'", "request.jwt.claim.tenant", 0},
    {"  \n\tSET\trequest.jwt.claim.tenant\n=\n'FR'", "request.jwt.claim.tenant", 0},
    {"SET \"request.jwt.claim.tenant\" = 'FR'", "request.jwt.claim.tenant", 0},
    {"SET \"REQUEST.JWT.CLAIM.TENANT\" = 'FR'", "request.jwt.claim.tenant", 0},
    {"SET request.\"jwt\".claim.tenant = 'FR'", "request.jwt.claim.tenant", 0},
    {"SET \"request\".\"jwt\".\"claim\".\"tenant\" TO 'FR'", "request.jwt.claim.tenant", 0},
    {"SET U&\"request.jwt.claim.tenan\\0074\" = 'FR'", "request.jwt.claim.tenant", 0},
    {"SET U&\"\\0072equest.jwt.claim.role\" = 'global_corporate_audit'", "request.jwt.claim.role", 0},
    {"SET u&\"request.jwt.\\+000063laim.tenant\" = 'FR'", "request.jwt.claim.tenant", 0},
    {"SET U&\"request.jwt.claim.tenan!0074\" UESCAPE '!' = 'FR'", "undecodable setting name", 0},
    {"SET U&\"request.jwt.claim.tenan\\zz\" = 'FR'", "undecodable setting name", 0},
    {"SET SESSION request.jwt.claim.tenant = 'FR'", "request.jwt.claim.tenant", 0},
    {"SET LOCAL request.jwt.claim.role TO 'global_corporate_audit'", "request.jwt.claim.role", 0},
    {"SET request.jwt.claims = '{}'", "request.jwt.claims", 0},
    {"SET request.jwt.anything.else = 1", "request.jwt.anything.else", 0},
    {"SET request.jwt.claim.tenant TO DEFAULT", "request.jwt.claim.tenant", 0},
    /* the other managed settings */
    {"SET statement_timeout = 0", "statement_timeout", 0},
    {"SET LOCAL Statement_Timeout TO '1h'", "statement_timeout", 0},
    {"SET work_mem = '64GB'", "work_mem", 0},
    {"SET idle_in_transaction_session_timeout = 0", "idle_in_transaction_session_timeout", 0},
    {"SET standard_conforming_strings = off", "standard_conforming_strings", 0},
    {"SET standard_conforming_strings TO on", "standard_conforming_strings", 0},
    {"SET ROLE audit_role", "role", 0},
    {"set role none", "role", 0},
    {"SET LOCAL ROLE audit_role", "role", 0},
    {"SET SESSION ROLE audit_role", "role", 0},
    {"SET \"role\" = 'audit_role'", "role", 0},
    {"SET SESSION AUTHORIZATION audit_role", "session_authorization", 0},
    {"SET LOCAL SESSION AUTHORIZATION DEFAULT", "session_authorization", 0},
    {"SET session_authorization = 'audit_role'", "session_authorization", 0},
    /* client_encoding whose characters may hide a backslash from our lexer */
    {"SET client_encoding = 'SJIS'", "client_encoding", 0},
    {"SET client_encoding TO big5", "client_encoding", 0},
    {"SET NAMES 'Shift_JIS'", "client_encoding", 0},
    {"SET client_encoding = 'G' 'BK'", "client_encoding", 0},
    /* RESET */
    {"RESET request.jwt.claim.tenant", "request.jwt.claim.tenant", 0},
    {"reset \"request.jwt.claim.role\"", "request.jwt.claim.role", 0},
    {"RESET statement_timeout", "statement_timeout", 0},
    {"RESET work_mem", "work_mem", 0},
    /* guc.c still maps the old name sort_mem to work_mem */
    {"SET sort_mem = '64GB'", "sort_mem", 0},
    {"SET \"SORT_MEM\" TO 1000000", "sort_mem", 0},
    {"RESET sort_mem", "sort_mem", 0},
    {"SELECT set_config('sort_mem', '64GB', false)", "sort_mem", 0},
    {"RESET ROLE", "role", 0},
    {"RESET SESSION AUTHORIZATION", "session_authorization", 0},
    {"DISCARD ALL", "DISCARD ALL", 0},
    {"discard -- c\n all", "DISCARD ALL", 0},
    /* defaults for later sessions */
    {"ALTER ROLE marketing_domain_role SET request.jwt.claim.tenant = 'FR'", "ALTER ROLE ... SET", 0},
    {"ALTER ROLE CURRENT_USER SET search_path = x", "ALTER ROLE ... SET", 0},
    {"ALTER ROLE ALL IN DATABASE media_analytics SET work_mem = '1GB'", "ALTER ROLE ... SET", 0},
    {"ALTER ROLE marketing_domain_role RESET ALL", "ALTER ROLE ... RESET", 0},
    {"ALTER USER marketing_domain_role SET statement_timeout = 0", "ALTER USER ... SET", 0},
    {"ALTER DATABASE media_analytics SET request.jwt.claim.role = 'x'", "ALTER DATABASE ... SET", 0},
    {"ALTER DATABASE media_analytics RESET statement_timeout", "ALTER DATABASE ... RESET", 0},
    {"ALTER SYSTEM SET work_mem = '1GB'", "ALTER SYSTEM ... SET", 0},
    /* function SET clauses: the setting holds while the function runs */
    {"CREATE FUNCTION pg_temp.f() RETURNS SETOF text LANGUAGE sql "
     "SET request.jwt.claim.tenant = 'FR' AS $$SELECT 1$$",
     "request.jwt.claim.tenant", 0},
    {"CREATE OR REPLACE FUNCTION pg_temp.f(role text) RETURNS int AS 'select 1' LANGUAGE sql "
     "SET role = audit_role",
     "role", 0},
    {"ALTER FUNCTION f(int) SET \"request.jwt.claim.role\" TO 'global_corporate_audit'", "request.jwt.claim.role",
     0},
    {"ALTER ROUTINE f SET statement_timeout = 0", "statement_timeout", 0},
    /* later statements of a multi-statement string */
    {"SELECT 1; SET request.jwt.claim.tenant = 'FR'", "request.jwt.claim.tenant", 1},
    {"SELECT $$;$$; SET request.jwt.claim.tenant = 'FR'", "request.jwt.claim.tenant", 1},
    {"SELECT $tag$ $$ ; $tag$; SET ROLE audit_role", "role", 1},
    {"SELECT 'a;b'; SELECT \"x;y\" FROM t; RESET ROLE", "role", 2},
    {"SELECT 'it''s'; SELECT E'\\';'; SET work_mem = '1GB'", "work_mem", 2},
    {"BEGIN; SET LOCAL request.jwt.claim.tenant = 'FR'; SELECT 1; COMMIT", "request.jwt.claim.tenant", 1},
    {";;SET ROLE x", "role", 2},
    /* set_config: managed literal, computed name, quoted or qualified function name, nesting */
    {"SELECT set_config('request.jwt.claim.tenant', 'FR', false)", "request.jwt.claim.tenant", 0},
    {"SELECT SET_CONFIG('Request.JWT.Claim.Tenant', 'FR', true)", "request.jwt.claim.tenant", 0},
    {"SELECT pg_catalog.set_config('request.jwt.claim.role', 'global_corporate_audit', false)",
     "request.jwt.claim.role", 0},
    {"SELECT \"set_config\"('request.jwt.claim.tenant', 'FR', false)", "request.jwt.claim.tenant", 0},
    {"SELECT \"pg_catalog\".\"set_config\"('role', 'audit_role', false)", "role", 0},
    {"SELECT set_config('request.jwt.' || 'claim.tenant', 'FR', false)", "set_config", 0},
    {"SELECT set_config($1, $2, false)", "set_config", 0},
    {"SELECT set_config(name, 'FR', false) FROM t", "set_config", 0},
    {"SELECT set_config(('request.jwt.claim.tenant'), 'FR', false)", "set_config", 0},
    {"SELECT set_config('request.jwt.claim.tenant'::text, 'FR', false)", "set_config", 0},
    {"SELECT set_config(lower('STATEMENT_TIMEOUT'), '0', false)", "set_config", 0},
    {"SELECT set_config(setting_name => 'work_mem', new_value => '1GB', is_local => false)", "set_config", 0},
    {"SELECT set_config(E'request.jwt.claim.tenant', 'FR', false)", "request.jwt.claim.tenant", 0},
    {"SELECT set_config(E'request.jwt.claim.tenan\\x74', 'FR', false)", "request.jwt.claim.tenant", 0},
    {"SELECT set_config(E'\\162ole', 'audit_role', false)", "role", 0},
    {"SELECT set_config(U&'request.jwt.claim.tenan\\0074', 'FR', false)", "request.jwt.claim.tenant", 0},
    {"SELECT set_config(U&'wor!006b_mem' UESCAPE '!', '1GB', false)", "set_config", 0},
    {"SELECT set_config($$request.jwt.claim.tenant$$, 'FR', false)", "request.jwt.claim.tenant", 0},
    {"SELECT set_config($x$statement_timeout$x$, '0', false)", "statement_timeout", 0},
    {"SELECT set_config('request.jwt.'\n'claim.tenant', 'FR', false)", "request.jwt.claim.tenant", 0},
    {"SELECT set_config(B'1010', 'x', false)", "set_config", 0},
    {"SELECT set_config('work_mem', '1GB', false)", "work_mem", 0},
    {"SELECT set_config('idle_in_transaction_session_timeout', '0', false)", "idle_in_transaction_session_timeout",
     0},
    {"SELECT set_config('standard_conforming_strings', 'off', false)", "standard_conforming_strings", 0},
    {"SELECT set_config('client_encoding', 'UTF8', false)", "client_encoding", 0},
    {"SELECT set_config /* c */ ('session_authorization', 'x', false)", "session_authorization", 0},
    {"SELECT count(*) FROM (SELECT set_config('request.jwt.claim.tenant', 'FR', true)) s",
     "request.jwt.claim.tenant", 0},
    {"WITH c AS (SELECT set_config('request.jwt.claim.tenant', 'FR', true) AS x) SELECT * FROM c",
     "request.jwt.claim.tenant", 0},
    {"SELECT coalesce(nullif(set_config('search_path', set_config('role', 'a', false), false), ''))", "role", 0},
    {"SELECT * FROM t WHERE x IN (SELECT ((set_config(x, 'FR', false)))) ", "set_config", 0},
    {"EXPLAIN ANALYZE SELECT set_config('request.jwt.claim.tenant', 'FR', false)", "request.jwt.claim.tenant", 0},
    {"PREPARE p(text) AS SELECT set_config($1, 'FR', false)", "set_config", 0},
    {"SELECT 1; SELECT set_config('request.jwt.claim.tenant', 'FR', false)", "request.jwt.claim.tenant", 1},
    /* pg_settings' update rule calls set_config */
    {"UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout'", "pg_settings", 0},
    {"update ONLY pg_catalog.\"pg_settings\" set setting = '1GB' where name = 'work_mem'", "pg_settings", 0},
    {"WITH u AS (UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings' "
     "RETURNING 1) SELECT 1",
     "pg_settings", 0},
    /* text that stops lexing is still checked up to that point */
    {"SET ROLE audit_role; SELECT 'unterminated", "role", 0},
    {"SET request.jwt.claim.tenant = 'FR", "request.jwt.claim.tenant", 0},
};

static const char *const benign_cases[] = {
    "",
    "   -- only a comment",
    "SELECT 1",
    "SELECT 'SET request.jwt.claim.tenant = ''FR'''",
    "SELECT $$ SET request.jwt.claim.tenant = 'FR'; RESET ALL $$",
    "SELECT E'\\'; SET ROLE audit_role; --'",
    "SELECT \"SET role\" FROM t",
    "CREATE TABLE set_config_log (id int, set_config text)",
    "SELECT set_config_log FROM t",
    "SELECT set_config FROM set_config_log",
    "SELECT t.set_config FROM t",
    "SELECT set_config.f('request.jwt.claim.tenant')",
    "SHOW request.jwt.claim.tenant",
    "SHOW ALL",
    "SELECT current_setting('request.jwt.claim.tenant')",
    "SELECT current_setting('request.jwt.claim.tenant', true), current_setting('role')",
    "SET search_path = x",
    "SET search_path TO core, public",
    "SET LOCAL search_path = pg_catalog",
    "SET TIME ZONE 'UTC'",
    "SET SESSION TIME ZONE LOCAL",
    "SET application_name = 'x'",
    "SET client_encoding = 'UTF8'",
    "SET client_encoding TO DEFAULT",
    "SET NAMES 'LATIN1'",
    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "SET CONSTRAINTS ALL DEFERRED",
    "SET request_id = 1",
    "SET myapp.role = 'x'",
    "SET request.jwtx = 'x'",
    "RESET search_path",
    "RESET TIME ZONE",
    "RESET client_encoding",
    "DISCARD PLANS",
    "DISCARD TEMP",
    "UPDATE t SET role = 'x'",
    "UPDATE core.scratch SET note = 'SET ROLE x' WHERE id = 1",
    "INSERT INTO t (role, work_mem) VALUES ('a', 'b') ON CONFLICT (role) DO UPDATE SET role = 'x'",
    "UPDATE pg_settings_copy SET setting = '0'",
    "SELECT set_config('search_path', 'x', false)",
    "SELECT pg_catalog.set_config('application_name', 'x', true)",
    "SELECT set_config(E'search_path', 'x', false)",
    "SELECT set_config($$search_path$$, 'x', false)",
    "SELECT U&\"set\\005fconfig\"('search_path', 'x', false)",
    "-- SET role audit_role\nSELECT 1",
    "/* SET request.jwt.claim.tenant = 'FR'; RESET ALL */ SELECT 1",
    "CREATE FUNCTION pg_temp.f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
    "PERFORM set_config('request.jwt.claim.tenant', 'FR', false); EXECUTE 'SET ROLE x'; END $$",
    "DO $$ BEGIN PERFORM set_config('role', 'x', false); END $$",
    "CREATE FUNCTION f() RETURNS SETOF int LANGUAGE sql SET search_path = core AS 'SELECT 1'",
    "ALTER FUNCTION f() SET search_path = core",
    "ALTER FUNCTION f() RESET ALL",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC UPDATE t SET role = 'x'; SELECT 1; END",
    "ALTER ROLE marketing_domain_role RENAME TO m",
    "ALTER DATABASE media_analytics OWNER TO x",
    "ALTER TABLE t ALTER COLUMN role SET NOT NULL",
    "ALTER TABLE t SET (fillfactor = 70)",
    "ALTER USER MAPPING FOR x SERVER s OPTIONS (SET user 'y')",
    "SELECT 'unterminated; SET ROLE x",
    "SELECT 1 /* never closed; RESET ALL",
    "SET",
    "RESET",
    "SELECT set_config",
};

static void test_refused(void **state)
{
    (void)state;
    const struct guard_options opt = {.session_pooling = false};
    for (size_t i = 0; i < sizeof refused_cases / sizeof refused_cases[0]; i++) {
        const struct refused_case *c = &refused_cases[i];
        struct guard_finding f;
        memset(&f, 0x5A, sizeof f);
        enum guard_verdict v = guard_check_sql(c->sql, strlen(c->sql), &opt, &f);
        if (!c->setting) {
            if (v != GUARD_OK)
                fail_msg("%s: refused (%s), want OK", c->sql, f.setting);
            continue;
        }
        if (v != GUARD_REFUSED)
            fail_msg("%s: passed, want refused for %s", c->sql, c->setting);
        if (strcmp(f.setting, c->setting) != 0)
            fail_msg("%s: setting [%s], want [%s]", c->sql, f.setting, c->setting);
        if (f.statement_index != c->statement_index)
            fail_msg("%s: statement %zu, want %zu", c->sql, f.statement_index, c->statement_index);
        /* the caller may not care why */
        assert_int_equal(guard_check_sql(c->sql, strlen(c->sql), &opt, NULL), GUARD_REFUSED);
    }
}

static void test_benign(void **state)
{
    (void)state;
    const struct guard_options opt = {.session_pooling = false};
    for (size_t i = 0; i < sizeof benign_cases / sizeof benign_cases[0]; i++) {
        const char *sql = benign_cases[i];
        struct guard_finding f, untouched;
        memset(&f, 0x5A, sizeof f);
        memset(&untouched, 0x5A, sizeof untouched);
        if (guard_check_sql(sql, strlen(sql), &opt, &f) != GUARD_OK)
            fail_msg("%s: refused for [%s]", sql, f.setting);
        assert_memory_equal(&f, &untouched, sizeof f); /* not written on OK */
    }
}

static void test_options(void **state)
{
    (void)state;
    const struct guard_options session = {.session_pooling = true};
    const struct guard_options transaction = {.session_pooling = false};
    static const char discard[] = "SELECT 1; DISCARD ALL";
    struct guard_finding f;
    assert_int_equal(guard_check_sql(discard, strlen(discard), &session, &f), GUARD_OK);
    assert_int_equal(guard_check_sql(discard, strlen(discard), &transaction, &f), GUARD_REFUSED);
    assert_string_equal(f.setting, "DISCARD ALL");
    assert_int_equal(f.statement_index, 1);
    assert_int_equal(guard_check_sql(discard, strlen(discard), NULL, &f), GUARD_REFUSED);
    /* RESET ALL passes in both pool modes: pgmesh sets its settings again after it */
    static const char reset[] = "RESET ALL; reset/**/all";
    assert_int_equal(guard_check_sql(reset, strlen(reset), &session, &f), GUARD_OK);
    assert_int_equal(guard_check_sql(reset, strlen(reset), &transaction, &f), GUARD_OK);
    /* len, not the NUL, bounds the text */
    static const char cut[] = "SELECT 1; SET ROLE x";
    assert_int_equal(guard_check_sql(cut, 9, &transaction, &f), GUARD_OK);
    assert_int_equal(guard_check_sql(NULL, 0, &transaction, &f), GUARD_OK);
    /* a long name under request.jwt. keeps its prefix; the finding is cut with "..." */
    char longsql[400], xs[301];
    memset(xs, 'x', 300);
    xs[300] = '\0';
    snprintf(longsql, sizeof longsql, "SET request.jwt.%s = 1", xs);
    assert_int_equal(guard_check_sql(longsql, strlen(longsql), &transaction, &f), GUARD_REFUSED);
    assert_int_equal(strlen(f.setting), GUARD_SETTING_MAX - 1);
    assert_string_equal(f.setting + GUARD_SETTING_MAX - 4, "...");
    snprintf(longsql, sizeof longsql, "SET statement_timeout%s = 1", xs);
    assert_int_equal(guard_check_sql(longsql, strlen(longsql), &transaction, &f), GUARD_OK);
}

#define IN(lit) lit, sizeof(lit) - 1

static void test_is_managed(void **state)
{
    (void)state;
    assert_true(guard_is_managed_setting(IN("request.jwt.claim.tenant")));
    assert_true(guard_is_managed_setting(IN("Request.JWT.Claim.Role")));
    assert_true(guard_is_managed_setting(IN("request.jwt.claims")));
    assert_true(guard_is_managed_setting(IN("request.jwt.x")));
    assert_true(guard_is_managed_setting(IN("\"request.jwt.claim.tenant\"")));
    assert_true(guard_is_managed_setting(IN("request.\"jwt\".claim.tenant")));
    assert_true(guard_is_managed_setting(IN("request . jwt . claim . tenant")));
    assert_true(guard_is_managed_setting(IN("U&\"request.jwt.claim.tenan\\0074\"")));
    assert_true(guard_is_managed_setting(IN("U&\"statement\\005ftimeout\"")));
    assert_true(guard_is_managed_setting(IN("U&\"x\\d800\""))); /* cannot decode: managed */
    assert_true(guard_is_managed_setting(IN("U&\"x\\00\"")));
    assert_true(guard_is_managed_setting(IN("U&\"x!0041\" UESCAPE '!'")));
    assert_true(guard_is_managed_setting(IN("statement_timeout")));
    assert_true(guard_is_managed_setting(IN("WORK_MEM")));
    assert_true(guard_is_managed_setting(IN("idle_in_transaction_session_timeout")));
    assert_true(guard_is_managed_setting(IN("role")));
    assert_true(guard_is_managed_setting(IN("\"ROLE\"")));
    assert_true(guard_is_managed_setting(IN("session_authorization")));
    assert_true(guard_is_managed_setting(IN("standard_conforming_strings")));
    assert_false(guard_is_managed_setting(IN("search_path")));
    assert_false(guard_is_managed_setting(IN("application_name")));
    assert_false(guard_is_managed_setting(IN("client_encoding")));
    assert_false(guard_is_managed_setting(IN("request.jwtx")));
    assert_false(guard_is_managed_setting(IN("request.jwt")));
    assert_false(guard_is_managed_setting(IN("work_mem2")));
    assert_false(guard_is_managed_setting(IN("roles")));
    assert_false(guard_is_managed_setting(IN("\"role \"")));
    assert_false(guard_is_managed_setting(IN("")));
    assert_false(guard_is_managed_setting(NULL, 0));
    assert_true(guard_is_managed_setting("rolex", 4)); /* len bounds the name */
    assert_true(guard_is_managed_setting(IN("sort_mem")));
    assert_true(guard_is_managed_setting(IN("Sort_Mem")));
    assert_false(guard_is_managed_setting(IN("vacuum_mem"))); /* maintenance_work_mem: not managed */
    assert_false(guard_is_managed_setting(IN("sort_mem2")));
}

static void test_startup(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value;
        bool allowed;
    } cases[] = {
        {"user", "analyst", true},
        {"database", "media_analytics", true},
        {"application_name", "psql", true},
        {"client_encoding", "UTF8", true},
        {"client_encoding", "SJIS", false},
        {"client_encoding", "Big5", false},
        {"request.jwt.claim.tenant", "FR", false},
        {"Request.JWT.Claim.Role", "global_corporate_audit", false},
        {"statement_timeout", "0", false},
        {"work_mem", "1GB", false},
        {"role", "audit_role", false},
        {"session_authorization", "audit_role", false},
        {"standard_conforming_strings", "off", false},
        {"statement-timeout", "0", false},
        {"options", "", true},
        {"options", "-c search_path=x", true},
        {"options", "-c search_path=a\\ b -c application_name=x", true},
        {"options", "-csearch_path=x --application_name=y", true},
        {"options", "-c request.jwt.claim.tenant=FR", false},
        {"options", "-c search_path=x -c request.jwt.claim.role=global_corporate_audit", false},
        {"options", "-crole=audit_role", false},
        {"options", "-c ROLE=audit_role", false},
        {"options", "--statement_timeout=0", false},
        {"options", "--statement-timeout=0", false},
        {"options", "-c statement-timeout=0", false},
        {"options", "-c\\ request.jwt.claim.tenant=FR", false},
        {"options", "-c request.jwt.claim.ten\\ant=FR", false},
        {"options", "  -c\t  work_mem=1GB  ", false},
        {"options", "-S 1024", false},
        {"options", "-S1024", false},
        {"sort_mem", "1GB", false},
        {"options", "-c sort_mem=1GB", false},
        {"options", "-e -c idle_in_transaction_session_timeout=0", false},
        {"options", "-ec session_authorization=x", false},
        {"options", "-- standard_conforming_strings=off", false},
        {"options", "-c client_encoding=SJIS", false},
        {"options", "-c client_encoding=UTF8", true},
        {"options", "-c search_path=request.jwt.claim.tenant", true},
        {"options", "-c", true},
        {"options", "-c search_path=x\\", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (guard_check_startup_option(cases[i].name, cases[i].value, NULL) != cases[i].allowed)
            fail_msg("%s=[%s]: got %d, want %d", cases[i].name, cases[i].value, !cases[i].allowed,
                     cases[i].allowed);
    assert_true(guard_check_startup_option(NULL, NULL, NULL));
    assert_true(guard_check_startup_option("options", NULL, NULL));
    /* a long option argument: the name comes first and is still seen */
    char longopt[600];
    snprintf(longopt, sizeof longopt, "-c request.jwt.claim.tenant=%0500d", 1);
    assert_false(guard_check_startup_option("options", longopt, NULL));
    snprintf(longopt, sizeof longopt, "-c search_path=%0500d", 1);
    assert_true(guard_check_startup_option("options", longopt, NULL));
}

/* Every prefix of these, from an exact-size heap copy: no crash, no read past len. */
static const char *const prefix_cases[] = {
    "SET U&\"request.jwt.claim.tenan\\0074\" = 'FR'; RESET ALL",
    "SELECT $a$;$a$; SET \"request\".jwt.claim.tenant TO E'F\\x52'",
    "SELECT pg_catalog.\"set_config\"(U&'wor\\006b_mem', $$1GB$$, false)",
    "SELECT set_config(E'\\u0072\\U0000006fle\\1\\x', 'a'\n'b', false); /* x */ DISCARD ALL",
    "UPDATE ONLY pg_catalog.pg_settings SET setting = '0'; ALTER ROLE x IN DATABASE y SET a = b",
    "CREATE OR REPLACE FUNCTION f(a text) RETURNS int LANGUAGE sql SET role = x BEGIN ATOMIC SELECT 1; END",
    "SET NAMES 'SJIS'; SET LOCAL SESSION AUTHORIZATION DEFAULT; SET client_encoding TO U&'\\0041'",
};

static void test_prefixes(void **state)
{
    (void)state;
    const struct guard_options opt = {.session_pooling = false};
    for (size_t i = 0; i < sizeof prefix_cases / sizeof prefix_cases[0]; i++) {
        size_t n = strlen(prefix_cases[i]);
        for (size_t len = 0; len <= n; len++) {
            char *copy = malloc(len ? len : 1);
            assert_non_null(copy);
            memcpy(copy, prefix_cases[i], len);
            struct guard_finding f;
            if (guard_check_sql(copy, len, &opt, &f) == GUARD_REFUSED) {
                assert_true(strlen(f.setting) < GUARD_SETTING_MAX);
                assert_true(f.statement_index <= len);
            }
            bool managed = guard_is_managed_setting(copy, len);
            (void)managed;
            free(copy);
        }
        /* the whole text is refused */
        struct guard_finding f;
        assert_int_equal(guard_check_sql(prefix_cases[i], n, &opt, &f), GUARD_REFUSED);
        /* and every prefix of it as a startup option value (NUL-terminated) */
        for (size_t len = 0; len <= n; len++) {
            char *copy = malloc(len + 1);
            assert_non_null(copy);
            memcpy(copy, prefix_cases[i], len);
            copy[len] = '\0';
            bool allowed = guard_check_startup_option("options", copy, NULL);
            allowed = guard_check_startup_option(copy, copy, NULL) && allowed;
            (void)allowed;
            free(copy);
        }
    }
}

/* Refused with the setting named, whatever else the statement holds. */
static void expect_refused_for(const char *sql, const char *setting)
{
    const struct guard_options opt = {.session_pooling = false};
    struct guard_finding f;
    if (guard_check_sql(sql, strlen(sql), &opt, &f) != GUARD_REFUSED)
        fail_msg("%s: passed, want refused for %s", sql, setting);
    if (strcmp(f.setting, setting) != 0)
        fail_msg("%s: setting [%s], want [%s]", sql, f.setting, setting);
}

/* Every entry of policy/managed.c's table, the one list the transaction start also reads, is
 * refused in every statement form that changes a setting, spelled bare and as one quoted
 * identifier; a prefix entry stands for a name under it. So a setting added to the table is
 * protected, or this test says which form lets it through. */
static void test_managed_table(void **state)
{
    (void)state;
    assert_true(managed_settings_count > 0);
    static const char *const forms[] = {
        "SET %s = 'x'",
        "SET LOCAL %s TO 'x'",
        "SET SESSION %s = DEFAULT",
        "RESET %s",
        "SELECT set_config('%s', 'x', false)",
        "SELECT 1; SELECT set_config('%s', 'x', true)",
        "CREATE FUNCTION f() RETURNS int SET %s = 'x' AS 'SELECT 1' LANGUAGE sql",
        "ALTER FUNCTION f() SET %s FROM CURRENT",
    };
    for (size_t i = 0; i < managed_settings_count; i++) {
        const struct managed_setting *m = &managed_settings[i];
        char name[GUARD_SETTING_MAX], quoted[2 * GUARD_SETTING_MAX + 3], sql[512];
        int n = snprintf(name, sizeof name, "%s%s", m->name, m->prefix ? "claim.other" : "");
        assert_true(n > 0 && (size_t)n < sizeof name);
        assert_true(quote_ident(quoted, sizeof quoted, name, strlen(name)));
        assert_true(guard_is_managed_setting(name, strlen(name)));
        for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
            /* set_config takes the name as a string: a quoted identifier there is not a name */
            bool string_arg = strstr(forms[k], "'%s'") != NULL;
            snprintf(sql, sizeof sql, forms[k], name);
            expect_refused_for(sql, name);
            if (!string_arg) {
                snprintf(sql, sizeof sql, forms[k], quoted);
                expect_refused_for(sql, name);
            }
        }
        /* and as a startup parameter, directly or through PGOPTIONS */
        assert_false(guard_check_startup_option(name, "x", NULL));
        snprintf(sql, sizeof sql, "-c %s=x", name);
        assert_false(guard_check_startup_option("options", sql, NULL));
    }
}

/* Settings a role pins ([roles] pin.x, passed in by the caller) are refused like the managed ones,
 * in every form, and pass when nothing pins them. */
static void test_pinned(void **state)
{
    (void)state;
    static const char *const pinned[] = {"hash_mem_multiplier", "max_parallel_workers_per_gather",
                                         "maintenance_work_mem", "auto_explain.log_min_duration"};
    const struct guard_options opt = {.pinned = pinned, .npinned = 4};
    const struct guard_options session = {.session_pooling = true, .pinned = pinned, .npinned = 4};
    static const struct {
        const char *sql, *setting;
    } refused[] = {
        {"SET hash_mem_multiplier = 1000", "hash_mem_multiplier"},
        {"set LOCAL Hash_Mem_Multiplier TO 1000", "hash_mem_multiplier"},
        {"SET SESSION \"hash_mem_multiplier\" = 0.5", "hash_mem_multiplier"},
        {"SET hash_mem_multiplier TO DEFAULT", "hash_mem_multiplier"},
        {"SET U&\"hash_mem_multiplie\\0072\" = 1000", "hash_mem_multiplier"},
        {"RESET hash_mem_multiplier", "hash_mem_multiplier"},
        {"SELECT 1; SET max_parallel_workers_per_gather = 8", "max_parallel_workers_per_gather"},
        {"SELECT set_config('hash_mem_multiplier', '1000', false)", "hash_mem_multiplier"},
        {"SELECT pg_catalog.set_config('HASH_MEM_MULTIPLIER', '1000', true)", "hash_mem_multiplier"},
        {"SELECT set_config(E'hash\\_mem_multiplier', '1000', true)", "hash_mem_multiplier"},
        {"CREATE FUNCTION f() RETURNS int LANGUAGE sql SET hash_mem_multiplier = 1000 AS 'SELECT 1'",
         "hash_mem_multiplier"},
        {"ALTER FUNCTION f() SET max_parallel_workers_per_gather = 8", "max_parallel_workers_per_gather"},
        {"SET vacuum_mem = '4GB'", "vacuum_mem"}, /* PostgreSQL reads it as maintenance_work_mem */
        {"SET auto_explain.log_min_duration = -1", "auto_explain.log_min_duration"},
        {"SET auto_explain.\"log_min_duration\" = -1", "auto_explain.log_min_duration"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *sql = refused[i].sql;
        struct guard_finding f;
        if (guard_check_sql(sql, strlen(sql), &opt, &f) != GUARD_REFUSED)
            fail_msg("passed with pins: %s", sql);
        assert_string_equal(f.setting, refused[i].setting);
        assert_int_equal(guard_check_sql(sql, strlen(sql), &session, NULL), GUARD_REFUSED);
        if (guard_check_sql(sql, strlen(sql), NULL, NULL) != GUARD_OK)
            fail_msg("refused without pins: %s", sql);
    }
    static const char *const benign[] = {
        "SHOW hash_mem_multiplier",
        "SELECT current_setting('hash_mem_multiplier')",
        "SET hash_mem_multiplier2 = 1",
        "SET hash_mem = 1",
        "SELECT set_config('search_path', 'core', false)",
        "SET auto_explain.log_analyze = on",
        "SELECT 'SET hash_mem_multiplier = 1000'",
    };
    for (size_t i = 0; i < sizeof benign / sizeof benign[0]; i++)
        if (guard_check_sql(benign[i], strlen(benign[i]), &opt, NULL) != GUARD_OK)
            fail_msg("refused: %s", benign[i]);
    /* An empty slot in the list is skipped. */
    static const char *const with_null[] = {NULL, "jit"};
    const struct guard_options holes = {.pinned = with_null, .npinned = 2};
    assert_int_equal(guard_check_sql(IN("SET jit = off"), &holes, NULL), GUARD_REFUSED);
    assert_int_equal(guard_check_sql(IN("SET geqo = off"), &holes, NULL), GUARD_OK);

    /* Startup parameters and PGOPTIONS, before the role is known: any role's pins. */
    assert_false(guard_check_startup_option("hash_mem_multiplier", "1000", &opt));
    assert_false(guard_check_startup_option("hash-mem-multiplier", "1000", &opt));
    assert_false(guard_check_startup_option("options", "-c hash_mem_multiplier=1000", &opt));
    assert_false(
        guard_check_startup_option("options", "-c search_path=x --max-parallel-workers-per-gather=8", &opt));
    assert_false(guard_check_startup_option("options", "-cvacuum_mem=4GB", &opt));
    assert_true(guard_check_startup_option("hash_mem_multiplier", "1000", NULL));
    assert_true(guard_check_startup_option("options", "-c hash_mem_multiplier=1000", NULL));
    assert_true(guard_check_startup_option("options", "-c search_path=x", &opt));
    /* guard_is_managed_setting is the table alone */
    assert_false(guard_is_managed_setting(IN("hash_mem_multiplier")));
}

/* With the extension holding the limits' ceilings, a top-level SET, SET LOCAL or RESET of a limit
 * reaches the server; everything else the guard refuses stays refused. */
static void test_limits_on_server(void **state)
{
    (void)state;
    static const char *const pinned[] = {"hash_mem_multiplier"};
    const struct guard_options off = {.pinned = pinned, .npinned = 1};
    const struct guard_options on = {.pinned = pinned, .npinned = 1, .limits_on_server = true};
    static const char *const passes[] = {
        "SET statement_timeout = '5s'",
        "SET LOCAL work_mem = '1MB'",
        "set Session WORK_MEM to 64",
        "SET sort_mem = 1024",
        "RESET statement_timeout",
        "SET work_mem TO DEFAULT",
        "SET hash_mem_multiplier = 1",
        "RESET hash_mem_multiplier",
        "BEGIN; SET LOCAL statement_timeout = '1s'; SELECT 1; COMMIT",
    };
    for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++) {
        if (guard_check_sql(passes[i], strlen(passes[i]), &on, NULL) != GUARD_OK)
            fail_msg("refused with limits on the server: %s", passes[i]);
        if (guard_check_sql(passes[i], strlen(passes[i]), &off, NULL) != GUARD_REFUSED)
            fail_msg("passed without limits on the server: %s", passes[i]);
    }
    static const char *const still_refused[] = {
        "SET request.jwt.claim.tenant = 'FR'",
        "RESET request.jwt.claim.role",
        "SET idle_in_transaction_session_timeout = 0",
        "SET ROLE postgres",
        "SELECT set_config('work_mem', '1MB', false)",
        "SELECT set_config('statement_timeout', '1s', true)",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET work_mem = '1MB' AS 'SELECT 1'",
        "ALTER FUNCTION f() SET statement_timeout = '1s'",
        "SET standard_conforming_strings = off",
        "SET client_encoding = 'SJIS'",
    };
    for (size_t i = 0; i < sizeof still_refused / sizeof still_refused[0]; i++)
        if (guard_check_sql(still_refused[i], strlen(still_refused[i]), &on, NULL) != GUARD_REFUSED)
            fail_msg("passed with limits on the server: %s", still_refused[i]);
}

/* The quick path (one pass over the bytes, for one statement with no quote, comment or word
 * the walk acts on) must say what the token walk says: each case is checked as written and
 * behind a leading comment, which leaves the tokens alone but always sends it to the walk. */
static void check_same_as_walk(const char *sql)
{
    const struct guard_options opt = {.limits_clamped = true};
    char walked[512];
    snprintf(walked, sizeof walked, "/**/%s", sql);
    struct guard_finding f1, f2;
    memset(&f1, 0, sizeof f1);
    memset(&f2, 0, sizeof f2);
    bool p1 = false, p2 = false;
    enum guard_verdict v1 = guard_check_sql_plain(sql, strlen(sql), &opt, &f1, &p1);
    enum guard_verdict v2 = guard_check_sql_plain(walked, strlen(walked), &opt, &f2, &p2);
    if (v1 != v2)
        fail_msg("%s: verdict %d, the walk says %d", sql, v1, v2);
    if (v1 == GUARD_OK && p1 != p2)
        fail_msg("%s: plain %d, the walk says %d", sql, p1, p2);
    if (v1 == GUARD_REFUSED && (strcmp(f1.setting, f2.setting) != 0 || f1.statement_index != f2.statement_index))
        fail_msg("%s: refused for [%s], the walk for [%s]", sql, f1.setting, f2.setting);
}

static void test_quick_path(void **state)
{
    (void)state;
    static const char *const edges[] = {
        "SELECT abalance FROM pgbench_accounts WHERE aid = 48964;",
        "select 1;  \n",
        "SELECT 1;;",
        "SELECT 1; SELECT 2",
        "SELECT 1; SET search_path = x",
        "select_x FROM t",
        "selectx",
        "SELECT SET_CONFIG($1, $2, false)",
        "select Set_Config (name, setting, false) from pg_settings where name = $1",
        "WITH u AS (UPDATE PG_SETTINGS SET setting = 1 WHERE name = $1) SELECT 1",
        "UPDATE pg_settings SET setting = $1 WHERE name = $2",
        "UPDATE t SET a = $1 WHERE b = $2",
        "SELECT * FROM temp_t",
        "SELECT * FROM t AS TEMP",
        "INSERT INTO pg_temp.t VALUES ($1)",
        "CREATE TEMPORARY TABLE t (a int)",
        "SELECT $1::int + $2",
        "SELECT $$x$$",
        "SELECT $a$x$a$",
        "SELECT $",
        "SELECT a$b FROM t",
        "SELECT 1 -- SET ROLE x",
        "SELECT 1 /* RESET ALL */",
        "SELECT 1/2, 1-2, 3*4",
        "select\tx\nfrom t",
        "  VALUES (1), (2)",
        "TABLE t",
        "DELETE FROM t WHERE a = $1",
        "SELECT 1\\",
        "SELECT 'a'",
        "SELECT \"a\" FROM t",
        "with x as (select 1) select * from x",
        "SELECT \xc3\xa9 FROM t",
        "select\xc3\xa9 1",
        "SELECT setconfig(), settings, tempo, pg_set FROM t",
        "SELECT attempt, 1_temp, x_temp, a1temp, 1e5set_config, 0xtemp, 1eset_config FROM t",
        "SELECT 1_temp",
        "SELECT 1e5set_config()",
        "SELECT x.pg_settings",
        "SELECT \xc3\xa9temp",
        "SELECT $1temp",
        "SELECT tEmPoRaRy",
        "SELECT a FROM pg_temp_3.t",
        "SELECT PG_SETTINGS.name FROM t",
        "select abc FROM set_configs",
        "SELECT 0xset_config",
        "SELECT x -temp",
        "SET work_mem = 1",
        "RESET ALL",
        "DISCARD ALL",
        "(SELECT 1)",
        "",
        "   ",
        ";",
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        check_same_as_walk(edges[i]);
    /* The quick path itself: taken by the common statements, left where a word may start. */
    static const char *const quick[] = {"SELECT abalance FROM pgbench_accounts WHERE aid = 48964;",
                                        "SELECT a, settings, configs FROM t WHERE b = $1",
                                        "UPDATE t SET a = $1 WHERE b = $2"};
    for (size_t i = 0; i < sizeof quick / sizeof quick[0]; i++)
        if (!guard_quick_plain(quick[i], strlen(quick[i])))
            fail_msg("%s: not on the quick path", quick[i]);
    static const char *const walked[] = {"SELECT 1_temp",        "SELECT x_temp", "SELECT 1e5set_config()",
                                         "SELECT x.pg_settings", "SELECT $1temp", "SELECT a FROM pg_temp_3.t"};
    for (size_t i = 0; i < sizeof walked / sizeof walked[0]; i++)
        if (guard_quick_plain(walked[i], strlen(walked[i])))
            fail_msg("%s: on the quick path", walked[i]);
    for (size_t i = 0; i < sizeof benign_cases / sizeof benign_cases[0]; i++)
        check_same_as_walk(benign_cases[i]);
    for (size_t i = 0; i < sizeof refused_cases / sizeof refused_cases[0]; i++)
        check_same_as_walk(refused_cases[i].sql);
}

static void test_counts(void **state)
{
    (void)state;
    size_t refused = 0;
    for (size_t i = 0; i < sizeof refused_cases / sizeof refused_cases[0]; i++)
        refused += refused_cases[i].setting != NULL;
    assert_true(refused >= 40);
    assert_true(sizeof benign_cases / sizeof benign_cases[0] >= 15);
    print_message("guard: %zu refused, %zu benign cases\n", refused, sizeof benign_cases / sizeof benign_cases[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),    cmocka_unit_test(test_benign),
        cmocka_unit_test(test_options),    cmocka_unit_test(test_is_managed),
        cmocka_unit_test(test_startup),    cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_counts),     cmocka_unit_test(test_managed_table),
        cmocka_unit_test(test_pinned),     cmocka_unit_test(test_limits_on_server),
        cmocka_unit_test(test_quick_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
