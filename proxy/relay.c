/* The relay between a linked client and server. Message bodies are streamed (results and COPY
 * are never held whole); only headers, ReadyForQuery and errors pgmesh must read are inspected.
 * Every request pgmesh sends records in the server's op queue what to do with its replies, in
 * order: the server answers strictly in request order, so the head of the queue always owns the
 * next reply. A server goes back to its pool only at ReadyForQuery idle with an empty queue. */
#include "proxy/relay.h"

#include <stdio.h>
#include <string.h>

#include "protocol/be.h"
#include "protocol/error.h"
#include "protocol/fe.h"
#include "protocol/frame.h"
#include "protocol/guard.h"
#include "protocol/sqllex.h"
#include "protocol/sqlstate.h"
#include "protocol/wire.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/limits.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

#define READ_CHUNK 65536
/* Query and Parse are read whole to be checked; longer ones are refused (PostgreSQL allows 1 GB,
 * but such text belongs in COPY or bound parameters). */
#define INSPECT_MAX (16u * 1024u * 1024u)

static bool push_op(struct server *s, enum op_kind kind, bool known_idle)
{
    struct op op = {.kind = kind, .known_idle = known_idle};
    if (opq_push(&s->ops, op))
        return true;
    server_close(s, "out of memory");
    return false;
}

bool relay_own_query(struct server *s, const char *sql)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    fe_write_query(&w, sql);
    bool ok = wr_ok(&w) && conn_send(&s->conn, w.p, w.len);
    wr_destroy(&w);
    if (!ok) {
        server_close(s, "out of memory");
        return false;
    }
    return push_op(s, OP_OWN_QUERY, false);
}

/* The client's session parameters (startup packet, its own SETs) onto this server when they
 * differ from what the server has: they follow the client across server connections. */
static bool sync_params(struct client *c, struct server *s)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    bool needed = params_write_sync(&c->params, &s->have, &w);
    bool ok = !needed || (wr_ok(&w) && conn_send(&s->conn, w.p, w.len) && params_copy(&s->have, &c->params));
    wr_destroy(&w);
    if (!ok) {
        server_close(s, "out of memory");
        return false;
    }
    return !needed || push_op(s, OP_PARAMS, false);
}

/* Queues the client's claims Query ahead of whatever it sends next (see txstart.h). */
static bool send_txstart(struct client *c, struct server *s)
{
    bool known_idle = s->ops.len == 0 && s->tx_status == TX_IDLE;
    bool switching = s->claims_owner != c->id;
    /* What the last client left in the session (search_path, temp tables, PREPARE, LISTEN)
     * must not reach this one. DISCARD ALL refuses a transaction block: its own Query. */
    bool discarded = false;
    if (known_idle && switching && s->session_dirty) {
        if (!relay_own_query(s, "DISCARD ALL"))
            return false;
        s->session_dirty = false;
        s->application_name[0] = '\0';
        params_clear(&s->have);
        discarded = true;
    }
    if (known_idle && !sync_params(c, s))
        return false;
    bool full = known_idle && switching;
    /* The RESET guards against SETs failing with another tenant's claims left committed; when the
     * last client had the same tenant and role there is nothing to guard against. */
    bool same_claims = strcmp(s->claims_tenant, c->ident.tenant) == 0 &&
                       strcmp(s->claims_role, c->ident.role) == 0 && !c->ident.claims_json;
    if (full && !discarded && !same_claims && (!conn_send(&s->conn, c->tx.reset_msg, c->tx.reset_len) ||
                 !push_op(s, OP_TXSTART, known_idle))) {
        server_close(s, "out of memory");
        return false;
    }
    const char *app = c->application_name[0] ? c->application_name : "pgmesh";
    bool set_app = full && strcmp(s->application_name, app) != 0;
    if (!conn_send(&s->conn, set_app ? c->tx.switch_msg : c->tx.set_msg,
                   set_app ? c->tx.switch_len : c->tx.set_len)) {
        server_close(s, "out of memory");
        return false;
    }
    if (set_app)
        snprintf(s->application_name, sizeof s->application_name, "%s", app);
    s->claims_owner = c->id;
    snprintf(s->claims_tenant, sizeof s->claims_tenant, "%s", c->ident.tenant);
    snprintf(s->claims_role, sizeof s->claims_role, "%s", c->ident.role);
    return push_op(s, OP_TXSTART, known_idle);
}

void relay_begin(struct client *c, struct server *s)
{
    s->at_boundary = true;
    s->open_extended = false;
    s->body_remaining = 0;
    c->body_remaining = 0;
    /* Session pooling sets the claims once; a failure closes the server (and so the client). */
    if (rt.cfg->pool_mode == POOL_SESSION)
        (void)send_txstart(c, s);
}

/* Messages that never begin a transaction: COPY sub-protocol, Flush, a lone Sync, Terminate. */
static bool may_start_transaction(char type)
{
    return !(type == FE_COPY_DATA || type == FE_COPY_DONE || type == FE_COPY_FAIL ||
             type == FE_FLUSH || type == FE_SYNC || type == FE_TERMINATE);
}

/* Whether the client's next message may start a transaction and so needs its claims first. They
 * are skipped only when nothing is in flight and the server says a transaction block is open:
 * then the claims are already in force (or the block is aborted and nothing can run). */
static bool needs_txstart(const struct server *s, const struct frame *f)
{
    if (rt.cfg->pool_mode != POOL_TRANSACTION || !s->at_boundary || !may_start_transaction(f->type))
        return false;
    return !(s->ops.len == 0 && s->tx_status != TX_IDLE);
}

static void after_forward(struct server *s, char type)
{
    limits_on_forward(s, type);
    switch (type) {
    case FE_QUERY:
    case FE_SYNC:
        if (!push_op(s, OP_CLIENT_SYNC, false))
            return;
        s->at_boundary = true;
        s->open_extended = false;
        break;
    case FE_COPY_DATA:
    case FE_COPY_DONE:
    case FE_COPY_FAIL:
    case FE_FLUSH:
        break;
    default:
        s->at_boundary = false;
        s->open_extended = true;
        break;
    }
}

static void maybe_release(struct server *s);

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
                     ? "Use protocol-level prepared statements (unnamed Parse/Bind), or pool_mode = session."
                     : "Use pool_mode = session for clients that LISTEN.";
        break;
    case REFUSE_TOO_LONG:
        e.sqlstate = SQLSTATE_PROGRAM_LIMIT_EXCEEDED;
        e.message = "statement too long for pgmesh to check";
        snprintf(detail, sizeof detail, "Query and Parse messages are limited to %u bytes.", (unsigned)INSPECT_MAX);
        e.hint = "Send large data with COPY or as bound parameters.";
        break;
    }
    e.detail = detail;
    error_write(w, BE_ERROR, &e);
}

static bool push_refusal(struct server *s, enum op_kind kind, enum refusal why, const char *name, size_t len)
{
    struct op op = {.kind = kind, .why = why};
    size_t n = len < sizeof op.name - 1 ? len : sizeof op.name - 1;
    memcpy(op.name, name, n);
    if (opq_push(&s->ops, op))
        return true;
    server_close(s, "out of memory");
    return false;
}

/* A message pgmesh refuses (a managed setting, LISTEN or PREPARE or a named Parse in transaction
 * pooling, a text too long to check). The server must see a failure in its place, so that the
 * error comes in order with the replies to the client's other messages, an explicit transaction
 * aborts and a pipeline skips to Sync exactly as if PostgreSQL had refused it: pgmesh sends a
 * stand-in that fails at parse analysis (a bad integer literal) and reports its own error instead
 * of the server's. The caller consumes the refused message. */
static bool send_stand_in(struct client *c, struct server *s, const struct frame *f, enum refusal why,
                          const char *what, size_t what_len)
{
    static const char stand_in[] = "SELECT 'pgmesh: refused statement'::pg_catalog.int4";
    LOG_AT(why == REFUSE_MANAGED_SETTING ? LOG_WARNING : LOG_INFO, c->tag, "refused %s%.*s (role %s, tenant %s)",
           why == REFUSE_MANAGED_SETTING ? "a change of " : "", (int)(what_len > 63 ? 63 : what_len), what,
           c->ident.role, c->ident.tenant);
    if (needs_txstart(s, f) && !send_txstart(c, s))
        return false;
    struct pq_writer w;
    wr_init_dynamic(&w);
    if (f->type == FE_QUERY)
        fe_write_query(&w, stand_in);
    else
        fe_write_parse(&w, "", stand_in);
    bool ok = wr_ok(&w) && conn_send(&s->conn, w.p, w.len);
    wr_destroy(&w);
    if (!ok) {
        server_close(s, "out of memory");
        return false;
    }
    if (!push_refusal(s, OP_GUARD_ERROR, why, what, what_len))
        return false;
    after_forward(s, f->type);
    return true;
}

/* Refused with the whole message in the buffer. */
static bool refuse_with_stand_in(struct client *c, struct server *s, const struct frame *f,
                                 enum refusal why, const char *what, size_t what_len)
{
    if (!send_stand_in(c, s, f, why, what, what_len))
        return false;
    iobuf_consume(&c->conn.in, f->total_len);
    return true;
}

/* Too long to check: refused, its body dropped as it streams in. */
static bool refuse_too_long(struct client *c, struct server *s, const struct frame *f)
{
    if (!send_stand_in(c, s, f, REFUSE_TOO_LONG, "a statement too long to check", 29))
        return false;
    size_t n = iobuf_len(&c->conn.in) < f->total_len ? iobuf_len(&c->conn.in) : f->total_len;
    iobuf_consume(&c->conn.in, n);
    c->body_remaining = (uint32_t)(f->total_len - n);
    c->body_discard = true;
    return true;
}

enum inspect { INSPECT_FORWARD, INSPECT_WAIT, INSPECT_REFUSED, INSPECT_FAILED };

/* Reads a Query or Parse whole (up to INSPECT_MAX; longer ones are refused) to check it: the
 * guard, session state it may leave behind, what transaction pooling cannot serve. */
static enum inspect inspect_message(struct client *c, struct server *s, const struct frame *f)
{
    struct iobuf *in = &c->conn.in;
    if (f->type != FE_QUERY && f->type != FE_PARSE)
        return INSPECT_FORWARD;
    if (f->total_len > INSPECT_MAX)
        return refuse_too_long(c, s, f) ? INSPECT_REFUSED : INSPECT_FAILED;
    if (iobuf_len(in) < f->total_len) {
        if (!iobuf_reserve(in, f->total_len - iobuf_len(in))) {
            client_close(c, "out of memory");
            return INSPECT_FAILED;
        }
        return INSPECT_WAIT;
    }
    const uint8_t *body = iobuf_head(in) + MSG_HEADER_LEN;
    struct span sql;
    struct fe_parse parse;
    bool ok = f->type == FE_QUERY ? fe_read_query(body, f->body_len, &sql)
                                  : fe_read_parse(body, f->body_len, &parse);
    if (!ok) {
        client_error(c, "FATAL", SQLSTATE_PROTOCOL_VIOLATION, "invalid Query or Parse message", NULL, NULL);
        return INSPECT_FAILED;
    }
    if (f->type == FE_PARSE) {
        if (parse.name.len > 0 && rt.cfg->pool_mode == POOL_TRANSACTION) {
            return refuse_with_stand_in(c, s, f, REFUSE_NAMED_PARSE, (const char *)parse.name.p, parse.name.len)
                       ? INSPECT_REFUSED : INSPECT_FAILED;
        }
        sql = parse.query;
    }
    struct guard_options gopt = {.session_pooling = rt.cfg->pool_mode == POOL_SESSION};
    struct guard_finding found;
    if (guard_check_sql((const char *)sql.p, sql.len, &gopt, &found) == GUARD_REFUSED)
        return refuse_with_stand_in(c, s, f, REFUSE_MANAGED_SETTING, found.setting, strlen(found.setting))
                   ? INSPECT_REFUSED : INSPECT_FAILED;
    /* LISTEN and SQL-level PREPARE keep state on one server connection, which transaction
     * pooling cannot give the next transaction: a clear error instead of silent loss. */
    if (rt.cfg->pool_mode == POOL_TRANSACTION) {
        const char *what = sql_has_leading((const char *)sql.p, sql.len, "listen", NULL) ? "LISTEN"
                           : sql_has_leading((const char *)sql.p, sql.len, "prepare", "transaction") ? "PREPARE"
                                                                                                       : NULL;
        if (what)
            return refuse_with_stand_in(c, s, f, REFUSE_SESSION_ONLY, what, strlen(what)) ? INSPECT_REFUSED
                                                                                          : INSPECT_FAILED;
    }
    if (sql_may_leave_session_state((const char *)sql.p, sql.len))
        s->session_dirty = true;
    if (f->type == FE_QUERY) {
        params_track_sql(&c->params, (const char *)sql.p, sql.len);
        params_track_sql(&s->have, (const char *)sql.p, sql.len);
    }
    /* Session pooling lets the client DISCARD ALL (the guard refuses it in transaction pooling);
     * pgmesh then sets its settings again right behind the client's Query. */
    if (f->type == FE_QUERY && rt.cfg->pool_mode == POOL_SESSION &&
        sql_needs_own_transaction((const char *)sql.p, sql.len))
        c->reapply_settings = true;
    return INSPECT_FORWARD;
}

void relay_from_client(struct client *c)
{
    struct iobuf *in = &c->conn.in;
    struct server *s = c->server;
    while (s && c->server == s && s->state == SERVER_LINKED && !c->conn.closing) {
        if (iobuf_len(&s->conn.out) >= OUT_HIGH_WATER) {
            conn_stop_reading(&c->conn); /* server_on_drained resumes */
            return;
        }
        size_t avail = iobuf_len(in);
        if (avail == 0)
            break;
        if (c->body_remaining) {
            size_t n = avail < c->body_remaining ? avail : c->body_remaining;
            if (!c->body_discard && !conn_send(&s->conn, iobuf_head(in), n)) {
                client_close(c, "out of memory");
                return;
            }
            iobuf_consume(in, n);
            c->body_remaining -= (uint32_t)n;
            continue;
        }
        struct frame f;
        enum frame_result fr = frame_peek_fe(iobuf_head(in), avail, &rt.limits, &f);
        if (fr == FRAME_NEED_MORE)
            return;
        if (fr != FRAME_OK) {
            LOG_AT(LOG_WARNING, c->tag, "protocol violation: message type 0x%02x, %s", (unsigned)(uint8_t)iobuf_head(in)[0],
                   fr == FRAME_TOO_BIG ? "too large" : "invalid");
            client_error(c, "FATAL", SQLSTATE_PROTOCOL_VIOLATION,
                         fr == FRAME_TOO_BIG ? "message too large" : "invalid frontend message type or length",
                         NULL, NULL);
            return;
        }
        if (f.type == FE_TERMINATE) {
            client_close(c, "client terminated");
            return;
        }
        switch (inspect_message(c, s, &f)) {
        case INSPECT_FORWARD: break;
        case INSPECT_REFUSED: continue;
        case INSPECT_WAIT:
        case INSPECT_FAILED: return;
        }
        if (needs_txstart(s, &f) && !send_txstart(c, s))
            return;
        size_t n = avail < f.total_len ? avail : f.total_len;
        if (!conn_send(&s->conn, iobuf_head(in), n)) {
            client_close(c, "out of memory");
            return;
        }
        iobuf_consume(in, n);
        c->body_remaining = (uint32_t)(f.total_len - n);
        c->body_discard = false;
        after_forward(s, f.type);
        if (c->reapply_settings) {
            c->reapply_settings = false;
            if (!conn_send(&s->conn, c->tx.set_msg, c->tx.set_len) || !push_op(s, OP_TXSTART, false)) {
                server_close(s, "out of memory");
                return;
            }
        }
    }
    if (s && c->server == s && s->state == SERVER_LINKED && !c->body_remaining)
        maybe_release(s);
}

static void maybe_release(struct server *s)
{
    struct client *c = s->client;
    if (s->ops.len || s->tx_status != TX_IDLE || s->open_extended || s->body_remaining || s->in_copy)
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

/* Needs the whole message: ReadyForQuery (its status) and errors pgmesh may have to read. */
static bool need_whole(char type, const struct op *op)
{
    return type == BE_READY || (type == BE_ERROR && op && op->kind != OP_CLIENT_SYNC);
}

static void log_own_error(struct server *s, const uint8_t *body, size_t len)
{
    struct pq_error_fields e;
    if (error_read(body, len, &e))
        LOG_AT(LOG_WARNING, s->tag, "own query failed: %.*s %.*s", (int)e.sqlstate.len,
               (const char *)e.sqlstate.p, (int)e.message.len, (const char *)e.message.p);
}

/* The stand-in's failure: replaced by the guard's error when it is the expected invalid-integer
 * error; any other error (25P02 in an aborted block, or an earlier message of the same pipeline
 * failing, after which the server skips the stand-in) is the server's true answer and passes. */
static bool route_guard_error(struct server *s, const struct op *op, char type, const uint8_t *msg,
                              size_t body_len)
{
    if (type != BE_ERROR)
        return s->client != NULL; /* replies to the client's earlier messages of this pipeline */
    struct pq_error_fields e;
    bool ours = error_read(msg + MSG_HEADER_LEN, body_len, &e) && span_eq(e.sqlstate, "22P02");
    if (ours && s->client) {
        struct pq_writer w;
        wr_init_dynamic(&w);
        write_refusal(&w, op);
        if (!wr_ok(&w) || !conn_send(&s->client->conn, w.p, w.len))
            client_close(s->client, "out of memory");
        wr_destroy(&w);
    }
    opq_pop(&s->ops);
    return !ours && s->client != NULL;
}

/* Handles one message header (and the whole message when need_whole). Returns whether its bytes
 * go to the client. May close the server. */
static bool route_message(struct server *s, const struct frame *f, const uint8_t *msg)
{
    struct op *op = opq_head(&s->ops);
    char type = f->type;
    if (type == BE_COPY_IN || type == BE_COPY_OUT || type == BE_COPY_BOTH)
        s->in_copy = true;
    if (type == BE_READY) {
        char status;
        if (!be_read_ready(msg + MSG_HEADER_LEN, f->body_len, &status)) {
            server_close(s, "invalid ReadyForQuery from server");
            return false;
        }
        s->tx_status = status;
        s->in_copy = false;
    }
    if (!op) {
        limits_on_reply(s, type);
        return s->client != NULL; /* notices, notifications, parameter changes */
    }
    switch (op->kind) {
    case OP_TXSTART:
        if (type == BE_ERROR) {
            log_own_error(s, msg + MSG_HEADER_LEN, f->body_len);
            /* On an idle server this must not happen: the client's statements are already on
             * their way, so end the link rather than let them run without their claims. Inside
             * a block the client pipelined into, its own statements fail the same way. */
            if (op->known_idle) {
                server_close(s, "pgmesh could not apply the client's claims");
                return false;
            }
        }
        if (type == BE_READY)
            opq_pop(&s->ops);
        return false;
    case OP_GUARD_ERROR:
        return route_guard_error(s, op, type, msg, f->body_len);
    case OP_CLIENT_SYNC:
        if (type == BE_READY)
            opq_pop(&s->ops);
        limits_on_reply(s, type);
        return s->client != NULL;
    case OP_PARAMS:
        if (type == BE_ERROR) {
            log_own_error(s, msg + MSG_HEADER_LEN, f->body_len);
            /* A value PostgreSQL refuses (it would have refused the connection at startup). */
            server_close(s, "the server refused the client's session parameters");
            return false;
        }
        if (type == BE_READY)
            opq_pop(&s->ops);
        return false;
    case OP_OWN_QUERY:
        if (type == BE_ERROR) {
            log_own_error(s, msg + MSG_HEADER_LEN, f->body_len);
            server_close(s, "pgmesh could not reset the server connection");
            return false;
        }
        if (type == BE_READY)
            opq_pop(&s->ops);
        return false;
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
    if (r == IO_AGAIN)
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
            maybe_release(s);
            /* Handed on (or closed): anything further is read in the new context. A reset
             * still in progress keeps reading: its remaining replies may already be here. */
            if (s->client != c || (s->state != SERVER_LINKED && s->state != SERVER_RESETTING))
                break;
        }
    }
    if (c && c->server == s && iobuf_len(&c->conn.out) >= OUT_HIGH_WATER)
        conn_stop_reading(&s->conn);
}

void relay_client_gone(struct server *s)
{
    struct client *c = s->client;
    limits_stop(s);
    s->client = NULL;
    if (s->state != SERVER_LINKED)
        return;
    bool clean_point = s->ops.len == 0 && !s->open_extended && !s->in_copy && s->body_remaining == 0 &&
                       (!c || c->body_remaining == 0);
    if (!clean_point) {
        server_close(s, "client left with a request in flight");
        return;
    }
    server_set_state(s, SERVER_RESETTING);
    if (s->tx_status != TX_IDLE && !relay_own_query(s, "ROLLBACK"))
        return;
    if (rt.cfg->pool_mode == POOL_SESSION) {
        if (!relay_own_query(s, "DISCARD ALL"))
            return;
        s->claims_owner = 0; /* DISCARD ALL reset every setting */
        s->claims_tenant[0] = s->claims_role[0] = s->application_name[0] = '\0';
        s->session_dirty = false;
    }
    maybe_release(s);
}
