/* The relay from a linked client to its server. Message bodies are streamed (COPY data and Bind
 * parameters are never held whole); Query and Parse texts are read whole to be checked. Every
 * message sent to the server, the client's and pgmesh's own, records in the server's op queue
 * what to do with its replies (proxy/replies.c): the server answers strictly in request order.
 * Nothing here closes, links or unlinks a connection: failures become the call's verdict. */
#include "proxy/relay.h"

#include <stdio.h>
#include <string.h>

#include "policy/guard.h"
#include "policy/sqllex.h"
#include "protocol/fe.h"
#include "protocol/frame.h"
#include "protocol/sqlstate.h"
#include "protocol/wire.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/limits.h"
#include "proxy/log.h"
#include "proxy/relay_int.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

void relay_init(struct relay *r)
{
    memset(r, 0, sizeof *r);
    sstmt_init(&r->stmts);
    r->tx_status = TX_IDLE;
    /* The one place pool_mode is read for the relay: a link lasts a transaction or a session. */
    r->per_transaction = rt.cfg->pool_mode == POOL_TRANSACTION;
    snprintf(r->application_name, sizeof r->application_name, "%s", "pgmesh"); /* fallback_application_name */
}

void relay_destroy(struct relay *r)
{
    opq_destroy(&r->ops);
    params_clear(&r->have);
    sstmt_clear(&r->stmts);
}

static bool fail(struct server *s, enum relay_verdict v, const char *why, struct relay_fatal fatal)
{
    if (s->relay.verdict == RELAY_GO_ON) {
        s->relay.verdict = v;
        s->relay.why = why;
        s->relay.fatal = fatal;
    }
    return false;
}

bool relay_fail_server(struct server *s, const char *why)
{
    return fail(s, RELAY_CLOSE_SERVER, why, (struct relay_fatal){0});
}

bool relay_fail_client(struct server *s, const char *why)
{
    return fail(s, RELAY_CLOSE_CLIENT, why, (struct relay_fatal){0});
}

bool relay_fatal(struct server *s, const char *sqlstate, const char *message, const char *detail)
{
    return fail(s, RELAY_CLOSE_CLIENT, message, (struct relay_fatal){sqlstate, message, detail});
}

/* The verdict of the call that ends here, cleared for the next one. */
enum relay_verdict relay_take_verdict(struct server *s, enum relay_verdict otherwise)
{
    enum relay_verdict v = s->relay.verdict;
    s->relay.verdict = RELAY_GO_ON;
    return v != RELAY_GO_ON ? v : otherwise;
}

bool relay_push(struct server *s, struct op op)
{
    return opq_push(&s->relay.ops, op) || relay_fail_server(s, "out of memory");
}

bool relay_send(struct server *s, const void *p, size_t n)
{
    return conn_send(&s->conn, p, n) || relay_fail_server(s, "out of memory");
}

bool relay_send_written(struct server *s, struct pq_writer *w)
{
    bool ok = wr_ok(w) ? relay_send(s, w->p, w->len) : relay_fail_server(s, "out of memory");
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

/* Passes up to want bytes to `to` (NULL: dropped); *n says how many were there. */
static bool pass_bytes(struct iobuf *in, size_t want, struct conn *to, size_t *n)
{
    size_t avail = iobuf_len(in);
    *n = avail < want ? avail : want;
    if (to && *n && !conn_send(to, iobuf_head(in), *n))
        return false;
    iobuf_consume(in, *n);
    return true;
}

bool stream_body(struct body_stream *b, struct iobuf *in, struct conn *to)
{
    size_t n;
    if (!pass_bytes(in, b->remaining, b->drop ? NULL : to, &n))
        return false;
    b->remaining -= (uint32_t)n;
    return true;
}

bool stream_start(struct body_stream *b, struct iobuf *in, size_t total_len, struct conn *to)
{
    b->remaining = (uint32_t)total_len;
    b->drop = to == NULL;
    return stream_body(b, in, to);
}

bool relay_settled(const struct server *s)
{
    const struct relay *r = &s->relay;
    return r->ops.len == 0 && r->tx_status == TX_IDLE && !r->open_extended && r->body.remaining == 0 &&
           !r->in_copy && s->cancels_in_flight == 0;
}

enum relay_verdict relay_settle(struct server *s)
{
    if (!relay_settled(s))
        return RELAY_GO_ON;
    if (s->state == SERVER_RESETTING)
        return RELAY_TX_OVER;
    const struct client *c = s->client;
    bool lent_per_transaction = s->state == SERVER_LINKED && s->relay.per_transaction;
    return lent_per_transaction && c && c->body.remaining == 0 ? RELAY_TX_OVER : RELAY_GO_ON;
}

/* The client's session parameters (startup packet, its own SETs) onto this server when they
 * differ from what the server has: they follow the client across server connections. */
static bool sync_params(struct client *c, struct server *s)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    if (!params_write_sync(&c->params, &s->relay.have, &w)) {
        wr_destroy(&w);
        return true;
    }
    if (!relay_send_written(s, &w))
        return false;
    if (!params_copy(&s->relay.have, &c->params))
        return relay_fail_server(s, "out of memory");
    return push_op(s, OP_PARAMS, false);
}

/* What the last client left in the session (search_path, temp tables, PREPARE, LISTEN) must not
 * reach this one. DISCARD ALL refuses a transaction block: its own Query. */
static bool discard_session(struct server *s)
{
    struct relay *r = &s->relay;
    if (!relay_own_query(s, "DISCARD ALL"))
        return false;
    r->session_dirty = false;
    r->application_name[0] = '\0';
    params_clear(&r->have);
    sstmt_clear(&r->stmts);
    return true;
}

/* The SETs themselves, with application_name when the server changes hands (the startup value
 * goes with the switch; one the client SET itself follows it with the session parameters). */
static bool send_claims(struct client *c, struct server *s, bool switching)
{
    struct relay *r = &s->relay;
    const char *app = c->application_name[0] ? c->application_name : "pgmesh";
    bool own_app = c->params.sql[PARAM_APPLICATION_NAME] != NULL;
    if (own_app)
        r->application_name[0] = '\0';
    bool set_app = switching && !own_app && strcmp(r->application_name, app) != 0;
    if (!relay_send(s, set_app ? c->tx.switch_msg : c->tx.set_msg, set_app ? c->tx.switch_len : c->tx.set_len))
        return false;
    if (set_app)
        snprintf(r->application_name, sizeof r->application_name, "%s", app);
    r->claims_owner = c->id;
    snprintf(r->claims_tenant, sizeof r->claims_tenant, "%s", c->ident.tenant);
    snprintf(r->claims_role, sizeof r->claims_role, "%s", c->ident.role);
    return true;
}

/* Queues the client's claims Query ahead of whatever it sends next (see txstart.h). */
bool relay_send_txstart(struct client *c, struct server *s)
{
    struct relay *r = &s->relay;
    bool known_idle = r->ops.len == 0 && r->tx_status == TX_IDLE;
    bool switching = known_idle && r->claims_owner != c->id;
    bool discarded = switching && r->session_dirty;
    if (discarded && !discard_session(s))
        return false;
    if (known_idle && !sync_params(c, s))
        return false;
    /* The RESET guards against SETs failing with another tenant's claims left committed; when the
     * last client had the same tenant and role there is nothing to guard against. */
    bool same_claims = strcmp(r->claims_tenant, c->ident.tenant) == 0 &&
                       strcmp(r->claims_role, c->ident.role) == 0 && !c->ident.claims_json;
    if (switching && !discarded && !same_claims &&
        (!relay_send(s, c->tx.reset_msg, c->tx.reset_len) || !push_op(s, OP_TXSTART, known_idle)))
        return false;
    return send_claims(c, s, switching) && push_op(s, OP_TXSTART, known_idle);
}

enum relay_verdict relay_begin(struct client *c, struct server *s)
{
    struct relay *r = &s->relay;
    r->at_boundary = true;
    r->open_extended = false;
    r->body.remaining = 0;
    c->body.remaining = 0;
    /* Session pooling sets the claims once, here; a failure closes the server (and so the client). */
    if (!r->per_transaction && !relay_send_txstart(c, s))
        return relay_take_verdict(s, RELAY_CLOSE_SERVER);
    return relay_take_verdict(s, RELAY_GO_ON);
}

/* Messages that never begin a transaction: COPY sub-protocol, Flush, a lone Sync, Terminate. */
static bool may_start_transaction(char type)
{
    return !(type == FE_COPY_DATA || type == FE_COPY_DONE || type == FE_COPY_FAIL || type == FE_FLUSH ||
             type == FE_SYNC || type == FE_TERMINATE);
}

/* Whether the client's next message may start a transaction and so needs its claims first. They
 * are skipped only when nothing is in flight and the server says a transaction block is open:
 * then the claims are already in force (or the block is aborted and nothing can run). */
bool relay_needs_txstart(const struct server *s, const struct frame *f)
{
    const struct relay *r = &s->relay;
    if (!r->per_transaction || !r->at_boundary || !may_start_transaction(f->type))
        return false;
    return !(r->ops.len == 0 && r->tx_status != TX_IDLE);
}

/* The reply that completes an extended-protocol message, by message type. */
static enum op_expect expect_for(char type)
{
    switch (type) {
    case FE_PARSE: return EXPECT_PARSE;
    case FE_BIND: return EXPECT_BIND;
    case FE_DESCRIBE: return EXPECT_DESCRIBE;
    case FE_CLOSE: return EXPECT_CLOSE;
    default: return EXPECT_EXECUTE;
    }
}

bool relay_after_forward(struct server *s, char type, const struct op *msg)
{
    struct relay *r = &s->relay;
    limits_on_forward(s, type);
    if (type == FE_COPY_DATA || type == FE_COPY_DONE || type == FE_COPY_FAIL || type == FE_FLUSH)
        return true;
    bool ends_batch = type == FE_QUERY || type == FE_FUNCTION_CALL || type == FE_SYNC;
    r->at_boundary = ends_batch;
    r->open_extended = !ends_batch;
    struct op op = {.kind = OP_MSG, .expect = expect_for(type)};
    if (ends_batch) {
        r->batch++;
        op.kind = type == FE_SYNC ? OP_SYNC : OP_QUERY;
    }
    return relay_push(s, msg ? *msg : op);
}

/* In transaction pooling pgmesh follows DEALLOCATE only when it comes alone in a simple Query
 * (prepared.c); elsewhere the server would drop statements pgmesh believes are there. A name with
 * pgmesh's prefix would be another client's statement. */
static enum refusal check_deallocate(const struct client *c, char type, struct inspected *fx)
{
    fx->dealloc = sql_deallocate((const char *)fx->sql.p, fx->sql.len, fx->dealloc_name, sizeof fx->dealloc_name);
    const char *name = fx->dealloc_name;
    bool reserved = strncmp(name, STMT_PREFIX, strlen(STMT_PREFIX)) == 0 && !cstmt_find(&c->stmts, name, strlen(name));
    switch (fx->dealloc) {
    case SQL_DEALLOC_NONE: return REFUSE_NONE;
    case SQL_DEALLOC_ALL: return type == FE_QUERY ? REFUSE_NONE : REFUSE_DEALLOCATE;
    case SQL_DEALLOC_ONE: return type != FE_QUERY ? REFUSE_DEALLOCATE : reserved ? REFUSE_RESERVED_NAME : REFUSE_NONE;
    default: return REFUSE_DEALLOCATE;
    }
}

/* What the statement will do to the session, applied once the message is on its way: after the
 * transaction start, so that neither the previous client's reset nor the parameter sync takes it
 * for something already there. */
static void apply_effects(struct client *c, struct server *s, const struct inspected *e)
{
    if (e->dirty)
        s->relay.session_dirty = true;
    if (e->track) {
        params_track_sql(&c->params, (const char *)e->sql.p, e->sql.len);
        params_track_sql(&s->relay.have, (const char *)e->sql.p, e->sql.len);
    }
}

enum inspect { INSPECT_FORWARD, INSPECT_WAIT, INSPECT_REFUSED, INSPECT_FAILED };

static enum inspect refused(struct client *c, struct server *s, const struct frame *f, enum refusal why,
                            const char *what, size_t len)
{
    return refuse_message(c, s, f, why, what, len) ? INSPECT_REFUSED : INSPECT_FAILED;
}

/* A named Parse in transaction pooling: a name already in use, or past the per-client bound. */
static enum refusal check_named_parse(const struct client *c, const struct server *s, const struct frame *f,
                                      const struct fe_parse *p)
{
    if (p->name.len == 0 || !s->relay.per_transaction)
        return REFUSE_NONE;
    if (!prep_enabled(s))
        return REFUSE_NAMED_PARSE;
    if (cstmt_find(&c->stmts, (const char *)p->name.p, p->name.len))
        return REFUSE_DUPLICATE_STATEMENT;
    bool full = c->stmts.count >= CLIENT_STMT_MAX || c->stmts.bytes + f->total_len > CLIENT_STMT_BYTES_MAX;
    return full ? REFUSE_TOO_MANY_STATEMENTS : REFUSE_NONE;
}

/* LISTEN and SQL-level PREPARE keep state on one server connection, which transaction pooling
 * cannot give the next transaction: a clear error instead of silent loss. */
static const char *session_only(const struct span *sql)
{
    const char *t = (const char *)sql->p;
    if (sql_has_leading(t, sql->len, "listen", NULL))
        return "LISTEN";
    return sql_has_leading(t, sql->len, "prepare", "transaction") ? "PREPARE" : NULL;
}

/* The checks on a Query or Parse that has arrived whole and been read into fx. */
static enum inspect check_statement(struct client *c, struct server *s, const struct frame *f, struct inspected *fx)
{
    struct guard_options gopt = {.session_pooling = !s->relay.per_transaction};
    struct guard_finding found;
    if (guard_check_sql((const char *)fx->sql.p, fx->sql.len, &gopt, &found) == GUARD_REFUSED)
        return refused(c, s, f, REFUSE_MANAGED_SETTING, found.setting, strlen(found.setting));
    if (s->relay.per_transaction) {
        const char *what = session_only(&fx->sql);
        if (what)
            return refused(c, s, f, REFUSE_SESSION_ONLY, what, strlen(what));
        enum refusal why = prep_enabled(s) ? check_deallocate(c, f->type, fx) : REFUSE_NONE;
        if (why != REFUSE_NONE)
            return refused(c, s, f, why, "DEALLOCATE", 10);
    }
    const char *sql = (const char *)fx->sql.p;
    fx->dirty = sql_may_leave_session_state(sql, fx->sql.len);
    fx->track = f->type == FE_QUERY;
    /* Session pooling lets the client DISCARD ALL (the guard refuses it in transaction pooling);
     * pgmesh then sets its settings again right behind the client's Query. */
    if (f->type == FE_QUERY && !s->relay.per_transaction && sql_needs_own_transaction(sql, fx->sql.len))
        c->reapply_settings = true;
    return INSPECT_FORWARD;
}

/* Reads a Query or Parse whole (up to INSPECT_MAX; longer ones are refused) to check it: the
 * guard, session state it may leave behind, what transaction pooling cannot serve. */
static enum inspect inspect_message(struct client *c, struct server *s, const struct frame *f, struct inspected *fx)
{
    struct iobuf *in = &c->conn.in;
    *fx = (struct inspected){.dealloc = SQL_DEALLOC_NONE};
    if (f->type != FE_QUERY && f->type != FE_PARSE)
        return INSPECT_FORWARD;
    if (f->total_len > INSPECT_MAX)
        return refused(c, s, f, REFUSE_TOO_LONG, "a statement too long to check", 29);
    if (iobuf_len(in) < f->total_len) {
        if (iobuf_reserve(in, f->total_len - iobuf_len(in)))
            return INSPECT_WAIT;
        relay_fail_client(s, "out of memory");
        return INSPECT_FAILED;
    }
    const uint8_t *body = iobuf_head(in) + MSG_HEADER_LEN;
    bool ok = f->type == FE_QUERY ? fe_read_query(body, f->body_len, &fx->sql)
                                  : fe_read_parse(body, f->body_len, &fx->parse);
    if (!ok) {
        relay_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "invalid Query or Parse message", NULL);
        return INSPECT_FAILED;
    }
    if (f->type == FE_PARSE) {
        enum refusal why = check_named_parse(c, s, f, &fx->parse);
        if (why != REFUSE_NONE)
            return refused(c, s, f, why, (const char *)fx->parse.name.p, fx->parse.name.len);
        fx->sql = fx->parse.query;
    }
    return check_statement(c, s, f, fx);
}

/* Session pooling, after a client Query that reset every setting (DISCARD ALL): set them again. */
static bool reapply_settings(struct client *c, struct server *s)
{
    if (!c->reapply_settings)
        return true;
    c->reapply_settings = false;
    return relay_send(s, c->tx.set_msg, c->tx.set_len) && push_op(s, OP_TXSTART, false);
}

/* One client message whose header has arrived: checked, prefixed with the transaction start when
 * it opens one, then passed on (renamed by prepared.c, or as it is, its body streaming). False
 * when it must wait for more bytes or the call failed. */
static bool forward_message(struct client *c, struct server *s, const struct frame *f)
{
    struct inspected fx;
    switch (inspect_message(c, s, f, &fx)) {
    case INSPECT_FORWARD: break;
    case INSPECT_REFUSED: return true;
    case INSPECT_WAIT:
    case INSPECT_FAILED: return false;
    }
    bool tracking = prep_enabled(s);
    if (tracking && prep_ready(c, s, f, &fx) != PREP_PASS)
        return false;
    if (relay_needs_txstart(s, f) && !relay_send_txstart(c, s))
        return false;
    apply_effects(c, s, &fx);
    struct op op = {.kind = OP_MSG};
    switch (tracking ? prep_message(c, s, f, &fx, &op) : PREP_PASS) {
    case PREP_PASS: break;
    case PREP_HANDLED: return relay_after_forward(s, f->type, &op);
    case PREP_WAIT:
    case PREP_FAILED: cstmt_unref(op.stmt); return false;
    }
    if (!stream_start(&c->body, &c->conn.in, f->total_len, &s->conn))
        return relay_fail_client(s, "out of memory");
    return relay_after_forward(s, f->type, NULL) && reapply_settings(c, s);
}

static bool protocol_violation(struct client *c, struct server *s, enum frame_result fr)
{
    bool big = fr == FRAME_TOO_BIG;
    LOG_AT(LOG_WARNING, c->tag, "protocol violation: message type 0x%02x, %s", (unsigned)iobuf_head(&c->conn.in)[0],
           big ? "too large" : "invalid");
    return relay_fatal(s, SQLSTATE_PROTOCOL_VIOLATION,
                       big ? "message too large" : "invalid frontend message type or length", NULL);
}

/* The next piece of client input: the rest of a streaming body, or one message. False when it
 * must wait for more bytes or the call failed. */
static bool relay_next(struct client *c, struct server *s)
{
    struct iobuf *in = &c->conn.in;
    if (c->body.remaining)
        return stream_body(&c->body, in, &s->conn) || relay_fail_client(s, "out of memory");
    struct frame f;
    enum frame_result fr = frame_peek_fe(iobuf_head(in), iobuf_len(in), &rt.limits, &f);
    if (fr == FRAME_NEED_MORE)
        return false;
    if (fr != FRAME_OK)
        return protocol_violation(c, s, fr);
    if (f.type == FE_TERMINATE)
        return relay_fail_client(s, "client terminated");
    return forward_message(c, s, &f);
}

enum relay_verdict relay_from_client(struct client *c, struct server *s)
{
    while (iobuf_len(&c->conn.in) > 0) {
        if (iobuf_len(&s->conn.out) >= OUT_HIGH_WATER) {
            conn_stop_reading(&c->conn); /* server_on_drained resumes */
            return relay_take_verdict(s, RELAY_GO_ON);
        }
        if (!relay_next(c, s))
            break;
    }
    return relay_take_verdict(s, relay_settle(s));
}

enum relay_verdict relay_client_gone(struct server *s, uint32_t client_body_remaining)
{
    struct relay *r = &s->relay;
    bool clean_point = r->ops.len == 0 && !r->open_extended && !r->in_copy && r->body.remaining == 0 &&
                       client_body_remaining == 0;
    if (!clean_point) {
        relay_fail_server(s, "client left with a request in flight");
        return relay_take_verdict(s, RELAY_GO_ON);
    }
    if (r->tx_status != TX_IDLE && !relay_own_query(s, "ROLLBACK"))
        return relay_take_verdict(s, RELAY_GO_ON);
    if (!r->per_transaction) {
        if (!relay_own_query(s, "DISCARD ALL"))
            return relay_take_verdict(s, RELAY_GO_ON);
        r->claims_owner = 0; /* DISCARD ALL reset every setting */
        r->claims_tenant[0] = r->claims_role[0] = r->application_name[0] = '\0';
        r->session_dirty = false;
        sstmt_clear(&r->stmts);
    }
    return relay_settle(s);
}
