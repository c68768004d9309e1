/* Unit tests for protocol/startup.c: round trips through the writers and the framer, a table of
 * hand-made bodies (bad NULs, trailing bytes, missing user, versions, duplicates), every prefix
 * of valid packets, and the parameter-count limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/frame.h"
#include "protocol/startup.h"
#include "protocol/wire.h"

/* Packs a string literal with embedded NULs into (bytes, length without the literal's own NUL). */
#define BODY(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static void test_message_roundtrip(void **state)
{
    const char *names[] = {"user", "database", "application_name", "options"};
    const char *values[] = {"alice", "sales", "", "-c x=1"};
    struct pq_writer w;
    wr_init_dynamic(&w);
    startup_write_message(&w, names, values, 4);
    assert_true(wr_ok(&w));

    struct frame f;
    assert_int_equal(frame_peek_startup(w.p, w.len, STARTUP_MAX_LEN, &f), FRAME_OK);
    assert_int_equal(f.total_len, w.len);
    struct startup_packet pkt;
    assert_int_equal(startup_read(w.p + 4, f.body_len, &pkt), STARTUP_OK);
    assert_int_equal(pkt.kind, STARTUP_MESSAGE);
    assert_int_equal(pkt.version, PROTOCOL_V3);
    assert_int_equal(pkt.nparams, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_true(span_eq(pkt.params[i].name, names[i]));
        assert_true(span_eq(pkt.params[i].value, values[i]));
        const struct span *v = startup_get(&pkt, names[i]);
        assert_non_null(v);
        assert_true(span_eq(*v, values[i]));
    }
    assert_null(startup_get(&pkt, "USER")); /* names are case-sensitive */
    assert_null(startup_get(&pkt, "replication"));

    /* every prefix of the body is rejected, never read past */
    for (size_t n = 0; n < f.body_len; n++) {
        struct startup_packet p2;
        assert_int_equal(startup_read(w.p + 4, n, &p2), STARTUP_BAD);
    }
    wr_destroy(&w);
}

static void test_cancel_roundtrip(void **state)
{
    uint8_t buf[16];
    struct pq_writer w;
    wr_init_fixed(&w, buf, sizeof buf);
    startup_write_cancel(&w, 4242, 0xfeedface);
    assert_true(wr_ok(&w));
    assert_int_equal(w.len, 16);
    struct frame f;
    assert_int_equal(frame_peek_startup(buf, w.len, STARTUP_MAX_LEN, &f), FRAME_OK);
    struct startup_packet pkt;
    assert_int_equal(startup_read(buf + 4, f.body_len, &pkt), STARTUP_OK);
    assert_int_equal(pkt.kind, STARTUP_CANCEL);
    assert_int_equal(pkt.cancel_pid, 4242);
    assert_int_equal(pkt.cancel_key, 0xfeedface);
    assert_null(startup_get(&pkt, "user"));
    for (size_t n = 0; n < f.body_len; n++)
        assert_int_equal(startup_read(buf + 4, n, &pkt), STARTUP_BAD);
}

static void test_table(void **state)
{
    static const struct {
        const char *what;
        const uint8_t *body;
        size_t len;
        enum startup_result want;
        enum startup_kind kind;
    } cases[] = {
        {"ssl", BODY("\x04\xd2\x16\x2f"), STARTUP_OK, STARTUP_SSL_REQUEST},
        {"gssenc", BODY("\x04\xd2\x16\x30"), STARTUP_OK, STARTUP_GSSENC_REQUEST},
        {"ssl trailing", BODY("\x04\xd2\x16\x2f\0"), STARTUP_BAD, 0},
        {"gssenc trailing", BODY("\x04\xd2\x16\x30xyz"), STARTUP_BAD, 0},
        {"cancel", BODY("\x04\xd2\x16\x2e\0\0\0\1\0\0\0\2"), STARTUP_OK, STARTUP_CANCEL},
        {"cancel short", BODY("\x04\xd2\x16\x2e\0\0\0\1\0\0\0"), STARTUP_BAD, 0},
        {"cancel trailing", BODY("\x04\xd2\x16\x2e\0\0\0\1\0\0\0\2\0"), STARTUP_BAD, 0},
        {"empty", BODY(""), STARTUP_BAD, 0},
        {"short code", BODY("\0\3\0"), STARTUP_BAD, 0},
        {"v3 minimal", BODY("\0\3\0\0user\0u\0\0"), STARTUP_OK, STARTUP_MESSAGE},
        {"v3.2", BODY("\0\3\0\2user\0u\0\0"), STARTUP_OK, STARTUP_MESSAGE},
        {"v3 empty other value", BODY("\0\3\0\0user\0u\0database\0\0\0"), STARTUP_OK, STARTUP_MESSAGE},
        {"v2", BODY("\0\2\0\0user\0u\0\0"), STARTUP_UNSUPPORTED_VERSION, 0},
        {"v4", BODY("\0\4\0\0user\0u\0\0"), STARTUP_UNSUPPORTED_VERSION, 0},
        {"negotiate-ish code", BODY("\x04\xd2\x16\x31"), STARTUP_UNSUPPORTED_VERSION, 0},
        {"no params", BODY("\0\3\0\0\0"), STARTUP_BAD, 0},
        {"no terminator at all", BODY("\0\3\0\0"), STARTUP_BAD, 0},
        {"no user", BODY("\0\3\0\0database\0d\0\0"), STARTUP_BAD, 0},
        {"empty user", BODY("\0\3\0\0user\0\0\0"), STARTUP_BAD, 0},
        {"missing list end", BODY("\0\3\0\0user\0u\0"), STARTUP_BAD, 0},
        {"value without NUL", BODY("\0\3\0\0user\0u"), STARTUP_BAD, 0},
        {"name without NUL", BODY("\0\3\0\0user\0u\0data"), STARTUP_BAD, 0},
        {"name without value", BODY("\0\3\0\0user\0u\0database\0"), STARTUP_BAD, 0},
        {"trailing after end", BODY("\0\3\0\0user\0u\0\0x"), STARTUP_BAD, 0},
        {"trailing NUL", BODY("\0\3\0\0user\0u\0\0\0"), STARTUP_BAD, 0},
        {"duplicate user", BODY("\0\3\0\0user\0a\0user\0b\0\0"), STARTUP_BAD, 0},
        {"duplicate other", BODY("\0\3\0\0user\0a\0x\0\1\0x\0\2\0\0"), STARTUP_BAD, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct startup_packet pkt;
        memset(&pkt, 0xA5, sizeof pkt);
        enum startup_result res = startup_read(cases[i].body, cases[i].len, &pkt);
        if (res != cases[i].want)
            fail_msg("%s: got %d, want %d", cases[i].what, (int)res, (int)cases[i].want);
        if (res == STARTUP_OK) {
            assert_int_equal(pkt.kind, cases[i].kind);
        } else {
            assert_int_equal(((const uint8_t *)&pkt)[0], 0xA5); /* untouched */
            assert_int_equal(pkt.nparams, (size_t)0xA5A5A5A5A5A5A5A5ull);
        }
        /* a valid body stops being valid at every shorter length */
        if (res == STARTUP_OK)
            for (size_t n = 0; n < cases[i].len; n++)
                assert_int_not_equal(startup_read(cases[i].body, n, &pkt), STARTUP_OK);
    }
}

/* Builds a v3 body with a user and `extra` more distinct parameters. */
static size_t build_many(uint8_t *buf, size_t cap, size_t extra)
{
    struct pq_writer w;
    wr_init_fixed(&w, buf, cap);
    wr_u32(&w, PROTOCOL_V3);
    wr_cstr(&w, "user");
    wr_cstr(&w, "u");
    for (size_t i = 0; i < extra; i++) {
        char name[24];
        snprintf(name, sizeof name, "p%zu", i);
        wr_cstr(&w, name);
        wr_cstr(&w, "v");
    }
    wr_u8(&w, 0);
    assert_true(wr_ok(&w));
    return w.len;
}

static void test_param_limit(void **state)
{
    uint8_t buf[4096];
    struct startup_packet pkt;
    size_t len = build_many(buf, sizeof buf, STARTUP_MAX_PARAMS - 1);
    assert_int_equal(startup_read(buf, len, &pkt), STARTUP_OK);
    assert_int_equal(pkt.nparams, STARTUP_MAX_PARAMS);
    assert_non_null(startup_get(&pkt, "p62"));
    len = build_many(buf, sizeof buf, STARTUP_MAX_PARAMS);
    assert_int_equal(startup_read(buf, len, &pkt), STARTUP_TOO_MANY_PARAMS);
}

static void test_writer_rejects_bad_names(void **state)
{
    uint8_t buf[128];
    struct pq_writer w;
    const char *names[] = {"user", ""};
    const char *values[] = {"u", "x"};
    wr_init_fixed(&w, buf, sizeof buf);
    startup_write_message(&w, names, values, 2);
    assert_false(wr_ok(&w));
    const char *nulls[] = {"user", NULL};
    wr_init_fixed(&w, buf, sizeof buf);
    startup_write_message(&w, names, nulls, 2);
    assert_false(wr_ok(&w));
    wr_init_fixed(&w, buf, 10); /* too small for any message with a user */
    startup_write_message(&w, names, values, 1);
    assert_false(wr_ok(&w));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_roundtrip),
        cmocka_unit_test(test_cancel_roundtrip),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_param_limit),
        cmocka_unit_test(test_writer_rejects_bad_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
