/* Server connections: opened by libpq (PQconnectStartParams + PQconnectPoll driven by libev
 * watchers, so SCRAM, server TLS, multi-host and .pgpass all come from libpq), then used for raw
 * protocol relay on PQsocket(). Owner: its pool; freed after server_close's loop iteration. */
#ifndef PGMESH_PROXY_SERVER_H
#define PGMESH_PROXY_SERVER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "proxy/conn.h"
#include "proxy/params.h"
#include "proxy/stmt.h"

struct pool;
struct client;

enum server_state {
    SERVER_CONNECTING, /* libpq handshake in progress */
    SERVER_IDLE,       /* in its pool's idle list, clean */
    SERVER_LINKED,     /* lent to a client */
    SERVER_RESETTING,  /* client gone; pgmesh's own reset query in flight */
    SERVER_CLOSING,
};

/* What to do with the replies to one message sent to the server, in send order. The first five
 * end at ReadyForQuery; the others at their own completion message, or are skipped by the server
 * after an error until the next Sync. */
enum op_kind {
    OP_TXSTART,     /* our claims Query: swallow through its ReadyForQuery */
    OP_PARAMS,      /* our SET of the client's session parameters: swallow through ReadyForQuery */
    OP_OWN_QUERY,   /* our own reset Query: swallow through its ReadyForQuery */
    OP_QUERY,       /* a client Query or FunctionCall: forward through its ReadyForQuery */
    OP_SYNC,        /* a client Sync: forward its ReadyForQuery */
    OP_MSG,         /* a client Parse, Bind, Describe, Execute or Close: forward through its completion */
    OP_PREPARE,     /* our Parse of a client's statement onto this server: swallow ParseComplete */
    OP_EVICT,       /* our Close of the least recently used statement: swallow CloseComplete */
    OP_GUARD_ERROR, /* the server's error to pgmesh's stand-in statement becomes pgmesh's own */
};

/* The reply that completes an OP_MSG. */
enum op_expect { EXPECT_PARSE, EXPECT_BIND, EXPECT_DESCRIBE, EXPECT_EXECUTE, EXPECT_CLOSE };

/* Which refusal an OP_GUARD_ERROR reports. */
enum refusal {
    REFUSE_NONE, REFUSE_NAMED_PARSE, REFUSE_MANAGED_SETTING, REFUSE_TOO_LONG, REFUSE_SESSION_ONLY,
    REFUSE_DUPLICATE_STATEMENT, REFUSE_DEALLOCATE, REFUSE_RESERVED_NAME, REFUSE_TOO_MANY_STATEMENTS,
};

struct op {
    enum op_kind kind;
    enum op_expect expect;  /* OP_MSG */
    bool known_idle;        /* OP_TXSTART: sent with nothing in flight on an idle server */
    bool query;             /* OP_GUARD_ERROR: the stand-in is a Query (else a Parse) */
    bool as_parse_complete; /* OP_MSG: a Close standing in for a Parse; report ParseComplete */
    bool added_sname;       /* OP_MSG Parse: put stmt->sname in the server's set */
    bool added_client;      /* OP_MSG Parse: put stmt in the client's table */
    bool closed_client;     /* OP_MSG Close: took stmt out of the client's table */
    enum refusal why;       /* OP_GUARD_ERROR */
    char name[64];          /* ... the refused statement's name, or the managed setting */
    char sname[STMT_SNAME_LEN]; /* OP_PREPARE, OP_EVICT: the server-side statement */
    struct cstmt *stmt;     /* a reference: the client statement involved, for undo and error text */
};

struct opq {
    struct op *ops;
    size_t head, len, cap;
};

struct server {
    struct conn conn;
    uint64_t id;
    char tag[128];               /* "S-<id> db/role" for logs */
    enum server_state state;
    struct pool *pool;
    uint64_t generation;         /* the pool's generation (conninfo) it was opened with */
    PGconn *pg;
    int backend_pid;
    struct client *client;       /* when LINKED */
    TAILQ_ENTRY(server) link;    /* in the pool list for its state */
    ev_timer timer;              /* connect timeout */
    ev_timer stmt_timer, idle_timer, age_timer; /* limits.c */
    ev_tstamp idle_since;
    int poll_status;             /* last PQconnectPoll result while CONNECTING */

    /* Relay bookkeeping (relay.c). */
    struct opq ops;
    uint32_t body_remaining;     /* bytes of the current server message still to pass */
    bool body_drop;              /* ... and whether they are dropped instead of forwarded */
    char tx_status;              /* from the last ReadyForQuery */
    bool at_boundary;            /* next client message may start a transaction */
    bool open_extended;          /* client extended messages sent since the last Sync */
    bool in_copy;
    uint64_t claims_owner;       /* client whose claims may be committed here; 0: none */
    char claims_tenant[65];      /* ... and those claims ("" when none) */
    char claims_role[65];
    char application_name[65];   /* as pgmesh last set it ("" when unknown) */
    struct param_set have;       /* session parameters as the linked clients left them */
    bool session_dirty;          /* a client statement may have left session state: DISCARD ALL
                                  * before another client runs here */
    bool skipping;               /* an extended message failed: the server skips to Sync */
    unsigned cancels_in_flight;  /* PQcancel calls not yet done: not lent to another client */
    uint64_t batch;              /* counts Syncs and Queries sent: statements used in the
                                  * current one are not evicted */
    struct sstmt_set stmts;      /* server-side prepared statements (transaction pooling) */
};

bool server_connect(struct pool *pool) __attribute__((warn_unused_result));
void server_close(struct server *s, const char *why);
void server_set_state(struct server *s, enum server_state st);

bool opq_push(struct opq *q, struct op op) __attribute__((warn_unused_result));
struct op *opq_head(struct opq *q);
struct op *opq_at(struct opq *q, size_t i);
/* Drops the head and the references it holds. */
void opq_pop(struct opq *q);
void opq_destroy(struct opq *q);

#endif
