/* The relay from a linked client to its server. Message bodies are streamed (COPY data and Bind
 * parameters are never held whole); Query and Parse texts are read whole to be checked. Every
 * message sent to the server, the client's and pgmesh's own, records in the server's op queue
 * what to do with its replies (proxy/replies.c): the server answers strictly in request order.
 * Nothing here closes, links or unlinks a connection: failures become the call's verdict. */
#include "proxy/relay.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/guard.h"
#include "policy/sqlstmt.h"
#include "protocol/error.h"
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

/* In transaction pooling pgmesh follows DEALLOCATE only when it comes alone in a simple Query
 * (prepared.c); elsewhere the server would drop statements pgmesh believes are there. A name with
 * pgmesh's prefix would be another client's statement. */
static enum refusal check_deallocate(const struct client *c, char type, struct inspected *fx)
{
    fx->dealloc = sql_deallocate((const char *)fx->sql.p, fx->sql.len, fx->dealloc_name, sizeof fx->dealloc_name);
    const char *name = fx->dealloc_name;
    bool reserved =
        strncmp(name, STMT_PREFIX, strlen(STMT_PREFIX)) == 0 && !cstmt_find(&c->stmts, name, strlen(name));
    switch (fx->dealloc) {
    case SQL_DEALLOC_NONE:
        return REFUSE_NONE;
    case SQL_DEALLOC_ALL:
        return type == FE_QUERY ? REFUSE_NONE : REFUSE_DEALLOCATE;
    case SQL_DEALLOC_ONE:
        return type != FE_QUERY ? REFUSE_DEALLOCATE : reserved ? REFUSE_RESERVED_NAME : REFUSE_NONE;
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
        s->relay.session_dirty = true;
    if (e->deallocates)
        s->relay.apply_parsed = false;
    if (e->track) {
        params_track_sql(&c->params, (const char *)e->sql.p, e->sql.len, true);
        params_track_sql(&s->relay.have, (const char *)e->sql.p, e->sql.len, false);
    }
}

enum inspect { INSPECT_FORWARD, INSPECT_WAIT, INSPECT_REFUSED, INSPECT_FAILED };

static enum inspect refused(struct client *c, struct server *s, const struct frame *f, enum refusal why,
                            const char *what, size_t len)
{
    return refusal_send(c, s, f, why, what, len) ? INSPECT_REFUSED : INSPECT_FAILED;
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
static enum inspect check_statement(struct client *c, struct server *s, const struct frame *f,
                                    struct inspected *fx)
{
    /* The pinned names of the config in force now: a reload that pins another setting guards it
     * from the next statement on. With the extension the server holds the limits' ceilings, so a
     * client may lower them; the server reports the change (pgmesh.session_changes) and the next
     * transaction start sets the role's values again. */
    struct guard_options gopt = {.session_pooling = !s->relay.per_transaction,
                                 .pinned = rt.cfg->pinned,
                                 .npinned = rt.cfg->npinned,
                                 .limits_on_server = s->relay.enforced,
                                 .limits_clamped = true};
    struct guard_finding found;
    if (guard_check_sql_plain((const char *)fx->sql.p, fx->sql.len, &gopt, &found, &fx->plain) == GUARD_REFUSED)
        return refused(c, s, f, REFUSE_MANAGED_SETTING, found.setting, strlen(found.setting));
    /* Queries and DML, most of the traffic: none of the checks below has anything to act on. */
    if (fx->plain)
        return INSPECT_FORWARD;
    if (s->relay.per_transaction) {
        const char *what = session_only(&fx->sql);
        /* Inside a transaction block the server is the client's until it ends, so a PREPARE made
         * there serves that transaction (pg_dump does it); the statement then marks the connection
         * for DISCARD ALL before another client. */
        bool in_block = s->relay.ops.len == 0 && s->relay.tx_status == TX_IN_BLOCK;
        if (what && in_block && strcmp(what, "PREPARE") == 0)
            what = NULL;
        if (what)
            return refused(c, s, f, REFUSE_SESSION_ONLY, what, strlen(what));
        enum refusal why = prep_enabled(s) ? check_deallocate(c, f->type, fx) : REFUSE_NONE;
        if (why != REFUSE_NONE)
            return refused(c, s, f, why, "DEALLOCATE", 10);
        /* Not followed without statement tracking: any DEALLOCATE may take pgmesh_apply along. */
        fx->deallocates =
            !prep_enabled(s) && sql_has_leading((const char *)fx->sql.p, fx->sql.len, "deallocate", NULL);
    }
    /* A limit's SET the guard let through asks for at most the role's value from here on. */
    if (!clamp_sql((const char *)fx->sql.p, fx->sql.len, &c->limits, c->ident.role, &fx->clamp)) {
        relay_fail_client(s, "out of memory");
        return INSPECT_FAILED;
    }
    if (fx->clamp.sql) {
        fx->sql = (struct span){(const uint8_t *)fx->clamp.sql, fx->clamp.len};
        if (f->type == FE_PARSE)
            fx->parse.query = fx->sql; /* what prepared.c keeps and sends */
    }
    const char *sql = (const char *)fx->sql.p;
    fx->dirty = sql_may_leave_session_state(sql, fx->sql.len);
    fx->track = f->type == FE_QUERY;
    return INSPECT_FORWARD;
}

/* The fast-path FunctionCall ('F') calls a function by OID with no SQL around it, so neither the
 * guard nor a policy sees what it does (set_config by OID): only the large-object functions
 * libpq's lo_* API calls pass. Their OIDs are the ones libpq's own lookup by name in pg_catalog
 * finds: built-in functions' OIDs are fixed in PostgreSQL's catalog (pg_proc.dat). */
static bool large_object_function(uint32_t oid)
{
    static const uint32_t allowed[] = {
        715,  /* lo_create */ 952,  /* lo_open */ 953,      /* lo_close */ 954,    /* loread */
        955,  /* lowrite */ 956,    /* lo_lseek */ 957,     /* lo_creat */ 958,    /* lo_tell */
        964,  /* lo_unlink */ 1004, /* lo_truncate */ 3170, /* lo_lseek64 */ 3171, /* lo_tell64 */
        3172,                                                                      /* lo_truncate64 */
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (allowed[i] == oid)
            return true;
    return false;
}

static enum inspect inspect_function_call(struct client *c, struct server *s, const struct frame *f)
{
    uint32_t oid;
    if (f->body_len < 4) {
        relay_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "invalid FunctionCall message", NULL);
        return INSPECT_FAILED;
    }
    if (!fe_read_function_oid(frame_body(iobuf_head(&c->conn.in)), frame_body_arrived(iobuf_len(&c->conn.in)),
                              f->body_len, &oid))
        return INSPECT_WAIT; /* the OID is in the first bytes; the rest may stream */
    if (large_object_function(oid))
        return INSPECT_FORWARD;
    char what[16];
    snprintf(what, sizeof what, "%u", oid);
    return refused(c, s, f, REFUSE_FUNCTION_CALL, what, strlen(what));
}

/* Every relayed message passes here: zeroing the whole struct, its two text buffers too, showed
 * in profiles of the extended protocol (five messages a transaction). Only a Query or Parse is
 * read into it; for the others the flags are what is read (a Bind's names are filled in by
 * prep_ready before anything reads them). */
static void inspected_init(struct inspected *fx, char type)
{
    _Static_assert(offsetof(struct inspected, dealloc_name) + sizeof fx->dealloc_name ==
                       offsetof(struct inspected, clamp),
                   "dealloc_name and clamp are the last members");
    if (type == FE_QUERY || type == FE_PARSE) {
        memset(fx, 0, offsetof(struct inspected, dealloc_name));
    } else {
        fx->plain = fx->dirty = fx->track = fx->deallocates = false;
        fx->sql = (struct span){0};
    }
    fx->dealloc = SQL_DEALLOC_NONE;
    fx->dealloc_name[0] = '\0';
    clamp_init(&fx->clamp);
}

/* Reads a Query or Parse whole (up to INSPECT_MAX; longer ones are refused) to check it: the
 * guard, session state it may leave behind, what transaction pooling cannot serve. */
static enum inspect inspect_message(struct client *c, struct server *s, const struct frame *f,
                                    struct inspected *fx)
{
    struct iobuf *in = &c->conn.in;
    inspected_init(fx, f->type);
    if (f->type == FE_FUNCTION_CALL)
        return inspect_function_call(c, s, f);
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
    const uint8_t *body = frame_body(iobuf_head(in));
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

/* Session pooling lets the client DISCARD ALL or RESET ALL, which take pgmesh's claims and limits
 * along: pgmesh sets them again before the client's next statement, right behind a simple Query,
 * and behind the Sync that ends an extended batch whose Execute may have run such a statement
 * (the text is seen at Parse; which statement a later Execute runs is not followed, so any
 * Execute after a named one counts). Inside the client's transaction block the SETs share its
 * fate, as the reset does. */
static void follow_resets(struct client *c, const struct server *s, char type, const struct inspected *e)
{
    if (s->relay.per_transaction)
        return;
    bool resets = (type == FE_QUERY || type == FE_PARSE) && !e->plain &&
                  sql_resets_settings((const char *)e->sql.p, e->sql.len);
    switch (type) {
    case FE_QUERY:
        c->reapply_settings = c->reapply_settings || resets;
        break;
    case FE_PARSE:
        if (e->parse.name.len == 0)
            c->unnamed_resets = resets;
        else
            c->named_resets = c->named_resets || resets;
        break;
    case FE_EXECUTE:
        c->reapply_at_sync = c->reapply_at_sync || c->unnamed_resets || c->named_resets;
        break;
    case FE_SYNC:
        c->reapply_settings = c->reapply_settings || c->reapply_at_sync;
        c->reapply_at_sync = false;
        break;
    default:
        break;
    }
}

/* Session pooling, after a client Query or Sync that may have reset every setting: set them again. */
static bool reapply_settings(struct client *c, struct server *s)
{
    if (!c->reapply_settings)
        return true;
    c->reapply_settings = false;
    /* The reset also put the session parameters back to the server's defaults: the client's own
     * (its startup values, and SETs pgmesh followed) are sent again too. */
    return relay_resync_params(c, s) && relay_send_settings(c, s, false, false) &&
           relay_push(s, &(struct op){.kind = OP_TXSTART});
}

/* A Query or Parse whose limits were clamped: the rewritten message goes instead of the client's
 * (which is whole in its buffer), and the client hears why. */
static bool send_clamped(struct client *c, struct server *s, const struct frame *f, const struct inspected *fx)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    struct pq_error notice = {.severity = "NOTICE", .sqlstate = SQLSTATE_WARNING, .message = fx->clamp.notice};
    error_write(&w, BE_NOTICE, &notice);
    if (!wr_ok(&w) || !conn_send(&c->conn, w.p, w.len)) {
        wr_destroy(&w);
        return relay_fail_client(s, "out of memory");
    }
    wr_destroy(&w);
    wr_init_dynamic(&w);
    if (f->type == FE_QUERY) {
        fe_write_query(&w, fx->clamp.sql);
    } else {
        char *name = strndup((const char *)fx->parse.name.p, fx->parse.name.len);
        if (name)
            fe_write_parse_typed(&w, name, fx->parse.query, fx->parse.nparams, fx->parse.param_types.p);
        else
            w.failed = true;
        free(name);
    }
    iobuf_consume(&c->conn.in, f->total_len);
    return relay_send_written(s, &w);
}

static bool forward_inspected(struct client *c, struct server *s, const struct frame *f, struct inspected *fx)
{
    switch (inspect_message(c, s, f, fx)) {
    case INSPECT_FORWARD:
        break;
    case INSPECT_REFUSED:
        return true;
    case INSPECT_WAIT:
    case INSPECT_FAILED:
        return false;
    }
    bool tracking = prep_enabled(s);
    if (tracking && prep_ready(c, s, f, fx) != PREP_PASS)
        return false;
    if (relay_needs_txstart(s, f) && !relay_send_txstart(c, s))
        return false;
    apply_effects(c, s, fx);
    follow_resets(c, s, f->type, fx);
    struct op op = {.kind = OP_MSG};
    switch (tracking ? prep_message(c, s, f, fx, &op) : PREP_PASS) {
    case PREP_PASS:
        break;
    case PREP_HANDLED:
        return relay_after_forward(s, f->type, &op);
    case PREP_WAIT:
    case PREP_FAILED:
        cstmt_unref(op.stmt);
        return false;
    }
    if (fx->clamp.sql) {
        if (!send_clamped(c, s, f, fx))
            return false;
    } else if (!relay_stream_start(&c->body, &c->conn.in, f->total_len, &s->conn)) {
        return relay_fail_client(s, "out of memory");
    }
    return relay_after_forward(s, f->type, NULL) && reapply_settings(c, s);
}

/* One client message whose header has arrived: checked, prefixed with the transaction start when
 * it opens one, then passed on (renamed by prepared.c, rewritten when a limit was clamped, or as
 * it is, its body streaming). False when it must wait for more bytes or the call failed. */
static bool forward_message(struct client *c, struct server *s, const struct frame *f)
{
    struct inspected fx;
    bool ok = forward_inspected(c, s, f, &fx);
    clamp_free(&fx.clamp);
    return ok;
}

static bool protocol_violation(struct client *c, struct server *s, enum frame_result fr)
{
    bool big = fr == FRAME_TOO_BIG;
    CLIENT_LOG(LOG_WARNING, c, "protocol_violation", NULL, "protocol violation: message type 0x%02x, %s",
               (unsigned)(uint8_t)frame_type(iobuf_head(&c->conn.in)), big ? "too large" : "invalid");
    return relay_fatal(s, SQLSTATE_PROTOCOL_VIOLATION,
                       big ? "message too large" : "invalid frontend message type or length", NULL);
}

/* The next piece of client input: the rest of a streaming body, or one message. False when it
 * must wait for more bytes or the call failed. */
static bool relay_next(struct client *c, struct server *s)
{
    struct iobuf *in = &c->conn.in;
    if (c->body.remaining)
        return relay_stream_body(&c->body, in, &s->conn) || relay_fail_client(s, "out of memory");
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
        relay_forget_applied(r);
        r->claims_tenant[0] = r->claims_role[0] = r->application_name[0] = '\0';
        r->session_dirty = false;
        sstmt_clear(&r->stmts);
    }
    return relay_settle(s);
}
