/* Named prepared statements in transaction pooling. A client's statement names are its own: pgmesh
 * keeps them in the client's table and gives the server a name derived from the statement (text,
 * parameter types, the client's search_path), so clients preparing the same statement share one
 * server-side preparation and two clients' "S_1" never meet. Before a Bind or Describe runs on a
 * server connection that lacks the statement, pgmesh sends the Parse there first; each server
 * connection keeps at most max_prepared_statements, closing the least recently used.
 *
 * Every change is made when the message is sent, so that the client's next pipelined message sees
 * it; an entry in the op queue remembers how to undo it if the server fails or skips the message. */
#include "proxy/relay_int.h"

#include <stdlib.h>
#include <string.h>

#include "policy/sqlstmt.h"
#include "protocol/fe.h"
#include "protocol/frame.h"
#include "protocol/sqlstate.h"
#include "protocol/wire.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

bool prep_enabled(const struct server *s)
{
    return s->relay.per_transaction && rt.cfg->max_prepared_statements > 0;
}

static bool send_close(struct server *s, const char *name)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    fe_write_close(&w, 'S', name);
    return relay_send_written(s, &w);
}

/* Room for one more statement: closes the least recently used ones, but never one the current
 * batch (since the last Sync) has used, whose portal may still be wanted; the cap then gives. */
static bool make_room(struct server *s)
{
    const struct sstmt *old;
    while (s->relay.stmts.count >= (size_t)rt.cfg->max_prepared_statements &&
           (old = sstmt_oldest(&s->relay.stmts)) && old->stamp != s->relay.batch) {
        char *name = strdup(old->name); /* the entry's: undo puts it back in the set */
        if (!name)
            return relay_fail_server(s, "out of memory");
        if (!send_close(s, name)) {
            free(name);
            return false;
        }
        if (!relay_push(s, &(struct op){.kind = OP_EVICT, .text = name}))
            return false;
        sstmt_remove(&s->relay.stmts, name);
    }
    return true;
}

/* Sends the statement's Parse to this server connection (making room for it) and counts it there. */
static bool send_parse(struct server *s, const struct cstmt *st)
{
    if (!make_room(s) || !relay_send(s, st->parse, st->parse_len))
        return false;
    return sstmt_add(&s->relay.stmts, st->sname, s->relay.batch) || relay_fail_server(s, "out of memory");
}

/* The statement exists on this server connection once what is sent so far has run. */
static bool ensure_prepared(struct server *s, struct cstmt *st)
{
    if (sstmt_use(&s->relay.stmts, st->sname, s->relay.batch))
        return true;
    if (!send_parse(s, st))
        return false;
    return relay_push(s, &(struct op){.kind = OP_PREPARE, .stmt = cstmt_ref(st)});
}

static enum prep on_parse(struct client *c, struct server *s, const struct frame *f, const struct inspected *in,
                          struct op *op)
{
    const struct fe_parse *p = &in->parse;
    if (p->name.len == 0)
        return PREP_PASS;
    /* The same text means other tables under another search_path: part of the server-side name. */
    struct cstmt *st = cstmt_new((const char *)p->name.p, p->name.len, (const char *)p->query.p, p->query.len,
                                 p->param_types.p, p->nparams, params_sql(&c->params, PARAM_SEARCH_PATH));
    if (!st || !cstmt_insert(&c->stmts, st)) {
        cstmt_unref(st);
        relay_fail_client(s, "out of memory");
        return PREP_FAILED;
    }
    st->dirty = in->dirty;
    *op = (struct op){.kind = OP_MSG, .expect = EXPECT_PARSE, .added_client = true, .stmt = cstmt_ref(st)};
    bool ok;
    if (sstmt_use(&s->relay.stmts, st->sname, s->relay.batch)) {
        /* Already there (another client's, or this one's before): the server only has to answer
         * in this message's place, which a Close of a name that never exists does. */
        op->as_parse_complete = true;
        op->expect = EXPECT_CLOSE;
        ok = send_close(s, STMT_NONE);
    } else {
        op->added_sname = true;
        ok = send_parse(s, st);
    }
    iobuf_consume(&c->conn.in, f->total_len);
    return ok ? PREP_HANDLED : PREP_FAILED;
}

static enum prep on_bind(struct client *c, struct server *s, const struct frame *f, const struct inspected *in,
                         struct op *op)
{
    const struct fe_bind_head *h = &in->bind;
    struct cstmt *st = h->stmt.len ? cstmt_find(&c->stmts, (const char *)h->stmt.p, h->stmt.len) : NULL;
    if (!st)
        return PREP_PASS; /* unnamed, or unknown: the server says it does not exist, by that name */
    if (!ensure_prepared(s, st))
        return PREP_FAILED;
    /* The statement runs on this connection, which may not be the one it was parsed on (or was
     * parsed on before a DISCARD ALL): its effect on the session is this connection's now. */
    if (st->dirty)
        s->relay.session_dirty = true;
    size_t rest = f->body_len - h->used;
    struct pq_writer w;
    wr_init_dynamic(&w);
    fe_write_bind_head(&w, h->portal, st->sname, rest);
    if (!relay_send_written(s, &w))
        return PREP_FAILED;
    /* The parameters stream behind the new head, never buffered whole. */
    iobuf_consume(&c->conn.in, frame_prefix_len(h->used));
    if (!relay_stream_start(&c->body, &c->conn.in, rest, &s->conn)) {
        relay_fail_server(s, "out of memory");
        return PREP_FAILED;
    }
    *op = (struct op){.kind = OP_MSG, .expect = EXPECT_BIND, .stmt = cstmt_ref(st)};
    return PREP_HANDLED;
}

static enum prep on_target(struct client *c, struct server *s, const struct frame *f, struct op *op)
{
    char kind;
    struct span name;
    if (!fe_read_target(frame_body(iobuf_head(&c->conn.in)), f->body_len, &kind, &name) || kind != 'S' ||
        name.len == 0)
        return PREP_PASS;
    struct pq_writer w;
    wr_init_dynamic(&w);
    if (f->type == FE_CLOSE) {
        /* Never the shared server-side statement: the client's name goes, and the server answers
         * a Close of a name that never exists. Unknown names too: one with pgmesh's prefix must
         * not close another client's statement. */
        struct cstmt *st = cstmt_remove(&c->stmts, (const char *)name.p, name.len);
        *op = (struct op){.kind = OP_MSG, .expect = EXPECT_CLOSE, .closed_client = st != NULL, .stmt = st};
        fe_write_close(&w, 'S', STMT_NONE);
    } else {
        struct cstmt *st = cstmt_find(&c->stmts, (const char *)name.p, name.len);
        if (!st) {
            wr_destroy(&w);
            return PREP_PASS;
        }
        if (!ensure_prepared(s, st)) {
            wr_destroy(&w);
            return PREP_FAILED;
        }
        *op = (struct op){.kind = OP_MSG, .expect = EXPECT_DESCRIBE, .stmt = cstmt_ref(st)};
        fe_write_describe(&w, 'S', st->sname);
    }
    iobuf_consume(&c->conn.in, f->total_len);
    return relay_send_written(s, &w) ? PREP_HANDLED : PREP_FAILED;
}

/* A lone DEALLOCATE (inspect_message refused every other form): ALL empties the client's table
 * and the server's set and passes; a name of the client's becomes that of the server. */
static enum prep on_query(struct client *c, struct server *s, const struct frame *f, const struct inspected *in,
                          struct op *op)
{
    const char *name = in->dealloc_name;
    switch (in->dealloc) {
    case SQL_DEALLOC_ALL:
        cstmt_table_clear(&c->stmts);
        sstmt_clear(&s->relay.stmts);
        s->relay.apply_parsed = false; /* pgmesh's own goes too */
        return PREP_PASS;
    case SQL_DEALLOC_ONE:
        break;
    default:
        return PREP_PASS;
    }
    struct cstmt *st = cstmt_find(&c->stmts, name, strlen(name));
    if (!st)
        return PREP_PASS; /* the server answers that it does not exist */
    if (!ensure_prepared(s, st))
        return PREP_FAILED;
    char text[64];
    snprintf(text, sizeof text, "DEALLOCATE %s", st->sname);
    sstmt_remove(&s->relay.stmts, st->sname);
    cstmt_unref(cstmt_remove(&c->stmts, name, strlen(name)));
    struct pq_writer w;
    wr_init_dynamic(&w);
    fe_write_query(&w, text);
    iobuf_consume(&c->conn.in, f->total_len);
    *op = (struct op){.kind = OP_QUERY};
    return relay_send_written(s, &w) ? PREP_HANDLED : PREP_FAILED;
}

enum prep prep_ready(struct client *c, struct server *s, const struct frame *f, struct inspected *fx)
{
    struct iobuf *in = &c->conn.in;
    size_t avail = iobuf_len(in);
    if (f->type == FE_DESCRIBE || f->type == FE_CLOSE) {
        if (avail >= f->total_len)
            return PREP_PASS;
    } else if (f->type == FE_BIND) {
        struct fe_bind_head *h = &fx->bind;
        switch (fe_read_bind_names(frame_body(iobuf_head(in)), frame_body_arrived(avail), f->body_len, &h->portal,
                                   &h->stmt, &h->used)) {
        case FE_HEAD_OK:
            return PREP_PASS;
        case FE_HEAD_MORE:
            break;
        case FE_HEAD_BAD:
            relay_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "invalid Bind message", NULL);
            return PREP_FAILED;
        }
    } else {
        return PREP_PASS;
    }
    /* Names fit in control-sized heads; a longer one waits for a whole message only if that is small. */
    size_t want = f->total_len < 2 * CONTROL_MAX_LEN ? f->total_len : 2 * CONTROL_MAX_LEN;
    if (avail >= want) {
        relay_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "invalid Bind message",
                    "The portal and statement names are too long.");
        return PREP_FAILED;
    }
    if (!iobuf_reserve(in, want - avail)) {
        relay_fail_client(s, "out of memory");
        return PREP_FAILED;
    }
    return PREP_WAIT;
}

enum prep prep_message(struct client *c, struct server *s, const struct frame *f, const struct inspected *in,
                       struct op *op)
{
    switch (f->type) {
    case FE_PARSE:
        return on_parse(c, s, f, in, op);
    case FE_BIND:
        return on_bind(c, s, f, in, op);
    case FE_DESCRIBE:
    case FE_CLOSE:
        return on_target(c, s, f, op);
    case FE_QUERY:
        return on_query(c, s, f, in, op);
    default:
        return PREP_PASS;
    }
}

bool prep_undo(struct server *s, const struct op *op)
{
    struct client *c = s->client;
    switch (op->kind) {
    case OP_PREPARE:
        sstmt_remove(&s->relay.stmts, op->stmt->sname);
        return true;
    case OP_EVICT:
        return sstmt_add(&s->relay.stmts, op->text, 0) || relay_fail_server(s, "out of memory");
    case OP_MSG:
        break;
    default:
        return true;
    }
    if (op->added_sname)
        sstmt_remove(&s->relay.stmts, op->stmt->sname);
    if (!c)
        return true;
    if (op->added_client) {
        struct cstmt *st = cstmt_remove(&c->stmts, op->stmt->name, op->stmt->name_len);
        if (st == op->stmt) {
            cstmt_unref(st);
        } else if (st && !cstmt_insert(&c->stmts, st)) { /* not the one this Parse made: keep it */
            cstmt_unref(st);
            relay_fail_client(s, "out of memory");
        }
    }
    if (op->closed_client && !cstmt_find(&c->stmts, op->stmt->name, op->stmt->name_len) &&
        !cstmt_insert(&c->stmts, cstmt_ref(op->stmt))) {
        cstmt_unref(op->stmt);
        relay_fail_client(s, "out of memory");
    }
    return true;
}
