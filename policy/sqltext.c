/* Names and strings as PostgreSQL reads them (see sqltext.h): strips quotes, undoubles them,
 * decodes E'' and default U& escapes and folds unquoted identifiers, into a fixed buffer that
 * records when it was cut or could not be decoded. It decides nothing about what a name means;
 * that is the guard's. No I/O, no globals, no allocation. */
#include "policy/sqltext.h"

#include <string.h>

void sqltext_put(struct sqltext *t, char c)
{
    if (t->len < SQLTEXT_MAX)
        t->buf[t->len++] = c;
    else
        t->truncated = true;
}

char sqltext_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Code point as UTF-8, the only server encoding pgmesh supports for U& escapes. */
static void put_utf8(struct sqltext *t, unsigned long cp)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        t->bad = true; /* PostgreSQL rejects these; refusing costs nothing */
    } else if (cp < 0x80) {
        sqltext_put(t, (char)cp);
    } else if (cp < 0x800) {
        sqltext_put(t, (char)(0xC0 | (cp >> 6)));
        sqltext_put(t, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        sqltext_put(t, (char)(0xE0 | (cp >> 12)));
        sqltext_put(t, (char)(0x80 | ((cp >> 6) & 0x3F)));
        sqltext_put(t, (char)(0x80 | (cp & 0x3F)));
    } else {
        sqltext_put(t, (char)(0xF0 | (cp >> 18)));
        sqltext_put(t, (char)(0x80 | ((cp >> 12) & 0x3F)));
        sqltext_put(t, (char)(0x80 | ((cp >> 6) & 0x3F)));
        sqltext_put(t, (char)(0x80 | (cp & 0x3F)));
    }
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = sqltext_lower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Reads exactly n hex digits at s[*i] (n = 0: one or two, as after E'\x'). */
static bool read_hex(const char *s, size_t len, size_t *i, size_t n, unsigned long *out)
{
    size_t want = n ? n : 2, got = 0;
    unsigned long v = 0;
    while (got < want && *i < len && hex_value(s[*i]) >= 0) {
        v = v * 16 + (unsigned long)hex_value(s[*i]);
        (*i)++;
        got++;
    }
    *out = v;
    return n ? got == n : got > 0;
}

/* n hex digits at s[*i] as a code point, or bad. */
static void put_hex_code_point(struct sqltext *t, const char *s, size_t len, size_t *i, size_t n)
{
    unsigned long cp;
    if (read_hex(s, len, i, n, &cp))
        put_utf8(t, cp);
    else
        t->bad = true;
}

/* A U& escape (default escape character only) at s[*i], just past the backslash. */
static void put_unicode_escape(struct sqltext *t, const char *s, size_t len, size_t *i)
{
    if (*i < len && s[*i] == '\\') {
        sqltext_put(t, '\\');
        (*i)++;
    } else if (*i < len && s[*i] == '+') {
        (*i)++;
        put_hex_code_point(t, s, len, i, 6);
    } else {
        put_hex_code_point(t, s, len, i, 4);
    }
}

/* An escaped byte: zero is refused, as PostgreSQL refuses it in text. */
static void put_escaped_byte(struct sqltext *t, unsigned long v)
{
    if (v == 0)
        t->bad = true;
    else
        sqltext_put(t, (char)v);
}

static bool is_octal(char c)
{
    return c >= '0' && c <= '7';
}

/* \o, \oo or \ooo, first being the digit after the backslash: the value's low byte. */
static void put_octal_escape(struct sqltext *t, char first, const char *s, size_t len, size_t *i)
{
    unsigned long v = (unsigned long)(first - '0');
    for (int n = 1; n < 3 && *i < len && is_octal(s[*i]); n++)
        v = v * 8 + (unsigned long)(s[(*i)++] - '0');
    put_escaped_byte(t, v & 0xFF);
}

/* \xh or \xhh, *i just past the x. */
static void put_hex_escape(struct sqltext *t, const char *s, size_t len, size_t *i)
{
    unsigned long v;
    if (read_hex(s, len, i, 0, &v))
        put_escaped_byte(t, v);
    else
        t->bad = true;
}

/* \b \f \n \r \t stand for control characters; any other character stands for itself. */
static char c_escape_char(char c)
{
    static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
    const char *k = c != '\0' ? strchr(from, c) : NULL;
    return k ? to[k - from] : c;
}

/* An E'' escape at s[*i], just past the backslash (PostgreSQL 4.1.2.2). */
static void put_c_escape(struct sqltext *t, const char *s, size_t len, size_t *i)
{
    if (*i >= len) {
        t->bad = true;
        return;
    }
    char c = s[(*i)++];
    if (is_octal(c))
        put_octal_escape(t, c, s, len, i);
    else if (c == 'x')
        put_hex_escape(t, s, len, i);
    else if (c == 'u' || c == 'U')
        put_hex_code_point(t, s, len, i, c == 'u' ? 4 : 8);
    else
        sqltext_put(t, c_escape_char(c));
}

/* How a quoted body escapes: doubled quotes only, E'' backslash escapes, or U& escapes. */
enum quote_form { FORM_PLAIN, FORM_ESCAPE, FORM_UNICODE };

/* What opens a quoted token (lower case; letters match either case) and how its body escapes. */
struct opener {
    const char *text;
    enum quote_form form;
};

/* Bit strings and E'' in other forms are not names and come back bad. */
static const struct opener string_openers[] = {
    {"'", FORM_PLAIN}, {"e'", FORM_ESCAPE}, {"n'", FORM_PLAIN}, {"u&'", FORM_UNICODE}};
static const struct opener ident_openers[] = {{"\"", FORM_PLAIN}, {"u&\"", FORM_UNICODE}};

/* The opener that starts s[0..len) with at least one byte after it, or NULL. */
static const struct opener *find_opener(const struct opener *table, size_t n, const char *s, size_t len)
{
    for (size_t k = 0; k < n; k++) {
        size_t olen = strlen(table[k].text), j = 0;
        while (j < olen && j < len && sqltext_lower(s[j]) == table[k].text[j])
            j++;
        if (j == olen && len > olen)
            return &table[k];
    }
    return NULL;
}

/* After a closing quote at s[*i - 1]: white space with a newline (and -- comments) then another
 * quote continue the string. The lexer already checked the shape; we only skip to that quote.
 * Returns false at the end of the token. */
static bool skip_to_continuation(const char *s, size_t len, size_t *i)
{
    while (*i < len && s[*i] != '\'') {
        if (s[*i] == '-' && *i + 1 < len && s[*i + 1] == '-')
            while (*i < len && s[*i] != '\n' && s[*i] != '\r')
                (*i)++;
        else
            (*i)++;
    }
    if (*i >= len)
        return false;
    (*i)++;
    return true;
}

/* At s[*i], just past a quote inside a string: '' stands for one quote; otherwise the string
 * ends unless it continues. False at the end of the token. */
static bool put_string_quote(struct sqltext *t, const char *s, size_t len, size_t *i)
{
    if (*i < len && s[*i] == '\'') {
        sqltext_put(t, '\'');
        (*i)++;
        return true;
    }
    return skip_to_continuation(s, len, i);
}

/* The body of a quoted string from s[i] on, through its closing quote (and continuations). */
static struct sqltext decode_quoted(const char *s, size_t len, size_t i, enum quote_form form)
{
    struct sqltext t = {.len = 0};
    while (i < len && !t.bad) {
        char c = s[i++];
        if (c == '\'') {
            if (!put_string_quote(&t, s, len, &i))
                return t;
        } else if (c == '\\' && form == FORM_ESCAPE) {
            put_c_escape(&t, s, len, &i);
        } else if (c == '\\' && form == FORM_UNICODE) {
            put_unicode_escape(&t, s, len, &i);
        } else {
            sqltext_put(&t, c);
        }
    }
    t.bad = true; /* ran off the end without a closing quote */
    return t;
}

/* $tag$body$tag$: the body, verbatim. */
static struct sqltext decode_dollar(const char *s, size_t len)
{
    struct sqltext t = {.len = 0};
    const char *tag_end = memchr(s + 1, '$', len - 1);
    size_t tag_len = tag_end ? (size_t)(tag_end - s) + 1 : len;
    if (len < 2 * tag_len) {
        t.bad = true;
        return t;
    }
    for (size_t i = tag_len; i < len - tag_len; i++)
        sqltext_put(&t, s[i]);
    return t;
}

/* Decodes a STRING token: '...', E'...', N'...', U&'...' (default escape), $tag$...$tag$. Bit
 * strings and anything unexpected come back bad. */
struct sqltext sqltext_decode_string(const struct sqltok *tok)
{
    const char *s = tok->text;
    size_t len = tok->len;
    if (len >= 2 && s[0] == '$')
        return decode_dollar(s, len);
    const struct opener *o = find_opener(string_openers, sizeof string_openers / sizeof string_openers[0], s, len);
    if (o)
        return decode_quoted(s, len, strlen(o->text), o->form);
    struct sqltext bad = {.bad = true};
    return bad;
}

/* The body of a quoted identifier from s[i] to the closing quote at s[len - 1]. */
static void put_quoted_ident(struct sqltext *t, const char *s, size_t len, size_t i, enum quote_form form)
{
    size_t end = len - 1;
    while (i < end && !t->bad) {
        if (s[i] == '"' && i + 1 < end && s[i + 1] == '"') {
            sqltext_put(t, '"');
            i += 2;
        } else if (s[i] == '\\' && form == FORM_UNICODE) {
            i++;
            put_unicode_escape(t, s, end, &i);
        } else {
            sqltext_put(t, s[i++]);
        }
    }
}

/* Appends one identifier: an unquoted WORD folded to lower case, a "quoted" one verbatim with ""
 * undoubled, a U&"quoted" one with its default escapes decoded. */
void sqltext_put_ident(struct sqltext *t, const struct sqltok *tok)
{
    if (tok->kind == SQLTOK_WORD) {
        for (size_t i = 0; i < tok->len; i++)
            sqltext_put(t, sqltext_lower(tok->text[i]));
        return;
    }
    const struct opener *o =
        find_opener(ident_openers, sizeof ident_openers / sizeof ident_openers[0], tok->text, tok->len);
    if (o)
        put_quoted_ident(t, tok->text, tok->len, strlen(o->text), o->form);
    else
        t->bad = true;
}

bool sqltext_equals(const struct sqltext *t, const char *word)
{
    size_t n = strlen(word);
    if (t->truncated || t->len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (sqltext_lower(t->buf[i]) != word[i])
            return false;
    return true;
}

bool sqltext_has_prefix(const struct sqltext *t, const char *prefix)
{
    size_t n = strlen(prefix);
    if (t->len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (sqltext_lower(t->buf[i]) != prefix[i])
            return false;
    return true;
}
