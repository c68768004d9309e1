/* Per-role limits pgmesh enforces itself, on the server connection a client holds: a statement
 * running past statement_timeout plus a grace is cancelled on the server (the server's own
 * statement_timeout normally fires first; this is the backstop if it was lifted), a transaction
 * (or an extended-protocol batch without Sync that the server has answered) left idle past
 * idle_in_transaction_timeout (else [pgmesh] idle_transaction_timeout) or open past
 * max_transaction_age ends that client's session (FATAL 25P03 / 57014) and rolls the server back,
 * so one reader cannot pin the xmin horizon of a shared cluster. */
#ifndef PGMESH_PROXY_LIMITS_H
#define PGMESH_PROXY_LIMITS_H

#include <stdint.h>

struct server;

/* Copied from the role at login; 0 disables a limit (idle_in_transaction_ms: the pool-wide
 * default applies). */
struct role_limits {
    int64_t statement_timeout_ms;
    int64_t idle_in_transaction_ms;
    int64_t max_transaction_age_ms;
    int64_t work_mem_kb; /* not enforced here: what a client's SET of work_mem is clamped to */
};

/* The grace pgmesh gives the server's own statement_timeout before cancelling itself. */
#define LIMITS_STATEMENT_GRACE_MS 1000
/* A statement_timeout cancel the server has not acted on after this long (a stopped or wedged
 * backend) ends the client and its server connection instead of holding both. */
#define LIMITS_CANCEL_WAIT_MS 5000

void limits_init(struct server *s);
/* A client message was forwarded (Query, Execute start a statement). */
void limits_on_forward(struct server *s, char fe_type);
/* A server message was read (statement ends, ReadyForQuery with the transaction status). Called
 * before a completion's op-queue entry is taken off: the entry left alone means the server has
 * answered everything. */
void limits_on_reply(struct server *s, char be_type);
/* The server left its client: no limit applies any more. The statement timer may stay armed (it
 * fires into nothing), so that the next client's statement need not start it again. */
void limits_unlink(struct server *s);
/* The server connection closes: every timer stops. */
void limits_stop(struct server *s);

#endif
