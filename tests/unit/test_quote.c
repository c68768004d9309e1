/* Unit tests for protocol/quote.c: a table of inputs with their exact quoted form or refusal
 * (NUL bytes, invalid UTF-8 of every kind), capacity at and below the exact size with a check that
 * nothing is written, and round trips: each result lexes as one token and decodes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/quote.h"
#include "policy/sqllex.h"

#define IN(lit) lit, sizeof(lit) - 1

/* Undoes quote_literal / quote_ident; the test's own independent reading of the format. */
static size_t unquote(const char *q, char *out, bool ident)
{
    bool e = q[0] == 'E';
    char quote = ident ? '"' : '\'';
    size_t i = e ? 2 : 1, n = 0, end = strlen(q) - 1;
    assert_int_equal(q[i - 1], quote);
    assert_int_equal(q[end], quote);
    while (i < end) {
        if ((q[i] == quote || (e && q[i] == '\\')) && i + 1 < end) {
            assert_int_equal(q[i + 1], q[i]); /* only doubling is ever used */
            i++;
        }
        out[n++] = q[i++];
    }
    return n;
}

static void test_literals(void **state)
{
    static const struct {
        const char *src;
        size_t len;
        const char *want; /* NULL: refused */
    } cases[] = {
        {IN(""), "''"},
        {IN("abc"), "'abc'"},
        {IN("a'b"), "'a''b'"},
        {IN("'"), "''''"},
        {IN("a\\b"), "E'a\\\\b'"},
        {IN("a\\b'c"), "E'a\\\\b''c'"},
        {IN("\\'"), "E'\\\\'''"},
        {IN("x'; DROP TABLE t; --"), "'x''; DROP TABLE t; --'"},
        {IN("\"dq\""), "'\"dq\"'"},
        {IN("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x98"), "'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x98'"},
        {IN("\xef\xbf\xbf"), "'\xef\xbf\xbf'"},         /* U+FFFF: a noncharacter, still valid */
        {IN("\xf4\x8f\xbf\xbf"), "'\xf4\x8f\xbf\xbf'"}, /* U+10FFFF */
        {IN("a\0b"), NULL},
        {IN("\0"), NULL},
        {IN("\x80"), NULL},             /* lone continuation byte */
        {IN("\xc3"), NULL},             /* truncated */
        {IN("\xc3("), NULL},            /* bad continuation */
        {IN("\xc0\xaf"), NULL},         /* overlong '/' */
        {IN("\xc1\xbf"), NULL},         /* overlong */
        {IN("\xe0\x80\xaf"), NULL},     /* overlong, 3 bytes */
        {IN("\xf0\x80\x80\xaf"), NULL}, /* overlong, 4 bytes */
        {IN("\xed\xa0\x80"), NULL},     /* surrogate U+D800 */
        {IN("\xf4\x90\x80\x80"), NULL}, /* above U+10FFFF */
        {IN("\xf5\x80\x80\x80"), NULL},
        {IN("\xff"), NULL},
        {IN("\xe2\x82"), NULL}, /* truncated 3-byte */
        {IN("ok\xe2\x82"), NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dst[128];
        memset(dst, 0x7e, sizeof dst);
        bool ok = quote_literal(dst, sizeof dst, cases[i].src, cases[i].len);
        if (ok != (cases[i].want != NULL))
            fail_msg("case %zu: want %s", i, cases[i].want ? "ok" : "refused");
        if (!ok) {
            assert_int_equal((unsigned char)dst[0], 0x7e);
            continue;
        }
        assert_string_equal(dst, cases[i].want);

        char back[128];
        size_t n = unquote(dst, back, false);
        assert_int_equal(n, cases[i].len);
        assert_memory_equal(back, cases[i].src, n);

        /* the lexer sees one string constant and nothing after it */
        struct sqllex lx;
        sqllex_init(&lx, dst, strlen(dst));
        struct sqltok t = sqllex_next(&lx);
        assert_int_equal(t.kind, SQLTOK_STRING);
        assert_int_equal(t.len, strlen(dst));
        assert_int_equal(sqllex_next(&lx).kind, SQLTOK_EOF);
    }
}

static void test_identifiers(void **state)
{
    char max_len[QUOTE_IDENT_MAX_LEN + 1], too_long[QUOTE_IDENT_MAX_LEN + 2];
    memset(max_len, 'a', sizeof max_len);
    memset(too_long, 'a', sizeof too_long);
    const struct {
        const char *src;
        size_t len;
        const char *want;
    } cases[] = {
        {IN("regional_analyst"), "\"regional_analyst\""},
        {IN("Mixed Case"), "\"Mixed Case\""},
        {IN("a\"b"), "\"a\"\"b\""},
        {IN("a'b\\c"), "\"a'b\\c\""}, /* nothing but " is special inside "" */
        {IN("\xc3\xa4rger"), "\"\xc3\xa4rger\""},
        {max_len, QUOTE_IDENT_MAX_LEN, NULL}, /* checked below: accepted */
        {too_long, QUOTE_IDENT_MAX_LEN + 1, NULL},
        {IN(""), NULL},
        {IN("a\0"), NULL},
        {IN("\xc3"), NULL},
        {IN("\xed\xbf\xbf"), NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dst[128];
        memset(dst, 0x7e, sizeof dst);
        bool ok = quote_ident(dst, sizeof dst, cases[i].src, cases[i].len);
        bool want_ok = cases[i].want != NULL || cases[i].src == max_len;
        if (ok != want_ok)
            fail_msg("case %zu: want %s", i, want_ok ? "ok" : "refused");
        if (!ok) {
            assert_int_equal((unsigned char)dst[0], 0x7e);
            continue;
        }
        if (cases[i].want)
            assert_string_equal(dst, cases[i].want);
        char back[128];
        size_t n = unquote(dst, back, true);
        assert_int_equal(n, cases[i].len);
        assert_memory_equal(back, cases[i].src, n);
        struct sqllex lx;
        sqllex_init(&lx, dst, strlen(dst));
        struct sqltok t = sqllex_next(&lx);
        assert_int_equal(t.kind, SQLTOK_QIDENT);
        assert_int_equal(t.len, strlen(dst));
        assert_int_equal(sqllex_next(&lx).kind, SQLTOK_EOF);
    }
}

/* The exact size fits; one byte less is refused and leaves every byte of dst alone. */
static void test_capacity(void **state)
{
    static const struct {
        const char *src;
        size_t len;
        bool ident;
    } cases[] = {
        {IN(""), false},     {IN("abc"), false}, {IN("a'b"), false},
        {IN("a\\b"), false}, {IN("x"), true},    {IN("a\"b"), true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ref[64];
        bool ok = cases[i].ident ? quote_ident(ref, sizeof ref, cases[i].src, cases[i].len)
                                 : quote_literal(ref, sizeof ref, cases[i].src, cases[i].len);
        assert_true(ok);
        size_t need = strlen(ref) + 1;
        for (size_t cap = 0; cap <= need; cap++) {
            char dst[64];
            memset(dst, 0x7e, sizeof dst);
            ok = cases[i].ident ? quote_ident(dst, cap, cases[i].src, cases[i].len)
                                : quote_literal(dst, cap, cases[i].src, cases[i].len);
            assert_int_equal(ok, cap == need);
            if (ok)
                assert_string_equal(dst, ref);
            for (size_t j = ok ? need : 0; j < sizeof dst; j++)
                assert_int_equal((unsigned char)dst[j], 0x7e);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_identifiers),
        cmocka_unit_test(test_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
