/* The queue of expected replies on a server connection: one entry per message sent to the
 * server, the client's and pgmesh's own, in send order, saying what to do with its replies (the
 * server answers strictly in request order). A ring buffer that grows; entries hold a reference
 * to the client statement they concern. Owner: the relay state of one server connection;
 * opq_destroy frees. */
#ifndef PGMESH_PROXY_OPQ_H
#define PGMESH_PROXY_OPQ_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/stmt.h"

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
    REFUSE_NONE,
    REFUSE_NAMED_PARSE,
    REFUSE_MANAGED_SETTING,
    REFUSE_TOO_LONG,
    REFUSE_SESSION_ONLY,
    REFUSE_DUPLICATE_STATEMENT,
    REFUSE_DEALLOCATE,
    REFUSE_RESERVED_NAME,
    REFUSE_TOO_MANY_STATEMENTS,
    REFUSE_FUNCTION_CALL, /* the last: metrics count them by kind */
};
/* The kind as a label value ("managed_setting"), for metrics. */
const char *refusal_name(enum refusal why);

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
    struct cstmt *stmt;     /* a reference: the client statement involved, for undo and error text
                             * (OP_PREPARE: the one prepared, by its sname) */
    /* Owned (opq_pop frees). OP_GUARD_ERROR: the refused statement's name or the managed setting;
     * OP_EVICT: the server-side statement closed. Out of line because every message sent makes an
     * entry, most with neither: zeroing and copying 100 more bytes each showed in profiles. */
    char *text;
};

struct opq {
    struct op *ops;
    size_t head, len, cap;
};

/* Copies *op in. The queue takes its stmt reference and text either way: when out of memory
 * (false) it drops them, so that no caller's failure path has to. */
bool opq_push(struct opq *q, const struct op *op) __attribute__((warn_unused_result));
struct op *opq_head(struct opq *q);
struct op *opq_at(struct opq *q, size_t i);
/* Drops the head and the references it holds. */
void opq_pop(struct opq *q);
void opq_destroy(struct opq *q);

#endif
