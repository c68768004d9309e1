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

static bool is_op_char(char c)
{
    return c != '\0' && strchr("~!@#^&|`?+-*/%<>=", c) != NULL;
}

static bool at(const struct sqllex *lx, size_t i, char c)
{
    return i < lx->len && lx->p[i] == c;
}

static bool starts_comment(const struct sqllex *lx, size_t i)
{
    return (at(lx, i, '-') && at(lx, i + 1, '-')) || (at(lx, i, '/') && at(lx, i + 1, '*'));
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
        if (at(lx, i, '/') && at(lx, i + 1, '*')) {
            depth++;
            i += 2;
        } else if (at(lx, i, '*') && at(lx, i + 1, '/')) {
            i += 2;
            if (--depth == 0)
                return i;
        } else {
            i++;
        }
    }
    return SIZE_MAX;
}

/* scan.l quotecontinue: after a closing quote, white space containing a newline and then another
 * quote continue the same string ('a'\n'b' is 'ab'). Returns the index just past that quote, or
 * 0 when the string really ended at i. */
static size_t quote_continuation(const struct sqllex *lx, size_t i)
{
    for (;;) { /* horiz_whitespace*: [ \t\f] or a -- comment */
        if (at(lx, i, ' ') || at(lx, i, '\t') || at(lx, i, '\f'))
            i++;
        else if (at(lx, i, '-') && at(lx, i + 1, '-'))
            i = skip_line_comment(lx, i);
        else
            break;
    }
    if (i >= lx->len || !is_newline(lx->p[i]))
        return 0;
    i++;
    for (;;) { /* special_whitespace*: spaces, or a -- comment that ends in a newline */
        if (i < lx->len && is_space(lx->p[i])) {
            i++;
        } else if (at(lx, i, '-') && at(lx, i + 1, '-')) {
            size_t end = skip_line_comment(lx, i);
            if (end >= lx->len)
                return 0;
            i = end + 1;
        } else {
            break;
        }
    }
    return at(lx, i, '\'') ? i + 1 : 0;
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

/* $tag$ ... $tag$. Called at a '$' that is followed by '$' or a tag start. Returns the index
 * just past the closing delimiter, SIZE_MAX when it never comes, or 0 when this '$' does not open
 * a dollar quote after all ($abc with no closing $ of the tag). Searching for the first "$tag$"
 * gives the same end as scan.l, which stops at every '$' inside the body. */
static size_t scan_dollar(const struct sqllex *lx, size_t start)
{
    size_t i = start + 1;
    while (i < lx->len && is_dolq_cont(lx->p[i]))
        i++;
    if (!at(lx, i, '$'))
        return 0;
    size_t tag_len = i + 1 - start;
    const char *body = lx->p + i + 1;
    const char *end = memmem(body, lx->len - (i + 1), lx->p + start, tag_len);
    if (!end)
        return SIZE_MAX;
    return (size_t)(end - lx->p) + tag_len;
}

/* Integer, decimal, exponent forms and PostgreSQL 16's 0x/0o/0b integers with underscores. */
static size_t scan_number(const struct sqllex *lx, size_t i)
{
    if (at(lx, i, '0') && i + 1 < lx->len && lx->p[i + 1] && strchr("xXoObB", lx->p[i + 1])) {
        i += 2;
        while (i < lx->len && is_dolq_cont(lx->p[i]) && (unsigned char)lx->p[i] < 0x80)
            i++;
        return i;
    }
    while (i < lx->len && (is_digit(lx->p[i]) || lx->p[i] == '_'))
        i++;
    /* "1..5" is 1 followed by "..": scan.l keeps the dots out of the number */
    if (at(lx, i, '.') && !at(lx, i + 1, '.')) {
        i++;
        while (i < lx->len && (is_digit(lx->p[i]) || lx->p[i] == '_'))
            i++;
    }
    if (at(lx, i, 'e') || at(lx, i, 'E')) {
        size_t j = i + 1;
        if (at(lx, j, '+') || at(lx, j, '-'))
            j++;
        if (j < lx->len && is_digit(lx->p[j])) {
            i = j;
            while (i < lx->len && (is_digit(lx->p[i]) || lx->p[i] == '_'))
                i++;
        }
    }
    return i;
}

/* A run of operator characters, cut short where a comment starts (scan.l does the same). */
static size_t scan_operator(const struct sqllex *lx, size_t i)
{
    size_t start = i;
    while (i < lx->len && is_op_char(lx->p[i]) && (i == start || !starts_comment(lx, i)))
        i++;
    return i;
}

/* The end of the token starting at i with its kind; end SIZE_MAX means unterminated. */
static size_t scan_token(const struct sqllex *lx, size_t i, enum sqltok_kind *kind)
{
    char c = lx->p[i];
    char c1 = i + 1 < lx->len ? lx->p[i + 1] : '\0';
    char c2 = i + 2 < lx->len ? lx->p[i + 2] : '\0';

    *kind = SQLTOK_STRING;
    if (c == '\'')
        return scan_quoted(lx, i + 1, '\'', Q_DOUBLED | Q_CONTINUE);
    if ((c == 'e' || c == 'E') && c1 == '\'')
        return scan_quoted(lx, i + 2, '\'', Q_DOUBLED | Q_BACKSLASH | Q_CONTINUE);
    if ((c == 'n' || c == 'N') && c1 == '\'') /* national character: a plain string */
        return scan_quoted(lx, i + 2, '\'', Q_DOUBLED | Q_CONTINUE);
    if ((c == 'b' || c == 'B' || c == 'x' || c == 'X') && c1 == '\'') /* no '' inside these */
        return scan_quoted(lx, i + 2, '\'', Q_CONTINUE);
    if ((c == 'u' || c == 'U') && c1 == '&' && c2 == '\'') /* escapes are decoded later */
        return scan_quoted(lx, i + 3, '\'', Q_DOUBLED | Q_CONTINUE);
    if (c == '$' && (c1 == '$' || is_ident_start(c1))) {
        size_t end = scan_dollar(lx, i);
        if (end != 0)
            return end;
        *kind = SQLTOK_OP; /* a lone '$', which the server will reject */
        return i + 1;
    }

    *kind = SQLTOK_QIDENT;
    if (c == '"')
        return scan_quoted(lx, i + 1, '"', Q_DOUBLED);
    if ((c == 'u' || c == 'U') && c1 == '&' && c2 == '"')
        return scan_quoted(lx, i + 3, '"', Q_DOUBLED);

    if (is_ident_start(c)) {
        *kind = SQLTOK_WORD;
        while (++i < lx->len && is_ident_cont(lx->p[i]))
            ;
        return i;
    }
    if (c == '$' && is_digit(c1)) {
        *kind = SQLTOK_PARAM;
        while (++i < lx->len && is_digit(lx->p[i]))
            ;
        return i;
    }
    /* scan.l's two-character tokens made of self characters: "..", "::" and ":=" */
    if ((c == '.' && c1 == '.') || (c == ':' && (c1 == ':' || c1 == '='))) {
        *kind = SQLTOK_OP;
        return i + 2;
    }
    if (is_digit(c) || (c == '.' && is_digit(c1))) {
        *kind = SQLTOK_NUMBER;
        return scan_number(lx, i);
    }
    if (c == ';') {
        *kind = SQLTOK_SEMI;
        return i + 1;
    }
    *kind = SQLTOK_OP;
    if (is_op_char(c))
        return scan_operator(lx, i);
    return i + 1; /* ( ) [ ] , . : and anything else, one byte each */
}

void sqllex_init(struct sqllex *lx, const char *sql, size_t len)
{
    lx->p = sql ? sql : "";
    lx->len = sql ? len : 0;
    lx->pos = 0;
}

static struct sqltok make_tok(const struct sqllex *lx, enum sqltok_kind kind, size_t start,
                              size_t end)
{
    return (struct sqltok){.kind = kind, .text = lx->p + start, .len = end - start};
}

struct sqltok sqllex_next(struct sqllex *lx)
{
    if (lx->pos == POS_UNTERMINATED)
        return make_tok(lx, SQLTOK_UNTERMINATED, lx->len, lx->len);
    size_t i = lx->pos;
    for (;;) { /* white space and comments separate tokens and are never returned */
        if (i < lx->len && is_space(lx->p[i])) {
            i++;
        } else if (at(lx, i, '-') && at(lx, i + 1, '-')) {
            i = skip_line_comment(lx, i);
        } else if (at(lx, i, '/') && at(lx, i + 1, '*')) {
            size_t end = skip_block_comment(lx, i);
            if (end == SIZE_MAX) {
                lx->pos = POS_UNTERMINATED;
                return make_tok(lx, SQLTOK_UNTERMINATED, i, lx->len);
            }
            i = end;
        } else {
            break;
        }
    }
    if (i >= lx->len) {
        lx->pos = lx->len;
        return make_tok(lx, SQLTOK_EOF, lx->len, lx->len);
    }
    enum sqltok_kind kind;
    size_t end = scan_token(lx, i, &kind);
    if (end == SIZE_MAX || end > lx->len) { /* > len: a backslash as the very last byte */
        lx->pos = POS_UNTERMINATED;
        return make_tok(lx, SQLTOK_UNTERMINATED, i, lx->len);
    }
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
    size_t nlead;   /* tokens kept, options left out; may exceed STMT_LEAD_MAX */
    size_t paren;   /* depth inside the option list */
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

static bool stmt_needs_own_transaction(const struct stmt *s)
{
    if (lead_is(s, 0, "vacuum"))
        return true;
    if (lead_is(s, 0, "create")) {
        size_t i = lead_is(s, 1, "unique") ? 2 : 1;
        if (lead_is(s, i, "index") && lead_is(s, i + 1, "concurrently"))
            return true;
        return lead_is(s, 1, "database") || lead_is(s, 1, "tablespace") ||
               lead_is(s, 1, "subscription");
    }
    if (lead_is(s, 0, "drop"))
        return (lead_is(s, 1, "index") && lead_is(s, 2, "concurrently")) ||
               lead_is(s, 1, "database") || lead_is(s, 1, "tablespace") ||
               lead_is(s, 1, "subscription");
    if (lead_is(s, 0, "alter"))
        return lead_is(s, 1, "system") || lead_is(s, 1, "subscription") ||
               (lead_is(s, 1, "database") && lead_is(s, 3, "set") && lead_is(s, 4, "tablespace")) ||
               (lead_is(s, 1, "table") && s->detach && s->concurrently);
    if (lead_is(s, 0, "reindex")) /* the CONCURRENTLY word or option, or a whole-scope target */
        return s->concurrently || lead_is(s, 1, "system") || lead_is(s, 1, "database") ||
               lead_is(s, 1, "schema");
    if (lead_is(s, 0, "commit") || lead_is(s, 0, "rollback"))
        return lead_is(s, 1, "prepared");
    if (lead_is(s, 0, "discard"))
        return lead_is(s, 1, "all");
    if (lead_is(s, 0, "cluster")) /* CLUSTER [VERBOSE | (options)] with no table: the whole db */
        return s->nlead == 1 || (s->nlead == 2 && lead_is(s, 1, "verbose"));
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

/* A plain double-quoted identifier spelling exactly word (quoted names are case-sensitive). */
static bool qident_is(const struct sqltok *t, const char *word)
{
    size_t n = strlen(word);
    return t->kind == SQLTOK_QIDENT && t->len == n + 2 && t->text[0] == '"' &&
           memcmp(t->text + 1, word, n) == 0 && t->text[n + 1] == '"';
}

/* Statements whose effect outlives the transaction on the server connection: session settings,
 * prepared statements, LISTEN, cursors WITH HOLD, temporary objects, and anything that can run
 * arbitrary SQL (DO, LOAD, set_config). SET LOCAL / TRANSACTION / CONSTRAINTS end with the
 * transaction and do not count. */
static bool stmt_leaves_session_state(const struct stmt *s)
{
    static const char *const leading[] = {"reset", "prepare", "listen", "declare", "do", "load"};
    if (lead_is(s, 0, "set"))
        return !(lead_is(s, 1, "local") || lead_is(s, 1, "transaction") ||
                 lead_is(s, 1, "constraints"));
    for (size_t i = 0; i < sizeof leading / sizeof leading[0]; i++)
        if (lead_is(s, 0, leading[i]))
            return true;
    return false;
}

static bool tok_leaves_session_state(const struct sqltok *t)
{
    return sqltok_is(t, "temp") || sqltok_is(t, "temporary") || sqltok_is(t, "pg_temp") ||
           sqltok_is(t, "set_config") || qident_is(t, "set_config") || qident_is(t, "pg_temp");
}

bool sql_may_leave_session_state(const char *sql, size_t len)
{
    /* Text that does not lex runs nothing, but err towards a reset all the same. */
    return any_statement(sql, len, stmt_leaves_session_state, tok_leaves_session_state, true);
}

bool sql_has_leading(const char *sql, size_t len, const char *first, const char *not_second)
{
    struct sqllex lx;
    sqllex_init(&lx, sql, len);
    size_t pos = 0; /* token position within the statement */
    bool match = false;
    for (;;) {
        struct sqltok t = sqllex_next(&lx);
        if (t.kind == SQLTOK_UNTERMINATED)
            return false;
        if (t.kind == SQLTOK_SEMI || t.kind == SQLTOK_EOF) {
            if (match && pos == 1)
                return true; /* the word alone */
            if (t.kind == SQLTOK_EOF)
                return false;
            pos = 0;
            match = false;
            continue;
        }
        if (pos == 0)
            match = sqltok_is(&t, first);
        else if (pos == 1 && match)
            return !(not_second && sqltok_is(&t, not_second));
        pos++;
    }
}

/* The identifier token as PostgreSQL reads it: unquoted words lower-cased (ASCII), "quoted" ones
 * unquoted with "" as one quote. False when it does not fit or is not a plain identifier. */
static bool ident_text(const struct sqltok *t, char *out, size_t cap)
{
    size_t n = 0;
    if (t->kind == SQLTOK_WORD) {
        for (size_t i = 0; i < t->len; i++) {
            char ch = t->text[i];
            if (n + 1 >= cap)
                return false;
            out[n++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
        }
    } else if (t->kind == SQLTOK_QIDENT && t->len >= 2 && t->text[0] == '"') {
        for (size_t i = 1; i + 1 < t->len; i++) {
            if (t->text[i] == '"')
                i++; /* "" inside: one quote */
            if (n + 1 >= cap)
                return false;
            out[n++] = t->text[i];
        }
    } else {
        return false;
    }
    out[n] = '\0';
    return n > 0;
}

enum sql_dealloc sql_deallocate(const char *sql, size_t len, char *name, size_t name_cap)
{
    struct sqllex lx;
    sqllex_init(&lx, sql, len);
    size_t statements = 0, pos = 0;
    bool dealloc = false, readable = false, all = false;
    struct sqltok words[4];
    for (;;) {
        struct sqltok t = sqllex_next(&lx);
        if (t.kind == SQLTOK_UNTERMINATED)
            return dealloc ? SQL_DEALLOC_OTHER : SQL_DEALLOC_NONE;
        if (t.kind == SQLTOK_SEMI || t.kind == SQLTOK_EOF) {
            if (pos > 0 && dealloc && statements == 1) {
                /* DEALLOCATE x | DEALLOCATE PREPARE x, x a name or ALL */
                size_t at = pos >= 3 && sqltok_is(&words[1], "prepare") ? 2 : 1;
                readable = pos == at + 1;
                all = readable && sqltok_is(&words[at], "all");
                if (readable && !all)
                    readable = ident_text(&words[at], name, name_cap);
            }
            if (t.kind == SQLTOK_EOF)
                break;
            pos = 0;
            continue;
        }
        if (pos == 0) {
            statements++;
            if (sqltok_is(&t, "deallocate"))
                dealloc = true;
        }
        if (pos < 4)
            words[pos] = t;
        pos++;
    }
    if (!dealloc)
        return SQL_DEALLOC_NONE;
    if (statements != 1 || !readable)
        return SQL_DEALLOC_OTHER;
    return all ? SQL_DEALLOC_ALL : SQL_DEALLOC_ONE;
}
