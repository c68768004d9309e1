/* SQL lexer: splits SQL text into tokens the way PostgreSQL's scanner does, for the checks pgmesh
 * makes on client statements. Handles -- and nested block comments, "quoted" and U&"quoted"
 * identifiers, '...', E'...', U&'...', B'...', X'...' strings, $tag$ dollar quoting, ; between
 * statements. No I/O, no globals, no allocation. */
#ifndef PGMESH_POLICY_SQLLEX_H
#define PGMESH_POLICY_SQLLEX_H

#include <stdbool.h>
#include <stddef.h>

enum sqltok_kind {
    SQLTOK_EOF,
    SQLTOK_WORD,   /* keyword or unquoted identifier; compare with sqltok_is */
    SQLTOK_QIDENT, /* "quoted" or U&"quoted" identifier (text includes the quotes) */
    SQLTOK_STRING, /* any string constant, dollar-quoted included (text includes the quotes) */
    SQLTOK_NUMBER,
    SQLTOK_PARAM,        /* $1 */
    SQLTOK_SEMI,         /* ; */
    SQLTOK_OP,           /* any other punctuation or operator, one token per run of operator chars */
    SQLTOK_UNTERMINATED, /* a string, identifier or comment that never ends */
};

struct sqltok {
    enum sqltok_kind kind;
    const char *text;
    size_t len;
};

struct sqllex {
    const char *p;
    size_t len, pos;
};

void sqllex_init(struct sqllex *lx, const char *sql, size_t len);
/* Next token, skipping white space and comments. After SQLTOK_EOF or SQLTOK_UNTERMINATED it keeps
 * returning that. */
struct sqltok sqllex_next(struct sqllex *lx);
/* True when tok is a WORD equal to word, ASCII case-insensitive. */
bool sqltok_is(const struct sqltok *tok, const char *word);

/* True when some statement in sql cannot run inside a transaction block (VACUUM, CREATE/DROP
 * DATABASE, CREATE/DROP TABLESPACE, ALTER SYSTEM, CREATE INDEX CONCURRENTLY, DROP INDEX
 * CONCURRENTLY, REINDEX ... CONCURRENTLY, REINDEX SYSTEM/DATABASE, CREATE/ALTER/DROP SUBSCRIPTION,
 * COMMIT PREPARED, ROLLBACK PREPARED, CLUSTER without a table; also REINDEX SCHEMA, DISCARD ALL,
 * ALTER DATABASE ... SET TABLESPACE, ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY), so pgmesh
 * must not open one around it. False when the text does not lex (the server runs none of it).
 * Errs towards true on unusual spellings (e.g. REINDEX (CONCURRENTLY false) ...). */
bool sql_needs_own_transaction(const char *sql, size_t len);

/* True when some statement in sql is DISCARD ALL or RESET ALL, which reset every setting (the
 * claims and limits pgmesh set among them). False when the text does not lex. */
bool sql_resets_settings(const char *sql, size_t len);

/* True when some statement in sql may leave state on the server connection beyond its transaction
 * (SET, RESET, PREPARE, LISTEN, DECLARE, DO, LOAD, temporary objects, set_config), so the
 * connection needs DISCARD ALL before another client may use it. Errs towards true. */
bool sql_may_leave_session_state(const char *sql, size_t len);

/* True when every statement in sql starts with SELECT, INSERT, UPDATE, DELETE, WITH, VALUES or
 * TABLE and no token is one sql_may_leave_session_state looks for (temp, pg_temp, set_config), in
 * text that lexes: then sql_may_leave_session_state, sql_resets_settings,
 * sql_needs_own_transaction and sql_has_leading of any other first word are false and
 * sql_deallocate is SQL_DEALLOC_NONE, and no SET or RESET is in it. One pass, so that the common
 * statement skips the several others (the guard still reads it). */
bool sql_is_plain(const char *sql, size_t len);

/* True when some statement in sql starts with the word first, and its second word (if any) is not
 * not_second (NULL: any), e.g. ("prepare", "transaction") for PREPARE but not PREPARE TRANSACTION. */
bool sql_has_leading(const char *sql, size_t len, const char *first, const char *not_second);

/* The DEALLOCATE statements in sql. SQL_DEALLOC_ONE (its name in name, folded the way PostgreSQL
 * folds identifiers) or SQL_DEALLOC_ALL when sql is exactly one DEALLOCATE [PREPARE] name | ALL
 * (empty statements aside); SQL_DEALLOC_OTHER when a DEALLOCATE comes with other statements, or
 * in a form not read here (a name longer than name_cap - 1, U&""); SQL_DEALLOC_NONE otherwise. */
enum sql_dealloc { SQL_DEALLOC_NONE, SQL_DEALLOC_ONE, SQL_DEALLOC_ALL, SQL_DEALLOC_OTHER };
enum sql_dealloc sql_deallocate(const char *sql, size_t len, char *name, size_t name_cap);

#endif
