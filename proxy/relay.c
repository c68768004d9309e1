/* The relay from a linked client to its server. Message bodies are streamed (COPY data and Bind
 * parameters are never held whole); Query and Parse texts are read whole to be checked. Every
 * message sent to the server, the client's and pgmesh's own, records in the server's op queue
 * what to do with its replies (proxy/replies.c): the server answers strictly in request order. */
#include "proxy/relay.h"

#include <stdio.h>
#include <string.h>

#include "protocol/fe.h"
#include "protocol/frame.h"
#include "policy/guard.h"
#include "policy/sqllex.h"
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

bool relay_push(struct server *s, struct op op)
{
    if (opq_push(&s->ops, op))
        return true;
    server_close(s, "out of memory");
    return false;
}

bool relay_send(struct server *s, const void *p, size_t n)
{
    if (conn_send(&s->conn, p, n))
        return true;
    server_close(s, "out of memory");
    return false;
}

bool relay_send_written(struct server *s, struct pq_writer *w)
{
    bool ok = wr_ok(w) ? relay_send(s, w->p, w->len) : (server_close(s, "out of memory"), false);
    wr_destroy(w);
    return ok;
}

static bool push_op(struct server *s, enum op_kind kind, bool known_idle)
{
    return relay_push(s, (struct op){.kind = kind, .known_idle = known_idle});
}

bool relay_own_query(struct server *s, const char *sql)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    fe_write_query(&w, sql);
    return relay_send_written(s, &w) && push_op(s, OP_OWN_QUERY, false);
}

/* The client's session parameters (startup packet, its own SETs) onto this server when they
 * differ from what the server has: they follow the client across server connections. */
static bool sync_params(struct client *c, struct server *s)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    if (!params_write_sync(&c->params, &s->have, &w)) {
        wr_destroy(&w);
        return true;
    }
    if (!relay_send_written(s, &w))
        return false;
    if (!params_copy(&s->have, &c->params)) {
        server_close(s, "out of memory");
        return false;
    }
    return push_op(s, OP_PARAMS, false);
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
        sstmt_clear(&s->stmts);
        discarded = true;
    }
    if (known_idle && !sync_params(c, s))
        return false;
    bool full = known_idle && switching;
    /* The RESET guards against SETs failing with another tenant's claims left committed; when the
     * last client had the same tenant and role there is nothing to guard against. */
    bool same_claims = strcmp(s->claims_tenant, c->ident.tenant) == 0 &&
                       strcmp(s->claims_role, c->ident.role) == 0 && !c->ident.claims_json;
    if (full && !discarded && !same_claims &&
        (!relay_send(s, c->tx.reset_msg, c->tx.reset_len) || !push_op(s, OP_TXSTART, known_idle)))
        return false;
    /* The startup application_name goes with the switch; one the client SET itself follows it
     * with the other session parameters (sync_params). */
    const char *app = c->application_name[0] ? c->application_name : "pgmesh";
    bool own_app = c->params.sql[PARAM_APPLICATION_NAME] != NULL;
    if (own_app)
        s->application_name[0] = '\0';
    bool set_app = full && !own_app && strcmp(s->application_name, app) != 0;
    if (!relay_send(s, set_app ? c->tx.switch_msg : c->tx.set_msg, set_app ? c->tx.switch_len : c->tx.set_len))
        return false;
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

/* The op for a client message just sent: msg (when not NULL) is the one prep_message filled in. */
static bool after_forward(struct server *s, char type, const struct op *msg)
{
    limits_on_forward(s, type);
    struct op op = {.kind = OP_MSG};
    switch (type) {
    case FE_QUERY:
    case FE_FUNCTION_CALL:
    case FE_SYNC:
        s->at_boundary = true;
        s->open_extended = false;
        s->batch++;
        op.kind = type == FE_SYNC ? OP_SYNC : OP_QUERY;
        return relay_push(s, msg ? *msg : op);
    case FE_COPY_DATA:
    case FE_COPY_DONE:
    case FE_COPY_FAIL:
    case FE_FLUSH:
        return true;
    case FE_PARSE: op.expect = EXPECT_PARSE; break;
    case FE_BIND: op.expect = EXPECT_BIND; break;
    case FE_DESCRIBE: op.expect = EXPECT_DESCRIBE; break;
    case FE_CLOSE: op.expect = EXPECT_CLOSE; break;
    default: op.expect = EXPECT_EXECUTE; break;
    }
    s->at_boundary = false;
    s->open_extended = true;
    return relay_push(s, msg ? *msg : op);
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
    static const char *const lead[] = {
        [REFUSE_NONE] = "", [REFUSE_NAMED_PARSE] = "named statement ",
        [REFUSE_MANAGED_SETTING] = "a change of ", [REFUSE_TOO_LONG] = "", [REFUSE_SESSION_ONLY] = "",
        [REFUSE_DUPLICATE_STATEMENT] = "a second Parse of statement ", [REFUSE_DEALLOCATE] = "a combined ",
        [REFUSE_RESERVED_NAME] = "a reserved name in ", [REFUSE_TOO_MANY_STATEMENTS] = "statement ",
    };
    LOG_AT(why == REFUSE_MANAGED_SETTING ? LOG_WARNING : LOG_INFO, c->tag, "refused %s%.*s (role %s, tenant %s)",
           lead[why], (int)(what_len > 63 ? 63 : what_len), what, c->ident.role, c->ident.tenant);
    if (needs_txstart(s, f) && !send_txstart(c, s))
        return false;
    struct pq_writer w;
    wr_init_dynamic(&w);
    if (f->type == FE_QUERY)
        fe_write_query(&w, stand_in);
    else
        fe_write_parse(&w, "", stand_in);
    if (!relay_send_written(s, &w))
        return false;
    struct op op = {.kind = OP_GUARD_ERROR, .why = why, .query = f->type == FE_QUERY};
    size_t n = what_len < sizeof op.name - 1 ? what_len : sizeof op.name - 1;
    memcpy(op.name, what, n);
    /* A Query's stand-in gets its error entry and the Query's own, through ReadyForQuery. */
    if (f->type == FE_QUERY)
        return relay_push(s, op) && after_forward(s, f->type, NULL);
    return after_forward(s, f->type, &op);
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

/* In transaction pooling pgmesh follows DEALLOCATE only when it comes alone in a simple Query
 * (prepared.c); elsewhere the server would drop statements pgmesh believes are there. A name with
 * pgmesh's prefix would be another client's statement. */
static enum refusal check_deallocate(const struct client *c, char type, struct inspected *fx)
{
    fx->dealloc = sql_deallocate((const char *)fx->sql.p, fx->sql.len, fx->dealloc_name, sizeof fx->dealloc_name);
    const char *name = fx->dealloc_name;
    switch (fx->dealloc) {
    case SQL_DEALLOC_NONE:
        return REFUSE_NONE;
    case SQL_DEALLOC_ALL:
        return type == FE_QUERY ? REFUSE_NONE : REFUSE_DEALLOCATE;
    case SQL_DEALLOC_ONE:
        if (type != FE_QUERY)
            return REFUSE_DEALLOCATE;
        return strncmp(name, STMT_PREFIX, strlen(STMT_PREFIX)) == 0 && !cstmt_find(&c->stmts, name, strlen(name))
                   ? REFUSE_RESERVED_NAME : REFUSE_NONE;
    default:
        return REFUSE_DEALLOCATE;
    }
}

/* What the statement will do to the session, applied once the message is on its way: after the
 * transaction start, so that neither the previous client's reset nor the parameter sync takes it
 * for something already there. */
static void apply_effects(struct client *c, struct server *s, const struct inspected *e)
{
    if (e->dirty)
        s->session_dirty = true;
    if (e->track) {
        params_track_sql(&c->params, (const char *)e->sql.p, e->sql.len);
        params_track_sql(&s->have, (const char *)e->sql.p, e->sql.len);
    }
}

/* Reads a Query or Parse whole (up to INSPECT_MAX; longer ones are refused) to check it: the
 * guard, session state it may leave behind, what transaction pooling cannot serve. */
static enum inspect inspect_message(struct client *c, struct server *s, const struct frame *f, struct inspected *fx)
{
    struct iobuf *in = &c->conn.in;
    fx->dirty = fx->track = false;
    fx->dealloc = SQL_DEALLOC_NONE;
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
    struct fe_parse *parse = &fx->parse;
    bool ok = f->type == FE_QUERY ? fe_read_query(body, f->body_len, &sql)
                                  : fe_read_parse(body, f->body_len, parse);
    if (!ok) {
        client_error(c, "FATAL", SQLSTATE_PROTOCOL_VIOLATION, "invalid Query or Parse message", NULL, NULL);
        return INSPECT_FAILED;
    }
    if (f->type == FE_PARSE) {
        if (parse->name.len > 0 && rt.cfg->pool_mode == POOL_TRANSACTION) {
            enum refusal why = !prep_enabled() ? REFUSE_NAMED_PARSE
                               : cstmt_find(&c->stmts, (const char *)parse->name.p, parse->name.len)
                                   ? REFUSE_DUPLICATE_STATEMENT
                               : c->stmts.count >= CLIENT_STMT_MAX || c->stmts.bytes + f->total_len > CLIENT_STMT_BYTES_MAX
                                   ? REFUSE_TOO_MANY_STATEMENTS
                                   : REFUSE_NONE;
            if (why != REFUSE_NONE)
                return refuse_with_stand_in(c, s, f, why, (const char *)parse->name.p, parse->name.len)
                           ? INSPECT_REFUSED : INSPECT_FAILED;
        }
        sql = parse->query;
    }
    fx->sql = sql;
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
        enum refusal why = prep_enabled() ? check_deallocate(c, f->type, fx) : REFUSE_NONE;
        if (why != REFUSE_NONE)
            return refuse_with_stand_in(c, s, f, why, "DEALLOCATE", 10) ? INSPECT_REFUSED : INSPECT_FAILED;
    }
    fx->dirty = sql_may_leave_session_state((const char *)sql.p, sql.len);
    fx->track = f->type == FE_QUERY;
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
        struct inspected fx;
        switch (inspect_message(c, s, &f, &fx)) {
        case INSPECT_FORWARD: break;
        case INSPECT_REFUSED: continue;
        case INSPECT_WAIT:
        case INSPECT_FAILED: return;
        }
        bool tracking = prep_enabled();
        if (tracking && prep_ready(c, &f) != PREP_PASS)
            return;
        if (needs_txstart(s, &f) && !send_txstart(c, s))
            return;
        apply_effects(c, s, &fx);
        struct op op = {.kind = OP_MSG};
        switch (tracking ? prep_message(c, s, &f, &fx, &op) : PREP_PASS) {
        case PREP_PASS: break;
        case PREP_HANDLED:
            if (!after_forward(s, f.type, &op))
                return;
            continue;
        case PREP_WAIT:
        case PREP_FAILED:
            cstmt_unref(op.stmt);
            return;
        }
        size_t n = avail < f.total_len ? avail : f.total_len;
        if (!conn_send(&s->conn, iobuf_head(in), n)) {
            client_close(c, "out of memory");
            return;
        }
        iobuf_consume(in, n);
        c->body_remaining = (uint32_t)(f.total_len - n);
        c->body_discard = false;
        if (!after_forward(s, f.type, NULL))
            return;
        if (c->reapply_settings) {
            c->reapply_settings = false;
            if (!relay_send(s, c->tx.set_msg, c->tx.set_len) || !push_op(s, OP_TXSTART, false))
                return;
        }
    }
    if (s && c->server == s && s->state == SERVER_LINKED && !c->body_remaining)
        relay_maybe_release(s);
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
        sstmt_clear(&s->stmts);
    }
    relay_maybe_release(s);
}
