/* Unit tests for proxy/watchrule.c: a slot warns once per crossing of slot_wal_warn (never while
 * it stays above, nor for a slot that reserves no WAL), collations differ exactly when a sort could
 * (provider, datcollate, datctype, an ICU locale, a known version), sizes read right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/watchrule.h"

#define MB (INT64_C(1024) * 1024)

/* A slot's readings over successive polls and whether each one warns. */
static void test_slot_crossings(void **state)
{
    (void)state;
    static const struct {
        int64_t retained;
        bool warns, over;
    } polls[] = {
        {-1, false, false},     /* not reserved */
        {MB / 2, false, false}, /* below */
        {MB, false, false},     /* at the threshold is not above it */
        {MB + 1, true, true},   /* crosses */
        {5 * MB, false, true},  /* stays above: no second warning */
        {2 * MB, false, true},  /* still above */
        {0, false, false},      /* below again */
        {3 * MB, true, true},   /* crosses again */
        {-1, false, false},     /* the slot stopped reserving WAL */
        {INT64_MAX, true, true},
    };
    bool over = false;
    for (size_t i = 0; i < sizeof polls / sizeof polls[0]; i++) {
        bool now;
        bool warns = watchrule_slot_crossed(over, polls[i].retained, MB, &now);
        if (warns != polls[i].warns || now != polls[i].over)
            fail_msg("poll %zu (%lld bytes): warns %d over %d, expected %d %d", i, (long long)polls[i].retained,
                     warns, now, polls[i].warns, polls[i].over);
        over = now;
    }
}

/* A slot first seen above the threshold (pgmesh started, or the slot is new) warns at once. */
static void test_slot_first_seen_above(void **state)
{
    (void)state;
    bool over;
    assert_true(watchrule_slot_crossed(false, 11 * 1024 * MB, 10 * 1024 * MB, &over));
    assert_true(over);
}

static const struct watchrule_collation c_libc = {"C", "C", "libc", "", ""};
static const struct watchrule_collation utf8_libc = {"C.UTF-8", "C.UTF-8", "libc", "", "2.36"};
static const struct watchrule_collation utf8_libc_old = {"C.UTF-8", "C.UTF-8", "libc", "", "2.27"};
static const struct watchrule_collation en_icu = {"C", "C", "icu", "en-US", "153.112"};
static const struct watchrule_collation de_icu = {"C", "C", "icu", "de-DE", "153.112"};
static const struct watchrule_collation en_icu_new = {"C", "C", "icu", "en-US", "154.14"};
static const struct watchrule_collation ctype_only = {"C", "C.UTF-8", "libc", "", ""};

static void test_collations(void **state)
{
    (void)state;
    static const struct {
        const struct watchrule_collation *a, *b;
        const char *why; /* NULL: no mismatch */
    } cases[] = {
        {&c_libc, &c_libc, NULL},
        {&utf8_libc, &utf8_libc, NULL},
        {&c_libc, &utf8_libc, "datcollate C vs C.UTF-8; datctype C vs C.UTF-8"},
        {&c_libc, &ctype_only, "datctype C vs C.UTF-8"},
        {&utf8_libc, &utf8_libc_old, "collation version 2.36 vs 2.27"},
        {&c_libc, &en_icu, "provider libc vs icu"},
        {&en_icu, &de_icu, "ICU locale en-US vs de-DE"},
        {&en_icu, &en_icu_new, "collation version 153.112 vs 154.14"},
        {&en_icu, &en_icu, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[256];
        bool mismatch = watchrule_collation_mismatch(cases[i].a, cases[i].b, why, sizeof why);
        if (mismatch != (cases[i].why != NULL))
            fail_msg("case %zu: mismatch %d (%s)", i, mismatch, why);
        if (cases[i].why)
            assert_string_equal(why, cases[i].why);
        /* The same verdict whichever way round. */
        assert_int_equal(watchrule_collation_mismatch(cases[i].b, cases[i].a, why, sizeof why), mismatch);
    }
}

/* A version known on one side only (C has none) is no mismatch on its own; a short buffer is
 * never overrun and the verdict stands. */
static void test_collation_edges(void **state)
{
    (void)state;
    static const struct watchrule_collation utf8_unknown = {"C.UTF-8", "C.UTF-8", "libc", "", ""};
    char why[8];
    assert_false(watchrule_collation_mismatch(&utf8_libc, &utf8_unknown, why, sizeof why));
    assert_true(watchrule_collation_mismatch(&c_libc, &en_icu, why, sizeof why));
    assert_true(strlen(why) < sizeof why);
    assert_true(watchrule_collation_mismatch(&c_libc, &en_icu, why, 0));
}

static void test_format_size(void **state)
{
    (void)state;
    static const struct {
        int64_t bytes;
        const char *text;
    } cases[] = {
        {0, "0 bytes"},         {1023, "1023 bytes"},         {1024, "1.0 kB"},          {MB, "1.0 MB"},
        {13 * MB + 1, "13 MB"}, {5 * MB + MB / 10, "5.1 MB"}, {10 * 1024 * MB, "10 GB"}, {INT64_MAX, "8192 PB"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        watchrule_format_size(cases[i].bytes, buf, sizeof buf);
        assert_string_equal(buf, cases[i].text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_crossings), cmocka_unit_test(test_slot_first_seen_above),
        cmocka_unit_test(test_collations),     cmocka_unit_test(test_collation_edges),
        cmocka_unit_test(test_format_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
