/* PostgreSQL frontend/backend protocol 3.0 constants: message letters, authentication codes,
 * special request codes and the size limits pgmesh applies. Values only; no code.
 * Reference: PostgreSQL documentation, "Frontend/Backend Protocol", "Message Formats". */
#ifndef PGMESH_PROTOCOL_WIRE_H
#define PGMESH_PROTOCOL_WIRE_H

/* Frontend (client -> server) message types. */
#define FE_BIND 'B'
#define FE_CLOSE 'C'
#define FE_COPY_DATA 'd'
#define FE_COPY_DONE 'c'
#define FE_COPY_FAIL 'f'
#define FE_DESCRIBE 'D'
#define FE_EXECUTE 'E'
#define FE_FLUSH 'H'
#define FE_FUNCTION_CALL 'F'
#define FE_PARSE 'P'
#define FE_PASSWORD 'p' /* also SASLInitialResponse, SASLResponse, GSSResponse */
#define FE_QUERY 'Q'
#define FE_SYNC 'S'
#define FE_TERMINATE 'X'

/* Backend (server -> client) message types. */
#define BE_AUTH 'R'
#define BE_BACKEND_KEY 'K'
#define BE_BIND_COMPLETE '2'
#define BE_CLOSE_COMPLETE '3'
#define BE_COMMAND_COMPLETE 'C'
#define BE_COPY_BOTH 'W'
#define BE_COPY_DATA 'd'
#define BE_COPY_DONE 'c'
#define BE_COPY_IN 'G'
#define BE_COPY_OUT 'H'
#define BE_DATA_ROW 'D'
#define BE_EMPTY_QUERY 'I'
#define BE_ERROR 'E'
#define BE_FUNCTION_RESULT 'V'
#define BE_NEGOTIATE_VERSION 'v'
#define BE_NO_DATA 'n'
#define BE_NOTICE 'N'
#define BE_NOTIFICATION 'A'
#define BE_PARAMETER_DESC 't'
#define BE_PARAMETER_STATUS 'S'
#define BE_PARSE_COMPLETE '1'
#define BE_PORTAL_SUSPENDED 's'
#define BE_READY 'Z'
#define BE_ROW_DESC 'T'

/* AuthenticationRequest codes. */
#define AUTH_OK 0
#define AUTH_CLEARTEXT_PASSWORD 3

/* Startup-class packets: the int32 after the length word. */
#define PROTOCOL_V3 196608u /* 3.0 */
#define PROTOCOL_MAJOR(v) ((v) >> 16)
#define REQUEST_CANCEL 80877102u
#define REQUEST_SSL 80877103u
#define REQUEST_GSSENC 80877104u

/* ReadyForQuery transaction status. */
#define TX_IDLE 'I'
#define TX_IN_BLOCK 'T'
#define TX_FAILED 'E'

/* Size limits. A message length counts itself (4 bytes) but not the type byte. */
#define MSG_HEADER_LEN 5u
#define STARTUP_MAX_LEN 10000u    /* PostgreSQL's MAX_STARTUP_PACKET_LENGTH */
#define CONTROL_MAX_LEN 10000u    /* Sync, Flush, Close, Describe, Execute, ... */
#define PASSWORD_MAX_LEN 20000u   /* a JWT of up to 16 KiB plus slack */
#define LARGE_MAX_LEN 0x3fffffffu /* PostgreSQL's MaxAllocSize - 1: Query, Parse, Bind, CopyData, DataRow */

#endif
