/* Unit tests for policy/sqltext.c: a table of identifiers and strings as sqllex tokenizes them and
 * what each decodes to (escapes, U& forms, case folding, bad sequences); truncation at SQLTEXT_MAX,
 * also inside a UTF-8 character; the U& UESCAPE clause left to the caller; the comparisons; tokens
 * the lexer would not produce; and every prefix of some valid inputs decoded from an exact-size heap
 * copy (no crash, no read past the end under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/sqllex.h"
#include "policy/sqltext.h"

/* A heap copy of exactly len bytes, so ASan sees any read past the token. */
static char *exact_copy(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

/* Decodes tok the way the guard does: a string by value, a name appended to an empty text. */
static struct sqltext decode_token(const struct sqltok *tok)
{
    if (tok->kind == SQLTOK_STRING)
        return sqltext_decode_string(tok);
    struct sqltext t = {.len = 0};
    sqltext_put_ident(&t, tok);
    return t;
}

/* The first token of sql, lexed and decoded from an exact-size copy; *kind is its kind. */
static struct sqltext decode_first(const char *sql, size_t len, enum sqltok_kind *kind)
{
    char *copy = exact_copy(sql, len);
    struct sqllex lx;
    sqllex_init(&lx, copy, len);
    struct sqltok tok = sqllex_next(&lx);
    struct sqltext t = decode_token(&tok);
    *kind = tok.kind;
    free(copy);
    return t;
}

struct decode_case {
    const char *sql;       /* the token comes first; the rest of the text must not matter */
    enum sqltok_kind kind; /* what sqllex makes of it */
    const char *want;      /* decoded bytes, or NULL: bad */
};

#define W SQLTOK_WORD
#define Q SQLTOK_QIDENT
#define S SQLTOK_STRING

static const struct decode_case decode_cases[] = {
    /* unquoted names fold ASCII only, as downcase_identifier does in a UTF-8 database */
    {"FooBar", W, "foobar"},
    {"request", W, "request"},
    {"_X1$y", W, "_x1$y"},
    {"\303\204bC", W, "\303\204bc"}, /* Ä is two bytes, neither folded */
    {"Role = x", W, "role"},
    /* quoted names keep their case; "" is one " */
    {"\"FooBar\"", Q, "FooBar"},
    {"\"a\"\"b\"", Q, "a\"b"},
    {"\"\"\"\"", Q, "\""},
    {"\"a.b\".c", Q, "a.b"},
    {"\"a\\0041\"", Q, "a\\0041"},
    /* U&"" with the default escape character */
    {"U&\"d\\0061t\\+000061\"", Q, "data"},
    {"u&\"W\\006FRK\"", Q, "WoRK"},
    {"U&\"\\\\\"", Q, "\\"},
    {"U&\"a\"\"b\"", Q, "a\"b"},
    {"U&\"\\00e9\\00E9\"", Q, "\xc3\xa9\xc3\xa9"},
    {"U&\"\\20AC\"", Q, "\xe2\x82\xac"},
    {"U&\"\\+01F600\"", Q, "\xf0\x9f\x98\x80"},
    {"U&\"\\+10FFFF\"", Q, "\xf4\x8f\xbf\xbf"},
    {"U&\"\\0000\"", Q, NULL},
    {"U&\"\\D800\"", Q, NULL},
    {"U&\"\\DFFF\"", Q, NULL},
    {"U&\"\\D83D\\DE00\"", Q, NULL}, /* a surrogate pair PostgreSQL would combine */
    {"U&\"\\+110000\"", Q, NULL},
    {"U&\"\\12\"", Q, NULL},
    {"U&\"\\+12345\"", Q, NULL},
    {"U&\"\\zzzz\"", Q, NULL},
    {"U&\"a\\\"", Q, NULL},
    /* plain strings: standard_conforming_strings on, so a backslash is itself */
    {"''", S, ""},
    {"'it''s'", S, "it's"},
    {"'a\\nb'", S, "a\\nb"},
    {"N'x'", S, "x"},
    {"n'x''y'", S, "x'y"},
    {"'a'\n'b'", S, "ab"},
    {"'a' \t\r\n  'b'\n'c'", S, "abc"},
    {"'a' -- comment\n'b'", S, "ab"},
    /* E'' escapes (PostgreSQL 4.1.2.2) */
    {"E'\\b\\f\\n\\r\\t'", S, "\b\f\n\r\t"},
    {"e'\\q\\\\\\''", S, "q\\'"},
    {"E'a''b'", S, "a'b"},
    {"E'\\101\\60\\7'", S, "A0\a"},
    {"E'\\1010'", S, "A0"},
    {"E'\\501'", S, "A"}, /* the low byte, as PostgreSQL takes it */
    {"E'\\x41\\x4a\\x7'", S, "AJ\a"},
    {"E'\\x4142'", S, "A42"},
    {"E'\\u00e9\\U0001F600'", S, "\xc3\xa9\xf0\x9f\x98\x80"},
    {"E'\\u0072ole'", S, "role"},
    {"E'a'\n'\\n'", S, "a\n"}, /* the continuation is E'' too */
    {"E'\\000'", S, NULL},
    {"E'\\x00'", S, NULL},
    {"E'\\400'", S, NULL}, /* 0x100: its low byte is NUL */
    {"E'\\xz'", S, NULL},  /* PostgreSQL reads "xz"; refusing is the safe side */
    {"E'\\u12'", S, NULL},
    {"E'\\U0000006'", S, NULL},
    {"E'\\uD800'", S, NULL},
    {"E'\\U00110000'", S, NULL},
    /* U&'' */
    {"U&'wor\\006b_mem'", S, "work_mem"},
    {"U&'\\\\'", S, "\\"},
    {"U&'it''s'", S, "it's"},
    {"U&'\\+00006F'", S, "o"},
    {"U&'\\0000'", S, NULL},
    {"U&'\\x41'", S, NULL},
    /* dollar quoting: verbatim */
    {"$$a'b\\c$$", S, "a'b\\c"},
    {"$tag$x$y$tag$", S, "x$y"},
    {"$a$$a$", S, ""},
    /* not names */
    {"B'101'", S, NULL},
    {"X'ff'", S, NULL},
};

static void test_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof decode_cases / sizeof decode_cases[0]; i++) {
        const struct decode_case *c = &decode_cases[i];
        enum sqltok_kind kind;
        struct sqltext t = decode_first(c->sql, strlen(c->sql), &kind);
        bool same = c->want ? !t.bad && t.len == strlen(c->want) && memcmp(t.buf, c->want, t.len) == 0 : t.bad;
        if (kind != c->kind || t.truncated || !same)
            fail_msg("case %zu (%s): kind %d, bad %d, \"%.*s\"", i, c->sql, (int)kind, t.bad, (int)t.len, t.buf);
    }
}

/* Only the default escape character is decoded: after a U& token the caller must see UESCAPE. */
static void test_uescape_is_callers(void **state)
{
    (void)state;
    static const char *const texts[] = {"U&\"d!0061t\" UESCAPE '!'", "U&'d!0061t' uescape '!'"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct sqllex lx;
        sqllex_init(&lx, texts[i], strlen(texts[i]));
        struct sqltok tok = sqllex_next(&lx);
        struct sqltext t = decode_token(&tok);
        assert_false(t.bad);
        assert_true(sqltext_equals(&t, "d!0061t"));
        tok = sqllex_next(&lx);
        assert_true(sqltok_is(&tok, "uescape"));
    }
}

/* A token of n bytes: opener, n - opener - closer filler bytes, closer. */
static char *make_token(const char *opener, char fill, size_t n, const char *closer)
{
    size_t o = strlen(opener), c = strlen(closer);
    assert_true(n >= o + c);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, opener, o);
    memset(s + o, fill, n - o - c);
    memcpy(s + n - c, closer, c);
    s[n] = '\0';
    return s;
}

struct cut_case {
    const char *opener, *closer;
    size_t body; /* bytes between them */
    bool truncated;
};

static const struct cut_case cut_cases[] = {
    {"", "", SQLTEXT_MAX, false},        {"", "", SQLTEXT_MAX + 1, true},    {"\"", "\"", SQLTEXT_MAX, false},
    {"\"", "\"", SQLTEXT_MAX + 1, true}, {"'", "'", SQLTEXT_MAX - 1, false}, {"'", "'", 3 * SQLTEXT_MAX, true},
    {"E'", "'", SQLTEXT_MAX + 1, true},  {"U&'", "'", SQLTEXT_MAX, false},   {"$$", "$$", SQLTEXT_MAX + 1, true},
};

/* A text cut at SQLTEXT_MAX keeps its first bytes and its prefix but equals no word. */
static void test_truncation(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cut_cases / sizeof cut_cases[0]; i++) {
        const struct cut_case *c = &cut_cases[i];
        size_t n = strlen(c->opener) + c->body + strlen(c->closer);
        char *sql = make_token(c->opener, 'R', n, c->closer);
        enum sqltok_kind kind;
        struct sqltext t = decode_first(sql, n, &kind);
        assert_false(t.bad);
        assert_int_equal(t.truncated, c->truncated);
        assert_int_equal(t.len, c->truncated ? SQLTEXT_MAX : c->body);
        assert_int_equal(t.buf[0], kind == SQLTOK_WORD ? 'r' : 'R');
        char *word = make_token("", 'r', c->body, "");
        assert_int_equal(sqltext_equals(&t, word), !c->truncated);
        assert_true(sqltext_has_prefix(&t, "rrrr"));
        free(word);
        free(sql);
    }
}

/* A two-byte character across the limit: its first byte is kept, the text marked cut. */
static void test_truncation_in_character(void **state)
{
    (void)state;
    char *sql = make_token("U&\"", 'x', 3 + (SQLTEXT_MAX - 1) + 6, "\\00e9\"");
    enum sqltok_kind kind;
    struct sqltext t = decode_first(sql, strlen(sql), &kind);
    free(sql);
    assert_int_equal(kind, SQLTOK_QIDENT);
    assert_false(t.bad);
    assert_true(t.truncated);
    assert_int_equal(t.len, SQLTEXT_MAX);
    assert_int_equal((unsigned char)t.buf[SQLTEXT_MAX - 1], 0xC3);

    struct sqltext p = {.len = 0};
    for (int i = 0; i < 3 * SQLTEXT_MAX; i++)
        sqltext_put(&p, 'a');
    assert_int_equal(p.len, SQLTEXT_MAX);
    assert_true(p.truncated);
}

/* Names are appended, as the guard builds a dotted name part by part. */
static void test_put_ident_appends(void **state)
{
    (void)state;
    const char *sql = "Request.\"jwt\".U&\"\\0063laim\".TENANT";
    struct sqllex lx;
    sqllex_init(&lx, sql, strlen(sql));
    struct sqltext t = {.len = 0};
    for (struct sqltok tok = sqllex_next(&lx); tok.kind != SQLTOK_EOF; tok = sqllex_next(&lx)) {
        if (tok.kind == SQLTOK_OP)
            sqltext_put(&t, '.');
        else
            sqltext_put_ident(&t, &tok);
    }
    assert_false(t.bad);
    assert_int_equal(t.len, strlen("request.jwt.claim.tenant"));
    assert_memory_equal(t.buf, "request.jwt.claim.tenant", t.len);
}

/* Tokens the lexer does not make come back bad, without reading outside them. */
static void test_foreign_tokens(void **state)
{
    (void)state;
    static const struct {
        enum sqltok_kind kind;
        const char *text;
        bool ident; /* through sqltext_put_ident, else sqltext_decode_string */
    } cases[] = {
        {SQLTOK_STRING, "'x'", true},   {SQLTOK_OP, "(", true},         {SQLTOK_QIDENT, "\"", true},
        {SQLTOK_QIDENT, "U&\"", true},  {SQLTOK_QIDENT, "x\"", true},   {SQLTOK_WORD, "abc", false},
        {SQLTOK_STRING, "'", false},    {SQLTOK_STRING, "$", false},    {SQLTOK_STRING, "$$", false},
        {SQLTOK_STRING, "$a$x", false}, {SQLTOK_STRING, "E'", false},   {SQLTOK_STRING, "E'\\", false},
        {SQLTOK_STRING, "'a", false},   {SQLTOK_STRING, "'a''", false}, {SQLTOK_STRING, "U&'\\00", false},
        {SQLTOK_STRING, "", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].text);
        char *copy = exact_copy(cases[i].text, len);
        struct sqltok tok = {.kind = cases[i].kind, .text = copy, .len = len};
        struct sqltext t = {.len = 0};
        if (cases[i].ident)
            sqltext_put_ident(&t, &tok);
        else
            t = sqltext_decode_string(&tok);
        if (!t.bad)
            fail_msg("case %zu (%s) is not bad", i, cases[i].text);
        free(copy);
    }
}

static void test_lower(void **state)
{
    (void)state;
    static const char from[] = "AZaz09@[`{_\xc4\xd6\xff", to[] = "azaz09@[`{_\xc4\xd6\xff";
    for (size_t i = 0; i < sizeof from - 1; i++)
        assert_int_equal(sqltext_lower(from[i]), to[i]);
}

static struct sqltext text_of(const char *s)
{
    struct sqltext t = {.len = 0};
    while (*s)
        sqltext_put(&t, *s++);
    return t;
}

static void test_compare(void **state)
{
    (void)state;
    static const struct {
        const char *text, *word;
        bool equals, has_prefix;
    } cases[] = {
        {"Statement_Timeout", "statement_timeout", true, true},
        {"statement_timeout", "statement_timeouts", false, false},
        {"statement_timeouts", "statement_timeout", false, true},
        {"REQUEST.JWT.x", "request.jwt.", false, true},
        {"request.jw", "request.jwt.", false, false},
        {"role", "ROLE", false, false}, /* the word must be lower case */
        {"", "", true, true},
        {"x", "", false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sqltext t = text_of(cases[i].text);
        assert_int_equal(sqltext_equals(&t, cases[i].word), cases[i].equals);
        assert_int_equal(sqltext_has_prefix(&t, cases[i].word), cases[i].has_prefix);
    }
}

static const char *const prefix_cases[] = {
    "U&\"d\\0061t\\+000061\"", "E'\\b\\101\\x4a\\u00e9\\U0001F600\\q'' ' -- c\n'x'",  "U&'wor\\006b_mem'",
    "$tag$x$y$tag$",           "\"a\"\"b\".Req . u&\"\\\\x\"; N'x''y' B'1' 'a'\n'b'",
};

/* Every prefix: lexed and each token decoded, and also taken whole as each kind of token. */
static void test_prefixes(void **state)
{
    (void)state;
    static const enum sqltok_kind kinds[] = {SQLTOK_WORD, SQLTOK_QIDENT, SQLTOK_STRING};
    for (size_t i = 0; i < sizeof prefix_cases / sizeof prefix_cases[0]; i++) {
        size_t n = strlen(prefix_cases[i]);
        for (size_t len = 0; len <= n; len++) {
            char *copy = exact_copy(prefix_cases[i], len);
            struct sqllex lx;
            sqllex_init(&lx, copy, len);
            for (struct sqltok tok = sqllex_next(&lx); tok.kind != SQLTOK_EOF && tok.kind != SQLTOK_UNTERMINATED;
                 tok = sqllex_next(&lx)) {
                struct sqltext t = decode_token(&tok);
                assert_true(t.len <= SQLTEXT_MAX);
            }
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
                struct sqltok tok = {.kind = kinds[k], .text = copy, .len = len};
                struct sqltext t = decode_token(&tok);
                assert_true(t.len <= SQLTEXT_MAX);
            }
            free(copy);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_uescape_is_callers),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_truncation_in_character),
        cmocka_unit_test(test_put_ident_appends),
        cmocka_unit_test(test_foreign_tokens),
        cmocka_unit_test(test_lower),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
