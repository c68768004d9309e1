/* Unit tests for proxy/stats.c: a session counts into its pool's and its tenant's rows (queries,
 * transactions at an idle ReadyForQuery, waits with their maximum, bytes as deltas, refusals), the
 * tenant table keeps one row per tenant up to STATS_TENANTS_MAX and then uses "other", and logout
 * leaves the client count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/stats.h"

static void test_session_counts(void **state)
{
    struct stats_counters pool = {0};
    struct stats_session st = {0};
    stats_session_login(&st, &pool, "acme");
    assert_string_equal(st.tenant->name, "acme");
    assert_int_equal(st.tenant->clients, 1);

    /* BEGIN, a statement, COMMIT: three queries, one transaction of 3 s. */
    stats_input(&st, 100.0);
    stats_ready(&st, 'T', 100.5, 10, 20);
    stats_input(&st, 101.0);
    stats_ready(&st, 'T', 102.0, 30, 60);
    stats_input(&st, 102.5);
    stats_ready(&st, 'I', 103.0, 40, 100);
    assert_int_equal(pool.query_count, 3);
    assert_int_equal(pool.xact_count, 1);
    assert_int_equal(pool.xact_time_us, 3000000);
    assert_int_equal(pool.query_time_us, 2000000);
    assert_int_equal(pool.bytes_received, 40);
    assert_int_equal(pool.bytes_sent, 100);
    assert_memory_equal(&st.tenant->c, &pool, sizeof pool);

    stats_wait_begin(&st, 200.0);
    stats_wait_end(&st, 200.25);
    stats_wait_begin(&st, 300.0);
    stats_wait_end(&st, 300.125);
    assert_int_equal(pool.wait_time_us, 375000);
    assert_int_equal(pool.max_wait_us, 250000);
    assert_int_equal(st.wait_start, 0);

    stats_guard_refusal(&st);
    stats_enforce_refusal(&st);
    stats_limit_end(&st);
    assert_int_equal(st.tenant->c.guard_refusals, 1);
    assert_int_equal(st.tenant->c.enforce_refusals, 1);
    assert_int_equal(pool.limit_ends, 1);

    struct stats_tenant *row = st.tenant;
    stats_session_logout(&st, 50, 120);
    assert_int_equal(row->clients, 0);
    assert_int_equal(row->c.bytes_received, 50);
    assert_int_equal(pool.bytes_sent, 120);
    assert_null(st.tenant);
    stats_session_logout(&st, 60, 130); /* twice: nothing more */
    assert_int_equal(pool.bytes_sent, 120);

    struct stats_counters sum = {.max_wait_us = 900000};
    stats_add(&sum, &pool);
    assert_int_equal(sum.max_wait_us, 900000);
    assert_int_equal(sum.query_count, 3);
    stats_tenants_free();
}

/* A session without rows (the admin console) counts nothing and does not crash. */
static void test_uncounted_session(void **state)
{
    struct stats_session st = {0};
    stats_input(&st, 1.0);
    stats_ready(&st, 'I', 2.0, 5, 5);
    stats_wait_end(&st, 3.0);
    stats_guard_refusal(&st);
    stats_session_logout(&st, 5, 5);
    assert_null(stats_tenant_at(0));
}

static void test_tenant_table_bound(void **state)
{
    char name[32];
    for (int i = 0; i < STATS_TENANTS_MAX; i++) {
        snprintf(name, sizeof name, "t%d", i);
        assert_string_equal(stats_tenant_for(name)->name, name);
    }
    assert_ptr_equal(stats_tenant_for("t7"), stats_tenant_at(7));
    assert_null(stats_tenant_at(STATS_TENANTS_MAX)); /* "other" not used yet */
    struct stats_tenant *other = stats_tenant_for("one too many");
    assert_string_equal(other->name, STATS_OTHER_TENANT);
    assert_ptr_equal(stats_tenant_for("and another"), other);
    assert_ptr_equal(stats_tenant_at(STATS_TENANTS_MAX), other);
    assert_null(stats_tenant_at(STATS_TENANTS_MAX + 1));
    stats_tenants_free();
    assert_null(stats_tenant_at(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_counts),
        cmocka_unit_test(test_uncounted_session),
        cmocka_unit_test(test_tenant_table_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
