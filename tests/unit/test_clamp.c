/* The limit clamp (proxy/clamp.c) and the one spelling it reads (policy/limitset.c), with the
 * guard's side of the bargain: what the clamp rewrites passes the guard, other spellings do not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/guard.h"
#include "proxy/clamp.h"
#include "proxy/limits.h"

static const struct role_limits role = {
    .statement_timeout_ms = 30000, .idle_in_transaction_ms = 60000, .work_mem_kb = 131072};

/* The clamped text of sql, or NULL when it passes as written. */
static char *clamped(const char *sql, struct clamp *c)
{
    assert_true(clamp_sql(sql, strlen(sql), &role, "analyst", c));
    return c->sql;
}

static void test_rewrites(void **state)
{
    (void)state;
    static const struct {
        const char *sql, *want;
    } cases[] = {
        {"SET statement_timeout = 0", "SET statement_timeout = '30000ms'"},
        {"set Statement_Timeout to '1h'", "SET statement_timeout = '30000ms'"},
        {"SET LOCAL statement_timeout = '31s'", "SET LOCAL statement_timeout = '30000ms'"},
        {"SET SESSION work_mem = '4GB'", "SET work_mem = '131072kB'"},
        {"SET sort_mem = 999999999", "SET work_mem = '131072kB'"},
        {"RESET work_mem", "SET work_mem = '131072kB'"},
        {"SET statement_timeout TO DEFAULT", "SET statement_timeout = '30000ms'"},
        {"SET idle_in_transaction_session_timeout = 0", "SET idle_in_transaction_session_timeout = '60000ms'"},
        {"SET statement_timeout = 'banana'", "SET statement_timeout = '30000ms'"},
        /* only the statements that ask for more change; the rest keeps its bytes */
        {"SELECT 1; SET lock_timeout = 0;SET statement_timeout = 0 ; SELECT ';'",
         "SELECT 1; SET lock_timeout = 0;SET statement_timeout = '30000ms' ; SELECT ';'"},
        {"SET work_mem = '8GB'; SET statement_timeout = 0",
         "SET work_mem = '131072kB'; SET statement_timeout = '30000ms'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct clamp c;
        char *got = clamped(cases[i].sql, &c);
        if (!got || strcmp(got, cases[i].want) != 0)
            fail_msg("%s: got %s, want %s", cases[i].sql, got ? got : "(unchanged)", cases[i].want);
        assert_true(c.count >= 1);
        /* What the clamp writes passes the guard that expects clamping. */
        const struct guard_options opt = {.limits_clamped = true};
        assert_int_equal(guard_check_sql(got, strlen(got), &opt, NULL), GUARD_OK);
        clamp_free(&c);
    }
    struct clamp c;
    clamped("SET statement_timeout = 0", &c);
    assert_string_equal(c.notice,
                        "statement_timeout is 30000ms for role \"analyst\": pgmesh set that instead of 0");
    clamp_free(&c);
}

static void test_unchanged(void **state)
{
    (void)state;
    static const char *const same[] = {
        "SET statement_timeout = '10s'",
        "SET statement_timeout = 30000",
        "SET LOCAL work_mem = '64MB'",
        "SET work_mem = 1024",
        "SET lock_timeout = 0",
        "SELECT 'SET statement_timeout = 0'",
        /* spellings the clamp does not read: the guard refuses them (below) */
        "SET \"statement_timeout\" = 0",
        "SET statement_timeout = E'0'",
        "SET statement_timeout = 0, 1",
        "SET statement_timeout = 'unterminated",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        struct clamp c;
        if (clamped(same[i], &c))
            fail_msg("clamped: %s -> %s", same[i], c.sql);
        clamp_free(&c);
    }
    /* A role without a limit asks for nothing to be clamped. */
    const struct role_limits none = {0};
    struct clamp c;
    assert_true(clamp_sql("SET statement_timeout = 0", 25, &none, "free", &c));
    assert_null(c.sql);
}

static void test_guard_spellings(void **state)
{
    (void)state;
    const struct guard_options opt = {.limits_clamped = true};
    static const char *const refused[] = {
        "SET \"statement_timeout\" = 0",
        "SET statement_timeout = E'0'",
        "SET work_mem = '1' || 'GB'",
        "SET statement_timeout = 0, 1",
        "SELECT set_config('statement_timeout', '0', false)",
        "SELECT set_config(name, '0', false) FROM pg_settings WHERE name = 'statement_timeout'",
        "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'request.jwt.claim.tenant'",
        "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'client_encoding'",
        "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name LIKE 'request%'",
        "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'jit' OR true",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (guard_check_sql(refused[i], strlen(refused[i]), &opt, NULL) != GUARD_REFUSED)
            fail_msg("passed: %s", refused[i]);
    /* pg_dump 15.8+: a setting named by a lookup pinned to one literal. */
    static const char dump[] =
        "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = "
        "'restrict_nonsystem_relation_kind'";
    assert_int_equal(guard_check_sql(dump, strlen(dump), &opt, NULL), GUARD_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrites),
        cmocka_unit_test(test_unchanged),
        cmocka_unit_test(test_guard_spellings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
