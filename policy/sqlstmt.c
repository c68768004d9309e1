/* What pgmesh needs to know of client statements, read from the lexer's tokens: which ones cannot
 * run in a transaction block, reset every setting, may leave session state behind, lead with a
 * given word or DEALLOCATE something; and which are plain enough to need none of those checks.
 * No I/O, no globals, no allocation. */
#include "policy/sqlstmt.h"

#include <string.h>

#include "policy/sqltext.h"

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

bool sqltok_leaves_session_state(const struct sqltok *t)
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
    return any_statement(sql, len, stmt_leaves_session_state, sqltok_leaves_session_state, true);
}

bool sqltok_plain_lead(const struct sqltok *t)
{
    /* By length first: every Query and Parse the guard's quick path takes passes here. */
    switch (t->len) {
    case 4:
        return sqltok_is(t, "with");
    case 5:
        return sqltok_is(t, "table");
    case 6:
        return sqltok_is(t, "select") || sqltok_is(t, "insert") || sqltok_is(t, "update") ||
               sqltok_is(t, "delete") || sqltok_is(t, "values");
    default:
        return false;
    }
}

bool sql_is_plain(const char *sql, size_t len)
{
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
        if (sqltok_leaves_session_state(&t))
            return false;
        if (statement_start && !sqltok_plain_lead(&t))
            return false;
        statement_start = false;
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
        out[i] = sqltext_lower(t->text[i]);
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
