/* Unit tests for protocol/error.c: builder bytes and refusals, round trips through the framer and
 * the reader, a table of server-style bodies, and every prefix of a valid body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/error.h"
#include "protocol/frame.h"
#include "protocol/sqlstate.h"
#include "protocol/wire.h"

#define BODY(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static const struct frame_limits limits = {
    .control_max = CONTROL_MAX_LEN,
    .large_max = LARGE_MAX_LEN,
    .password_max = PASSWORD_MAX_LEN,
};

static bool span_is(struct span s, const char *want)
{
    return want ? span_eq(s, want) : (s.len == 0 && s.p != NULL && s.p[0] == '\0');
}

static void test_roundtrip(void **state)
{
    static const struct pq_error cases[] = {
        {"FATAL", SQLSTATE_INVALID_PASSWORD, "token expired", "The token expired at 10:00:00 UTC (leeway 30 s).",
         "Get a new token."},
        {"ERROR", SQLSTATE_PROTOCOL_VIOLATION, "invalid message length", NULL, NULL},
        {"WARNING", SQLSTATE_ADMIN_SHUTDOWN, "", NULL, "hint only"},
    };
    static const char types[] = {BE_ERROR, BE_NOTICE};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t t = 0; t < sizeof types; t++) {
            struct pq_writer w;
            wr_init_dynamic(&w);
            error_write(&w, types[t], &cases[i]);
            assert_true(wr_ok(&w));
            struct frame f;
            assert_int_equal(frame_peek_be(w.p, w.len, &limits, &f), FRAME_OK);
            assert_int_equal(f.type, types[t]);
            assert_int_equal(f.total_len, w.len);
            const uint8_t *body = w.p + MSG_HEADER_LEN;
            struct pq_error_fields got;
            assert_true(error_read(body, f.body_len, &got));
            assert_true(span_is(got.severity, cases[i].severity));
            assert_true(span_is(got.sqlstate, cases[i].sqlstate));
            assert_true(span_is(got.message, cases[i].message));
            assert_true(span_is(got.detail, cases[i].detail));
            assert_true(span_is(got.hint, cases[i].hint));
            for (size_t n = 0; n < f.body_len; n++)
                assert_false(error_read(body, n, &got));
            wr_destroy(&w);
        }
    }
}

static void test_exact_bytes(void **state)
{
    uint8_t buf[128];
    struct pq_writer w;
    wr_init_fixed(&w, buf, sizeof buf);
    struct pq_error e = {"FATAL", "28000", "no", NULL, NULL};
    error_write(&w, 'E', &e);
    assert_true(wr_ok(&w));
    static const char want[] = "E\0\0\0\x1eSFATAL\0VFATAL\0C28000\0Mno\0\0";
    assert_int_equal(w.len, sizeof want - 1);
    assert_memory_equal(buf, want, w.len);
}

static void test_builder_refuses(void **state)
{
    static const struct {
        char type;
        struct pq_error e;
    } cases[] = {
        {'X', {"ERROR", "08P01", "m", NULL, NULL}},  {'\0', {"ERROR", "08P01", "m", NULL, NULL}},
        {'E', {NULL, "08P01", "m", NULL, NULL}},     {'E', {"", "08P01", "m", NULL, NULL}},
        {'E', {"ERROR", NULL, "m", NULL, NULL}},     {'E', {"ERROR", "08p01", "m", NULL, NULL}},
        {'E', {"ERROR", "0801", "m", NULL, NULL}},   {'E', {"ERROR", "08P011", "m", NULL, NULL}},
        {'E', {"ERROR", "08P0\n", "m", NULL, NULL}}, {'E', {"ERROR", "08P01", NULL, NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[128];
        struct pq_writer w;
        wr_init_fixed(&w, buf, sizeof buf);
        error_write(&w, cases[i].type, &cases[i].e);
        if (wr_ok(&w))
            fail_msg("case %zu accepted", i);
    }
    /* too small a buffer fails rather than truncating */
    uint8_t small[20];
    struct pq_writer w;
    wr_init_fixed(&w, small, sizeof small);
    struct pq_error e = {"ERROR", "08P01", "a message that does not fit", NULL, NULL};
    error_write(&w, 'E', &e);
    assert_false(wr_ok(&w));
}

static void test_reader_table(void **state)
{
    static const struct {
        const char *what;
        const uint8_t *body;
        size_t len;
        bool ok;
        const char *severity, *sqlstate, *message;
    } cases[] = {
        {"server style",
         BODY("SERREUR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0P15\0"
              "Fparse_relation.c\0L1392\0\0"),
         true, "ERROR", "42P01", "relation \"x\" does not exist"},
        {"localized only", BODY("SFEHLER\0C42501\0Mnein\0\0"), true, "FEHLER", "42501", "nein"},
        {"nothing", BODY("\0"), true, NULL, NULL, NULL},
        {"repeated field", BODY("Ma\0Mb\0\0"), true, NULL, NULL, "b"},
        {"empty body", BODY(""), false, NULL, NULL, NULL},
        {"no terminator", BODY("SERROR\0"), false, NULL, NULL, NULL},
        {"value without NUL", BODY("SERROR"), false, NULL, NULL, NULL},
        {"code without value", BODY("S"), false, NULL, NULL, NULL},
        {"trailing byte", BODY("SERROR\0\0x"), false, NULL, NULL, NULL},
        {"trailing NUL", BODY("SERROR\0\0\0"), false, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pq_error_fields f;
        memset(&f, 0x5A, sizeof f);
        bool ok = error_read(cases[i].body, cases[i].len, &f);
        if (ok != cases[i].ok)
            fail_msg("%s: want %s", cases[i].what, cases[i].ok ? "ok" : "rejected");
        if (!ok) {
            assert_int_equal(f.message.len, (size_t)0x5A5A5A5A5A5A5A5Aull); /* untouched */
            continue;
        }
        assert_true(span_is(f.severity, cases[i].severity));
        assert_true(span_is(f.sqlstate, cases[i].sqlstate));
        assert_true(span_is(f.message, cases[i].message));
        for (size_t n = 0; n < cases[i].len; n++)
            assert_false(error_read(cases[i].body, n, &f));
    }
}

/* A server's error about pgmesh's statement name, told with the client's name. */
static void test_rename(void **state)
{
    (void)state;
    struct pq_writer in, out;
    wr_init_dynamic(&in);
    wr_init_dynamic(&out);
    struct pq_error e = {.severity = "ERROR",
                         .sqlstate = "08P01",
                         .message =
                             "bind message supplies 0 parameters, but prepared statement \"pgmesh_ab\" requires 1",
                         .detail = "pgmesh_ab and pgmesh_ab"};
    error_write(&in, BE_ERROR, &e);
    assert_true(wr_ok(&in));
    error_rename(&out, BE_ERROR, in.p + MSG_HEADER_LEN, in.len - MSG_HEADER_LEN, "pgmesh_ab", "S_1");
    assert_true(wr_ok(&out));
    struct pq_error_fields f;
    assert_true(error_read(out.p + MSG_HEADER_LEN, out.len - MSG_HEADER_LEN, &f));
    assert_true(
        span_eq(f.message, "bind message supplies 0 parameters, but prepared statement \"S_1\" requires 1"));
    assert_true(span_eq(f.detail, "S_1 and S_1"));
    assert_true(span_eq(f.sqlstate, "08P01"));
    struct frame fr;
    assert_int_equal(frame_peek_be(out.p, out.len, &(struct frame_limits){10000, 10000, 10000}, &fr), FRAME_OK);
    assert_int_equal(fr.total_len, out.len);
    /* A truncated body marks the writer failed rather than emit half a message. */
    wr_reset(&out);
    error_rename(&out, BE_ERROR, in.p + MSG_HEADER_LEN, in.len - MSG_HEADER_LEN - 3, "pgmesh_ab", "S_1");
    assert_false(wr_ok(&out));
    wr_destroy(&in);
    wr_destroy(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),       cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_builder_refuses), cmocka_unit_test(test_reader_table),
        cmocka_unit_test(test_rename),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
