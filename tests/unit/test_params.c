/* proxy/params.c: startup values and PGOPTIONS become SQL fragments (search_path as a list),
 * the client's own SET/RESET are followed statement by statement, and the sync Query says only
 * what differs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

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
    const char *values[] = {"u", "Asia/Tokyo", "auto",
                            "-c search_path=a,\\ \"B\" -cextra_float_digits=3 --DateStyle=ISO", "x"};
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
    /* RESET ALL: the client's set goes back to what its startup packet asked for, a server
     * connection's to its own defaults, so the next sync sets the startup values again. */
    static const char more[] = "SET TimeZone = 'UTC'; SET search_path = x; RESET ALL";
    params_track_sql(&want, more, strlen(more), true);
    assert_string_equal(params_reported(&want, "TimeZone"), "Asia/Tokyo");
    params_track_sql(&have, more, strlen(more), false);
    assert_string_equal(sync_sql(&want, &have, out, sizeof out),
                        "SET DateStyle TO 'ISO'; SET TimeZone TO 'Asia/Tokyo'; "
                        "SET extra_float_digits TO '3'; SET search_path TO 'a', 'B'");
    assert_true(params_copy(&have, &want));
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
    params_track_sql(&ps, sql, strlen(sql), true);
    assert_string_equal(sync_sql(&ps, &none, out, sizeof out),
                        "SET client_encoding TO 'UTF8'; SET TimeZone TO 'UTC'; SET search_path TO core, public");
    static const char reset[] = "RESET search_path; SET TimeZone TO DEFAULT";
    params_track_sql(&ps, reset, strlen(reset), true);
    assert_string_equal(sync_sql(&ps, &none, out, sizeof out), "SET client_encoding TO 'UTF8'");
    params_clear(&ps);
}

/* Each SET/RESET form against a state where three parameters are already set; want is the sync
 * Query from nothing afterwards (NULL: all back to the server's defaults). */
static void test_track_forms(void **state)
{
    (void)state;
    static const char before[] = "SET NAMES 'pre'; SET TimeZone = 'pre'; SET search_path = pre";
#define BEFORE_SQL "SET client_encoding TO 'pre'; SET TimeZone TO 'pre'; SET search_path TO pre"
    static const struct {
        const char *sql, *want;
    } cases[] = {
        {"SET search_path = a", "SET client_encoding TO 'pre'; SET TimeZone TO 'pre'; SET search_path TO a"},
        {"set Search_Path to a, \"B\"",
         "SET client_encoding TO 'pre'; SET TimeZone TO 'pre'; SET search_path TO a, \"B\""},
        {"SET SESSION search_path TO x",
         "SET client_encoding TO 'pre'; SET TimeZone TO 'pre'; SET search_path TO x"},
        {"SET LOCAL search_path = x", BEFORE_SQL},
        {"SET SESSION LOCAL search_path = x", BEFORE_SQL},
        {"SET SESSION", BEFORE_SQL},
        {"SET", BEFORE_SQL},
        {"SET search_path", BEFORE_SQL},
        {"SET search_path =", BEFORE_SQL},
        {"SET search_path == a", BEFORE_SQL},
        {"SET search_path a", BEFORE_SQL},
        {"SET \"search_path\" = a", BEFORE_SQL}, /* a quoted name is not followed */
        {"SET work_mem = 1", BEFORE_SQL},
        {"SET time = 1", BEFORE_SQL},
        {"SET search_path = DEFAULT", "SET client_encoding TO 'pre'; SET TimeZone TO 'pre'"},
        {"SET search_path TO local", "SET client_encoding TO 'pre'; SET TimeZone TO 'pre'"},
        {"SET search_path TO local, a",
         "SET client_encoding TO 'pre'; SET TimeZone TO 'pre'; SET search_path TO local, a"},
        {"SET TIME ZONE 'UTC'", "SET client_encoding TO 'pre'; SET TimeZone TO 'UTC'; SET search_path TO pre"},
        {"SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE",
         "SET client_encoding TO 'pre'; SET TimeZone TO INTERVAL '+02:00' HOUR TO MINUTE; SET search_path TO pre"},
        {"SET TIME ZONE LOCAL", "SET client_encoding TO 'pre'; SET search_path TO pre"},
        {"SET TIME ZONE DEFAULT", "SET client_encoding TO 'pre'; SET search_path TO pre"},
        {"SET TIME ZONE", BEFORE_SQL},
        {"SET SESSION TIME ZONE 'b'", "SET client_encoding TO 'pre'; SET TimeZone TO 'b'; SET search_path TO pre"},
        {"SET NAMES 'LATIN1'", "SET client_encoding TO 'LATIN1'; SET TimeZone TO 'pre'; SET search_path TO pre"},
        {"SET NAMES", BEFORE_SQL},
        {"SET timezone = 'c'", "SET client_encoding TO 'pre'; SET TimeZone TO 'c'; SET search_path TO pre"},
        {"SET application_name = 'me'", "SET client_encoding TO 'pre'; SET TimeZone TO 'pre'; SET search_path TO "
                                        "pre; SET application_name TO 'me'"},
        {"RESET search_path", "SET client_encoding TO 'pre'; SET TimeZone TO 'pre'"},
        {"reset TIMEZONE", "SET client_encoding TO 'pre'; SET search_path TO pre"},
        {"RESET search_path extra", BEFORE_SQL},
        {"RESET work_mem", BEFORE_SQL},
        {"RESET", BEFORE_SQL},
        {"RESET ALL", NULL}, /* no startup values here: all back to the server's defaults */
        {"RESET \"search_path\"", BEFORE_SQL},
        {"SELECT 1; RESET TimeZone; RESET search_path; SET NAMES DEFAULT", NULL},
        {"RESET search_path; SET search_path = 'unterminated",
         "SET client_encoding TO 'pre'; SET TimeZone TO 'pre'"},
        {"SET search_path = a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q "
         "r "
         "s t u v w x y z a b c d e f g h i j k l",
         BEFORE_SQL}, /* over 64 tokens: not followed */
    };
#undef BEFORE_SQL
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("case: %s\n", cases[i].sql);
        struct param_set ps = {0}, none = {0};
        char out[512];
        params_track_sql(&ps, before, strlen(before), true);
        params_track_sql(&ps, cases[i].sql, strlen(cases[i].sql), true);
        char *got = sync_sql(&ps, &none, out, sizeof out);
        if (cases[i].want)
            assert_string_equal(got, cases[i].want);
        else
            assert_null(got);
        params_clear(&ps);
    }
}

/* Startup values: options (PGOPTIONS syntax) and search_path as a list. want is the sync Query
 * from nothing, NULL when nothing is set; bad means params_from_startup fails. */
static void test_startup_forms(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value, *want;
        bool bad;
    } cases[] = {
        {"options", "-c search_path=a,b", "SET search_path TO 'a', 'b'", false},
        {"options", "-csearch_path=a", "SET search_path TO 'a'", false},
        {"options", "--search_path=a", "SET search_path TO 'a'", false},
        {"options", "  -c \t search_path=a  ", "SET search_path TO 'a'", false},
        {"options", "-c work_mem=1", NULL, false},
        {"options", "search_path=a", NULL, false},
        {"options", "-c", NULL, false},
        {"options", "-c DateStyle", NULL, false},
        {"options", "-c -c DateStyle=x", NULL, false},
        {"options", "-c DateStyle=x -c TimeZone=y", "SET DateStyle TO 'x'; SET TimeZone TO 'y'", false},
        {"options", "-c application_name=a\\ b", "SET application_name TO 'a b'", false},
        {"options", "-c TimeZone=a\\\\b", "SET TimeZone TO E'a\\\\b'", false},
        {"options", "-c TimeZone=a\\", "SET TimeZone TO E'a\\\\'", false},
        {"options", "-c TimeZone=it's", "SET TimeZone TO 'it''s'", false},
        {"options", "-c TimeZone=\xff", NULL, true},
        {"options", "-c search_path=\xff", NULL, true},
        {"options", "", NULL, false},
        {"search_path", "a, b", "SET search_path TO 'a', 'b'", false},
        {"search_path", " \"B\" ,\tc\t", "SET search_path TO 'B', 'c'", false},
        {"search_path", "a,,b", "SET search_path TO 'a', '', 'b'", false},
        {"search_path", ",a", "SET search_path TO '', 'a'", false},
        {"search_path", "a,", "SET search_path TO 'a'", false},
        {"search_path", "\"a,b\"", "SET search_path TO '\"a', 'b\"'", false},
        {"search_path", "\"\"", "SET search_path TO ''", false},
        {"search_path", "", "SET search_path TO ''", false},
        {"search_path", "  ", "SET search_path TO ''", false},
        {"search_path", "it's", "SET search_path TO 'it''s'", false},
        {"search_path", "a\\b", "SET search_path TO E'a\\\\b'", false},
        {"search_path", "\xc3(", NULL, true},
        {"application_name", "x", NULL, false}, /* txstart's */
        {"client_encoding", "AUTO", NULL, false},
        {"client_encoding", "UTF8", "SET client_encoding TO 'UTF8'", false},
        {"timezone", "UTC", "SET TimeZone TO 'UTC'", false},
        {"work_mem", "1", NULL, false},
        {"IntervalStyle", "\xc3(", NULL, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("case: %s=%s\n", cases[i].name, cases[i].value);
        const char *names[] = {"user", cases[i].name};
        const char *values[] = {"u", cases[i].value};
        uint8_t buf[512];
        struct startup_packet pkt;
        startup(&pkt, buf, sizeof buf, names, values, 2);
        struct param_set ps = {0}, none = {0};
        char out[512];
        if (cases[i].bad) {
            assert_false(params_from_startup(&ps, &pkt));
            params_clear(&ps);
            continue;
        }
        assert_true(params_from_startup(&ps, &pkt));
        char *got = sync_sql(&ps, &none, out, sizeof out);
        if (cases[i].want)
            assert_string_equal(got, cases[i].want);
        else
            assert_null(got);
        /* ParameterStatus reports the value as given, not as quoted. */
        if (got && strcmp(cases[i].name, "options") != 0)
            assert_string_equal(params_reported(&ps, cases[i].name), cases[i].value);
        params_clear(&ps);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_startup_and_options),
        cmocka_unit_test(test_track_sql),
        cmocka_unit_test(test_track_forms),
        cmocka_unit_test(test_startup_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
