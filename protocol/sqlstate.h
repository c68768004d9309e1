/* SQLSTATE codes pgmesh emits itself, and the few it expects from servers. Every client-facing
 * error names one of these.
 * Reference: PostgreSQL documentation, Appendix A "PostgreSQL Error Codes". */
#ifndef PGMESH_PROTOCOL_SQLSTATE_H
#define PGMESH_PROTOCOL_SQLSTATE_H

#define SQLSTATE_CONNECTION_FAILURE "08006"
#define SQLSTATE_PROTOCOL_VIOLATION "08P01"
#define SQLSTATE_FEATURE_NOT_SUPPORTED "0A000"
#define SQLSTATE_DUPLICATE_PSTATEMENT "42P05"
#define SQLSTATE_RESERVED_NAME "42939"
#define SQLSTATE_ACTIVE_SQL_TRANSACTION "25001"
#define SQLSTATE_IDLE_IN_TRANSACTION_TIMEOUT "25P03"
#define SQLSTATE_INVALID_AUTHORIZATION "28000"
#define SQLSTATE_INVALID_PASSWORD "28P01"
#define SQLSTATE_INVALID_CATALOG_NAME "3D000"
#define SQLSTATE_INSUFFICIENT_PRIVILEGE "42501"
#define SQLSTATE_SYNTAX_ERROR "42601"
#define SQLSTATE_UNDEFINED_OBJECT "42704"
#define SQLSTATE_WARNING "01000"
#define SQLSTATE_TOO_MANY_CONNECTIONS "53300"
#define SQLSTATE_PROGRAM_LIMIT_EXCEEDED "54000"
#define SQLSTATE_QUERY_CANCELED "57014"
#define SQLSTATE_ADMIN_SHUTDOWN "57P01"
#define SQLSTATE_CANNOT_CONNECT_NOW "57P03"
#define SQLSTATE_INTERNAL_ERROR "XX000"
#define SQLSTATE_CONFIG_FILE_ERROR "F0000"
/* What PostgreSQL answers to pgmesh's stand-in for a refused statement (a bad integer literal). */
#define SQLSTATE_INVALID_TEXT_REPRESENTATION "22P02"
/* A statement name the server does not know: on one of pgmesh's shared statements, something
 * (DEALLOCATE in a function) dropped it behind pgmesh's back. */
#define SQLSTATE_INVALID_SQL_STATEMENT_NAME "26000"

#endif
