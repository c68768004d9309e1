/* proxy/params.c: startup values and PGOPTIONS become SQL fragments (search_path as a list),
 * the client's own SET/RESET are followed statement by statement, and the sync Query says only
 * what differs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "protocol/buf.h"
#include "protocol/startup.h"
#include "proxy/params.h"

static void startup(struct startup_packet *pkt, uint8_t *buf, size_t cap, const char *const *names,
                    const char *const *values, size_t n)
{
    struct pq_writer w;
    wr_init_fixed(&w, buf, cap);
    startup_write_message(&w, names, values, n);
    assert_true(wr_ok(&w));
    assert_int_equal(startup_read(buf + 4, w.len - 4, pkt), STARTUP_OK);
}

static char *sync_sql(const struct param_set *want, const struct param_set *have, char *out, size_t cap)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    if (!params_write_sync(want, have, &w)) {
        wr_destroy(&w);
        return NULL;
    }
    assert_true(wr_ok(&w));
    size_t n = w.len - 6; /* 'Q', length, text, NUL */
    assert_true(n < cap);
    memcpy(out, w.p + 5, n);
    out[n] = '\0';
    wr_destroy(&w);
    return out;
}

static void test_startup_and_options(void **state)
{
    /* Other modules index parameters by these. */
    assert_string_equal(param_names[PARAM_SEARCH_PATH], "search_path");
    assert_string_equal(param_names[PARAM_APPLICATION_NAME], "application_name");
    (void)state;
    const char *names[] = {"user", "TimeZone", "client_encoding", "options", "application_name"};
    const char *values[] = {"u", "Asia/Tokyo", "auto", "-c search_path=a,\\ \"B\" -cextra_float_digits=3 --DateStyle=ISO", "x"};
    uint8_t buf[512];
    struct startup_packet pkt;
    startup(&pkt, buf, sizeof buf, names, values, 5);
    struct param_set want = {0}, have = {0};
    assert_true(params_from_startup(&want, &pkt));
    assert_string_equal(params_reported(&want, "TimeZone"), "Asia/Tokyo");
    assert_null(params_reported(&want, "client_encoding")); /* "auto" is libpq's to resolve */
    char out[512];
    assert_string_equal(sync_sql(&want, &have, out, sizeof out),
                        "SET DateStyle TO 'ISO'; SET TimeZone TO 'Asia/Tokyo'; "
                        "SET extra_float_digits TO '3'; SET search_path TO 'a', 'B'");
    assert_true(params_copy(&have, &want));
    assert_null(sync_sql(&want, &have, out, sizeof out));
    params_clear(&want);
    assert_string_equal(sync_sql(&want, &have, out, sizeof out),
                        "RESET DateStyle; RESET TimeZone; RESET extra_float_digits; RESET search_path");
    params_clear(&have);
}

static void test_track_sql(void **state)
{
    (void)state;
    struct param_set ps = {0}, none = {0};
    char out[512];
    static const char sql[] =
        "SET search_path = core, public; set session TIME ZONE 'UTC'; SET LOCAL DateStyle TO 'SQL';"
        " SELECT 'SET extra_float_digits = 0'; /* SET IntervalStyle = x */ SET NAMES 'UTF8'";
    params_track_sql(&ps, sql, strlen(sql));
    assert_string_equal(sync_sql(&ps, &none, out, sizeof out),
                        "SET client_encoding TO 'UTF8'; SET TimeZone TO 'UTC'; SET search_path TO core, public");
    static const char reset[] = "RESET search_path; SET TimeZone TO DEFAULT";
    params_track_sql(&ps, reset, strlen(reset));
    assert_string_equal(sync_sql(&ps, &none, out, sizeof out), "SET client_encoding TO 'UTF8'");
    params_clear(&ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_startup_and_options),
        cmocka_unit_test(test_track_sql),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
