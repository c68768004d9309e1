/* Unit tests for proxy/txshare.c: clients whose transaction starts are byte-identical share one,
 * any difference (tenant, role, limits, application_name) keeps them apart, and the last
 * reference frees it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/jwt.h"
#include "proxy/config.h"
#include "proxy/txshare.h"

static const struct txstart *intern_for(const char *tenant, const char *role_name, int64_t timeout_ms,
                                        const char *app)
{
    struct jwt_identity id = {0};
    snprintf(id.tenant, sizeof id.tenant, "%s", tenant);
    snprintf(id.role, sizeof id.role, "%s", role_name);
    struct role_config role = {.statement_timeout_ms = timeout_ms};
    struct txstart t;
    assert_true(txstart_for_client(&t, &id, &role, app));
    const struct txstart *shared = txshare_intern(&t);
    assert_non_null(shared);
    assert_null(t.set_msg); /* taken or freed: the caller's copy holds nothing */
    return shared;
}

static void test_sharing(void **state)
{
    (void)state;
    const struct txstart *a = intern_for("DE", "analyst", 30000, "psql");
    const struct txstart *b = intern_for("DE", "analyst", 30000, "psql");
    assert_ptr_equal(a, b);
    assert_int_equal(txshare_count(), 1);
    const struct txstart *others[] = {
        intern_for("FR", "analyst", 30000, "psql"),
        intern_for("DE", "auditor", 30000, "psql"),
        intern_for("DE", "analyst", 5000, "psql"),
        intern_for("DE", "analyst", 30000, "dbeaver"),
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        assert_ptr_not_equal(others[i], a);
    assert_int_equal(txshare_count(), 5);
    txshare_put(a);
    assert_int_equal(txshare_count(), 5); /* b still holds it */
    assert_non_null(b->set_msg);
    /* A server connection keeps a reference of its own to what its last apply set. */
    const struct txstart *held = txshare_get(b);
    assert_ptr_equal(held, b);
    txshare_put(b);
    assert_int_equal(txshare_count(), 5);
    assert_non_null(held->apply_param);
    txshare_put(held);
    assert_int_equal(txshare_count(), 4);
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        txshare_put(others[i]);
    assert_int_equal(txshare_count(), 0);
    txshare_put(NULL);
}

/* Past the first table size: lookups still find each one after the table grows. */
static void test_growth(void **state)
{
    (void)state;
    enum { N = 300 };
    const struct txstart *held[N];
    char tenant[16];
    for (int i = 0; i < N; i++) {
        snprintf(tenant, sizeof tenant, "T%d", i);
        held[i] = intern_for(tenant, "analyst", 30000, "app");
    }
    assert_int_equal(txshare_count(), N);
    for (int i = 0; i < N; i++) {
        snprintf(tenant, sizeof tenant, "T%d", i);
        const struct txstart *again = intern_for(tenant, "analyst", 30000, "app");
        assert_ptr_equal(again, held[i]);
        txshare_put(again);
    }
    for (int i = 0; i < N; i++)
        txshare_put(held[i]);
    assert_int_equal(txshare_count(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sharing),
        cmocka_unit_test(test_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
