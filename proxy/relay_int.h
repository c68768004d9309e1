/* What the relay's parts share: proxy/relay.c (client to server), proxy/replies.c (server to
 * client) and proxy/prepared.c (named statements in transaction pooling). Not for other modules. */
#ifndef PGMESH_PROXY_RELAY_INT_H
#define PGMESH_PROXY_RELAY_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "protocol/buf.h"
#include "protocol/fe.h"
#include "protocol/frame.h"
#include "policy/sqllex.h"
#include "proxy/server.h"

struct client;

/* Query and Parse are read whole to be checked; longer ones are refused (PostgreSQL allows 1 GB,
 * but such text belongs in COPY or bound parameters). */
#define INSPECT_MAX (16u * 1024u * 1024u)
/* What pgmesh keeps of one client's named statements (transaction pooling): it holds their texts
 * to prepare them on any server connection, so one client must not be able to fill its memory. */
#define CLIENT_STMT_MAX 10000u
#define CLIENT_STMT_BYTES_MAX (64u * 1024u * 1024u)

/* Both close the server when memory runs out, and then return false. */
bool relay_push(struct server *s, struct op op) __attribute__((warn_unused_result));
bool relay_send(struct server *s, const void *p, size_t n) __attribute__((warn_unused_result));
/* Sends what the (dynamic) writer built and destroys it; a writer that ran out of memory closes
 * the server too. */
bool relay_send_written(struct server *s, struct pq_writer *w) __attribute__((warn_unused_result));
/* Gives the server back to its pool when the client's transaction is over. */
void relay_maybe_release(struct server *s);

/* What relay.c read of a Query or Parse when it checked it, for the steps after: the spans point
 * into the client's input buffer, which keeps the message until it is forwarded. */
struct inspected {
    bool dirty;                 /* may leave session state: DISCARD ALL before another client */
    bool track;                 /* a Query whose SET/RESET of session parameters follow the client */
    struct span sql;            /* the Query's text or the Parse's query */
    struct fe_parse parse;      /* a Parse, read */
    enum sql_dealloc dealloc;   /* its DEALLOCATE (transaction pooling with tracking; else NONE) */
    char dealloc_name[256];     /* ... the name of DEALLOCATE name, folded */
};

enum prep { PREP_PASS, PREP_HANDLED, PREP_WAIT, PREP_FAILED };

/* Named statements are tracked: transaction pooling with max_prepared_statements > 0. */
bool prep_enabled(void);
/* Whether what pgmesh reads of a Bind, Describe or Close has arrived (PREP_PASS: go on). */
enum prep prep_ready(struct client *c, const struct frame *f);
/* Parse, Bind, Describe and Close naming a client statement, and a lone DEALLOCATE Query: sends
 * the server's version (preparing the statement there first when needed), consumes the client's
 * message (or its head, the rest streaming after it) and fills *op for the message's own entry.
 * PREP_PASS: forward the message unchanged. */
enum prep prep_message(struct client *c, struct server *s, const struct frame *f, const struct inspected *in,
                       struct op *op);
/* Undoes what one failed or skipped entry had changed: at ReadyForQuery after an error in an
 * extended-protocol pipeline (replies.c). */
bool prep_undo(struct server *s, const struct op *op) __attribute__((warn_unused_result));

#endif
