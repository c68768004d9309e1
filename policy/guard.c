/* Claim tampering guard: walks client SQL with the sqllex tokenizer and refuses statements that
 * would change a setting pgmesh manages or a role pins (SET/RESET, set_config, UPDATE pg_settings,
 * role and database defaults, function SET clauses) and startup parameters that would do the same.
 * It reads tokens only: string bodies (dollar-quoted function bodies, DO blocks) stay strings,
 * and what they run is the hardening SQL's job. Names and strings are decoded by policy/sqltext.c.
 * No I/O, no globals, no allocation. */
#include "policy/guard.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/limitset.h"
#include "policy/managed.h"
#include "policy/quickplain.h"
#include "policy/sqllex.h"
#include "policy/sqlstmt.h"
#include "policy/sqltext.h"

/* A token cursor: the lexer and its current token. Copying it is how we look ahead. */
struct cur {
    struct sqllex lx;
    struct sqltok tok;
};

static void cur_next(struct cur *c)
{
    c->tok = sqllex_next(&c->lx);
}

/* End of the statement: ';', end of text, or the point where lexing stopped. */
static bool cur_at_end(const struct cur *c)
{
    return c->tok.kind == SQLTOK_SEMI || c->tok.kind == SQLTOK_EOF || c->tok.kind == SQLTOK_UNTERMINATED;
}

static bool cur_is(const struct cur *c, const char *word)
{
    return sqltok_is(&c->tok, word);
}

static bool cur_punct(const struct cur *c, char ch)
{
    return c->tok.kind == SQLTOK_OP && c->tok.len == 1 && c->tok.text[0] == ch;
}

/* The word after the current token. */
static bool next_is(const struct cur *c, const char *word)
{
    struct cur ahead = *c;
    cur_next(&ahead);
    return cur_is(&ahead, word);
}

static bool is_ident(const struct sqltok *tok)
{
    return tok->kind == SQLTOK_WORD || tok->kind == SQLTOK_QIDENT;
}

/* A dotted name (PostgreSQL's var_name: ColId ['.' ColId]...), normalized into *out and the
 * cursor moved past it. False, cursor unmoved, when no identifier starts here. A U&"..." followed
 * by UESCAPE uses an escape character we do not decode: bad. */
static bool read_name(struct cur *c, struct sqltext *out)
{
    memset(out, 0, sizeof *out);
    if (!is_ident(&c->tok))
        return false;
    for (;;) {
        bool unicode = c->tok.kind == SQLTOK_QIDENT && c->tok.text[0] != '"';
        sqltext_put_ident(out, &c->tok);
        cur_next(c);
        if (unicode && cur_is(c, "uescape"))
            out->bad = true;
        struct cur ahead = *c;
        cur_next(&ahead);
        if (!cur_punct(c, '.') || !is_ident(&ahead.tok))
            return true;
        sqltext_put(out, '.');
        *c = ahead;
    }
}

/* Names PostgreSQL still accepts for a setting that was renamed (guc.c, map_old_guc_names in
 * PostgreSQL 15): SET sort_mem changes work_mem. The name a statement uses is read as the
 * setting it changes. */
static struct sqltext canonical_name(const struct sqltext *t)
{
    static const char *const old_names[][2] = {{"sort_mem", "work_mem"}, {"vacuum_mem", "maintenance_work_mem"}};
    struct sqltext out = *t;
    for (size_t i = 0; i < sizeof old_names / sizeof old_names[0]; i++) {
        if (!t->bad && sqltext_equals(t, old_names[i][0])) {
            memset(&out, 0, sizeof out);
            for (const char *p = old_names[i][1]; *p; p++)
                sqltext_put(&out, *p);
        }
    }
    return out;
}

/* The managed list (policy/managed.c), compared the way guc.c compares names (ASCII
 * case-insensitive), old names included. */
static bool text_is_managed(const struct sqltext *name)
{
    if (name->bad)
        return true;
    struct sqltext t = canonical_name(name);
    for (size_t i = 0; i < managed_settings_count; i++) {
        const struct managed_setting *m = &managed_settings[i];
        if (m->prefix ? sqltext_has_prefix(&t, m->name) : sqltext_equals(&t, m->name))
            return true;
    }
    return false;
}

/* Managed, or pinned by some role ([roles] pin.x, passed in through opt): the names no client may
 * change. */
static bool text_is_guarded(const struct sqltext *name, const struct guard_options *opt)
{
    if (text_is_managed(name))
        return true;
    struct sqltext t = canonical_name(name);
    for (size_t i = 0; opt && i < opt->npinned; i++)
        if (opt->pinned[i] && sqltext_equals(&t, opt->pinned[i]))
            return true;
    return false;
}

/* A limit the server holds as a ceiling: statement_timeout, work_mem (or its old name) or a pinned
 * setting. */
static bool text_is_limit(const struct sqltext *name, const struct guard_options *opt)
{
    if (name->bad)
        return false;
    struct sqltext t = canonical_name(name);
    if (sqltext_equals(&t, "statement_timeout") || sqltext_equals(&t, "work_mem"))
        return true;
    for (size_t i = 0; opt && i < opt->npinned; i++)
        if (opt->pinned[i] && sqltext_equals(&t, opt->pinned[i]))
            return true;
    return false;
}

/* What a top-level SET or RESET may not change: a guarded name, unless it is a limit the server
 * holds the ceiling of. */
static bool statement_may_not_set(const struct sqltext *name, const struct guard_options *opt)
{
    return text_is_guarded(name, opt) && !(opt && opt->limits_on_server && text_is_limit(name, opt));
}

/* Client encodings whose multi-byte characters may hold the byte 0x5C: the server converts them
 * before lexing, so a backslash our lexer sees inside E'...' may not exist for the server, and
 * text we read as string could run as a statement. Names as PostgreSQL's encnames.c spells them
 * after clean_encoding_name (letters and digits only, lower case). */
static bool encoding_is_unsafe(const char *name, size_t len)
{
    static const char *const unsafe[] = {
        "sjis",  "shiftjis", "mskanji",    "win932", "windows932", "shiftjis2004",
        "big5",  "win950",   "windows950", "gbk",    "win936",     "windows936",
        "cp936", "gb18030",  "uhc",        "win949", "windows949", "johab",
    };
    struct sqltext t = {.len = 0};
    for (size_t i = 0; i < len; i++) {
        char c = sqltext_lower(name[i]);
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            sqltext_put(&t, c);
    }
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++)
        if (sqltext_equals(&t, unsafe[i]))
            return true;
    return false;
}

static void set_finding(struct guard_finding *f, const char *s, size_t len)
{
    if (len >= sizeof f->setting) {
        memcpy(f->setting, s, sizeof f->setting - 4);
        memcpy(f->setting + sizeof f->setting - 4, "...", 4);
    } else {
        memcpy(f->setting, s, len);
        f->setting[len] = '\0';
    }
}

static bool refuse(struct guard_finding *f, const char *what)
{
    set_finding(f, what, strlen(what));
    return true;
}

/* Refuses a managed name, naming it (lower case, as guc.c would report it). */
static bool refuse_name(struct guard_finding *f, const struct sqltext *name)
{
    if (name->bad)
        return refuse(f, "undecodable setting name");
    char lc[SQLTEXT_MAX];
    for (size_t i = 0; i < name->len; i++)
        lc[i] = sqltext_lower(name->buf[i]);
    set_finding(f, lc, name->truncated ? sizeof f->setting : name->len);
    return true;
}

/* The value of SET client_encoding / SET NAMES: one word or string, or DEFAULT, or nothing (SET
 * NAMES alone). Anything else we refuse rather than guess. */
static bool client_encoding_value_refused(struct cur *c, struct guard_finding *f)
{
    if (cur_at_end(c) || cur_is(c, "default"))
        return false;
    struct sqltext v = {.len = 0};
    if (c->tok.kind == SQLTOK_STRING)
        v = sqltext_decode_string(&c->tok);
    else if (c->tok.kind == SQLTOK_WORD || c->tok.kind == SQLTOK_QIDENT)
        sqltext_put_ident(&v, &c->tok);
    else
        v.bad = true;
    cur_next(c);
    if (v.bad || v.truncated || !cur_at_end(c) || encoding_is_unsafe(v.buf, v.len))
        return refuse(f, "client_encoding");
    return false;
}

static bool at_session_authorization(const struct cur *c)
{
    return cur_is(c, "session") && next_is(c, "authorization");
}

/* A name a SET clause would change: refused when managed or pinned. */
static bool name_refused(const struct sqltext *name, const struct guard_options *opt, struct guard_finding *f)
{
    if (text_is_guarded(name, opt))
        return refuse_name(f, name);
    if (sqltext_equals(name, "client_encoding"))
        return refuse(f, "client_encoding");
    return false;
}

/* Moves past SET's SESSION | LOCAL words; true (refused) at SESSION AUTHORIZATION. */
static bool set_scope_refused(struct cur *c, struct guard_finding *f)
{
    while (cur_is(c, "session") || cur_is(c, "local")) {
        if (at_session_authorization(c))
            return refuse(f, "session_authorization");
        cur_next(c);
    }
    return false;
}

/* One checker per statement form; the cursor is just past the form's leading word. */

/* SET [SESSION | LOCAL] then ROLE, SESSION AUTHORIZATION, NAMES or a dotted name. TIME ZONE,
 * TRANSACTION, SCHEMA, XML OPTION and the like read as names that are not managed. */
static bool set_refused(struct cur *c, const struct guard_options *opt, struct guard_finding *f)
{
    if (set_scope_refused(c, f))
        return true;
    struct sqltext name;
    if (cur_is(c, "names")) {
        cur_next(c);
        return client_encoding_value_refused(c, f);
    }
    if (!read_name(c, &name))
        return false; /* not a SET PostgreSQL accepts */
    if (statement_may_not_set(&name, opt))
        return refuse_name(f, &name);
    if (!sqltext_equals(&name, "client_encoding"))
        return false;
    if (cur_is(c, "to") || cur_punct(c, '='))
        cur_next(c);
    return client_encoding_value_refused(c, f);
}

/* RESET ALL passes: claims and limits are pgmesh's to set again (every transaction start in
 * transaction pooling, right after it in session pooling), and with the extension PostgreSQL keeps
 * the claims and puts the limits back itself. */
static bool reset_refused(struct cur *c, const struct guard_options *opt, struct guard_finding *f)
{
    if (cur_is(c, "all"))
        return false;
    if (at_session_authorization(c))
        return refuse(f, "session_authorization");
    struct sqltext name;
    if (read_name(c, &name) && statement_may_not_set(&name, opt))
        return refuse_name(f, &name);
    return false;
}

/* DISCARD ALL would drop pgmesh's settings, unless pgmesh sets them again (session pooling). */
static bool discard_refused(struct cur *c, const struct guard_options *opt, struct guard_finding *f)
{
    return cur_is(c, "all") && !(opt && opt->session_pooling) && refuse(f, "DISCARD ALL");
}

/* True, with *depth updated, when the token is a parenthesis. */
static bool paren_step(const struct cur *c, int *depth)
{
    if (cur_punct(c, '('))
        (*depth)++;
    else if (cur_punct(c, ')'))
        (*depth)--;
    else
        return false;
    return true;
}

/* ALTER ROLE | USER | DATABASE | SYSTEM: any SET or RESET outside parentheses changes a default
 * that applies to later sessions, whatever it names. */
static bool alter_defaults_refused(struct cur *c, const char *what, struct guard_finding *f)
{
    int depth = 0;
    for (; !cur_at_end(c); cur_next(c)) {
        if (paren_step(c, &depth) || depth != 0)
            continue;
        if (cur_is(c, "set") || cur_is(c, "reset")) {
            char buf[GUARD_SETTING_MAX];
            snprintf(buf, sizeof buf, "%s ... %s", what, cur_is(c, "set") ? "SET" : "RESET");
            return refuse(f, buf);
        }
    }
    return false;
}

/* At a routine's SET clause: the name it sets while the routine runs. */
static bool routine_clause_refused(const struct cur *at_set, const struct guard_options *opt,
                                   struct guard_finding *f)
{
    struct cur c = *at_set;
    struct sqltext name;
    cur_next(&c);
    return read_name(&c, &name) && name_refused(&name, opt, f);
}

/* CREATE FUNCTION / PROCEDURE and ALTER FUNCTION / PROCEDURE / ROUTINE: a SET clause sets the
 * name while the routine runs, e.g. the tenant claim around a query. Parenthesized argument lists
 * are skipped; a BEGIN ATOMIC body ends the clauses. */
static bool routine_set_refused(struct cur *c, const struct guard_options *opt, struct guard_finding *f)
{
    int depth = 0;
    for (; !cur_at_end(c); cur_next(c)) {
        if (paren_step(c, &depth) || depth != 0)
            continue;
        if (cur_is(c, "begin") && next_is(c, "atomic"))
            return false;
        if (cur_is(c, "set") && routine_clause_refused(c, opt, f))
            return true;
    }
    return false;
}

static bool create_refused(struct cur *c, const struct guard_options *opt, struct guard_finding *f)
{
    if (cur_is(c, "or") && next_is(c, "replace")) {
        cur_next(c);
        cur_next(c);
    }
    return (cur_is(c, "function") || cur_is(c, "procedure")) && routine_set_refused(c, opt, f);
}

static bool alter_refused(struct cur *c, const struct guard_options *opt, struct guard_finding *f)
{
    /* ALTER SYSTEM is superuser only, but never a client's business through pgmesh. */
    static const struct {
        const char *object, *what;
    } defaults[] = {{"role", "ALTER ROLE"},
                    {"user", "ALTER USER"},
                    {"database", "ALTER DATABASE"},
                    {"system", "ALTER SYSTEM"}};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (cur_is(c, defaults[i].object))
            return alter_defaults_refused(c, defaults[i].what, f);
    if (cur_is(c, "function") || cur_is(c, "procedure") || cur_is(c, "routine"))
        return routine_set_refused(c, opt, f);
    return false;
}

static const struct {
    const char *word;
    bool (*refused)(struct cur *c, const struct guard_options *opt, struct guard_finding *f);
} lead_forms[] = {
    {"set", set_refused},       {"reset", reset_refused}, {"discard", discard_refused},
    {"create", create_refused}, {"alter", alter_refused},
};

/* What the leading words of a statement decide. The cursor is at its first token. */
static bool lead_refused(struct cur *c, const struct guard_options *opt, struct guard_finding *f)
{
    for (size_t i = 0; i < sizeof lead_forms / sizeof lead_forms[0]; i++) {
        if (cur_is(c, lead_forms[i].word)) {
            cur_next(c);
            return lead_forms[i].refused(c, opt, f);
        }
    }
    return false;
}

/* A token that may name the function set_config: the word, or a quoted identifier that decodes
 * to it (any case: refusing a call of "SET_CONFIG", which does not resolve, costs nothing), or a
 * quoted identifier we cannot decode. */
static bool names_set_config(const struct cur *c)
{
    if (cur_is(c, "set_config"))
        return true;
    if (c->tok.kind != SQLTOK_QIDENT)
        return false;
    struct cur ahead = *c;
    struct sqltext name;
    return read_name(&ahead, &name) && (name.bad || sqltext_equals(&name, "set_config"));
}

/* Moves from a set_config token to the call's first argument; false when this is not a call
 * of set_config. */
static bool enter_set_config_call(struct cur *c)
{
    struct sqltext fname;
    if (!read_name(c, &fname) || (!fname.bad && !sqltext_equals(&fname, "set_config")))
        return false;           /* set_config.x(...): a function in a schema called set_config */
    if (cur_is(c, "uescape")) { /* U&"..." UESCAPE '!' (: skip the clause to the call */
        cur_next(c);
        cur_next(c);
    }
    if (!cur_punct(c, '('))
        return false; /* a column or alias called set_config, not a call */
    cur_next(c);
    return true;
}

static bool name_is_guarded(const char *name, size_t len, const struct guard_options *opt);

/* set_config's first argument must be one string literal (followed by ',' or ')') naming a
 * setting that is neither managed nor client_encoding: anything else could compute a name. */
static bool set_config_name_refused(struct cur *c, const struct guard_options *opt, struct guard_finding *f)
{
    if (c->tok.kind != SQLTOK_STRING)
        return refuse(f, "set_config");
    struct sqltext name = sqltext_decode_string(&c->tok);
    cur_next(c);
    if ((!cur_punct(c, ',') && !cur_punct(c, ')')) || name.bad)
        return refuse(f, "set_config"); /* 'a' || 'b', 'x'::text, U&'' UESCAPE, ... */
    /* The string holds the name raw, but the server reads it as SQL would too */
    if (!name.truncated && name_is_guarded(name.buf, name.len, opt))
        return refuse_name(f, &name);
    return name_refused(&name, opt, f);
}

static bool set_config_refused(const struct cur *at, const struct guard_options *opt, struct guard_finding *f)
{
    struct cur c = *at;
    return enter_set_config_call(&c) && set_config_name_refused(&c, opt, f);
}

/* UPDATE [ONLY] [pg_catalog.]pg_settings: the view's rule calls set_config for every row. */
static bool update_pg_settings_refused(const struct cur *at, struct guard_finding *f)
{
    struct cur c = *at;
    struct sqltext name;
    cur_next(&c);
    if (cur_is(&c, "only"))
        cur_next(&c);
    if (!read_name(&c, &name))
        return false;
    return (name.bad || sqltext_equals(&name, "pg_settings") || sqltext_equals(&name, "pg_catalog.pg_settings")) &&
           refuse(f, "pg_settings");
}

/* One statement, cursor at its first token (not at its end). */
/* A limit's SET or RESET in the one spelling the caller clamps (limitset.h). */
static bool clamped_limit_set(struct cur c, const struct guard_options *opt)
{
    if (!opt || !opt->limits_clamped)
        return false;
    struct sqltok t[8];
    size_t n = 0;
    for (; !cur_at_end(&c); cur_next(&c)) {
        if (n == sizeof t / sizeof t[0])
            return false;
        t[n++] = c.tok;
    }
    struct limit_set ls;
    return c.tok.kind != SQLTOK_UNTERMINATED && limit_set_read(t, n, &ls);
}

/* pg_dump (15.8 and later) sets a setting it names by a lookup: SELECT set_config(name, 'v', false)
 * FROM pg_settings WHERE name = 'n'. The WHERE pins the computed name to one literal, which is
 * checked like a literal first argument. Exactly that shape; any other computed name is refused. */
static bool set_config_by_lookup(struct cur c, const struct guard_options *opt)
{
    static const char *const shape[] = {"select", "set_config", "(",           "name",  ",",    "'", ",", "b",
                                        ")",      "from",       "pg_settings", "where", "name", "=", "'"};
    const size_t n = sizeof shape / sizeof shape[0];
    struct sqltok last = {0};
    for (size_t i = 0; i < n; i++, cur_next(&c)) {
        const char *want = shape[i];
        bool ok = want[0] == '\''                     ? c.tok.kind == SQLTOK_STRING
                  : want[0] == 'b' && want[1] == '\0' ? cur_is(&c, "false") || cur_is(&c, "true")
                  : (want[0] == '(' || want[0] == ')' || want[0] == ',' || want[0] == '=') ? cur_punct(&c, want[0])
                                                                                           : cur_is(&c, want);
        if (!ok)
            return false;
        last = c.tok;
    }
    /* A plain '...' literal naming a setting that is neither guarded nor client_encoding. */
    if (!cur_at_end(&c) || c.tok.kind == SQLTOK_UNTERMINATED || last.len < 2 || last.text[0] != '\'' ||
        memchr(last.text + 1, '\'', last.len - 2))
        return false;
    const char *name = last.text + 1;
    size_t len = last.len - 2;
    return !name_is_guarded(name, len, opt) && !(len == 15 && strncasecmp(name, "client_encoding", 15) == 0);
}

/* One statement, the cursor at its first token; leaves the cursor at the statement's end unless
 * it is refused. *plain (see sqlstmt.h) turns false for a statement sql_is_plain would not pass,
 * so that the caller needs no second reading of the text. */
static bool statement_refused(struct cur *c, const struct guard_options *opt, struct guard_finding *f, bool *plain)
{
    if (!sqltok_plain_lead(&c->tok))
        *plain = false;
    /* Their first words, looked at here so that the common statement is not read ahead twice. */
    bool set_or_reset = cur_is(c, "set") || cur_is(c, "reset");
    if ((set_or_reset && clamped_limit_set(*c, opt)) || (cur_is(c, "select") && set_config_by_lookup(*c, opt))) {
        *plain = false;
        return false;
    }
    struct cur lead = *c;
    if (lead_refused(&lead, opt, f))
        return true;
    for (; !cur_at_end(c); cur_next(c)) {
        if (*plain && sqltok_leaves_session_state(&c->tok))
            *plain = false;
        if (names_set_config(c) && set_config_refused(c, opt, f))
            return true;
        if (cur_is(c, "update") && update_pg_settings_refused(c, f))
            return true;
    }
    return false;
}

enum guard_verdict guard_check_sql_plain(const char *sql, size_t len, const struct guard_options *opt,
                                         struct guard_finding *out, bool *plain)
{
    if (guard_quick_plain(sql, len)) {
        if (plain)
            *plain = true;
        return GUARD_OK;
    }
    bool all_plain = true;
    struct cur c;
    sqllex_init(&c.lx, sql, len);
    cur_next(&c);
    for (size_t index = 0;; index++) {
        struct guard_finding f;
        memset(&f, 0, sizeof f);
        if (!cur_at_end(&c) && statement_refused(&c, opt, &f, &all_plain)) {
            f.statement_index = index;
            if (out)
                *out = f;
            return GUARD_REFUSED;
        }
        while (!cur_at_end(&c))
            cur_next(&c);
        /* EOF, or lexing stopped: PostgreSQL parses the whole Query string before it runs any
         * statement, so text that does not lex runs nothing; what came before was checked. */
        if (c.tok.kind != SQLTOK_SEMI) {
            if (plain)
                *plain = all_plain && c.tok.kind == SQLTOK_EOF;
            return GUARD_OK;
        }
        cur_next(&c);
    }
}

enum guard_verdict guard_check_sql(const char *sql, size_t len, const struct guard_options *opt,
                                   struct guard_finding *out)
{
    return guard_check_sql_plain(sql, len, opt, out, NULL);
}

static bool name_is_guarded(const char *name, size_t len, const struct guard_options *opt)
{
    if (!name)
        return false;
    /* Raw, as set_config and startup packets pass names. */
    struct sqltext raw = {.len = 0};
    for (size_t i = 0; i < len; i++)
        sqltext_put(&raw, name[i]);
    if (text_is_guarded(&raw, opt))
        return true;
    /* As SQL spells it: quoted parts, U& escapes, folded case. Only when the whole text is one
     * dotted name; otherwise the raw comparison above is the one that applies. */
    struct cur c;
    struct sqltext sql_name;
    sqllex_init(&c.lx, name, len);
    cur_next(&c);
    return read_name(&c, &sql_name) && text_is_guarded(&sql_name, opt);
}

bool guard_is_managed_setting(const char *name, size_t len)
{
    return name_is_guarded(name, len, NULL);
}

/* A parameter name from a startup packet or an option: trimmed and with '-' read as '_', as
 * ParseLongOption does; refused when managed. */
static bool startup_name_allowed(const char *s, size_t len, const struct guard_options *opt)
{
    size_t b = 0, e = len;
    while (b < e && (s[b] == ' ' || s[b] == '\t'))
        b++;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
        e--;
    char buf[SQLTEXT_MAX];
    size_t n = 0;
    for (size_t i = b; i < e && n < sizeof buf; i++)
        buf[n++] = s[i] == '-' ? '_' : s[i];
    return !name_is_guarded(buf, n, opt); /* a cut name keeps its request.jwt. prefix */
}

static bool text_equals_raw(const char *s, size_t len, const char *word)
{
    struct sqltext t = {.len = 0};
    for (size_t i = 0; i < len; i++)
        sqltext_put(&t, s[i]);
    return sqltext_equals(&t, word);
}

/* One NAME=VALUE from -c or --. */
static bool startup_assignment_allowed(const char *s, size_t len, const struct guard_options *opt)
{
    size_t eq = 0;
    while (eq < len && s[eq] != '=')
        eq++;
    if (!startup_name_allowed(s, eq, opt))
        return false;
    if (text_equals_raw(s, eq, "client_encoding"))
        return eq >= len || !encoding_is_unsafe(s + eq + 1, len - eq - 1);
    return true;
}

/* pg_split_opts' separators (isspace in the C locale). */
static bool is_option_space(char c)
{
    return c != '\0' && strchr(" \t\n\r\f\v", c) != NULL;
}

/* The next argument of a PGOPTIONS string, split as pg_split_opts does: white space separates,
 * a backslash takes the next character literally. Cut at SQLTEXT_MAX (the name comes first, so a
 * cut argument keeps it). False at the end of the string. */
static bool next_option_arg(const char **p, struct sqltext *arg)
{
    const char *s = *p;
    memset(arg, 0, sizeof *arg);
    while (is_option_space(*s))
        s++;
    *p = s;
    if (*s == '\0')
        return false;
    while (*s && !is_option_space(*s)) {
        if (*s == '\\' && s[1] != '\0')
            s++;
        sqltext_put(arg, *s++);
    }
    *p = s;
    return true;
}

/* Switches of postgres.c process_postgres_switches that take an argument. */
static bool switch_takes_arg(char c)
{
    return c != '\0' && strchr("BcCDdfhkNprStvW-", c) != NULL;
}

/* A switch with its argument: -S sets work_mem, -c and -- set any setting. */
static bool switch_allowed(char sw, const char *optarg, size_t optlen, const struct guard_options *opt)
{
    if (sw == 'S')
        return false;
    return (sw != 'c' && sw != '-') || startup_assignment_allowed(optarg, optlen, opt);
}

/* One argument starting with '-': getopt reads its letters as flags up to the first switch that
 * takes an argument, which is the rest of this argument or else the next one ("-c name=value"). */
static bool switches_allowed(const struct sqltext *arg, const char **p, const struct guard_options *opt)
{
    for (size_t j = 1; j < arg->len; j++) {
        char sw = arg->buf[j];
        if (!switch_takes_arg(sw))
            continue;
        if (j + 1 < arg->len)
            return switch_allowed(sw, arg->buf + j + 1, arg->len - j - 1, opt);
        struct sqltext next;
        return !next_option_arg(p, &next) || switch_allowed(sw, next.buf, next.len, opt);
    }
    return true;
}

static bool startup_options_allowed(const char *value, const struct guard_options *opt)
{
    const char *p = value;
    struct sqltext arg;
    while (next_option_arg(&p, &arg))
        if (arg.len >= 2 && arg.buf[0] == '-' && !switches_allowed(&arg, &p, opt))
            return false;
    return true;
}

bool guard_check_startup_option(const char *name, const char *value, const struct guard_options *opt)
{
    if (!name)
        return true;
    if (!value)
        value = "";
    size_t len = strlen(name);
    if (!startup_name_allowed(name, len, opt))
        return false;
    if (text_equals_raw(name, len, "client_encoding"))
        return !encoding_is_unsafe(value, strlen(value));
    if (text_equals_raw(name, len, "options"))
        return startup_options_allowed(value, opt);
    return true;
}
