/* Statement-level readings of SQL text on top of the lexer (sqlstmt.c). */
#ifndef PGMESH_POLICY_SQLSTMT_H
#define PGMESH_POLICY_SQLSTMT_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/sqllex.h"

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

/* The token-level parts of sql_is_plain, for a caller that reads the text in a pass of its own
 * (the guard): whether a statement's first token is one of its leading words, and whether a token
 * is one sql_may_leave_session_state looks for. */
bool sqltok_plain_lead(const struct sqltok *t);
bool sqltok_leaves_session_state(const struct sqltok *t);

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
