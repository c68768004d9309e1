/* Unit tests for the repeat limiter in proxy/log.c: the first of a text per window is written and
 * the rest counted; the count comes back when the window is over (on the next occurrence or from
 * the janitor's expiry sweep); levels and texts are told apart; with every slot busy the oldest
 * gives way and its count is reported, never lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/log.h"

static void test_first_written_rest_counted(void **state)
{
    static struct log_repeats r;
    memset(&r, 0, sizeof r);
    struct log_repeat_report rep;
    assert_true(log_repeat_admit(&r, LOG_WARNING, "could not connect: refused", 100.0, &rep));
    assert_int_equal(rep.count, 0);
    for (int i = 0; i < 1000; i++) {
        assert_false(log_repeat_admit(&r, LOG_WARNING, "could not connect: refused", 100.0 + i * 0.009, &rep));
        assert_int_equal(rep.count, 0);
    }
    /* Nothing over yet: no report. */
    assert_false(log_repeat_expired(&r, 109.0, &rep));
    /* The window is over: the next one is written, with the count of the held-back ones first. */
    assert_true(log_repeat_admit(&r, LOG_WARNING, "could not connect: refused", 110.5, &rep));
    assert_int_equal(rep.count, 1000);
    assert_int_equal(rep.level, LOG_WARNING);
    assert_string_equal(rep.text, "could not connect: refused");
    /* A new window: held again, reported by the sweep once it is over. */
    assert_false(log_repeat_admit(&r, LOG_WARNING, "could not connect: refused", 111.0, &rep));
    assert_false(log_repeat_admit(&r, LOG_WARNING, "could not connect: refused", 112.0, &rep));
    assert_true(log_repeat_expired(&r, 121.0, &rep));
    assert_int_equal(rep.count, 2);
    assert_false(log_repeat_expired(&r, 121.0, &rep));
    /* The sweep freed the slot: the text is new again. */
    assert_true(log_repeat_admit(&r, LOG_WARNING, "could not connect: refused", 122.0, &rep));
    assert_int_equal(rep.count, 0);
}

static void test_texts_and_levels_apart(void **state)
{
    static struct log_repeats r;
    memset(&r, 0, sizeof r);
    struct log_repeat_report rep;
    assert_true(log_repeat_admit(&r, LOG_INFO, "a", 1.0, &rep));
    assert_true(log_repeat_admit(&r, LOG_INFO, "b", 1.0, &rep));
    assert_true(log_repeat_admit(&r, LOG_WARNING, "a", 1.0, &rep));
    assert_false(log_repeat_admit(&r, LOG_INFO, "a", 2.0, &rep));
    assert_false(log_repeat_admit(&r, LOG_WARNING, "a", 2.0, &rep));
    assert_false(log_repeat_admit(&r, LOG_INFO, "b", 2.0, &rep));
    /* A window that held nothing reports nothing. */
    assert_true(log_repeat_admit(&r, LOG_INFO, "c", 1.0, &rep));
    int reports = 0;
    while (log_repeat_expired(&r, 20.0, &rep)) {
        assert_int_equal(rep.count, 1);
        reports++;
    }
    assert_int_equal(reports, 3);
}

static void test_eviction_reports(void **state)
{
    static struct log_repeats r;
    memset(&r, 0, sizeof r);
    struct log_repeat_report rep;
    char text[32];
    for (int i = 0; i < LOG_REPEAT_SLOTS; i++) {
        snprintf(text, sizeof text, "text %d", i);
        assert_true(log_repeat_admit(&r, LOG_INFO, text, 1.0 + i * 0.01, &rep));
    }
    assert_false(log_repeat_admit(&r, LOG_INFO, "text 0", 2.0, &rep)); /* held: 1 */
    /* A new text with every slot busy takes the oldest (text 0), whose count is reported. */
    assert_true(log_repeat_admit(&r, LOG_INFO, "new text", 3.0, &rep));
    assert_int_equal(rep.count, 1);
    assert_string_equal(rep.text, "text 0");
    /* Long texts are cut for the report, but told apart by the whole text. */
    char long1[600], long2[600];
    memset(long1, 'x', sizeof long1 - 1);
    long1[sizeof long1 - 1] = '\0';
    memcpy(long2, long1, sizeof long2);
    long2[500] = 'y';
    memset(&r, 0, sizeof r);
    assert_true(log_repeat_admit(&r, LOG_INFO, long1, 1.0, &rep));
    assert_true(log_repeat_admit(&r, LOG_INFO, long2, 1.0, &rep));
    assert_false(log_repeat_admit(&r, LOG_INFO, long1, 1.5, &rep));
    assert_true(log_repeat_expired(&r, 12.0, &rep));
    assert_int_equal(strlen(rep.text), LOG_REPEAT_TEXT - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_written_rest_counted),
        cmocka_unit_test(test_texts_and_levels_apart),
        cmocka_unit_test(test_eviction_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
