/* Claim tampering guard: decides whether client SQL or a startup parameter would change a setting
 * pgmesh manages (the JWT claims RLS policies read, role, limits), a setting a role pins (the
 * caller passes the names in) or the lexer's own assumptions.
 * Pure functions over borrowed text: no I/O, no globals, no allocation. What it cannot see (SQL
 * built at run time inside functions and DO blocks) is closed on the server by sql/hardening.sql;
 * docs/security.md lists which side covers what. */
#ifndef PGMESH_POLICY_GUARD_H
#define PGMESH_POLICY_GUARD_H

#include <stdbool.h>
#include <stddef.h>

enum guard_verdict {
    GUARD_OK,
    GUARD_REFUSED,
};

/* What the caller's configuration adds to the rules; NULL options mean none. */
struct guard_options {
    bool session_pooling; /* DISCARD ALL is allowed: pgmesh re-applies its settings after it */
    /* Settings refused like the managed ones: every role's pinned settings ([roles] pin.<name>),
     * lower case as PostgreSQL lists them. Borrowed for the call. */
    const char *const *pinned;
    size_t npinned;
    /* The server holds the role's limits as ceilings (the pgmesh extension): a top-level SET,
     * SET LOCAL or RESET of statement_timeout, work_mem or a pinned setting passes, and
     * PostgreSQL refuses one above the ceiling. set_config and routine SET clauses stay refused. */
    bool limits_on_server;
    /* The caller clamps the value of a limit's SET or RESET in the spelling policy/limitset.h
     * reads to the role's value (proxy/clamp.c): such statements pass; other spellings of those
     * names stay refused. */
    bool limits_clamped;
};

/* Why text was refused. Owned by the caller (usually on the stack); holds no pointer into the SQL. */
#define GUARD_SETTING_MAX 64
struct guard_finding {
    /* The managed setting as PostgreSQL would name it, lower case ("request.jwt.claim.tenant",
     * "role", "session_authorization", "client_encoding"; cut short with "..." when longer), or
     * the construct: "set_config", "RESET ALL", "DISCARD ALL", "ALTER ROLE ... SET",
     * "ALTER USER ... SET", "ALTER DATABASE ... SET", "ALTER SYSTEM", "pg_settings". */
    char setting[GUARD_SETTING_MAX];
    /* 0-based: the number of top-level semicolons before the offending statement. */
    size_t statement_index;
};

/* GUARD_REFUSED when some statement in sql[0..len) would change a managed or pinned setting (see
 * docs/security.md for the exact list of statements), then *out (may be NULL) says which; *out is
 * not written on GUARD_OK. Text that stops lexing (an unterminated string, quoted identifier or
 * comment) is checked up to that point: PostgreSQL parses a whole Query before running any of it,
 * so such text runs nothing, but whatever we could read is still held to the rules. */
enum guard_verdict guard_check_sql(const char *sql, size_t len, const struct guard_options *opt,
                                   struct guard_finding *out) __attribute__((warn_unused_result));

/* guard_check_sql, and on GUARD_OK *plain says what sql_is_plain(sql, len) says, from the same
 * reading of the text: the relay needs both for every statement. */
enum guard_verdict guard_check_sql_plain(const char *sql, size_t len, const struct guard_options *opt,
                                         struct guard_finding *out, bool *plain)
    __attribute__((warn_unused_result));

/* True when the setting named by name[0..len) is managed: request.jwt.*, statement_timeout,
 * work_mem, idle_in_transaction_session_timeout, role, session_authorization,
 * standard_conforming_strings, and the old name sort_mem, which PostgreSQL still reads as work_mem
 * (pinned settings are not: they come with guard_options). name is spelled as in SQL
 * (request."jwt".claim.tenant, "REQUEST.JWT.CLAIM.TENANT", U&"..." with \XXXX escapes) or raw as in
 * a startup packet; the comparison is ASCII case-insensitive like PostgreSQL's. A U&"..." that
 * cannot be decoded counts as managed. client_encoding is not in the list: it is refused by value
 * (see below). */
bool guard_is_managed_setting(const char *name, size_t len) __attribute__((warn_unused_result));

/* True when a StartupMessage parameter (NUL-terminated name and value) may pass: false when the
 * name is managed or pinned (opt, may be NULL), when it is client_encoding with an encoding whose
 * multi-byte characters may contain a backslash byte (SJIS, BIG5, GBK, GB18030, UHC, JOHAB: the
 * lexer would see escapes the server does not), or when it is "options" and its PGOPTIONS switches
 * (-c NAME=V, -cNAME=V, --NAME=V, -S for work_mem; space-separated, backslash escapes) set such a
 * setting. */
bool guard_check_startup_option(const char *name, const char *value, const struct guard_options *opt)
    __attribute__((warn_unused_result));

#endif
