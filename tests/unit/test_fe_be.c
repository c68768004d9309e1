/* Unit tests for protocol/fe.c and protocol/be.c: every writer's exact bytes, round trips through
 * the framer and the readers, a table of hand-made bodies for every reader (missing NULs, lying
 * counts, trailing bytes), and every prefix of every valid body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/be.h"
#include "protocol/fe.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

#define BODY(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static const struct frame_limits limits = {
    .control_max = CONTROL_MAX_LEN,
    .large_max = LARGE_MAX_LEN,
    .password_max = PASSWORD_MAX_LEN,
};

/* The writer holds exactly one message of the given type; returns its body. */
static const uint8_t *one_message(const struct pq_writer *w, bool frontend, char type, size_t *len)
{
    assert_true(wr_ok(w));
    struct frame f;
    enum frame_result res =
        frontend ? frame_peek_fe(w->p, w->len, &limits, &f) : frame_peek_be(w->p, w->len, &limits, &f);
    assert_int_equal(res, FRAME_OK);
    assert_int_equal(f.type, type);
    assert_int_equal(f.total_len, w->len);
    *len = f.body_len;
    return w->p + MSG_HEADER_LEN;
}

/* Uniform wrappers so one table can drive every reader. */
static bool read_query(const uint8_t *b, size_t n)
{
    struct span s;
    return fe_read_query(b, n, &s);
}
static bool read_password(const uint8_t *b, size_t n)
{
    struct span s;
    return fe_read_password(b, n, &s);
}
static bool read_parse(const uint8_t *b, size_t n)
{
    struct fe_parse p;
    return fe_read_parse(b, n, &p);
}
static bool read_ready(const uint8_t *b, size_t n)
{
    char c;
    return be_read_ready(b, n, &c);
}
static bool read_param_status(const uint8_t *b, size_t n)
{
    struct span a, v;
    return be_read_parameter_status(b, n, &a, &v);
}
static bool read_command_complete(const uint8_t *b, size_t n)
{
    struct span s;
    return be_read_command_complete(b, n, &s);
}
static bool read_auth(const uint8_t *b, size_t n)
{
    uint32_t c;
    return be_read_auth(b, n, &c);
}

static void test_reader_table(void **state)
{
    static const struct {
        const char *what;
        bool (*read)(const uint8_t *, size_t);
        const uint8_t *body;
        size_t len;
        bool ok;
    } cases[] = {
        {"query", read_query, BODY("select 1\0"), true},
        {"query empty", read_query, BODY("\0"), true},
        {"query no NUL", read_query, BODY("select 1"), false},
        {"query trailing", read_query, BODY("select 1\0x"), false},
        {"query two strings", read_query, BODY("a\0b\0"), false},
        {"query empty body", read_query, BODY(""), false},
        {"password", read_password, BODY("eyJhbGciOi.x.y\0"), true},
        {"password no NUL", read_password, BODY("secret"), false},
        {"password trailing", read_password, BODY("secret\0\0"), false},
        {"parse", read_parse, BODY("s1\0select $1\0\0\1\0\0\0\x17"), true},
        {"parse unnamed no types", read_parse, BODY("\0select 1\0\0\0"), true},
        {"parse count lies high", read_parse, BODY("\0q\0\0\2\0\0\0\x17"), false},
        {"parse count lies low", read_parse, BODY("\0q\0\0\1\0\0\0\x17\0\0\0\x17"), false},
        {"parse count huge", read_parse, BODY("\0q\0\xff\xff"), false},
        {"parse count cut", read_parse, BODY("\0q\0\0"), false},
        {"parse query no NUL", read_parse, BODY("\0select"), false},
        {"parse name no NUL", read_parse, BODY("s1"), false},
        {"ready I", read_ready, BODY("I"), true},
        {"ready T", read_ready, BODY("T"), true},
        {"ready E", read_ready, BODY("E"), true},
        {"ready bad status", read_ready, BODY("X"), false},
        {"ready NUL status", read_ready, BODY("\0"), false},
        {"ready trailing", read_ready, BODY("II"), false},
        {"param status", read_param_status, BODY("TimeZone\0UTC\0"), true},
        {"param status empty value", read_param_status, BODY("application_name\0\0"), true},
        {"param status empty name", read_param_status, BODY("\0x\0"), false},
        {"param status no value", read_param_status, BODY("TimeZone\0"), false},
        {"param status value no NUL", read_param_status, BODY("TimeZone\0UTC"), false},
        {"param status trailing", read_param_status, BODY("a\0b\0c"), false},
        {"command complete", read_command_complete, BODY("SELECT 1\0"), true},
        {"command complete no NUL", read_command_complete, BODY("SELECT 1"), false},
        {"command complete trailing", read_command_complete, BODY("SET\0\0"), false},
        {"auth ok", read_auth, BODY("\0\0\0\0"), true},
        {"auth ok trailing", read_auth, BODY("\0\0\0\0\0"), false},
        {"auth cleartext", read_auth, BODY("\0\0\0\3"), true},
        {"auth md5", read_auth, BODY("\0\0\0\5salt"), true},
        {"auth md5 short salt", read_auth, BODY("\0\0\0\5sal"), false},
        {"auth md5 long salt", read_auth, BODY("\0\0\0\5salts"), false},
        {"auth sasl", read_auth, BODY("\0\0\0\x0aSCRAM-SHA-256\0\0"), true},
        {"auth sasl final", read_auth, BODY("\0\0\0\x0cv=abc"), true},
        {"auth unknown code", read_auth, BODY("\0\0\0\x63"), false},
        {"auth short", read_auth, BODY("\0\0\0"), false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].read(cases[i].body, cases[i].len) != cases[i].ok)
            fail_msg("%s: want %s", cases[i].what, cases[i].ok ? "ok" : "rejected");
        if (!cases[i].ok)
            continue;
        /* every strict prefix of a valid body is rejected (variable-length SASL payloads aside,
         * whose prefixes down to the code are themselves valid) */
        bool variable = cases[i].read == read_auth && cases[i].body[3] >= 8;
        for (size_t n = 0; n < cases[i].len; n++)
            if (!(variable && n >= 4) && cases[i].read(cases[i].body, n))
                fail_msg("%s: prefix of %zu bytes accepted", cases[i].what, n);
    }
}

static void test_outputs_untouched_on_failure(void **state)
{
    struct span s = {(const uint8_t *)"keep", 4}, v = s;
    assert_false(fe_read_query(BODY("x"), &s));
    assert_int_equal(s.len, 4);
    assert_false(fe_read_password(BODY("x"), &s));
    assert_int_equal(s.len, 4);
    struct fe_parse p = {.nparams = 99};
    assert_false(fe_read_parse(BODY("\0q\0\0\1"), &p));
    assert_int_equal(p.nparams, 99);
    char c = '?';
    assert_false(be_read_ready(BODY("Q"), &c));
    assert_int_equal(c, '?');
    assert_false(be_read_parameter_status(BODY("a\0"), &s, &v));
    assert_int_equal(s.len, 4);
    uint32_t code = 77;
    assert_false(be_read_auth(BODY("\0\0"), &code));
    assert_int_equal(code, 77);
}

static void test_fe_roundtrips(void **state)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    size_t len;
    const uint8_t *body;

    fe_write_query(&w, "SET LOCAL role = 'x'");
    body = one_message(&w, true, FE_QUERY, &len);
    struct span sql;
    assert_true(fe_read_query(body, len, &sql));
    assert_true(span_eq(sql, "SET LOCAL role = 'x'"));

    wr_reset(&w);
    fe_write_parse(&w, "stmt", "select $1");
    body = one_message(&w, true, FE_PARSE, &len);
    struct fe_parse p;
    assert_true(fe_read_parse(body, len, &p));
    assert_true(span_eq(p.name, "stmt"));
    assert_true(span_eq(p.query, "select $1"));
    assert_int_equal(p.nparams, 0);
    assert_int_equal(p.param_types.len, 0);

    wr_reset(&w);
    fe_write_password(&w, "tok.en.sig");
    body = one_message(&w, true, FE_PASSWORD, &len);
    struct span pw;
    assert_true(fe_read_password(body, len, &pw));
    assert_true(span_eq(pw, "tok.en.sig"));

    /* a hand-built Parse with parameter types */
    wr_reset(&w);
    wr_begin(&w, FE_PARSE);
    wr_cstr(&w, "");
    wr_cstr(&w, "select $1, $2");
    wr_u16(&w, 2);
    wr_u32(&w, 23);
    wr_u32(&w, 25);
    wr_end(&w);
    body = one_message(&w, true, FE_PARSE, &len);
    assert_true(fe_read_parse(body, len, &p));
    assert_int_equal(p.nparams, 2);
    assert_int_equal(p.param_types.len, 8);
    assert_memory_equal(p.param_types.p, "\0\0\0\x17\0\0\0\x19", 8);
    wr_destroy(&w);
}

static void test_fe_writer_bytes(void **state)
{
    static const struct {
        const char *what;
        int which;
        const uint8_t *want;
        size_t len;
    } cases[] = {
        {"sync", 0, BODY("S\0\0\0\4")},
        {"flush", 1, BODY("H\0\0\0\4")},
        {"terminate", 2, BODY("X\0\0\0\4")},
        {"execute", 3, BODY("E\0\0\0\x0bp1\0\0\0\0\x05")},
        {"bind simple", 4, BODY("B\0\0\0\x0fp\0st\0\0\0\0\0\0\0")},
        {"parse", 5, BODY("P\0\0\0\x0fs\0select\0\0\0")},
        {"query", 6, BODY("Q\0\0\0\x05\0")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[64];
        struct pq_writer w;
        wr_init_fixed(&w, buf, sizeof buf);
        switch (cases[i].which) {
        case 0:
            fe_write_sync(&w);
            break;
        case 1:
            fe_write_flush(&w);
            break;
        case 2:
            fe_write_terminate(&w);
            break;
        case 3:
            fe_write_execute(&w, "p1", 5);
            break;
        case 4:
            fe_write_bind_simple(&w, "p", "st");
            break;
        case 5:
            fe_write_parse(&w, "s", "select");
            break;
        case 6:
            fe_write_query(&w, "");
            break;
        }
        assert_true(wr_ok(&w));
        if (w.len != cases[i].len || memcmp(buf, cases[i].want, w.len) != 0)
            fail_msg("%s: unexpected bytes", cases[i].what);
        size_t len;
        (void)one_message(&w, true, (char)buf[0], &len);
    }
}

static void test_be_roundtrips(void **state)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    size_t len;
    const uint8_t *body;

    static const char statuses[] = {TX_IDLE, TX_IN_BLOCK, TX_FAILED};
    for (size_t i = 0; i < sizeof statuses; i++) {
        wr_reset(&w);
        be_write_ready(&w, statuses[i]);
        body = one_message(&w, false, BE_READY, &len);
        char c;
        assert_true(be_read_ready(body, len, &c));
        assert_int_equal(c, statuses[i]);
    }
    wr_reset(&w);
    be_write_ready(&w, 'X');
    assert_false(wr_ok(&w));

    wr_reset(&w);
    be_write_parameter_status(&w, "server_version", "15.4");
    body = one_message(&w, false, BE_PARAMETER_STATUS, &len);
    struct span name, value;
    assert_true(be_read_parameter_status(body, len, &name, &value));
    assert_true(span_eq(name, "server_version"));
    assert_true(span_eq(value, "15.4"));

    wr_reset(&w);
    be_write_command_complete(&w, "INSERT 0 1");
    body = one_message(&w, false, BE_COMMAND_COMPLETE, &len);
    struct span tag;
    assert_true(be_read_command_complete(body, len, &tag));
    assert_true(span_eq(tag, "INSERT 0 1"));

    static const uint32_t codes[] = {AUTH_OK, AUTH_CLEARTEXT_PASSWORD};
    for (size_t i = 0; i < 2; i++) {
        wr_reset(&w);
        be_write_auth(&w, codes[i]);
        body = one_message(&w, false, BE_AUTH, &len);
        uint32_t code;
        assert_true(be_read_auth(body, len, &code));
        assert_int_equal(code, codes[i]);
    }

    wr_reset(&w);
    be_write_parse_complete(&w);
    body = one_message(&w, false, BE_PARSE_COMPLETE, &len);
    assert_int_equal(len, 0);
    assert_memory_equal(w.p, "1\0\0\0\4", 5);

    wr_reset(&w);
    be_write_backend_key(&w, 0x01020304, 0xa0b0c0d0);
    body = one_message(&w, false, BE_BACKEND_KEY, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(body, "\1\2\3\4\xa0\xb0\xc0\xd0", 8);
    wr_destroy(&w);
}

/* The result builders of the admin console: bytes as PostgreSQL would send them. */
static void test_be_result_builders(void **state)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    size_t len;
    static const struct be_column cols[] = {{"id", BE_TYPE_INT8}, {"name", BE_TYPE_TEXT}};
    be_write_row_description(&w, cols, NULL, 2);
    const uint8_t *body = one_message(&w, false, BE_ROW_DESC, &len);
    static const uint8_t want_desc[] = {
        0,   2,   'i', 'd', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0,    8,    0xff, 0xff, 0xff, 0xff, 0, 0,
        'n', 'a', 'm', 'e', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0};
    assert_int_equal(len, sizeof want_desc);
    assert_memory_equal(body, want_desc, sizeof want_desc);

    wr_reset(&w);
    static const struct be_column cols3[] = {{"a", BE_TYPE_INT8}, {"b", BE_TYPE_TEXT}, {"c", BE_TYPE_TEXT}};
    const char *values[] = {"42", NULL, ""};
    be_write_data_row(&w, cols3, NULL, values, 3);
    body = one_message(&w, false, BE_DATA_ROW, &len);
    static const uint8_t want_row[] = {0, 3, 0, 0, 0, 2, '4', '2', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    assert_int_equal(len, sizeof want_row);
    assert_memory_equal(body, want_row, sizeof want_row);

    static const struct {
        void (*write)(struct pq_writer *);
        char type;
    } empties[] = {{be_write_bind_complete, BE_BIND_COMPLETE},
                   {be_write_close_complete, BE_CLOSE_COMPLETE},
                   {be_write_no_data, BE_NO_DATA},
                   {be_write_empty_query, BE_EMPTY_QUERY}};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        wr_reset(&w);
        empties[i].write(&w);
        (void)one_message(&w, false, empties[i].type, &len);
        assert_int_equal(len, 0);
    }
    wr_reset(&w);
    be_write_no_parameters(&w);
    body = one_message(&w, false, BE_PARAMETER_DESC, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(body, "\0\0", 2);

    /* Binary: int8 in 8 bytes, text as it is; the RowDescription says which. */
    static const uint8_t binary[] = {1, 1, 1};
    wr_reset(&w);
    const char *negative[] = {"-2", "x", NULL};
    be_write_data_row(&w, cols3, binary, negative, 3);
    body = one_message(&w, false, BE_DATA_ROW, &len);
    static const uint8_t want_bin[] = {0,    3,    0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xfe, 0, 0, 0, 1, 'x',  0xff, 0xff, 0xff, 0xff};
    assert_int_equal(len, sizeof want_bin);
    assert_memory_equal(body, want_bin, sizeof want_bin);
    wr_reset(&w);
    be_write_row_description(&w, cols, binary, 2);
    body = one_message(&w, false, BE_ROW_DESC, &len);
    assert_int_equal(body[len - 1], 1);
    wr_reset(&w);
    const char *not_a_number[] = {"4x", "y", "z"};
    be_write_data_row(&w, cols3, binary, not_a_number, 3);
    assert_false(wr_ok(&w));

    /* A fixed buffer too small for the row fails the writer instead of cutting the row. */
    wr_destroy(&w);
    uint8_t small[8];
    wr_init_fixed(&w, small, sizeof small);
    be_write_data_row(&w, cols3, NULL, values, 3);
    assert_false(wr_ok(&w));
}

/* The heads pgmesh reads of Bind (from part of the body), Describe and Close. */
static void test_bind_names_and_targets(void **state)
{
    (void)state;
    static const uint8_t bind[] = "portal\0S_1\0\0\0\0\0\0"; /* then no formats, values, results */
    size_t len = sizeof bind - 1, used = 0;
    struct span portal, stmt;
    for (size_t avail = 0; avail <= len; avail++) {
        enum fe_head r = fe_read_bind_names(bind, avail, len, &portal, &stmt, &used);
        assert_int_equal(r, avail < 11 ? FE_HEAD_MORE : FE_HEAD_OK);
    }
    assert_int_equal(used, 11);
    assert_true(span_eq(portal, "portal"));
    assert_true(span_eq(stmt, "S_1"));
    static const uint8_t no_nul[] = "abc\0def";
    assert_int_equal(fe_read_bind_names(no_nul, 7, 7, &portal, &stmt, &used), FE_HEAD_BAD);
    assert_int_equal(fe_read_bind_names(no_nul, 5, 7, &portal, &stmt, &used), FE_HEAD_MORE);

    struct fe_bind b;
    static const uint8_t whole[] = "portal\0S_1\0\0\0\0\0\0\0"; /* no formats, values, results */
    assert_true(fe_read_bind(whole, sizeof whole - 1, &b));
    assert_false(fe_read_bind(whole, sizeof whole - 2, &b));
    assert_true(span_eq(b.portal, "portal") && span_eq(b.stmt, "S_1"));
    assert_int_equal(b.nparams, 0);
    assert_int_equal(b.nresult_formats, 0);
    assert_int_equal(fe_bind_result_format(&b, 3), 0);
    /* One text parameter (a NULL and "ab"), results: text then binary. */
    static const uint8_t typed[] = "\0s\0\0\1\0\0\0\2\xff\xff\xff\xff\0\0\0\2ab\0\2\0\0\0\1";
    size_t tlen = sizeof typed - 1;
    assert_true(fe_read_bind(typed, tlen, &b));
    assert_int_equal(b.nparams, 2);
    assert_int_equal(b.nresult_formats, 2);
    assert_int_equal(fe_bind_result_format(&b, 0), 0);
    assert_int_equal(fe_bind_result_format(&b, 1), 1);
    for (size_t n = 0; n < tlen; n++)
        assert_false(fe_read_bind(typed, n, &b)); /* every prefix is short */
    static const uint8_t bad_format[] = "\0s\0\0\0\0\0\0\1\0\2";
    assert_false(fe_read_bind(bad_format, sizeof bad_format - 1, &b));
    static const uint8_t bad_len[] = "\0s\0\0\0\0\1\xff\xff\xff\xfe\0\0";
    assert_false(fe_read_bind(bad_len, sizeof bad_len - 1, &b));

    char kind = 0;
    struct span name;
    assert_true(fe_read_target((const uint8_t *)"SS_1", 5, &kind, &name));
    assert_int_equal(kind, 'S');
    assert_true(span_eq(name, "S_1"));
    assert_true(fe_read_target((const uint8_t *)"P", 2, &kind, &name));
    assert_int_equal(name.len, 0);
    assert_false(fe_read_target((const uint8_t *)"XS_1", 5, &kind, &name));    /* neither S nor P */
    assert_false(fe_read_target((const uint8_t *)"SS_1\0x", 6, &kind, &name)); /* trailing byte */
    assert_false(fe_read_target((const uint8_t *)"SS_1", 4, &kind, &name));    /* no NUL */

    struct pq_writer w;
    wr_init_dynamic(&w);
    fe_write_close(&w, 'S', "S_1");
    assert_true(wr_ok(&w));
    assert_int_equal(w.len, 10);
    assert_memory_equal(w.p, "C\0\0\0\x09SS_1", 10);
    wr_destroy(&w);
}

/* A Bind renamed on its way through: the head written by fe_write_bind_head and the rest of the
 * client's body sent after it read back as one Bind, from the head alone as from all of it. */
static void test_bind_head_roundtrip(void **state)
{
    (void)state;
    /* After the names: no parameter formats, one value "abc", no result formats. */
    static const uint8_t rest[] = "\0\0\0\1\0\0\0\3abc\0\0";
    const size_t rest_len = sizeof rest - 1;
    const struct span portal = {(const uint8_t *)"cur1", 4};
    struct pq_writer w;
    wr_init_dynamic(&w);
    fe_write_bind_head(&w, portal, "S_7", rest_len);
    assert_true(wr_ok(&w));
    const size_t head_len = w.len;
    assert_int_equal(head_len, MSG_HEADER_LEN + 5 + 4);

    /* The framer trusts the head for the whole message before the rest arrives. */
    struct frame f;
    assert_int_equal(frame_peek_fe(w.p, head_len, &limits, &f), FRAME_OK);
    assert_int_equal(f.total_len, head_len + rest_len);

    wr_bytes(&w, rest, rest_len);
    size_t len;
    const uint8_t *body = one_message(&w, true, FE_BIND, &len);
    struct span p, st;
    size_t used = 0;
    for (size_t avail = head_len - MSG_HEADER_LEN; avail <= len; avail++)
        assert_int_equal(fe_read_bind_names(body, avail, len, &p, &st, &used), FE_HEAD_OK);
    assert_true(span_eq(p, "cur1"));
    assert_true(span_eq(st, "S_7"));
    assert_int_equal(used, head_len - MSG_HEADER_LEN);

    struct pq_reader r;
    rd_init(&r, body + used, len - used);
    assert_int_equal(rd_u16(&r), 0);
    assert_int_equal(rd_u16(&r), 1);
    assert_int_equal(rd_i32(&r), 3);
    assert_memory_equal(rd_bytes(&r, 3).p, "abc", 3);
    assert_int_equal(rd_u16(&r), 0);
    assert_true(rd_finish(&r));

    /* The unnamed portal, exact bytes. */
    wr_reset(&w);
    fe_write_bind_head(&w, (struct span){(const uint8_t *)"", 0}, "s", 6);
    assert_true(wr_ok(&w));
    assert_int_equal(w.len, 8);
    assert_memory_equal(w.p, "B\0\0\0\x0d\0s\0", 8); /* 4 + 1 + 2 + 6 */

    /* A portal with a NUL inside, no statement name, or a rest no length word holds. */
    wr_reset(&w);
    fe_write_bind_head(&w, (struct span){(const uint8_t *)"a\0b", 3}, "s", 0);
    assert_false(wr_ok(&w));
    wr_reset(&w);
    fe_write_bind_head(&w, portal, NULL, 0);
    assert_false(wr_ok(&w));
    wr_reset(&w);
    fe_write_bind_head(&w, portal, "s", UINT32_MAX);
    assert_false(wr_ok(&w));
    wr_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_table),        cmocka_unit_test(test_outputs_untouched_on_failure),
        cmocka_unit_test(test_fe_roundtrips),       cmocka_unit_test(test_fe_writer_bytes),
        cmocka_unit_test(test_be_roundtrips),       cmocka_unit_test(test_bind_names_and_targets),
        cmocka_unit_test(test_bind_head_roundtrip), cmocka_unit_test(test_be_result_builders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
