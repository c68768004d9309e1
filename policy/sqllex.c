/* SQL lexer following PostgreSQL's scan.l closely enough that token boundaries agree: comments,
 * quoted identifiers, every string form (with quote continuation across newlines) and dollar
 * quoting. It assumes standard_conforming_strings = on for plain '...' strings. It never
 * allocates and never reads past len; on top of it, sql_needs_own_transaction() looks at the
 * leading words of each statement. No I/O, no globals. */
#include "policy/sqllex.h"

#include <stdint.h>
#include <string.h>

/* lx->pos after an unterminated token, so that later calls keep reporting it. */
#define POS_UNTERMINATED SIZE_MAX

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_newline(char c)
{
    return c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* scan.l ident_start: letters, underscore and every byte of a multi-byte character. */
static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (unsigned char)c >= 0x80;
}

/* scan.l dolq_cont: a dollar-quote tag may not contain '$' ... */
static bool is_dolq_cont(char c)
{
    return is_ident_start(c) || is_digit(c);
}

/* ... but an identifier may: a$b is one identifier, never the start of a dollar quote. */
static bool is_ident_cont(char c)
{
    return is_dolq_cont(c) || c == '$';
}

/* Lookup tables rather than strchr: these run for nearly every byte of every statement. */
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
static size_t scan_while(const struct sqllex *lx, size_t i, bool (*in_class)(char))
{
    while (i < lx->len && in_class(lx->p[i]))
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

bool sqltok_is(const struct sqltok *tok, const char *word)
{
    if (tok->kind != SQLTOK_WORD || strlen(word) != tok->len)
        return false;
    for (size_t i = 0; i < tok->len; i++) {
        char a = tok->text[i], b = word[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

/* What the transaction check keeps of one statement: its first words, with a parenthesized
 * option list right after the first word left out (VACUUM (VERBOSE) ..., CLUSTER (VERBOSE)). */
#define STMT_LEAD_MAX 8
struct stmt {
    struct sqltok lead[STMT_LEAD_MAX];
    size_t nlead; /* tokens kept, options left out; may exceed STMT_LEAD_MAX */
    size_t paren; /* depth inside the option list */
    bool concurrently, detach;
};

static bool lead_is(const struct stmt *s, size_t i, const char *word)
{
    return i < s->nlead && i < STMT_LEAD_MAX && sqltok_is(&s->lead[i], word);
}

static bool is_punct(const struct sqltok *t, char c)
{
    return t->kind == SQLTOK_OP && t->len == 1 && t->text[0] == c;
}

static void stmt_add(struct stmt *s, const struct sqltok *t)
{
    if (sqltok_is(t, "concurrently"))
        s->concurrently = true;
    if (sqltok_is(t, "detach"))
        s->detach = true;
    if (s->paren) {
        if (is_punct(t, '('))
            s->paren++;
        else if (is_punct(t, ')'))
            s->paren--;
        return;
    }
    if (s->nlead == 1 && s->lead[0].kind == SQLTOK_WORD && is_punct(t, '(')) {
        s->paren = 1;
        return;
    }
    if (s->nlead < STMT_LEAD_MAX)
        s->lead[s->nlead] = *t;
    s->nlead++;
}

/* True when word i of the statement is one of words (a NULL-terminated list). */
static bool lead_in(const struct stmt *s, size_t i, const char *const *words)
{
    for (; *words; words++)
        if (lead_is(s, i, *words))
            return true;
    return false;
}

/* Objects whose CREATE or DROP cannot run in a transaction block. */
static const char *const whole_objects[] = {"database", "tablespace", "subscription", NULL};

/* One checker per leading word: does this form of the statement need its own transaction? */
static bool always(const struct stmt *s)
{
    return true;
}

static bool create_needs_own(const struct stmt *s)
{
    size_t i = lead_is(s, 1, "unique") ? 2 : 1;
    if (lead_is(s, i, "index") && lead_is(s, i + 1, "concurrently"))
        return true;
    return lead_in(s, 1, whole_objects);
}

static bool drop_needs_own(const struct stmt *s)
{
    return (lead_is(s, 1, "index") && lead_is(s, 2, "concurrently")) || lead_in(s, 1, whole_objects);
}

static bool alter_needs_own(const struct stmt *s)
{
    static const char *const objects[] = {"system", "subscription", NULL};
    return lead_in(s, 1, objects) ||
           (lead_is(s, 1, "database") && lead_is(s, 3, "set") && lead_is(s, 4, "tablespace")) ||
           (lead_is(s, 1, "table") && s->detach && s->concurrently);
}

/* The CONCURRENTLY word or option, or a whole-scope target. */
static bool reindex_needs_own(const struct stmt *s)
{
    static const char *const scopes[] = {"system", "database", "schema", NULL};
    return s->concurrently || lead_in(s, 1, scopes);
}

/* COMMIT PREPARED, ROLLBACK PREPARED. */
static bool prepared_needs_own(const struct stmt *s)
{
    return lead_is(s, 1, "prepared");
}

static bool discard_needs_own(const struct stmt *s)
{
    return lead_is(s, 1, "all");
}

/* CLUSTER [VERBOSE | (options)] with no table: the whole database. */
static bool cluster_needs_own(const struct stmt *s)
{
    return s->nlead == 1 || (s->nlead == 2 && lead_is(s, 1, "verbose"));
}

static const struct {
    const char *first;
    bool (*needs_own)(const struct stmt *);
} own_transaction_forms[] = {
    {"vacuum", always},
    {"create", create_needs_own},
    {"drop", drop_needs_own},
    {"alter", alter_needs_own},
    {"reindex", reindex_needs_own},
    {"commit", prepared_needs_own},
    {"rollback", prepared_needs_own},
    {"discard", discard_needs_own},
    {"cluster", cluster_needs_own},
};

static bool stmt_needs_own_transaction(const struct stmt *s)
{
    for (size_t i = 0; i < sizeof own_transaction_forms / sizeof own_transaction_forms[0]; i++)
        if (lead_is(s, 0, own_transaction_forms[i].first))
            return own_transaction_forms[i].needs_own(s);
    return false;
}

/* Walks the statements of sql: stmt_pred on each statement's leading words, tok_pred (may be
 * NULL) on every token. Text that does not lex gives `unterminated`: PostgreSQL parses the whole
 * string before running any of it, so such text runs nothing at all. */
static bool any_statement(const char *sql, size_t len, bool (*stmt_pred)(const struct stmt *),
                          bool (*tok_pred)(const struct sqltok *), bool unterminated)
{
    struct sqllex lx;
    sqllex_init(&lx, sql, len);
    struct stmt s;
    memset(&s, 0, sizeof s);
    bool found = false;
    for (;;) {
        struct sqltok t = sqllex_next(&lx);
        if (t.kind == SQLTOK_UNTERMINATED)
            return unterminated;
        if (t.kind == SQLTOK_SEMI || t.kind == SQLTOK_EOF) {
            if (s.nlead > 0 && stmt_pred(&s))
                found = true;
            memset(&s, 0, sizeof s);
            if (t.kind == SQLTOK_EOF)
                return found;
            continue;
        }
        if (tok_pred && tok_pred(&t))
            found = true;
        stmt_add(&s, &t);
    }
}

bool sql_needs_own_transaction(const char *sql, size_t len)
{
    return any_statement(sql, len, stmt_needs_own_transaction, NULL, false);
}

/* DISCARD ALL and RESET ALL: every setting back to its default, pgmesh's among them. */
static bool stmt_resets_settings(const struct stmt *s)
{
    return s->nlead == 2 && (lead_is(s, 0, "discard") || lead_is(s, 0, "reset")) && lead_is(s, 1, "all");
}

bool sql_resets_settings(const char *sql, size_t len)
{
    return any_statement(sql, len, stmt_resets_settings, NULL, false);
}

/* A plain double-quoted identifier spelling exactly word (quoted names are case-sensitive). */
static bool qident_is(const struct sqltok *t, const char *word)
{
    size_t n = strlen(word);
    return t->kind == SQLTOK_QIDENT && t->len == n + 2 && t->text[0] == '"' && memcmp(t->text + 1, word, n) == 0 &&
           t->text[n + 1] == '"';
}

/* Statements whose effect outlives the transaction on the server connection: session settings,
 * prepared statements, LISTEN, cursors WITH HOLD, temporary objects, and anything that can run
 * arbitrary SQL (DO, LOAD, set_config). SET LOCAL / TRANSACTION / CONSTRAINTS end with the
 * transaction and do not count. */
static bool stmt_leaves_session_state(const struct stmt *s)
{
    static const char *const leading[] = {"reset", "prepare", "listen", "declare", "do", "load"};
    if (lead_is(s, 0, "set"))
        return !(lead_is(s, 1, "local") || lead_is(s, 1, "transaction") || lead_is(s, 1, "constraints"));
    for (size_t i = 0; i < sizeof leading / sizeof leading[0]; i++)
        if (lead_is(s, 0, leading[i]))
            return true;
    return false;
}

static bool tok_leaves_session_state(const struct sqltok *t)
{
    /* Every token of every statement passes here: the length rules out most at once. */
    switch (t->len) {
    case 4:
        return sqltok_is(t, "temp");
    case 7:
        return sqltok_is(t, "pg_temp");
    case 9:
        return sqltok_is(t, "temporary") || qident_is(t, "pg_temp");
    case 10:
        return sqltok_is(t, "set_config");
    case 12:
        return qident_is(t, "set_config");
    default:
        return false;
    }
}

bool sql_may_leave_session_state(const char *sql, size_t len)
{
    /* Text that does not lex runs nothing, but err towards a reset all the same. */
    return any_statement(sql, len, stmt_leaves_session_state, tok_leaves_session_state, true);
}

bool sql_is_plain(const char *sql, size_t len)
{
    static const char *const plain[] = {"select", "insert", "update", "delete", "with", "values", "table"};
    struct sqllex lx;
    sqllex_init(&lx, sql, len);
    bool statement_start = true;
    for (;;) {
        struct sqltok t = sqllex_next(&lx);
        if (t.kind == SQLTOK_UNTERMINATED)
            return false;
        if (t.kind == SQLTOK_EOF)
            return true;
        if (t.kind == SQLTOK_SEMI) {
            statement_start = true;
            continue;
        }
        if (tok_leaves_session_state(&t))
            return false;
        if (statement_start) {
            statement_start = false;
            bool known = false;
            for (size_t i = 0; i < sizeof plain / sizeof plain[0] && !known; i++)
                known = sqltok_is(&t, plain[i]);
            if (!known)
                return false;
        }
    }
}

static bool ends_statement(const struct sqltok *t)
{
    return t->kind == SQLTOK_SEMI || t->kind == SQLTOK_EOF || t->kind == SQLTOK_UNTERMINATED;
}

/* Moves past the rest of the statement; *t becomes the token that ended it. */
static void skip_statement(struct sqllex *lx, struct sqltok *t)
{
    while (!ends_statement(t))
        *t = sqllex_next(lx);
}

enum lead_verdict { LEAD_YES, LEAD_NO, LEAD_NEXT };

/* Reads the next statement as far as its first two words decide sql_has_leading: LEAD_YES or
 * LEAD_NO as soon as they do (without reading further), LEAD_NEXT when the statement does not
 * start with first, *t then being the token that ended it. */
static enum lead_verdict statement_leads(struct sqllex *lx, const char *first, const char *not_second,
                                         struct sqltok *t)
{
    *t = sqllex_next(lx);
    if (ends_statement(t))
        return LEAD_NEXT;
    bool match = sqltok_is(t, first);
    *t = sqllex_next(lx);
    if (match && (t->kind == SQLTOK_SEMI || t->kind == SQLTOK_EOF))
        return LEAD_YES; /* the word alone */
    if (match && t->kind != SQLTOK_UNTERMINATED)
        return not_second && sqltok_is(t, not_second) ? LEAD_NO : LEAD_YES;
    skip_statement(lx, t);
    return LEAD_NEXT;
}

bool sql_has_leading(const char *sql, size_t len, const char *first, const char *not_second)
{
    struct sqllex lx;
    sqllex_init(&lx, sql, len);
    for (;;) {
        struct sqltok end;
        enum lead_verdict v = statement_leads(&lx, first, not_second, &end);
        if (v != LEAD_NEXT)
            return v == LEAD_YES;
        if (end.kind != SQLTOK_SEMI)
            return false; /* the end, or text that does not lex (and so runs nothing) */
    }
}

/* An unquoted word as PostgreSQL folds it (ASCII lower case). */
static bool fold_word(const struct sqltok *t, char *out, size_t cap)
{
    if (t->len >= cap)
        return false;
    for (size_t i = 0; i < t->len; i++)
        out[i] = ascii_lower(t->text[i]);
    out[t->len] = '\0';
    return true;
}

/* A "quoted" identifier without its quotes, "" read as one quote; never empty. */
static bool unquote_ident(const struct sqltok *t, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 1; i + 1 < t->len; i++) {
        if (t->text[i] == '"')
            i++; /* "" inside: one quote */
        if (n + 1 >= cap)
            return false;
        out[n++] = t->text[i];
    }
    out[n] = '\0';
    return n > 0;
}

/* The identifier token as PostgreSQL reads it. False when it does not fit in cap (NUL
 * included) or is not a plain identifier (U&"..." is not read here). */
static bool ident_text(const struct sqltok *t, char *out, size_t cap)
{
    if (t->kind == SQLTOK_WORD)
        return fold_word(t, out, cap);
    if (t->kind == SQLTOK_QIDENT && t->len >= 2 && t->text[0] == '"')
        return unquote_ident(t, out, cap);
    return false;
}

/* A statement's first words, enough to read DEALLOCATE [PREPARE] name. */
struct stmt_words {
    struct sqltok w[4];
    size_t n; /* every word counted; only the first four kept */
};

/* Reads the next statement; returns the token that ended it (';', EOF or UNTERMINATED). */
static struct sqltok read_statement(struct sqllex *lx, struct stmt_words *s)
{
    s->n = 0;
    for (;;) {
        struct sqltok t = sqllex_next(lx);
        if (ends_statement(&t))
            return t;
        if (s->n < 4)
            s->w[s->n] = t;
        s->n++;
    }
}

/* DEALLOCATE x | DEALLOCATE PREPARE x, x a name or ALL; anything else is OTHER. */
static enum sql_dealloc dealloc_form(const struct stmt_words *s, char *name, size_t name_cap)
{
    size_t name_at = s->n >= 3 && sqltok_is(&s->w[1], "prepare") ? 2 : 1;
    if (s->n != name_at + 1)
        return SQL_DEALLOC_OTHER;
    if (sqltok_is(&s->w[name_at], "all"))
        return SQL_DEALLOC_ALL;
    return ident_text(&s->w[name_at], name, name_cap) ? SQL_DEALLOC_ONE : SQL_DEALLOC_OTHER;
}

enum sql_dealloc sql_deallocate(const char *sql, size_t len, char *name, size_t name_cap)
{
    struct sqllex lx;
    sqllex_init(&lx, sql, len);
    size_t statements = 0, deallocs = 0; /* empty statements aside */
    enum sql_dealloc form = SQL_DEALLOC_OTHER;
    struct sqltok end;
    do {
        struct stmt_words s;
        end = read_statement(&lx, &s);
        if (s.n == 0)
            continue;
        statements++;
        if (!sqltok_is(&s.w[0], "deallocate"))
            continue;
        deallocs++;
        if (statements == 1)
            form = dealloc_form(&s, name, name_cap);
    } while (end.kind == SQLTOK_SEMI);
    if (deallocs == 0)
        return SQL_DEALLOC_NONE;
    /* Text that does not lex runs nothing, but it did mean to deallocate something. */
    if (end.kind == SQLTOK_UNTERMINATED || statements != 1)
        return SQL_DEALLOC_OTHER;
    return form;
}
