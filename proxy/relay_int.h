/* What the relay's parts share: relay_core.c's primitives, which relay.c (client to server),
 * replies.c (server to client), prepared.c (named statements in transaction pooling) and
 * refusal.c (what pgmesh refuses and how it says so) build on; they call downward only, into
 * relay_core.c and each other's entry points below. Not for other modules: they see relay.h. */
#ifndef PGMESH_PROXY_RELAY_INT_H
#define PGMESH_PROXY_RELAY_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/sqlstmt.h"
#include "protocol/buf.h"
#include "protocol/fe.h"
#include "protocol/frame.h"
#include "proxy/clamp.h"
#include "proxy/conn.h"
#include "proxy/relay.h"
#include "proxy/server.h"

struct client;
struct server;

/* Query and Parse are read whole to be checked; longer ones are refused (PostgreSQL allows 1 GB,
 * but such text belongs in COPY or bound parameters). */
#define INSPECT_MAX (16u * 1024u * 1024u)
/* What pgmesh keeps of one client's named statements (transaction pooling): it holds their texts
 * to prepare them on any server connection, so one client must not be able to fill its memory. */
#define CLIENT_STMT_MAX 10000u
#define CLIENT_STMT_BYTES_MAX (64u * 1024u * 1024u)

/* Record the verdict of the call in progress (the first one wins) and return false, so that
 * failing steps read `return relay_fail_server(s, "...")`. */
bool relay_fail_server(struct server *s, const char *why);
bool relay_fail_client(struct server *s, const char *why);
bool relay_fatal(struct server *s, const char *sqlstate, const char *message, const char *detail);
/* RELAY_CLOSE_SERVER, and the client gets this FATAL rather than "server connection lost". */
bool relay_fail_server_fatal(struct server *s, const char *why, struct relay_fatal fatal);
static inline bool relay_failed(const struct server *s)
{
    return s->relay.verdict != RELAY_GO_ON;
}
/* The verdict of the call that ends here (otherwise when nothing failed), cleared for the next. */
enum relay_verdict relay_take_verdict(struct server *s, enum relay_verdict otherwise);

/* Both fail the server when memory runs out, and then return false. relay_push takes op's
 * references either way (opq_push). */
bool relay_push(struct server *s, const struct op *op) __attribute__((warn_unused_result));
bool relay_send(struct server *s, const void *p, size_t n) __attribute__((warn_unused_result));
/* Sends what the (dynamic) writer built and destroys it; a writer that ran out of memory fails
 * the server too. */
bool relay_send_written(struct server *s, struct pq_writer *w) __attribute__((warn_unused_result));
/* Sends pgmesh's own simple query, replies swallowed. */
bool relay_own_query(struct server *s, const char *sql) __attribute__((warn_unused_result));

/* Message bodies in both directions: passes what has arrived of the current message to `to`
 * (or drops it when the stream drops or `to` is NULL), consuming it. relay_stream_start begins a
 * message of total_len bytes at the head of in. False when memory runs out. */
bool relay_stream_body(struct body_stream *b, struct iobuf *in, struct conn *to)
    __attribute__((warn_unused_result));
bool relay_stream_start(struct body_stream *b, struct iobuf *in, size_t total_len, struct conn *to)
    __attribute__((warn_unused_result));

/* What relay.c read of a Query or Parse when it checked it, for the steps after: the spans point
 * into the client's input buffer, which keeps the message until it is forwarded. */
struct inspected {
    bool plain;               /* only statements no check after the guard acts on (sql_is_plain) */
    bool dirty;               /* may leave session state: DISCARD ALL before another client */
    bool track;               /* a Query whose SET/RESET of session parameters follow the client */
    bool deallocates;         /* a DEALLOCATE pgmesh does not follow: pgmesh_apply may go too */
    struct span sql;          /* the Query's text or the Parse's query */
    struct fe_parse parse;    /* a Parse, read */
    enum sql_dealloc dealloc; /* its DEALLOCATE (transaction pooling with tracking; else NONE) */
    struct fe_bind_head bind; /* a Bind's names, read once by prep_ready */
    /* Last, as inspected_init leaves these buffers (half a KiB) unzeroed: */
    char dealloc_name[256]; /* ... the name of DEALLOCATE name, folded, when dealloc says one */
    struct clamp clamp;     /* the text with limits clamped, when some were (owns it) */
};

/* After a client's DISCARD ALL or RESET ALL (session pooling): the server has its defaults, so the
 * client's session parameters go again, when it has any. */
bool relay_resync_params(struct client *c, struct server *s) __attribute__((warn_unused_result));
/* Whether the client's next message needs its transaction start first, and sending it. */
bool relay_needs_txstart(const struct server *s, const struct frame *f);
bool relay_send_txstart(struct client *c, struct server *s) __attribute__((warn_unused_result));
/* The client's claims and limits alone (with the switch_only settings when switching): SETs, or
 * pgmesh.apply where the server has the extension (prepared once per connection when idle:
 * nothing in flight). No op entry. */
bool relay_send_settings(struct client *c, struct server *s, bool switching, bool idle)
    __attribute__((warn_unused_result));
/* The op for a client message just sent: msg (when not NULL) is the one prepared already, and
 * its references are taken as relay_push takes them. */
bool relay_after_forward(struct server *s, char type, const struct op *msg) __attribute__((warn_unused_result));

/* Refuses the client message f (refusal.c): the server gets a stand-in that fails in its place,
 * the client pgmesh's error for it; the message is consumed (a too long one dropped as it
 * streams in). */
bool refusal_send(struct client *c, struct server *s, const struct frame *f, enum refusal why, const char *what,
                  size_t what_len) __attribute__((warn_unused_result));
/* The ErrorResponse a refusal reports, PostgreSQL style. */
void refusal_write(struct pq_writer *w, enum refusal why, const char *name);

enum prep { PREP_PASS, PREP_HANDLED, PREP_WAIT, PREP_FAILED };

/* Named statements are tracked: transaction pooling with max_prepared_statements > 0. */
bool prep_enabled(const struct server *s);
/* Whether what pgmesh reads of a Bind, Describe or Close has arrived (PREP_PASS: go on). */
enum prep prep_ready(struct client *c, struct server *s, const struct frame *f, struct inspected *fx);
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
