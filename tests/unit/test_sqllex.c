/* Unit tests for protocol/sqllex.c: a table of SQL texts and the exact tokens PostgreSQL's scanner
 * would split them into, sticky EOF/UNTERMINATED, every prefix of every case lexed from an
 * exact-size heap copy (so a read past the end shows under ASan), and a table for
 * sql_needs_own_transaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/guard.h"
#include "policy/sqlstmt.h"

static char kind_letter(enum sqltok_kind k)
{
    switch (k) {
    case SQLTOK_EOF:
        return 'E';
    case SQLTOK_WORD:
        return 'W';
    case SQLTOK_QIDENT:
        return 'Q';
    case SQLTOK_STRING:
        return 'S';
    case SQLTOK_NUMBER:
        return 'N';
    case SQLTOK_PARAM:
        return 'P';
    case SQLTOK_SEMI:
        return ';';
    case SQLTOK_OP:
        return 'O';
    case SQLTOK_UNTERMINATED:
        return 'U';
    }
    return '?';
}

/* Lexes sql[0..len) into "K:text|K:text|..." (EOF not shown), checking on the way that every
 * token lies inside the input and that the end state is sticky. */
static void dump(const char *sql, size_t len, char *out, size_t cap)
{
    struct sqllex lx;
    sqllex_init(&lx, sql, len);
    size_t o = 0;
    out[0] = '\0';
    for (size_t n = 0;; n++) {
        assert_true(n <= len + 1);
        struct sqltok t = sqllex_next(&lx);
        assert_true(t.text >= sql && t.text + t.len <= sql + len);
        if (t.kind == SQLTOK_EOF || t.kind == SQLTOK_UNTERMINATED) {
            if (t.kind == SQLTOK_UNTERMINATED)
                o += (size_t)snprintf(out + o, cap - o, "%sU:%.*s", o ? "|" : "", (int)t.len, t.text);
            for (int again = 0; again < 2; again++)
                assert_int_equal(sqllex_next(&lx).kind, t.kind);
            break;
        }
        assert_true(t.len > 0);
        o +=
            (size_t)snprintf(out + o, cap - o, "%s%c:%.*s", o ? "|" : "", kind_letter(t.kind), (int)t.len, t.text);
        assert_true(o < cap);
    }
}

static const struct {
    const char *sql;
    const char *want;
} lex_cases[] = {
    {"", ""},
    {" \t\r\n\f\v", ""},
    {"select 1", "W:select|N:1"},
    {"SELECT a$b, $1 FROM t", "W:SELECT|W:a$b|O:,|P:$1|W:FROM|W:t"},
    {"a$$b$$ x", "W:a$$b$$|W:x"},
    {"_x1 \xc3\xbc"
     "ber",
     "W:_x1|W:\xc3\xbc"
     "ber"},
    {"foo(bar[1])", "W:foo|O:(|W:bar|O:[|N:1|O:]|O:)"},
    {"x::int a:=b c:d", "W:x|O:::|W:int|W:a|O::=|W:b|W:c|O::|W:d"},
    {"a<=b a/b", "W:a|O:<=|W:b|W:a|O:/|W:b"},
    {"3.14 .5 1e10 1.5e-3 0x1F 1_000 1..2 1e", "N:3.14|N:.5|N:1e10|N:1.5e-3|N:0x1F|N:1_000|N:1|O:..|N:2|N:1|W:e"},
    /* comments */
    {"-- only a comment", ""},
    {"-- c\nx", "W:x"},
    {"x -- trailing", "W:x"},
    {"/* a /* nested */ still */ vacuum", "W:vacuum"},
    {"/* a /* nested */ open", "U:/* a /* nested */ open"},
    {"/**/x", "W:x"},
    {"x/*/**/*/y", "W:x|W:y"},
    {"/*/ x", "U:/*/ x"},
    {"/*", "U:/*"},
    {"-", "O:-"},
    {"1+-- c\n2", "N:1|O:+|N:2"},
    {"1 +/* c */2", "N:1|O:+|N:2"},
    {"a*/b", "W:a|O:*/|W:b"},
    /* identifiers */
    {"\"a\"\"b\" c", "Q:\"a\"\"b\"|W:c"},
    {"\"semi;colon\"", "Q:\"semi;colon\""},
    {"\"abc", "U:\"abc"},
    {"\"", "U:\""},
    {"U&\"d\\0061t\" x", "Q:U&\"d\\0061t\"|W:x"},
    {"u&x", "W:u|O:&|W:x"},
    {"U&", "W:U|O:&"},
    /* strings */
    {"'it''s'", "S:'it''s'"},
    {"'a\\' c", "S:'a\\'|W:c"},
    {"E'a\\'b' c", "S:E'a\\'b'|W:c"},
    {"e'\\\\' x", "S:e'\\\\'|W:x"},
    {"E'a''b'", "S:E'a''b'"},
    {"E'abc\\", "U:E'abc\\"},
    {"E'", "U:E'"},
    {"'", "U:'"},
    {"'unterminated;", "U:'unterminated;"},
    {"U&'d\\0061t' x", "S:U&'d\\0061t'|W:x"},
    {"B'0101' X'ff' N'x' b'1'", "S:B'0101'|S:X'ff'|S:N'x'|S:b'1'"},
    {"xe'q'", "W:xe|S:'q'"},
    {"'a'\n'b' x", "S:'a'\n'b'|W:x"},
    {"'a' 'b'", "S:'a'|S:'b'"},
    {"'a' -- c\n  'b'", "S:'a' -- c\n  'b'"},
    {"'a'\n-- c\n'b'", "S:'a'\n-- c\n'b'"},
    {"E'a'\n'\\''", "S:E'a'\n'\\''"},
    {"'a'\n", "S:'a'"},
    {"'a'\n-- c", "S:'a'"},
    {"'a'\n'", "U:'a'\n'"},
    /* dollar quoting and parameters */
    {"$$a;b$$;", "S:$$a;b$$|;:;"},
    {"$tag$ $$ $other$ $tag$ x", "S:$tag$ $$ $other$ $tag$|W:x"},
    {"$_x1$y$_x1$", "S:$_x1$y$_x1$"},
    {"$a$b$ab$a$", "S:$a$b$ab$a$"},
    {"$a$ never", "U:$a$ never"},
    {"$$", "U:$$"},
    {"$", "O:$"},
    {"$abc", "O:$|W:abc"},
    {"$1x$", "P:$1|W:x$"},
    {"$12;", "P:$12|;:;"},
    {"1$$x$$", "N:1|S:$$x$$"},
    {";;", ";:;|;:;"},
};

static void test_tokens(void **state)
{
    for (size_t i = 0; i < sizeof lex_cases / sizeof lex_cases[0]; i++) {
        char got[512];
        dump(lex_cases[i].sql, strlen(lex_cases[i].sql), got, sizeof got);
        if (strcmp(got, lex_cases[i].want) != 0)
            fail_msg("lexing [%s]\n  got  [%s]\n  want [%s]", lex_cases[i].sql, got, lex_cases[i].want);
    }
}

/* Every prefix of every case, from an exact-size copy: no read past the end, no endless loop. */
static void test_prefixes(void **state)
{
    for (size_t i = 0; i < sizeof lex_cases / sizeof lex_cases[0]; i++) {
        size_t len = strlen(lex_cases[i].sql);
        for (size_t n = 0; n <= len; n++) {
            char *copy = malloc(n ? n : 1);
            assert_non_null(copy);
            memcpy(copy, lex_cases[i].sql, n);
            char got[512];
            dump(copy, n, got, sizeof got);
            (void)sql_needs_own_transaction(copy, n);
            free(copy);
        }
    }
}

static void test_init_and_is(void **state)
{
    struct sqllex lx;
    sqllex_init(&lx, NULL, 0);
    assert_int_equal(sqllex_next(&lx).kind, SQLTOK_EOF);

    sqllex_init(&lx, "Vacuum \"vacuum\" 'vacuum' vacuumx", 32);
    struct sqltok t = sqllex_next(&lx);
    assert_true(sqltok_is(&t, "vacuum"));
    assert_true(sqltok_is(&t, "VACUUM"));
    assert_false(sqltok_is(&t, "vacu"));
    for (int i = 0; i < 3; i++) {
        t = sqllex_next(&lx);
        assert_false(sqltok_is(&t, "vacuum"));
    }

    /* an embedded NUL is just another byte: the length decides where the text ends */
    static const char nul[] = "a\0b";
    char got[64];
    dump(nul, 3, got, sizeof got);
    assert_string_equal(got, "W:a|O:|W:b"); /* %.*s stops at the NUL byte itself */
}

static void test_needs_own_transaction(void **state)
{
    static const struct {
        const char *sql;
        bool want;
    } cases[] = {
        {"VACUUM", true},
        {"vacuum;", true},
        {"  /* c /* d */ */ -- x\n VaCuUm full t", true},
        {"VACUUM (VERBOSE, ANALYZE) t", true},
        {"CREATE INDEX CONCURRENTLY i ON t(a)", true},
        {"create unique index concurrently if not exists i on t(a)", true},
        {"DROP INDEX CONCURRENTLY i", true},
        {"REINDEX TABLE CONCURRENTLY t", true},
        {"REINDEX (VERBOSE) INDEX CONCURRENTLY i", true},
        {"REINDEX (CONCURRENTLY) TABLE t", true},
        {"REINDEX SYSTEM db", true},
        {"REINDEX DATABASE db", true},
        {"REINDEX (VERBOSE, TABLESPACE x) DATABASE", true},
        {"REINDEX SCHEMA s", true},
        {"CREATE DATABASE x", true},
        {"DROP DATABASE IF EXISTS x", true},
        {"CREATE TABLESPACE t LOCATION '/x'", true},
        {"DROP TABLESPACE t", true},
        {"ALTER SYSTEM SET work_mem = '1MB'", true},
        {"CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p", true},
        {"ALTER SUBSCRIPTION s REFRESH PUBLICATION", true},
        {"DROP SUBSCRIPTION s", true},
        {"COMMIT PREPARED 'x'", true},
        {"rollback prepared 'x'", true},
        {"CLUSTER", true},
        {"CLUSTER;", true},
        {"cluster verbose", true},
        {"CLUSTER (VERBOSE)", true},
        {"DISCARD ALL", true},
        {"ALTER DATABASE d SET TABLESPACE t", true},
        {"ALTER TABLE p DETACH PARTITION c CONCURRENTLY", true},
        {"select 1; vacuum", true},
        {"select ';'; vacuum", true},
        {";;vacuum;;", true},
        {"'\\'; vacuum --'", true}, /* standard strings: the backslash does not escape */
        {"", false},
        {";", false},
        {"select 1", false},
        {"select 'vacuum'", false},
        {"select $$; vacuum $$", false},
        {"select $a$ $$; vacuum $$ $a$", false},
        {"select 1 -- ; vacuum", false},
        {"/* ; vacuum */ select 1", false},
        {"select E'\\'; vacuum'", false},
        {"select '\n'\n'; vacuum'", false},
        {"select \"; vacuum\"", false},
        {"DO $$ BEGIN VACUUM; END $$", false},
        {"\"vacuum\"", false},
        {"vacuum_table()", false},
        {"select vacuum from t", false},
        {"CREATE INDEX i ON t(a)", false},
        {"CREATE TABLE database (x int)", false},
        {"DROP INDEX i", false},
        {"REINDEX TABLE t", false},
        {"REINDEX INDEX i", false},
        {"CLUSTER t", false},
        {"CLUSTER VERBOSE t", false},
        {"CLUSTER t USING i", false},
        {"CLUSTER (VERBOSE) t", false},
        {"COMMIT", false},
        {"ROLLBACK TO SAVEPOINT s", false},
        {"PREPARE TRANSACTION 'x'", false},
        {"ALTER DATABASE d SET search_path = x", false},
        {"ALTER TABLESPACE t RENAME TO u", false},
        {"ALTER TABLE t ADD COLUMN c int", false},
        {"ALTER TABLE p DETACH PARTITION c", false},
        {"DISCARD PLANS", false},
        {"ANALYZE", false},
        {"select 'a; vacuum", false}, /* does not lex: the server runs none of it */
        {"vacuum; select 'x", false},
        {"vacuum /* open", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (sql_needs_own_transaction(cases[i].sql, strlen(cases[i].sql)) != cases[i].want)
            fail_msg("[%s]: want %s", cases[i].sql, cases[i].want ? "true" : "false");
}

struct session_case {
    const char *sql;
    bool leaves;
};

static const struct session_case session_cases[] = {
    {"SELECT 1", false},
    {"UPDATE t SET a = 1 WHERE b = 2", false},
    {"BEGIN; SET LOCAL work_mem = '1MB'; SELECT 1; COMMIT", false},
    {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", false},
    {"SET CONSTRAINTS ALL DEFERRED", false},
    {"SELECT 'SET search_path = x; CREATE TEMP TABLE t()'", false},
    {"SELECT $$ set_config $$, \"temp_col_quoted\"", false},
    {"-- SET search_path = evil\nSELECT 1", false},
    {"SET search_path = marketing", true},
    {"set Session application_name = 'x'", true},
    {"SELECT 1; RESET ALL", true},
    {"/* c */ PREPARE q AS SELECT 1", true},
    {"LISTEN channel", true},
    {"DECLARE c CURSOR WITH HOLD FOR SELECT 1", true},
    {"DO $$ BEGIN PERFORM 1; END $$", true},
    {"CREATE TEMP TABLE t (a int)", true},
    {"create temporary table t as select 1", true},
    {"SELECT * INTO TEMP t FROM core.fct_playback_sessions", true},
    {"CREATE TABLE pg_temp.t (a int)", true},
    {"SELECT pg_catalog.set_config('search_path', 'x', false)", true},
    {"SELECT \"set_config\"('search_path', 'x', false)", true},
    {"CREATE TABLE \"pg_temp\".t (a int)", true},
    {"LOAD 'auto_explain'", true},
};

static void test_session_state(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof session_cases / sizeof session_cases[0]; i++) {
        const struct session_case *c = &session_cases[i];
        bool got = sql_may_leave_session_state(c->sql, strlen(c->sql));
        if (got != c->leaves)
            fail_msg("%s: got %d, want %d", c->sql, got, c->leaves);
    }
}

static void test_has_leading(void **state)
{
    (void)state;
    static const struct {
        const char *sql, *first, *not_second;
        bool want;
    } cases[] = {
        {"LISTEN x", "listen", NULL, true},
        {"select 1; /* c */ listen x", "listen", NULL, true},
        {"SELECT 'LISTEN x'", "listen", NULL, false},
        {"NOTIFY listen", "listen", NULL, false},
        {"PREPARE q AS SELECT 1", "prepare", "transaction", true},
        {"PREPARE TRANSACTION 'x'", "prepare", "transaction", false},
        {"prepare", "prepare", "transaction", true},
        {"SELECT $$; PREPARE q AS SELECT 1$$", "prepare", "transaction", false},
        /* decided at the second word: refusing text that would not run anyway is harmless */
        {"PREPARE q AS SELECT 'unterminated", "prepare", "transaction", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = sql_has_leading(cases[i].sql, strlen(cases[i].sql), cases[i].first, cases[i].not_second);
        if (got != cases[i].want)
            fail_msg("%s: got %d, want %d", cases[i].sql, got, cases[i].want);
    }
}

/* What makes session pooling set the claims and limits again behind the client's statement. */
static void test_resets_settings(void **state)
{
    (void)state;
    static const struct {
        const char *sql;
        bool want;
    } cases[] = {
        {"DISCARD ALL", true},
        {"discard all;", true},
        {"  /* c */ Reset -- x\n ALL", true},
        {"SELECT 1; RESET ALL", true},
        {"RESET statement_timeout", false},
        {"DISCARD PLANS", false},
        {"DISCARD ALL x", false},
        {"SELECT 'DISCARD ALL'", false},
        {"RESET ALL; SELECT 'unterminated", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = sql_resets_settings(cases[i].sql, strlen(cases[i].sql));
        if (got != cases[i].want)
            fail_msg("%s: got %d, want %d", cases[i].sql, got, cases[i].want);
    }
}

/* DEALLOCATE as pgmesh follows it in transaction pooling: alone, with the name folded. */
static void test_deallocate(void **state)
{
    (void)state;
    static const struct {
        const char *sql;
        enum sql_dealloc want;
        const char *name;
    } cases[] = {
        {"DEALLOCATE S_1", SQL_DEALLOC_ONE, "s_1"},
        {"deallocate prepare _pg3_0 ;", SQL_DEALLOC_ONE, "_pg3_0"},
        {"DEALLOCATE \"S_1\"", SQL_DEALLOC_ONE, "S_1"},
        {"DEALLOCATE \"a\"\"b\"", SQL_DEALLOC_ONE, "a\"b"},
        {"/* c */ DEALLOCATE -- x\n ALL", SQL_DEALLOC_ALL, ""},
        {"DEALLOCATE PREPARE ALL;;", SQL_DEALLOC_ALL, ""},
        {"DEALLOCATE prepare", SQL_DEALLOC_ONE, "prepare"},
        {"SELECT 1; DEALLOCATE S_1", SQL_DEALLOC_OTHER, ""},
        {"DEALLOCATE S_1; SELECT 1", SQL_DEALLOC_OTHER, ""},
        {"DEALLOCATE a b", SQL_DEALLOC_OTHER, ""},
        {"DEALLOCATE", SQL_DEALLOC_OTHER, ""},
        {"DEALLOCATE U&\"x\"", SQL_DEALLOC_OTHER, ""},
        {"DEALLOCATE 'x'", SQL_DEALLOC_OTHER, ""},
        {"SELECT 'DEALLOCATE x'", SQL_DEALLOC_NONE, ""},
        {"SELECT deallocate FROM t", SQL_DEALLOC_NONE, ""},
        {"DEALLOCATE \"unterminated", SQL_DEALLOC_OTHER, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64] = "";
        enum sql_dealloc got = sql_deallocate(cases[i].sql, strlen(cases[i].sql), name, sizeof name);
        if (got != cases[i].want || (got == SQL_DEALLOC_ONE && strcmp(name, cases[i].name) != 0))
            fail_msg("case %zu \"%s\": got %d name \"%s\"", i, cases[i].sql, (int)got, name);
    }
    char tiny[4];
    assert_int_equal(sql_deallocate("DEALLOCATE abcd", 15, tiny, sizeof tiny), SQL_DEALLOC_OTHER);
}

/* sql_is_plain lets relay.c skip the other checks: wherever it says yes, they must all say no. */
static void test_plain(void **state)
{
    (void)state;
    static const char *const plain[] = {
        "SELECT abalance FROM pgbench_accounts WHERE aid = 1;",
        "select 1; INSERT INTO t VALUES (1); update t set a = 1; delete from t",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "VALUES (1)",
        "TABLE t",
        "SELECT 'set_config(''search_path'', ''x'', false)'", /* in a string: runs nothing */
        "SELECT 1 -- RESET ALL",
        "",
        " ; ;",
        "SELECT $$DISCARD ALL$$",
    };
    static const char *const not_plain[] = {
        "SET search_path = x",
        "SELECT 1; SET work_mem = '1GB'",
        "RESET ALL",
        "DISCARD ALL",
        "DEALLOCATE ALL",
        "LISTEN x",
        "PREPARE p AS SELECT 1",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "SELECT set_config('search_path', 'x', false)",
        "SELECT \"set_config\"('search_path', 'x', false)",
        "CREATE TEMP TABLE t (a int)",
        "INSERT INTO pg_temp.t VALUES (1)",
        "DO $$BEGIN END$$",
        "VACUUM t",
        "(SELECT 1)",
        "SELECT 'unterminated",
        "EXPLAIN ANALYZE SELECT 1",
        "SET statement_timeout = '1s'", /* the guard's clamped shape */
        "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'search_path'", /* its lookup shape */
    };
    char name[64];
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        const char *q = plain[i];
        size_t n = strlen(q);
        assert_true(sql_is_plain(q, n));
        assert_false(sql_may_leave_session_state(q, n));
        assert_false(sql_resets_settings(q, n));
        assert_false(sql_needs_own_transaction(q, n));
        assert_false(sql_has_leading(q, n, "listen", NULL));
        assert_false(sql_has_leading(q, n, "prepare", "transaction"));
        assert_false(sql_has_leading(q, n, "deallocate", NULL));
        assert_int_equal(sql_deallocate(q, n, name, sizeof name), SQL_DEALLOC_NONE);
    }
    for (size_t i = 0; i < sizeof not_plain / sizeof not_plain[0]; i++)
        assert_false(sql_is_plain(not_plain[i], strlen(not_plain[i])));

    /* The relay takes the same answer from the guard's own pass over the text. */
    struct guard_options opt = {.limits_clamped = true};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        bool p = false;
        assert_int_equal(guard_check_sql_plain(plain[i], strlen(plain[i]), &opt, NULL, &p), GUARD_OK);
        assert_true(p);
    }
    for (size_t i = 0; i < sizeof not_plain / sizeof not_plain[0]; i++) {
        bool p = true;
        if (guard_check_sql_plain(not_plain[i], strlen(not_plain[i]), &opt, NULL, &p) == GUARD_OK && p)
            fail_msg("the guard's pass calls \"%s\" plain", not_plain[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens),        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_init_and_is),   cmocka_unit_test(test_needs_own_transaction),
        cmocka_unit_test(test_session_state), cmocka_unit_test(test_has_leading),
        cmocka_unit_test(test_deallocate),    cmocka_unit_test(test_resets_settings),
        cmocka_unit_test(test_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
