/* Unit tests for proxy/resolve.c's pure part: which host entries are names libpq would look up,
 * and the host, hostaddr and port lists handed to libpq (a name repeated per address, addresses
 * and socket directories left to libpq, a single port applied to all, a name that did not
 * resolve skipped, nothing at all when there is no name or the lists do not match). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/resolve.h"

static void test_is_name(void **state)
{
    (void)state;
    static const struct {
        const char *entry;
        bool name;
    } cases[] = {
        {"localhost", true},        {"db.example.com", true}, {"127.0.0.1", false}, {"::1", false},
        {"fe80::1", false},         {"/var/run/pg", false},   {"@abstract", false}, {"", false},
        {"127.0.0.1.nip.io", true}, {"10.0.0", true}, /* not an address to inet_pton */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (resolve_is_name(cases[i].entry) != cases[i].name)
            fail_msg("%s: expected %d", cases[i].entry, cases[i].name);
}

/* The answers: two addresses for "two.test", one for "localhost", none for "bad.test", a lookup
 * still running for "slow.test". */
static const char *fake_lookup(const char *name, bool *pending, const char **err, void *arg)
{
    (*(int *)arg)++;
    if (strcmp(name, "two.test") == 0)
        return "10.0.0.1,10.0.0.2";
    if (strcmp(name, "localhost") == 0)
        return "127.0.0.1";
    if (strcmp(name, "slow.test") == 0) {
        *pending = true;
        return NULL;
    }
    *err = "could not translate host name \"bad.test\" to address: Name or service not known";
    return NULL;
}

static void test_expand(void **state)
{
    (void)state;
    static const struct {
        const char *host, *port;
        enum resolve_status st;
        const char *out_host, *out_addr, *out_port; /* out_port NULL: none passed */
    } cases[] = {
        {"localhost", "5432", RESOLVE_READY, "localhost", "127.0.0.1", "5432"},
        {"localhost", NULL, RESOLVE_READY, "localhost", "127.0.0.1", NULL},
        {"two.test", "6432", RESOLVE_READY, "two.test,two.test", "10.0.0.1,10.0.0.2", "6432,6432"},
        {"127.0.0.1,two.test", "5432,5433", RESOLVE_READY, "127.0.0.1,two.test,two.test", ",10.0.0.1,10.0.0.2",
         "5432,5433,5433"},
        {"/tmp,localhost", "5432", RESOLVE_READY, "/tmp,localhost", ",127.0.0.1", "5432,5432"},
        {"bad.test,localhost", "1,2", RESOLVE_READY, "localhost", "127.0.0.1", "2"},
        {"bad.test", "5432", RESOLVE_FAILED, NULL, NULL, NULL},
        {"slow.test,localhost", "5432", RESOLVE_PENDING, NULL, NULL, NULL},
        {"127.0.0.1,::1", "5432", RESOLVE_NONE, NULL, NULL, NULL},
        {"/var/run/postgresql", NULL, RESOLVE_NONE, NULL, NULL, NULL},
        {"", NULL, RESOLVE_NONE, NULL, NULL, NULL},
        {NULL, NULL, RESOLVE_NONE, NULL, NULL, NULL},
        {"localhost,localhost", "1,2,3", RESOLVE_NONE, NULL, NULL, NULL}, /* libpq's error to report */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resolve_lists l = {0};
        char err[256] = "";
        int calls = 0;
        enum resolve_status st =
            resolve_expand(cases[i].host, cases[i].port, false, fake_lookup, &calls, &l, err, sizeof err);
        if (st != cases[i].st)
            fail_msg("case %zu (%s): status %d, expected %d", i, cases[i].host ? cases[i].host : "NULL", st,
                     cases[i].st);
        if (st == RESOLVE_FAILED)
            assert_string_equal(
                err, "could not translate host name \"bad.test\" to address: Name or service not known");
        if (st != RESOLVE_READY) {
            assert_null(l.host);
            continue;
        }
        assert_string_equal(l.host, cases[i].out_host);
        assert_string_equal(l.hostaddr, cases[i].out_addr);
        if (cases[i].out_port)
            assert_string_equal(l.port, cases[i].out_port);
        else
            assert_null(l.port);
        resolve_lists_free(&l);
    }
}

/* server.c's per-host timeout: the full list even without names, libpq's current host found in
 * it, the hosts up to it dropped. */
static void test_skip(void **state)
{
    (void)state;
    struct resolve_lists l = {0};
    char err[256];
    int calls = 0;
    assert_int_equal(
        resolve_expand("127.0.0.1,127.0.0.1", "5432,5433", false, fake_lookup, &calls, &l, err, sizeof err),
        RESOLVE_NONE);
    assert_int_equal(
        resolve_expand("127.0.0.1,127.0.0.1", "5432,5433", true, fake_lookup, &calls, &l, err, sizeof err),
        RESOLVE_READY);
    assert_int_equal(calls, 0);
    assert_int_equal(resolve_lists_count(&l), 2);
    assert_int_equal(resolve_lists_find(&l, 0, "127.0.0.1", "5433", NULL), 1);
    assert_int_equal(resolve_lists_find(&l, 0, "127.0.0.1", "5432", "127.0.0.1"), 0);
    assert_int_equal(resolve_lists_find(&l, 1, "127.0.0.1", "5432", NULL), -1);
    assert_true(resolve_lists_drop(&l, 1));
    assert_string_equal(l.host, "127.0.0.1");
    assert_string_equal(l.hostaddr, "");
    assert_string_equal(l.port, "5433");
    assert_false(resolve_lists_drop(&l, 1));
    resolve_lists_free(&l);

    assert_int_equal(resolve_expand("two.test,localhost", "6432", true, fake_lookup, &calls, &l, err, sizeof err),
                     RESOLVE_READY);
    assert_int_equal(resolve_lists_count(&l), 3);
    assert_int_equal(resolve_lists_find(&l, 0, "two.test", "6432", "10.0.0.2"), 1);
    assert_int_equal(resolve_lists_find(&l, 0, "localhost", "6432", NULL), 2);
    assert_true(resolve_lists_drop(&l, 2));
    assert_string_equal(l.host, "localhost");
    assert_string_equal(l.hostaddr, "127.0.0.1");
    assert_string_equal(l.port, "6432");
    resolve_lists_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_name),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_skip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
