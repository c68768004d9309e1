/* Interned names (proxy/names.c): equal names are one pointer, each lives as long as its last
 * holder, the empty name holds nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/names.h"

static void test_sharing(void **state)
{
    (void)state;
    const char *a = names_get("DE");
    const char *b = names_get("DE");
    const char *c = names_get("FR");
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_string_equal(a, "DE");
    assert_int_equal(names_count(), 2);
    names_put(a);
    assert_int_equal(names_count(), 2); /* b still holds it */
    assert_string_equal(b, "DE");
    names_put(b);
    names_put(c);
    assert_int_equal(names_count(), 0);
    assert_ptr_equal(names_get(""), names_empty);
    names_put(names_empty);
    names_put(NULL);
    assert_int_equal(names_count(), 0);
}

/* Enough names to grow the table several times, all still found and freed. */
static void test_growth(void **state)
{
    (void)state;
    enum { N = 1000 };
    static const char *held[N];
    char buf[16];
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "t%d", i);
        held[i] = names_get(buf);
        assert_non_null(held[i]);
    }
    assert_int_equal(names_count(), N);
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "t%d", i);
        const char *again = names_get(buf);
        assert_ptr_equal(again, held[i]);
        names_put(again);
        names_put(held[i]);
    }
    assert_int_equal(names_count(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sharing), cmocka_unit_test(test_growth)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
