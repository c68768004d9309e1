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

#include "protocol/be.h"
#include "protocol/error.h"
#include "protocol/frame.h"
#include "protocol/sqlstate.h"
#include "protocol/wire.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/limits.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/relay_int.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

#define READ_CHUNK 65536

/* The error a refusal reports, PostgreSQL style. */
static void write_refusal(struct pq_writer *w, const struct op *op)
{
    char msg[160], detail[240];
    struct pq_error e = {.severity = "ERROR"};
    switch (op->why) {
    case REFUSE_NAMED_PARSE:
        snprintf(detail, sizeof detail,
                 "Statement \"%s\" was prepared with a name; in transaction pooling each "
                 "transaction may run on a different server connection.", op->name);
        e.sqlstate = SQLSTATE_FEATURE_NOT_SUPPORTED;
        e.message = "named prepared statements are not supported in transaction pooling";
        e.hint = "Use unnamed statements (pgbench -M extended, pgJDBC prepareThreshold=0), or pool_mode = session.";
        break;
    case REFUSE_MANAGED_SETTING:
        snprintf(msg, sizeof msg, "%s is managed by pgmesh", op->name);
        snprintf(detail, sizeof detail,
                 "pgmesh sets the token's claims and the role's limits on every transaction; "
                 "clients may not change them (%s).", op->name);
        e.sqlstate = SQLSTATE_INSUFFICIENT_PRIVILEGE;
        e.message = msg;
        e.hint = "Read the claims with current_setting(); ask for a token with other claims to act as someone else.";
        break;
    case REFUSE_SESSION_ONLY:
        snprintf(msg, sizeof msg, "%s is not supported in transaction pooling", op->name);
        snprintf(detail, sizeof detail,
                 "%s outlives the transaction, but each transaction may run on a different server "
                 "connection.", op->name);
        e.sqlstate = SQLSTATE_FEATURE_NOT_SUPPORTED;
        e.message = msg;
        e.hint = strcmp(op->name, "PREPARE") == 0
                     ? "Use protocol-level prepared statements (Parse/Bind, as drivers send them), or pool_mode = session."
                     : "Use pool_mode = session for clients that LISTEN.";
        break;
    case REFUSE_DUPLICATE_STATEMENT:
        /* PostgreSQL's own words for a name already in use. */
        snprintf(msg, sizeof msg, "prepared statement \"%s\" already exists", op->name);
        e.sqlstate = SQLSTATE_DUPLICATE_PSTATEMENT;
        e.message = msg;
        detail[0] = '\0';
        break;
    case REFUSE_DEALLOCATE:
        e.sqlstate = SQLSTATE_FEATURE_NOT_SUPPORTED;
        e.message = "DEALLOCATE must be sent alone in a simple query in transaction pooling";
        snprintf(detail, sizeof detail,
                 "pgmesh keeps each client's prepared statements and follows DEALLOCATE only when it is "
                 "the whole of a simple Query message.");
        e.hint = "Send DEALLOCATE name (or DEALLOCATE ALL) on its own, or close the statement with a Close message.";
        break;
    case REFUSE_RESERVED_NAME:
        e.sqlstate = SQLSTATE_RESERVED_NAME;
        e.message = "prepared statement names beginning with \"" STMT_PREFIX "\" are reserved by pgmesh";
        snprintf(detail, sizeof detail, "pgmesh names the statements it prepares on server connections so.");
        e.hint = "Use another name.";
        break;
    case REFUSE_TOO_MANY_STATEMENTS:
        e.sqlstate = SQLSTATE_PROGRAM_LIMIT_EXCEEDED;
        e.message = "too many prepared statements";
        snprintf(detail, sizeof detail,
                 "pgmesh keeps at most %u named statements or %u MiB of their text per client connection "
                 "(\"%s\" would pass that).", CLIENT_STMT_MAX, CLIENT_STMT_BYTES_MAX >> 20, op->name);
        e.hint = "Close or DEALLOCATE statements the client no longer uses.";
        break;
    case REFUSE_NONE:
    case REFUSE_TOO_LONG:
        e.sqlstate = SQLSTATE_PROGRAM_LIMIT_EXCEEDED;
        e.message = "statement too long for pgmesh to check";
        snprintf(detail, sizeof detail, "Query and Parse messages are limited to %u bytes.", (unsigned)INSPECT_MAX);
        e.hint = "Send large data with COPY or as bound parameters.";
        break;
    }
    e.detail = detail[0] ? detail : NULL;
    error_write(w, BE_ERROR, &e);
}

void relay_maybe_release(struct server *s)
{
    struct client *c = s->client;
    if (s->ops.len || s->tx_status != TX_IDLE || s->open_extended || s->body_remaining || s->in_copy ||
        s->cancels_in_flight)
        return;
    if (s->state == SERVER_RESETTING) {
        pool_server_ready(s);
        return;
    }
    if (s->state != SERVER_LINKED || rt.cfg->pool_mode != POOL_TRANSACTION || !c || c->body_remaining)
        return;
    limits_stop(s);
    s->client = NULL;
    pool_server_ready(s);
    client_unlinked(c);
}

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
    while ((op = opq_at(&s->ops, n)) && op->kind != OP_SYNC)
        n++;
    if (!op) {
        server_close(s, "ReadyForQuery from the server with no Sync in flight");
        return false;
    }
    /* Last first: a statement evicted then prepared again within the batch comes back right. */
    for (size_t i = n; i-- > 0;)
        if (!prep_undo(s, opq_at(&s->ops, i)))
            return false;
    while (n--)
        opq_pop(&s->ops);
    return true;
}

/* Needs the whole message: ReadyForQuery (its status) and errors pgmesh may have to read. */
static bool need_whole(char type, const struct op *op)
{
    return type == BE_READY || (type == BE_ERROR && op && op->kind != OP_QUERY && op->kind != OP_SYNC &&
                                !(op->kind == OP_MSG && !op->stmt));
}

static void log_own_error(struct server *s, const uint8_t *body, size_t len)
{
    struct pq_error_fields e;
    if (error_read(body, len, &e))
        LOG_AT(LOG_WARNING, s->tag, "own query failed: %.*s %.*s", (int)e.sqlstate.len,
               (const char *)e.sqlstate.p, (int)e.message.len, (const char *)e.message.p);
}

static void to_client(struct server *s, struct pq_writer *w)
{
    if (s->client && (!wr_ok(w) || !conn_send(&s->client->conn, w->p, w->len)))
        client_close(s->client, "out of memory");
    wr_destroy(w);
}

/* The stand-in's failure: replaced by pgmesh's error when it is the expected invalid-integer
 * error; any other (25P02 in an aborted block) is the server's true answer and passes. */
static bool route_guard_error(struct server *s, struct op *op, char type, const uint8_t *msg, size_t body_len)
{
    if (type != BE_ERROR) {
        if (!op->query && (type == BE_PARSE_COMPLETE))
            opq_pop(&s->ops); /* cannot happen: the stand-in never parses; keep the queue in step */
        return false;
    }
    struct pq_error_fields e;
    bool ours = error_read(msg + MSG_HEADER_LEN, body_len, &e) && span_eq(e.sqlstate, "22P02");
    if (ours) {
        struct pq_writer w;
        wr_init_dynamic(&w);
        write_refusal(&w, op);
        to_client(s, &w);
    }
    /* A Parse stand-in stays queued: at ReadyForQuery it goes with the messages the server skipped. */
    if (op->query)
        opq_pop(&s->ops);
    else
        s->skipping = true;
    return !ours && s->client != NULL;
}

/* Whether type is the reply that completes an extended-protocol message. */
static bool completes(enum op_expect expect, char type)
{
    switch (expect) {
    case EXPECT_PARSE: return type == BE_PARSE_COMPLETE;
    case EXPECT_BIND: return type == BE_BIND_COMPLETE;
    case EXPECT_CLOSE: return type == BE_CLOSE_COMPLETE;
    case EXPECT_DESCRIBE: return type == BE_ROW_DESC || type == BE_NO_DATA;
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
    if (!op->stmt || !s->client)
        return s->client != NULL;
    struct pq_writer w;
    wr_init_dynamic(&w);
    error_rename(&w, BE_ERROR, msg + MSG_HEADER_LEN, body_len, op->stmt->sname, op->stmt->name);
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
        s->skipping = true;
        limits_on_reply(s, type);
        return error_to_client(s, op, msg, body_len);
    }
    if (!completes(own ? (op->kind == OP_PREPARE ? EXPECT_PARSE : EXPECT_CLOSE) : op->expect, type)) {
        if (own) {
            server_close(s, "unexpected reply to pgmesh's own statement");
            return false;
        }
        return s->client != NULL; /* rows, ParameterDescription, COPY */
    }
    limits_on_reply(s, type);
    bool forward = !own && s->client != NULL;
    if (op->as_parse_complete) {
        static const uint8_t parse_complete[] = {BE_PARSE_COMPLETE, 0, 0, 0, 4};
        if (s->client && !conn_send(&s->client->conn, parse_complete, sizeof parse_complete))
            client_close(s->client, "out of memory");
        forward = false;
    }
    opq_pop(&s->ops);
    return forward;
}

static bool route_ready(struct server *s, const struct frame *f, const uint8_t *msg)
{
    char status;
    if (!be_read_ready(msg + MSG_HEADER_LEN, f->body_len, &status)) {
        server_close(s, "invalid ReadyForQuery from server");
        return false;
    }
    s->tx_status = status;
    s->in_copy = false;
    if (s->skipping) {
        s->skipping = false;
        if (!undo_skipped(s))
            return false;
    }
    struct op *op = opq_head(&s->ops);
    while (op && !ends_at_ready(op)) { /* cannot happen: messages the server neither answered nor skipped */
        if (!prep_undo(s, op))
            return false;
        opq_pop(&s->ops);
        op = opq_head(&s->ops);
    }
    if (!op) {
        limits_on_reply(s, BE_READY);
        return s->client != NULL;
    }
    bool forward = op->kind == OP_QUERY || op->kind == OP_SYNC;
    opq_pop(&s->ops);
    if (forward)
        limits_on_reply(s, BE_READY);
    return forward && s->client != NULL;
}

/* Handles one message header (and the whole message when need_whole). Returns whether its bytes
 * go to the client. May close the server. */
static bool route_message(struct server *s, const struct frame *f, const uint8_t *msg)
{
    char type = f->type;
    if (type == BE_COPY_IN || type == BE_COPY_OUT || type == BE_COPY_BOTH)
        s->in_copy = true;
    if (type == BE_READY)
        return route_ready(s, f, msg);
    struct op *op = opq_head(&s->ops);
    if (!op) {
        limits_on_reply(s, type);
        return s->client != NULL; /* notices, notifications, parameter changes */
    }
    switch (op->kind) {
    case OP_TXSTART:
        /* On an idle server this must not happen: the client's statements are already on their
         * way, so end the link rather than let them run without their claims. Inside a block the
         * client pipelined into, its own statements fail the same way. */
        if (type == BE_ERROR) {
            log_own_error(s, msg + MSG_HEADER_LEN, f->body_len);
            if (op->known_idle) {
                server_close(s, "pgmesh could not apply the client's claims");
                return false;
            }
        }
        return false;
    case OP_PARAMS:
    case OP_OWN_QUERY:
        if (type == BE_ERROR) {
            log_own_error(s, msg + MSG_HEADER_LEN, f->body_len);
            /* A session parameter PostgreSQL refuses (it would have refused the connection at
             * startup), or a reset that failed: the connection is not fit to lend. */
            server_close(s, op->kind == OP_PARAMS ? "the server refused the client's session parameters"
                                                  : "pgmesh could not reset the server connection");
            return false;
        }
        return false;
    case OP_GUARD_ERROR:
        if (!op->query || type == BE_ERROR)
            return route_guard_error(s, op, type, msg, f->body_len);
        return s->client != NULL;
    case OP_QUERY:
    case OP_SYNC:
        limits_on_reply(s, type);
        return s->client != NULL;
    case OP_MSG:
    case OP_PREPARE:
    case OP_EVICT:
        return route_extended(s, op, type, msg, f->body_len);
    }
    return false;
}

void relay_from_server(struct server *s)
{
    struct client *c = s->client;
    if (c && iobuf_len(&c->conn.out) >= OUT_HIGH_WATER) {
        conn_stop_reading(&s->conn); /* client_on_drained resumes */
        return;
    }
    enum io_result r = conn_fill(&s->conn, READ_CHUNK);
    if (r == IO_EOF || r == IO_ERROR) {
        server_close(s, r == IO_EOF ? "server closed the connection" : "server socket error");
        return;
    }
    if (r == IO_AGAIN && iobuf_len(&s->conn.in) == 0)
        return;
    if (s->state == SERVER_IDLE) {
        server_close(s, "unexpected data from an idle server");
        return;
    }
    struct iobuf *in = &s->conn.in;
    while (s->state == SERVER_LINKED || s->state == SERVER_RESETTING) {
        size_t avail = iobuf_len(in);
        if (avail == 0)
            break;
        if (s->body_remaining) {
            size_t n = avail < s->body_remaining ? avail : s->body_remaining;
            if (!s->body_drop && s->client && !conn_send(&s->client->conn, iobuf_head(in), n)) {
                server_close(s, "out of memory");
                return;
            }
            iobuf_consume(in, n);
            s->body_remaining -= (uint32_t)n;
            continue;
        }
        struct frame f;
        enum frame_result fr = frame_peek_be(iobuf_head(in), avail, &rt.limits, &f);
        if (fr == FRAME_NEED_MORE)
            break;
        if (fr != FRAME_OK) {
            server_close(s, "invalid message from server");
            return;
        }
        if (need_whole(f.type, opq_head(&s->ops)) && avail < f.total_len) {
            if (!iobuf_reserve(in, f.total_len - avail))
                server_close(s, "out of memory");
            break;
        }
        bool forward = route_message(s, &f, iobuf_head(in));
        if (s->state == SERVER_CLOSING)
            return;
        size_t n = avail < f.total_len ? avail : f.total_len;
        if (forward && s->client && !conn_send(&s->client->conn, iobuf_head(in), n)) {
            server_close(s, "out of memory");
            return;
        }
        iobuf_consume(in, n);
        s->body_remaining = (uint32_t)(f.total_len - n);
        s->body_drop = !forward;
        if (f.type == BE_READY && s->body_remaining == 0) {
            relay_maybe_release(s);
            /* Handed on (or closed): anything further is read in the new context. A reset
             * still in progress keeps reading: its remaining replies may already be here. */
            if (s->client != c || (s->state != SERVER_LINKED && s->state != SERVER_RESETTING))
                break;
        }
    }
    if (c && c->server == s && iobuf_len(&c->conn.out) >= OUT_HIGH_WATER)
        conn_stop_reading(&s->conn);
}

