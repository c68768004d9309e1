/* SQL lexer following PostgreSQL's scan.l closely enough that token boundaries agree: comments,
 * quoted identifiers, every string form (with quote continuation across newlines) and dollar
 * quoting. It assumes standard_conforming_strings = on for plain '...' strings. It never
 * allocates and never reads past len; sqlstmt.c reads statements from its tokens. No I/O, no
 * globals. */
#include "policy/sqllex.h"

#include <stdint.h>
#include <string.h>

/* lx->pos after an unterminated token, so that later calls keep reporting it. */
#define POS_UNTERMINATED SIZE_MAX

/* Character classes by table: these run for nearly every byte of every statement. */
enum { CL_SPACE = 1, CL_NEWLINE = 2, CL_DIGIT = 4, CL_IDSTART = 8, CL_DOLLAR = 16 };
static const unsigned char char_class[256] = {
    [' '] = CL_SPACE,
    ['\t'] = CL_SPACE,
    ['\f'] = CL_SPACE,
    ['\v'] = CL_SPACE,
    ['\n'] = CL_SPACE | CL_NEWLINE,
    ['\r'] = CL_SPACE | CL_NEWLINE,
    ['0' ... '9'] = CL_DIGIT,
    ['a' ... 'z'] = CL_IDSTART,
    ['A' ... 'Z'] = CL_IDSTART,
    ['_'] = CL_IDSTART,
    /* scan.l ident_start takes every byte of a multi-byte character */
    [0x80 ... 0xff] = CL_IDSTART,
    ['$'] = CL_DOLLAR,
};

static bool in_class(char c, unsigned mask)
{
    return (char_class[(unsigned char)c] & mask) != 0;
}

static bool is_space(char c)
{
    return in_class(c, CL_SPACE);
}

static bool is_newline(char c)
{
    return in_class(c, CL_NEWLINE);
}

static bool is_digit(char c)
{
    return in_class(c, CL_DIGIT);
}

/* scan.l ident_start: letters, underscore and every byte of a multi-byte character. */
static bool is_ident_start(char c)
{
    return in_class(c, CL_IDSTART);
}

/* scan.l dolq_cont: a dollar-quote tag may not contain '$' ... */
static bool is_dolq_cont(char c)
{
    return in_class(c, CL_IDSTART | CL_DIGIT);
}

/* ... but an identifier may: a$b is one identifier, never the start of a dollar quote. */
static bool is_ident_cont(char c)
{
    return in_class(c, CL_IDSTART | CL_DIGIT | CL_DOLLAR);
}

static const bool op_chars[256] = {
    ['~'] = true, ['!'] = true, ['@'] = true, ['#'] = true, ['^'] = true, ['&'] = true,
    ['|'] = true, ['`'] = true, ['?'] = true, ['+'] = true, ['-'] = true, ['*'] = true,
    ['/'] = true, ['%'] = true, ['<'] = true, ['>'] = true, ['='] = true,
};
/* The first bytes of quoted forms: ' " and the prefixes e n b x u. */
static const bool quote_starts[256] = {
    ['\''] = true, ['"'] = true, ['e'] = true, ['E'] = true, ['n'] = true, ['N'] = true,
    ['b'] = true,  ['B'] = true, ['x'] = true, ['X'] = true, ['u'] = true, ['U'] = true,
};

static bool is_op_char(char c)
{
    return op_chars[(unsigned char)c];
}

static bool at(const struct sqllex *lx, size_t i, char c)
{
    return i < lx->len && lx->p[i] == c;
}

/* The byte at i, or '\0' past the end (which no class below accepts either way). */
static char peek(const struct sqllex *lx, size_t i)
{
    return i < lx->len ? lx->p[i] : '\0';
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* True when the text at i starts with s (lower case), letters compared ignoring ASCII case. */
static bool opens_at(const struct sqllex *lx, size_t i, const char *s)
{
    for (; *s; s++, i++)
        if (i >= lx->len || ascii_lower(lx->p[i]) != *s)
            return false;
    return true;
}

/* Index of the first byte from i on that is not in the class. */
static size_t scan_while(const struct sqllex *lx, size_t i, bool (*member)(char))
{
    while (i < lx->len && member(lx->p[i]))
        i++;
    return i;
}

/* Both are asked at every token: plain byte compares, not opens_at's case folding. */
static bool starts_line_comment(const struct sqllex *lx, size_t i)
{
    return at(lx, i, '-') && at(lx, i + 1, '-');
}

static bool starts_block_comment(const struct sqllex *lx, size_t i)
{
    return at(lx, i, '/') && at(lx, i + 1, '*');
}

static bool starts_comment(const struct sqllex *lx, size_t i)
{
    return starts_line_comment(lx, i) || starts_block_comment(lx, i);
}

static size_t skip_line_comment(const struct sqllex *lx, size_t i)
{
    while (i < lx->len && !is_newline(lx->p[i]))
        i++;
    return i;
}

/* Index just past the block comment opened at i, or SIZE_MAX when it never closes. Comments
 * nest, as in PostgreSQL (unlike the SQL standard's flat ones). */
static size_t skip_block_comment(const struct sqllex *lx, size_t i)
{
    size_t depth = 0;
    while (i < lx->len) {
        if (opens_at(lx, i, "/*")) {
            depth++;
            i += 2;
        } else if (opens_at(lx, i, "*/")) {
            i += 2;
            if (--depth == 0)
                return i;
        } else {
            i++;
        }
    }
    return SIZE_MAX;
}

/* White space and comments separate tokens and are never returned. Moves *i past them; false,
 * *i at its start, when a block comment never closes. */
static bool skip_separators(const struct sqllex *lx, size_t *i)
{
    for (;;) {
        if (is_space(peek(lx, *i))) {
            (*i)++;
        } else if (starts_line_comment(lx, *i)) {
            *i = skip_line_comment(lx, *i);
        } else if (starts_block_comment(lx, *i)) {
            size_t end = skip_block_comment(lx, *i);
            if (end == SIZE_MAX)
                return false;
            *i = end;
        } else {
            return true;
        }
    }
}

/* scan.l horiz_whitespace: [ \t\f] */
static bool is_horiz_space(char c)
{
    return c == ' ' || c == '\t' || c == '\f';
}

/* horiz_whitespace*, where a -- comment counts as white space. */
static size_t skip_horiz_space(const struct sqllex *lx, size_t i)
{
    for (;;) {
        if (is_horiz_space(peek(lx, i)))
            i++;
        else if (starts_line_comment(lx, i))
            i = skip_line_comment(lx, i);
        else
            return i;
    }
}

/* special_whitespace*: white space, or a -- comment that ends in a newline. SIZE_MAX when a
 * comment runs to the end of the text. */
static size_t skip_special_space(const struct sqllex *lx, size_t i)
{
    for (;;) {
        if (is_space(peek(lx, i))) {
            i++;
        } else if (starts_line_comment(lx, i)) {
            size_t end = skip_line_comment(lx, i);
            if (end >= lx->len)
                return SIZE_MAX;
            i = end + 1;
        } else {
            return i;
        }
    }
}

/* scan.l quotecontinue: after a closing quote, white space containing a newline and then another
 * quote continue the same string ('a'\n'b' is 'ab'). Returns the index just past that quote, or
 * 0 when the string really ended at i. */
static size_t quote_continuation(const struct sqllex *lx, size_t i)
{
    i = skip_horiz_space(lx, i);
    if (!is_newline(peek(lx, i)))
        return 0;
    i = skip_special_space(lx, i + 1);
    return i != SIZE_MAX && at(lx, i, '\'') ? i + 1 : 0;
}

enum quote_rules {
    Q_DOUBLED = 1,   /* a doubled quote stands for one: '' in strings, "" in identifiers */
    Q_BACKSLASH = 2, /* E'...': a backslash takes the next byte with it */
    Q_CONTINUE = 4,  /* string constants may continue across a newline */
};

/* Index just past the closing quote of a quoted token whose body starts at i, or SIZE_MAX. */
static size_t scan_quoted(const struct sqllex *lx, size_t i, char quote, int rules)
{
    while (i < lx->len) {
        char c = lx->p[i];
        if (c == '\\' && (rules & Q_BACKSLASH)) {
            i += 2;
        } else if (c == quote) {
            if ((rules & Q_DOUBLED) && at(lx, i + 1, quote)) {
                i += 2;
                continue;
            }
            size_t next = (rules & Q_CONTINUE) ? quote_continuation(lx, i + 1) : 0;
            if (next == 0)
                return i + 1;
            i = next;
        } else {
            i++;
        }
    }
    return SIZE_MAX;
}

/* Every string and quoted-identifier form, by what opens it (lower case; letters match either
 * case). The openers differ before their quote, so at most one matches. */
struct quoted_form {
    const char *open;
    char quote;
    int rules;
    enum sqltok_kind kind;
};

static const struct quoted_form quoted_forms[] = {
    {"'", '\'', Q_DOUBLED | Q_CONTINUE, SQLTOK_STRING},
    {"e'", '\'', Q_DOUBLED | Q_BACKSLASH | Q_CONTINUE, SQLTOK_STRING},
    {"n'", '\'', Q_DOUBLED | Q_CONTINUE, SQLTOK_STRING}, /* national character: a plain string */
    {"b'", '\'', Q_CONTINUE, SQLTOK_STRING},             /* no '' inside bit strings */
    {"x'", '\'', Q_CONTINUE, SQLTOK_STRING},
    {"u&'", '\'', Q_DOUBLED | Q_CONTINUE, SQLTOK_STRING}, /* escapes are decoded later */
    {"\"", '"', Q_DOUBLED, SQLTOK_QIDENT},
    {"u&\"", '"', Q_DOUBLED, SQLTOK_QIDENT},
};

static const struct quoted_form *quoted_form_at(const struct sqllex *lx, size_t i)
{
    /* Every token passes here first: most open no quoted form, and only these bytes can. */
    if (!quote_starts[(unsigned char)lx->p[i]])
        return NULL;
    for (size_t k = 0; k < sizeof quoted_forms / sizeof quoted_forms[0]; k++)
        if (opens_at(lx, i, quoted_forms[k].open))
            return &quoted_forms[k];
    return NULL;
}

/* $tag$ ... $tag$. Called at a '$' that is followed by '$' or a tag start. Returns the index
 * just past the closing delimiter, SIZE_MAX when it never comes, or 0 when this '$' does not open
 * a dollar quote after all ($abc with no closing $ of the tag). Searching for the first "$tag$"
 * gives the same end as scan.l, which stops at every '$' inside the body. */
static size_t scan_dollar(const struct sqllex *lx, size_t start)
{
    size_t i = scan_while(lx, start + 1, is_dolq_cont);
    if (!at(lx, i, '$'))
        return 0;
    size_t tag_len = i + 1 - start;
    const char *body = lx->p + i + 1;
    const char *end = memmem(body, lx->len - (i + 1), lx->p + start, tag_len);
    if (!end)
        return SIZE_MAX;
    return (size_t)(end - lx->p) + tag_len;
}

/* At a '$': a parameter ($1), a dollar-quoted string, or a lone '$' that the server will reject. */
static size_t scan_dollar_token(const struct sqllex *lx, size_t i, enum sqltok_kind *kind)
{
    char c1 = peek(lx, i + 1);
    if (is_digit(c1)) {
        *kind = SQLTOK_PARAM;
        return scan_while(lx, i + 1, is_digit);
    }
    if (c1 == '$' || is_ident_start(c1)) {
        size_t end = scan_dollar(lx, i);
        if (end != 0) {
            *kind = SQLTOK_STRING;
            return end;
        }
    }
    *kind = SQLTOK_OP;
    return i + 1;
}

static bool is_decimal_part(char c)
{
    return is_digit(c) || c == '_';
}

/* After 0x, 0o, 0b: ASCII letters, digits and underscores (the server rejects wrong digits). */
static bool is_radix_part(char c)
{
    return is_dolq_cont(c) && (unsigned char)c < 0x80;
}

static bool starts_number(const struct sqllex *lx, size_t i)
{
    return is_digit(lx->p[i]) || (lx->p[i] == '.' && is_digit(peek(lx, i + 1)));
}

/* An exponent at i (e, an optional sign, at least one digit); i itself when there is none. */
static size_t scan_exponent(const struct sqllex *lx, size_t i)
{
    if (!opens_at(lx, i, "e"))
        return i;
    size_t j = i + 1;
    if (at(lx, j, '+') || at(lx, j, '-'))
        j++;
    if (!is_digit(peek(lx, j)))
        return i;
    return scan_while(lx, j, is_decimal_part);
}

/* Integer, decimal, exponent forms and PostgreSQL 16's 0x/0o/0b integers with underscores. */
static size_t scan_number(const struct sqllex *lx, size_t i)
{
    if (opens_at(lx, i, "0x") || opens_at(lx, i, "0o") || opens_at(lx, i, "0b"))
        return scan_while(lx, i + 2, is_radix_part);
    i = scan_while(lx, i, is_decimal_part);
    /* "1..5" is 1 followed by "..": scan.l keeps the dots out of the number */
    if (at(lx, i, '.') && !at(lx, i + 1, '.'))
        i = scan_while(lx, i + 1, is_decimal_part);
    return scan_exponent(lx, i);
}

/* A run of operator characters, cut short where a comment starts (scan.l does the same). */
static size_t scan_operator(const struct sqllex *lx, size_t i)
{
    size_t start = i;
    while (i < lx->len && is_op_char(lx->p[i]) && (i == start || !starts_comment(lx, i)))
        i++;
    return i;
}

/* scan.l's two-character tokens made of self characters. */
static bool starts_self_pair(const struct sqllex *lx, size_t i)
{
    return opens_at(lx, i, "..") || opens_at(lx, i, "::") || opens_at(lx, i, ":=");
}

/* ';', the self-character pairs, runs of operator characters, and one byte of anything else:
 * ( ) [ ] , . : and bytes the server will reject. */
static size_t scan_punct(const struct sqllex *lx, size_t i, enum sqltok_kind *kind)
{
    *kind = SQLTOK_OP;
    if (at(lx, i, ';')) {
        *kind = SQLTOK_SEMI;
        return i + 1;
    }
    if (starts_self_pair(lx, i))
        return i + 2;
    if (is_op_char(lx->p[i]))
        return scan_operator(lx, i);
    return i + 1;
}

/* The end of the token starting at i with its kind; end SIZE_MAX means unterminated. Quoted
 * forms come first: e'x', b'1', u&"x" would otherwise start words. */
static size_t scan_token(const struct sqllex *lx, size_t i, enum sqltok_kind *kind)
{
    const struct quoted_form *q = quoted_form_at(lx, i);
    if (q) {
        *kind = q->kind;
        return scan_quoted(lx, i + strlen(q->open), q->quote, q->rules);
    }
    if (at(lx, i, '$'))
        return scan_dollar_token(lx, i, kind);
    if (is_ident_start(lx->p[i])) {
        *kind = SQLTOK_WORD;
        return scan_while(lx, i + 1, is_ident_cont);
    }
    if (starts_number(lx, i)) {
        *kind = SQLTOK_NUMBER;
        return scan_number(lx, i);
    }
    return scan_punct(lx, i, kind);
}

void sqllex_init(struct sqllex *lx, const char *sql, size_t len)
{
    lx->p = sql ? sql : "";
    lx->len = sql ? len : 0;
    lx->pos = 0;
}

static struct sqltok make_tok(const struct sqllex *lx, enum sqltok_kind kind, size_t start, size_t end)
{
    return (struct sqltok){.kind = kind, .text = lx->p + start, .len = end - start};
}

/* Text from i on does not lex: report it now and at every later call. */
static struct sqltok unterminated(struct sqllex *lx, size_t i)
{
    lx->pos = POS_UNTERMINATED;
    return make_tok(lx, SQLTOK_UNTERMINATED, i, lx->len);
}

struct sqltok sqllex_next(struct sqllex *lx)
{
    if (lx->pos == POS_UNTERMINATED)
        return make_tok(lx, SQLTOK_UNTERMINATED, lx->len, lx->len);
    size_t i = lx->pos;
    if (!skip_separators(lx, &i))
        return unterminated(lx, i);
    if (i >= lx->len) {
        lx->pos = lx->len;
        return make_tok(lx, SQLTOK_EOF, lx->len, lx->len);
    }
    enum sqltok_kind kind;
    size_t end = scan_token(lx, i, &kind);
    if (end == SIZE_MAX || end > lx->len) /* > len: a backslash as the very last byte */
        return unterminated(lx, i);
    lx->pos = end;
    return make_tok(lx, kind, i, end);
}
