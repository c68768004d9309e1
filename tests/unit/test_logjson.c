/* Unit tests for proxy/logjson.c: the JSON string escaper (quotes, backslashes, control
 * characters, valid UTF-8 kept, every invalid byte replaced by \ufffd), its cut at any buffer
 * size (never half an escape or half a character, always closed), and whole lines: field order,
 * left-out unknowns, and a message too long for the line cut with "truncated": true. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/logjson.h"

/* The escaper's output for s, NUL-terminated in out. */
static const char *escape(const char *s, size_t n, char *out, size_t cap)
{
    struct logjson_out o = {.p = out, .cap = cap - 1};
    assert_true(logjson_string(&o, s, n));
    out[o.len] = '\0';
    return out;
}

static void test_escapes(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain text", 10, "\"plain text\""},
        {"", 0, "\"\""},
        {"say \"hi\"", 8, "\"say \\\"hi\\\"\""},
        {"C:\\dir\\", 7, "\"C:\\\\dir\\\\\""},
        {"a\nb\rc\td", 7, "\"a\\nb\\rc\\td\""},
        {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\""},
        {"nul\0after", 9, "\"nul\\u0000after\""},
        {"/ stays", 7, "\"/ stays\""},
        /* Valid UTF-8 passes as it is: 2, 3 and 4 bytes. */
        {"Z\xc3\xbcrich \xe6\x97\xa5 \xf0\x9f\x98\x80", 16, "\"Z\xc3\xbcrich \xe6\x97\xa5 \xf0\x9f\x98\x80\""},
        /* Each byte outside valid UTF-8 is one replacement. */
        {"\xff", 1, "\"\\ufffd\""},
        {"a\x80z", 3, "\"a\\ufffdz\""},
        {"\xc0\xaf", 2, "\"\\ufffd\\ufffd\""},                       /* overlong '/' */
        {"\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\""},            /* overlong, three bytes */
        {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""},            /* a surrogate */
        {"\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* past U+10FFFF */
        {"\xe6\x97", 2, "\"\\ufffd\\ufffd\""},                       /* cut short at the end */
        {"\xe6\x97x", 3, "\"\\ufffd\\ufffdx\""},                     /* cut short before ASCII */
        {"\xf5\x80\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(escape(cases[i].in, cases[i].len, out, sizeof out), cases[i].out);
}

/* A well-formed JSON string of printable ASCII escapes and valid UTF-8, and nothing after it. */
static void assert_json_string(const char *s, size_t n)
{
    assert_true(n >= 2);
    assert_int_equal(s[0], '"');
    assert_int_equal(s[n - 1], '"');
    for (size_t i = 1; i < n - 1;) {
        unsigned char c = (unsigned char)s[i];
        assert_true(c >= 0x20 && c != '"');
        if (c == '\\') {
            assert_true(i + 1 < n - 1);
            char e = s[i + 1];
            if (e == 'u') {
                assert_true(i + 5 < n - 1);
                i += 6;
            } else {
                assert_non_null(strchr("\"\\/bfnrt", e));
                i += 2;
            }
        } else if (c < 0x80) {
            i++;
        } else {
            size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            assert_true(i + len <= n - 1);
            for (size_t k = 1; k < len; k++)
                assert_int_equal((unsigned char)s[i + k] & 0xc0, 0x80);
            i += len;
        }
    }
}

static void test_cut_at_every_size(void **state)
{
    static const char in[] = "a\"\\\n\x01\xff\xc3\xbc\xe6\x97\xa5\xf0\x9f\x98\x80 end";
    char full[128], out[128];
    escape(in, sizeof in - 1, full, sizeof full);
    size_t full_len = strlen(full);
    for (size_t cap = 0; cap <= full_len + 1; cap++) {
        struct logjson_out o = {.p = out, .cap = cap};
        if (cap < 2) {
            assert_false(logjson_string(&o, in, sizeof in - 1));
            assert_int_equal(o.len, 0);
            continue;
        }
        assert_true(logjson_string(&o, in, sizeof in - 1));
        assert_true(o.len <= cap);
        assert_json_string(out, o.len);
        assert_int_equal(o.truncated, cap < full_len);
        /* What is written is the start of the whole escape, closed. */
        assert_memory_equal(out, full, o.len - 1);
    }
}

static void test_line(void **state)
{
    struct log_who who = {.tag = "C-7 db/DE@127.0.0.1:5",
                          .kind = 'C',
                          .id = 7,
                          .client_id = 7,
                          .database = "media",
                          .tenant = "DE",
                          .role = "",
                          .addr = "127.0.0.1:5"};
    struct logjson_line l = {
        .time = {1795000000, 42000000},
        .level = LOG_WARNING,
        .audit = true,
        .event = "login_refused",
        .pid = 99,
        .who = &who,
        .fields = LOG_FIELDS(LOG_STR("sqlstate", "28P01"), LOG_INT("n", -3), LOG_STR("absent", NULL)),
        .message = "FATAL 28P01: token \"expired\"",
    };
    char buf[1024];
    size_t n = logjson_render(buf, sizeof buf, &l);
    buf[n] = '\0';
    assert_string_equal(buf,
                        "{\"time\":\"2026-11-18T11:06:40.042Z\",\"level\":\"warning\",\"event\":\"login_refused\","
                        "\"audit\":true,\"pid\":99,\"conn\":\"C-7\",\"client_id\":7,\"database\":\"media\","
                        "\"tenant\":\"DE\",\"addr\":\"127.0.0.1:5\",\"sqlstate\":\"28P01\",\"n\":-3,"
                        "\"message\":\"FATAL 28P01: token \\\"expired\\\"\"}");
    /* Nobody in particular, no event of its own. */
    struct logjson_line bare = {.time = {0, 999999999}, .level = LOG_INFO, .pid = 1, .message = "stopped"};
    n = logjson_render(buf, sizeof buf, &bare);
    buf[n] = '\0';
    assert_string_equal(buf,
                        "{\"time\":\"1970-01-01T00:00:00.999Z\",\"level\":\"info\",\"event\":\"log\",\"pid\":1,"
                        "\"message\":\"stopped\"}");
}

static void test_long_message_cut(void **state)
{
    char message[3000];
    memset(message, '"', sizeof message - 1); /* each one escaped to two bytes */
    message[sizeof message - 1] = '\0';
    struct logjson_line l = {.level = LOG_ERROR, .event = "x", .pid = 1, .message = message};
    for (size_t cap = LOGJSON_MIN; cap <= 8192; cap += 509) {
        char buf[8192];
        size_t n = logjson_render(buf, cap, &l);
        assert_true(n <= cap);
        bool cut = cap < 2 * sizeof message;
        assert_int_equal(n > 0, true);
        if (cut) {
            static const char tail[] = ",\"truncated\":true}";
            assert_true(n > sizeof tail);
            assert_memory_equal(buf + n - (sizeof tail - 1), tail, sizeof tail - 1);
            const char *m = strstr(buf, "\"message\":");
            assert_non_null(m);
            m += strlen("\"message\":");
            assert_json_string(m, (size_t)(buf + n - (sizeof tail - 1) - m));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_cut_at_every_size),
        cmocka_unit_test(test_line),
        cmocka_unit_test(test_long_message_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
