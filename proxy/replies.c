/* The relay from a server to its linked client. Message bodies are streamed; only
 * ReadyForQuery and the errors pgmesh must read are held whole. The head of the server's op queue
 * owns the next reply (the server answers in request order): pgmesh's own requests are swallowed,
 * the client's forwarded, a refusal's stand-in error replaced by pgmesh's own. After an error in
 * an extended-protocol pipeline the server skips everything up to Sync; ReadyForQuery then undoes
 * what the skipped messages had changed. A server goes back to its pool only at ReadyForQuery
 * idle with an empty queue. */
#include "proxy/relay.h"

#include <stdio.h>
#include <string.h>

#include "policy/guard.h"
#include "protocol/be.h"
#include "protocol/error.h"
#include "protocol/frame.h"
#include "protocol/sqlstate.h"
#include "protocol/wire.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/enforce.h"
#include "proxy/limits.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/relay_int.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/stats.h"

#define READ_CHUNK 65536

static bool ends_at_ready(const struct op *op)
{
    return op->kind == OP_TXSTART || op->kind == OP_PARAMS || op->kind == OP_OWN_QUERY || op->kind == OP_QUERY ||
           op->kind == OP_SYNC;
}

/* Puts back what the failed and skipped messages before the next Sync had changed, then drops
 * their entries. */
static bool undo_skipped(struct server *s)
{
    size_t n = 0;
    struct op *op;
    while ((op = opq_at(&s->relay.ops, n)) && op->kind != OP_SYNC)
        n++;
    if (!op)
        return relay_fail_server(s, "ReadyForQuery from the server with no Sync in flight");
    /* Last first: a statement evicted then prepared again within the batch comes back right. */
    for (size_t i = n; i-- > 0;)
        if (!prep_undo(s, opq_at(&s->relay.ops, i)))
            return false;
    while (n--)
        opq_pop(&s->relay.ops);
    return true;
}

/* Needs the whole message: ReadyForQuery (its status), ParameterStatus (its name) and errors
 * pgmesh may have to read. */
static bool need_whole(char type, const struct op *op)
{
    return type == BE_READY || type == BE_PARAMETER_STATUS ||
           (type == BE_ERROR && op && op->kind != OP_QUERY && op->kind != OP_SYNC &&
            !(op->kind == OP_MSG && !op->stmt));
}

static void log_own_error(struct server *s, const uint8_t *body, size_t len)
{
    struct pq_error_fields e;
    if (error_read(body, len, &e))
        SERVER_LOG(LOG_WARNING, s, "own_query_failed", NULL, "own query failed: %.*s %.*s", (int)e.sqlstate.len,
                   (const char *)e.sqlstate.p, (int)e.message.len, (const char *)e.message.p);
}

static void to_client(struct server *s, struct pq_writer *w)
{
    if (s->client && (!wr_ok(w) || !conn_send(&s->client->conn, w->p, w->len)))
        relay_fail_client(s, "out of memory");
    wr_destroy(w);
}

/* The stand-in's failure: replaced by pgmesh's error when it is the expected invalid-integer
 * error; any other (25P02 in an aborted block) is the server's true answer and passes. */
static bool route_guard_error(struct server *s, struct op *op, char type, const uint8_t *msg, size_t body_len)
{
    if (type != BE_ERROR) {
        if (!op->query && (type == BE_PARSE_COMPLETE))
            opq_pop(&s->relay.ops); /* cannot happen: the stand-in never parses; keep the queue in step */
        return false;
    }
    struct pq_error_fields e;
    bool ours =
        error_read(frame_body(msg), body_len, &e) && span_eq(e.sqlstate, SQLSTATE_INVALID_TEXT_REPRESENTATION);
    if (ours) {
        struct pq_writer w;
        wr_init_dynamic(&w);
        refusal_write(&w, op->why, op->text);
        to_client(s, &w);
    }
    /* A Parse stand-in stays queued: at ReadyForQuery it goes with the messages the server skipped. */
    if (op->query)
        opq_pop(&s->relay.ops);
    else
        s->relay.skipping = true;
    return !ours && s->client != NULL;
}

/* Whether type is the reply that completes an extended-protocol message. */
static bool completes(enum op_expect expect, char type)
{
    switch (expect) {
    case EXPECT_PARSE:
        return type == BE_PARSE_COMPLETE;
    case EXPECT_BIND:
        return type == BE_BIND_COMPLETE;
    case EXPECT_CLOSE:
        return type == BE_CLOSE_COMPLETE;
    case EXPECT_DESCRIBE:
        return type == BE_ROW_DESC || type == BE_NO_DATA;
    case EXPECT_EXECUTE:
        return type == BE_COMMAND_COMPLETE || type == BE_EMPTY_QUERY || type == BE_PORTAL_SUSPENDED;
    }
    return false;
}

static bool is_async(char type)
{
    return type == BE_NOTICE || type == BE_NOTIFICATION || type == BE_PARAMETER_STATUS;
}

/* An error to a message that named a client statement: the server names it by its own name. */
static bool error_to_client(struct server *s, const struct op *op, const uint8_t *msg, size_t body_len)
{
    if (!op->stmt)
        return s->client != NULL;
    /* pgmesh believed the statement was there: its table is out of step with the server's, and
     * every client using this connection would get the same error until it is repaired. */
    struct pq_error_fields e;
    if (error_read(frame_body(msg), body_len, &e) && span_eq(e.sqlstate, SQLSTATE_INVALID_SQL_STATEMENT_NAME)) {
        SERVER_LOG(LOG_WARNING, s, "shared_statement_lost", NULL,
                   "a shared prepared statement was dropped on the server: repairing");
        s->relay.stmts_lost = true;
    }
    if (!s->client)
        return false;
    struct pq_writer w;
    wr_init_dynamic(&w);
    error_rename(&w, BE_ERROR, frame_body(msg), body_len, op->stmt->sname, op->stmt->name);
    to_client(s, &w);
    return false;
}

/* Replies to one extended-protocol message (the client's, or pgmesh's Parse or Close). */
static bool route_extended(struct server *s, struct op *op, char type, const uint8_t *msg, size_t body_len)
{
    bool own = op->kind != OP_MSG;
    if (is_async(type))
        return s->client != NULL;
    if (type == BE_ERROR) { /* stays queued, undone at ReadyForQuery with those the server skips */
        s->relay.skipping = true;
        limits_on_reply(s, type);
        return error_to_client(s, op, msg, body_len);
    }
    if (!completes(own ? (op->kind == OP_PREPARE ? EXPECT_PARSE : EXPECT_CLOSE) : op->expect, type)) {
        if (own) {
            return relay_fail_server(s, "unexpected reply to pgmesh's own statement");
        }
        return s->client != NULL; /* rows, ParameterDescription, COPY */
    }
    limits_on_reply(s, type);
    bool forward = !own && s->client != NULL;
    if (op->as_parse_complete) {
        struct pq_writer w;
        wr_init_dynamic(&w);
        be_write_parse_complete(&w);
        to_client(s, &w);
        forward = false;
    }
    opq_pop(&s->relay.ops);
    return forward;
}

static bool route_ready(struct server *s, const struct frame *f, const uint8_t *msg)
{
    char status;
    if (!be_read_ready(frame_body(msg), f->body_len, &status)) {
        return relay_fail_server(s, "invalid ReadyForQuery from server");
    }
    s->relay.tx_status = status;
    s->relay.in_copy = false;
    if (s->relay.skipping) {
        s->relay.skipping = false;
        if (!undo_skipped(s))
            return false;
    }
    struct op *op = opq_head(&s->relay.ops);
    while (op && !ends_at_ready(op)) { /* cannot happen: messages the server neither answered nor skipped */
        if (!prep_undo(s, op))
            return false;
        opq_pop(&s->relay.ops);
        op = opq_head(&s->relay.ops);
    }
    if (!op) {
        limits_on_reply(s, BE_READY);
        return s->client != NULL;
    }
    bool forward = op->kind == OP_QUERY || op->kind == OP_SYNC;
    opq_pop(&s->relay.ops);
    if (forward)
        limits_on_reply(s, BE_READY);
    struct client *c = s->client;
    if (forward && c)
        stats_ready(&c->st, status, ev_now(rt.loop), c->conn.bytes_in, c->conn.bytes_out);
    return forward && c != NULL;
}

/* A field as a C string, cut to fit. */
static void span_text(struct span sp, char *out, size_t cap)
{
    size_t n = sp.len < cap - 1 ? sp.len : cap - 1;
    memcpy(out, sp.p, n);
    out[n] = '\0';
}

/* The server refused the client's transaction start. On an idle server the client's statements
 * are already on their way: end the link rather than let them run without their claims; a FATAL
 * (the backend is gone) ends it anywhere. Inside a block the client pipelined into, its own
 * statements fail the same way. The client is told what the server said, and when that names one
 * of its role's pinned settings, which [roles] setting to fix: a typo there must not look like a
 * network failure. */
static bool txstart_refused(struct server *s, const struct op *op, const uint8_t *body, size_t len)
{
    static const char why[] = "pgmesh could not apply the client's claims";
    struct pq_error_fields e;
    if (!error_read(body, len, &e))
        return relay_fail_server(s, why);
    if (!op->known_idle && !span_eq(e.severity, "FATAL") && !span_eq(e.severity, "PANIC"))
        return false;
    char sqlstate[6], message[256], hint[256];
    span_text(e.sqlstate, sqlstate, sizeof sqlstate);
    span_text(e.message, message, sizeof message);
    span_text(e.hint, hint, sizeof hint);
    struct client *c = s->client;
    const struct role_config *role = c ? config_find_role(rt.cfg, c->ident.role) : NULL;
    if (c)
        stats_enforce_refusal(&c->st);
    struct txstart_failure *tf = &s->relay.failure;
    if (txstart_explain_failure(role, sqlstate, message, hint, tf)) {
        SERVER_LOG(LOG_WARNING, s, "role_settings_failed", NULL, "%s (%s): %s", tf->message, rt.cfg->path,
                   tf->detail);
        return relay_fail_server_fatal(
            s, why, (struct relay_fatal){SQLSTATE_CONFIG_FILE_ERROR, tf->message, tf->detail, tf->hint});
    }
    snprintf(tf->detail, sizeof tf->detail, "%s: %s: %s", why, sqlstate, message);
    return relay_fail_server_fatal(
        s, why, (struct relay_fatal){SQLSTATE_CONNECTION_FAILURE, "server connection lost", tf->detail, NULL});
}

/* Replies to pgmesh's own Queries (claims, session parameters, resets) are swallowed; an error
 * to one of them may leave the connection unfit to lend. */
static bool route_own(struct server *s, const struct op *op, const struct frame *f, const uint8_t *msg)
{
    if (f->type != BE_ERROR)
        return false;
    log_own_error(s, frame_body(msg), f->body_len);
    switch (op->kind) {
    case OP_TXSTART:
        relay_forget_applied(&s->relay);
        return txstart_refused(s, op, frame_body(msg), f->body_len);
    case OP_PARAMS:
        /* A session parameter PostgreSQL refuses (it would have refused the connection at startup). */
        return relay_fail_server(s, "the server refused the client's session parameters");
    default:
        return relay_fail_server(s, "pgmesh could not reset the server connection");
    }
}

static bool is_own(const struct op *op)
{
    return op && (op->kind == OP_TXSTART || op->kind == OP_PARAMS || op->kind == OP_OWN_QUERY);
}

/* The server reports a setting changed. During pgmesh's own statements the change is pgmesh's
 * (swallowed, as their other replies). Otherwise a client statement changed the session, maybe
 * where pgmesh could not read it (a function body): the connection is discarded before another
 * client gets it and the claims and limits are sent again; the extension's count of such changes
 * (ENFORCE_REPORT_SETTING) is for pgmesh alone. A client_encoding the guard cannot read SQL in ends the
 * client: its next statement could hide from the guard. */
static bool route_parameter_status(struct server *s, const struct op *op, const struct frame *f,
                                   const uint8_t *msg)
{
    if (is_own(op))
        return false;
    struct span name, value;
    if (!be_read_parameter_status(frame_body(msg), f->body_len, &name, &value))
        return relay_fail_server(s, "invalid ParameterStatus from server");
    s->relay.session_dirty = true;
    relay_forget_applied(&s->relay);
    if (span_eq(name, "client_encoding")) {
        char enc[64];
        snprintf(enc, sizeof enc, "%.*s", (int)value.len, (const char *)value.p);
        if (!guard_check_startup_option("client_encoding", enc, NULL)) /* no role pins client_encoding */
            return relay_fatal(s, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                               "client_encoding was changed on the server to one pgmesh cannot check SQL in",
                               "A statement (perhaps inside a function) set client_encoding to a multi-byte "
                               "encoding whose characters may hold a backslash byte; connect again and keep "
                               "an ASCII-safe encoding such as UTF8.");
    }
    return !span_eq(name, ENFORCE_REPORT_SETTING) && s->client != NULL;
}

/* Handles one message header (and the whole message when need_whole). Returns whether its bytes
 * go to the client. May fail the server. */
static bool route_message(struct server *s, const struct frame *f, const uint8_t *msg)
{
    char type = f->type;
    /* A LISTEN pgmesh could not see (inside a function) makes an idle server speak: in transaction
     * pooling whoever gets the connection next is another client, and in session pooling an idle
     * server has no client left (the reset ran UNLISTEN *). Dropped; anything else is a fault. */
    if (s->state == SERVER_IDLE)
        return type == BE_NOTIFICATION ? false : relay_fail_server(s, "unexpected data from an idle server");
    if (type == BE_COPY_IN || type == BE_COPY_OUT || type == BE_COPY_BOTH)
        s->relay.in_copy = true;
    if (type == BE_READY)
        return route_ready(s, f, msg);
    struct op *op = opq_head(&s->relay.ops);
    if (type == BE_PARAMETER_STATUS)
        return route_parameter_status(s, op, f, msg);
    switch (op ? op->kind : OP_QUERY) {
    case OP_TXSTART:
    case OP_PARAMS:
    case OP_OWN_QUERY:
        return route_own(s, op, f, msg);
    case OP_GUARD_ERROR:
        if (!op->query || type == BE_ERROR)
            return route_guard_error(s, op, type, msg, f->body_len);
        return s->client != NULL;
    case OP_QUERY:
    case OP_SYNC:
        /* With nothing queued: notices, notifications, parameter changes. */
        limits_on_reply(s, type);
        return s->client != NULL;
    case OP_MSG:
    case OP_PREPARE:
    case OP_EVICT:
        return route_extended(s, op, type, msg, f->body_len);
    }
    return false;
}

/* Replies that route_message only tallies for a client's own request: it writes nothing of
 * pgmesh's to the client for them and ReadyForQuery settles nothing they change. */
static bool plain_reply(struct server *s, char type)
{
    switch (type) {
    case BE_DATA_ROW:
    case BE_ROW_DESC:
    case BE_COMMAND_COMPLETE:
    case BE_EMPTY_QUERY:
    case BE_NO_DATA:
    case BE_PARAMETER_DESC:
    case BE_PARSE_COMPLETE:
    case BE_BIND_COMPLETE:
    case BE_CLOSE_COMPLETE:
    case BE_PORTAL_SUSPENDED:
        break;
    default:
        return false;
    }
    const struct op *op = opq_head(&s->relay.ops);
    return !op || op->kind == OP_QUERY || op->kind == OP_SYNC || (op->kind == OP_MSG && !op->as_parse_complete);
}

/* A message routed to the client and already whole in the buffer: the plain replies whole behind
 * it are routed too and all of them copied to the client at once (a result set is mostly rows;
 * one copy per buffer of them, not per row). Bytes reach the client in the server's order:
 * nothing routed here writes to the client. */
static bool forward_run(struct server *s, struct client *c, size_t first_len)
{
    struct iobuf *in = &s->conn.in;
    size_t run = first_len, dropped = 0;
    for (;;) {
        const uint8_t *p = iobuf_head(in) + run;
        size_t avail = iobuf_len(in) - run;
        struct frame g;
        if (frame_peek_be(p, avail, &rt.limits, &g) != FRAME_OK || avail < g.total_len || !plain_reply(s, g.type))
            break;
        /* A row changes nothing route_message keeps (it only tallies a completion or, after
         * an error, the skip to Sync), so a result's rows pass on their framing alone. */
        bool tally = g.type != BE_DATA_ROW || s->relay.skipping;
        if (tally && !route_message(s, &g, p)) { /* what came before still goes */
            dropped = g.total_len;
            break;
        }
        run += g.total_len;
    }
    /* Both are whole in the buffer: each stream starts and ends here. */
    if (!relay_stream_start(&s->relay.body, in, run, &c->conn))
        return relay_fail_server(s, "out of memory");
    if (dropped && !relay_failed(s) && !relay_stream_start(&s->relay.body, in, dropped, NULL))
        return relay_fail_server(s, "out of memory");
    return !relay_failed(s);
}

/* One message from the server whose header has arrived: routed by the head of the op queue, its
 * bytes forwarded to the client or dropped as they stream in. False when it must wait for more
 * bytes, the call failed, or a ReadyForQuery ended what the link or the reset was waiting for. */
static bool route_next(struct server *s, struct client *c)
{
    struct iobuf *in = &s->conn.in;
    struct frame f;
    enum frame_result fr = frame_peek_be(iobuf_head(in), iobuf_len(in), &rt.limits, &f);
    if (fr == FRAME_NEED_MORE)
        return false;
    if (fr != FRAME_OK)
        return relay_fail_server(s, "invalid message from server");
    /* An idle server's message whole too: a stream cut short would be left to the next link. */
    bool whole = need_whole(f.type, opq_head(&s->relay.ops)) || s->state == SERVER_IDLE;
    if (whole && iobuf_len(in) < f.total_len) {
        if (!iobuf_reserve(in, f.total_len - iobuf_len(in)))
            relay_fail_server(s, "out of memory");
        return false;
    }
    bool forward = route_message(s, &f, iobuf_head(in));
    if (relay_failed(s))
        return false;
    if (forward && c && f.type != BE_READY && iobuf_len(in) >= f.total_len)
        return forward_run(s, c, f.total_len);
    if (!relay_stream_start(&s->relay.body, in, f.total_len, forward && c ? &c->conn : NULL))
        return relay_fail_server(s, "out of memory");
    /* At ReadyForQuery the link may be over: anything further is read in the new context. A reset
     * still in progress keeps reading: its remaining replies may already be here. */
    return !(f.type == BE_READY && relay_settle(s) == RELAY_TX_OVER);
}

static bool backed_up(const struct client *c)
{
    return c && iobuf_len(&c->conn.out) >= OUT_HIGH_WATER;
}

/* Reads what the server sent. False when there is nothing to route: no new bytes, or the
 * connection is gone or sent what it should not (the verdict says so). */
static bool fill(struct server *s)
{
    enum io_result r = conn_fill(&s->conn, READ_CHUNK);
    if (r == IO_EOF || r == IO_ERROR)
        return relay_fail_server(s, r == IO_EOF ? "server closed the connection" : "server socket error");
    return r != IO_AGAIN || iobuf_len(&s->conn.in) > 0; /* an idle server's: route_message */
}

/* The rest of a streaming message, or the next message. */
static bool next_piece(struct server *s, struct client *c)
{
    if (!s->relay.body.remaining)
        return route_next(s, c);
    return relay_stream_body(&s->relay.body, &s->conn.in, c ? &c->conn : NULL) ||
           relay_fail_server(s, "out of memory");
}

enum relay_verdict replies_from_server(struct server *s)
{
    struct client *c = s->client;
    if (backed_up(c)) {
        conn_stop_reading(&s->conn); /* client_on_drained resumes */
        return RELAY_GO_ON;
    }
    if (!fill(s))
        return relay_take_verdict(s, RELAY_GO_ON);
    while (iobuf_len(&s->conn.in) > 0 && next_piece(s, c))
        ;
    if (backed_up(c))
        conn_stop_reading(&s->conn);
    return relay_take_verdict(s, relay_settle(s));
}
