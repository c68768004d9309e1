/* The relay's core, shared by its parts (relay.c, replies.c, prepared.c, refusal.c): the state
 * it keeps per server connection, the verdict of a call, sending to the server with an entry in
 * the op queue for every request, streaming message bodies in both directions, the transaction
 * start, and when a server is clean enough to go back. No linking or closing here either. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/fe.h"
#include "protocol/wire.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/enforce.h"
#include "proxy/limits.h"
#include "proxy/relay_int.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/txshare.h"

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
    relay_forget_applied(r);
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
    return fail(s, RELAY_CLOSE_CLIENT, message, (struct relay_fatal){sqlstate, message, detail, NULL});
}

bool relay_fail_server_fatal(struct server *s, const char *why, struct relay_fatal fatal)
{
    return fail(s, RELAY_CLOSE_SERVER, why, fatal);
}

void relay_forget_applied(struct relay *r)
{
    txshare_put(r->applied);
    r->applied = NULL;
}

/* The shared start held is the same object for every client of the same settings and names
 * (txshare.h), so the comparison of the settings themselves is left for clients that differ in
 * something else, such as application_name. */
bool relay_holds_applied(const struct relay *r, const struct txstart *tx)
{
    return r->applied && tx && (r->applied == tx || strcmp(r->applied->apply_param, tx->apply_param) == 0);
}

/* The verdict of the call that ends here, cleared for the next one. */
enum relay_verdict relay_take_verdict(struct server *s, enum relay_verdict otherwise)
{
    enum relay_verdict v = s->relay.verdict;
    s->relay.verdict = RELAY_GO_ON;
    return v != RELAY_GO_ON ? v : otherwise;
}

bool relay_push(struct server *s, const struct op *op)
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
    return relay_push(s, &(struct op){.kind = kind, .known_idle = known_idle});
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

bool relay_stream_body(struct body_stream *b, struct iobuf *in, struct conn *to)
{
    size_t n;
    if (!pass_bytes(in, b->remaining, b->drop ? NULL : to, &n))
        return false;
    b->remaining -= (uint32_t)n;
    return true;
}

bool relay_stream_start(struct body_stream *b, struct iobuf *in, size_t total_len, struct conn *to)
{
    b->remaining = (uint32_t)total_len;
    b->drop = to == NULL;
    return relay_stream_body(b, in, to);
}

/* Whether nothing is in flight and the server is idle outside a transaction. */
static bool relay_settled(const struct server *s)
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
    if (params_both_empty(&c->params, &s->relay.have))
        return true;
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

bool relay_resync_params(struct client *c, struct server *s)
{
    params_clear(&s->relay.have);
    return sync_params(c, s);
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
    r->apply_parsed = false;
    relay_forget_applied(r);
    params_clear(&r->have);
    sstmt_clear(&r->stmts);
    r->stmts_lost = false;
    return true;
}

/* What another tenant's or role's client must not inherit when nothing marked the session dirty
 * (state made where pgmesh cannot read it: a function body, a named statement prepared earlier):
 * WITH HOLD cursors, LISTEN, session advisory locks, sequence state, temporary objects, settings.
 * Unlike DISCARD ALL it keeps the server's prepared statements, pgmesh's shared ones included.
 * RESET ALL first, so that the search_path of the last client cannot name the function called
 * next; the function is qualified all the same. One simple Query: one implicit transaction, none
 * of these refuses it. */
static const char scrub_sql[] = "RESET ALL; CLOSE ALL; UNLISTEN *; SELECT pg_catalog.pg_advisory_unlock_all(); "
                                "DISCARD SEQUENCES; DISCARD TEMP";

static bool scrub_session(struct server *s)
{
    struct relay *r = &s->relay;
    if (!relay_own_query(s, scrub_sql))
        return false;
    /* RESET ALL took application_name, the session parameters and (without the extension) the
     * claims and limits with it; with the extension the claims survive it (GUC_NO_RESET_ALL) but
     * the limits do not: either way the next transaction start sends them all. */
    r->application_name[0] = '\0';
    relay_forget_applied(r);
    params_clear(&r->have);
    return true;
}

/* Whether the server may hold another tenant's or role's session: a client with other claims ran
 * here since the last full reset (a fresh connection, or one a session-pooling client left through
 * DISCARD ALL, has none). */
bool relay_holds_claims(const struct relay *r, const char *tenant, const char *role)
{
    return strcmp(r->claims_tenant, tenant) == 0 && strcmp(r->claims_role, role) == 0;
}

static bool other_claims(const struct relay *r, const struct client *c)
{
    if (r->claims_tenant[0] == '\0' && r->claims_role[0] == '\0')
        return false;
    return !relay_holds_claims(r, c->ident.tenant, c->ident.role);
}

/* A shared statement went missing on the server (replies.c saw 26000): drop whatever is left of
 * them, pgmesh_apply included, and prepare each again on its next use. */
static bool repair_stmts(struct server *s)
{
    struct relay *r = &s->relay;
    if (!relay_own_query(s, "DEALLOCATE ALL"))
        return false;
    r->stmts_lost = false;
    r->apply_parsed = false;
    sstmt_clear(&r->stmts);
    return true;
}

/* With the extension: the same settings through pgmesh.apply, authenticated for this backend and
 * this call (a counter that only rises), so the text is worthless to anyone who reads it. */
static bool send_apply(struct client *c, struct server *s, bool switching, bool idle)
{
    struct relay *r = &s->relay;
    struct pq_writer w;
    wr_init_dynamic(&w);
    /* Per transaction, a statement prepared once per connection (parsing and planning the SELECT
     * every time cost a fifth of the throughput); a switch's extra SETs ride in a Query. Only on
     * an idle server: its Sync would end the skipping after a client's failed extended message
     * still in flight, where the server discards a Query like the client's own messages. */
    bool prepared = r->per_transaction && !switching && idle;
    bool ok = prepared ? txstart_write_apply_prepared(c->tx, &w, r->nonce, ++r->apply_counter, enforce_mac(),
                                                      !r->apply_parsed)
                       : txstart_write_apply(c->tx, &w, r->nonce, ++r->apply_counter, enforce_mac(), switching);
    if (ok && prepared)
        r->apply_parsed = true;
    if (!ok) {
        wr_destroy(&w);
        return relay_fail_server(s, "out of memory");
    }
    /* Committed on its own (or the backend ends): from here the connection holds these values.
     * Sent inside the client's block, it repeats the values the link began with. */
    if (idle && r->per_transaction && !relay_holds_applied(r, c->tx)) {
        relay_forget_applied(r);
        r->applied = txshare_get(c->tx);
    }
    return relay_send_written(s, &w);
}

bool relay_send_settings(struct client *c, struct server *s, bool switching, bool idle)
{
    if (s->relay.enforced)
        return send_apply(c, s, switching, idle);
    return relay_send(s, switching ? c->tx->switch_msg : c->tx->set_msg,
                      switching ? c->tx->switch_len : c->tx->set_len);
}

/* Clears the previous client's claims, committed on its own: SET-based, or an authenticated
 * pgmesh.apply naming none. */
static bool send_reset(struct client *c, struct server *s)
{
    struct relay *r = &s->relay;
    if (!r->enforced)
        return relay_send(s, c->tx->reset_msg, c->tx->reset_len);
    relay_forget_applied(r);
    struct pq_writer w;
    wr_init_dynamic(&w);
    if (!txstart_write_clear(&w, r->nonce, ++r->apply_counter, enforce_mac())) {
        wr_destroy(&w);
        return relay_fail_server(s, "out of memory");
    }
    return relay_send_written(s, &w);
}

/* Whether the server already holds every per-transaction setting of c, so the transaction start
 * may send nothing: only with the extension, where nothing but pgmesh.apply changes the claims
 * and no statement below the top level changes a limit, and the guard refuses every top-level
 * one; only on an idle server whose last apply committed these values. */
static bool holds_settings(const struct relay *r, const struct client *c, bool idle)
{
    return r->enforced && r->per_transaction && idle && relay_holds_applied(r, c->tx);
}

/* Every transaction start records whose claims the server holds: a plain copy, not snprintf. */
static void copy_claim(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* The application_name pgmesh sets when the server changes hands: the startup value (or
 * "pgmesh"); NULL when the client SET its own, which follows it with the session parameters. */
static const char *startup_app(const struct client *c)
{
    if (params_sql(&c->params, PARAM_APPLICATION_NAME) != NULL)
        return NULL;
    return c->application_name ? c->application_name : "pgmesh";
}

/* Whose claims the server holds from now on, and what application_name pgmesh last set there. */
static void note_claims(struct relay *r, const struct client *c, const char *app)
{
    if (app)
        snprintf(r->application_name, sizeof r->application_name, "%s", app);
    r->claims_owner = c->id;
    copy_claim(r->claims_tenant, sizeof r->claims_tenant, c->ident.tenant);
    copy_claim(r->claims_role, sizeof r->claims_role, c->ident.role);
}

/* The SETs themselves, with application_name when the server changes hands (the startup value
 * goes with the switch; one the client SET itself follows it with the session parameters).
 * Nothing when the server holds them all already. */
static bool send_claims(struct client *c, struct server *s, bool switching, bool idle)
{
    struct relay *r = &s->relay;
    const char *app = startup_app(c);
    if (!app)
        r->application_name[0] = '\0';
    bool set_app = switching && app && strcmp(r->application_name, app) != 0;
    bool send = set_app || !holds_settings(r, c, idle);
    if (send && !(relay_send_settings(c, s, set_app, idle) && push_op(s, OP_TXSTART, idle)))
        return false;
    note_claims(r, c, set_app ? app : NULL);
    return true;
}

/* The RESET guards against SETs failing with another tenant's claims left committed; when the
 * last client had the same tenant and role there is nothing to guard against. */
static bool needs_reset(const struct relay *r, const struct client *c)
{
    /* With the extension, a connection that no client has had claims on holds none: only a
     * superuser can give a role or a database claims by default. */
    if (r->enforced && r->claims_tenant[0] == '\0' && r->claims_role[0] == '\0')
        return false;
    return !relay_holds_claims(r, c->ident.tenant, c->ident.role) || c->ident.claims_json;
}

/* With the extension's pgmesh.switch, passing to another tenant's or role's client is one call:
 * it scrubs what scrub_sql does and sets the claims, limits and application_name, and ends the
 * backend if any of it fails, so no committed reset is needed before it. After it the client's
 * session parameters, which the scrub reset. */
static bool send_switch(struct client *c, struct server *s)
{
    struct relay *r = &s->relay;
    if (r->stmts_lost && !repair_stmts(s))
        return false;
    const char *app = startup_app(c);
    relay_forget_applied(r);
    params_clear(&r->have);
    struct pq_writer w;
    wr_init_dynamic(&w);
    if (!txstart_write_switch(c->tx, &w, r->nonce, ++r->apply_counter, enforce_mac(), r->switch_oid,
                              app != NULL)) {
        wr_destroy(&w);
        return relay_fail_server(s, "out of memory");
    }
    if (!relay_send_written(s, &w) || !push_op(s, OP_TXSTART, true))
        return false;
    if (r->per_transaction)
        r->applied = txshare_get(c->tx);
    note_claims(r, c, app ? app : "");
    return sync_params(c, s);
}

static bool send_txstart(struct client *c, struct server *s, bool known_idle, bool switching, bool other)
{
    struct relay *r = &s->relay;
    if (other && r->enforced && r->switch_oid != 0 && !r->session_dirty)
        return send_switch(c, s);
    /* Where the connection holds no shared statement to lose, DISCARD ALL does all the scrub
     * does as one statement, which costs the server a fraction of the scrub's six. */
    bool discarded = switching && (r->session_dirty || (other && r->stmts.count == 0));
    if (discarded && !discard_session(s))
        return false;
    /* Only with nothing in flight: pipelined messages already name the statements pgmesh forgets. */
    if (known_idle && r->stmts_lost && !discarded && !repair_stmts(s))
        return false;
    bool scrubbed = other && !discarded;
    if (scrubbed && !scrub_session(s))
        return false;
    if (known_idle && !sync_params(c, s))
        return false;
    /* Without the extension the scrub's RESET ALL has committed the claims' reset already (they
     * are placeholders like any other setting); with it they survive RESET ALL. */
    bool reset = switching && !discarded && !(scrubbed && !r->enforced) && needs_reset(r, c) &&
                 !holds_settings(r, c, known_idle);
    if (reset && (!send_reset(c, s) || !push_op(s, OP_TXSTART, known_idle)))
        return false;
    return send_claims(c, s, switching, known_idle);
}

/* Queues the client's claims Query ahead of whatever it sends next (see txstart.h). */
bool relay_send_txstart(struct client *c, struct server *s)
{
    struct relay *r = &s->relay;
    bool known_idle = r->ops.len == 0 && r->tx_status == TX_IDLE;
    bool switching = known_idle && r->claims_owner != c->id;
    /* Off the same-tenant-and-role path: a client of the same claims may see what its own
     * tenant left, as it could on one connection of its own. */
    bool other = switching && other_claims(r, c);
    size_t queued = r->ops.len;
    if (!send_txstart(c, s, known_idle, switching, other))
        return false;
    stats_txstart(&c->st, other, r->ops.len == queued);
    return true;
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
    case FE_PARSE:
        return EXPECT_PARSE;
    case FE_BIND:
        return EXPECT_BIND;
    case FE_DESCRIBE:
        return EXPECT_DESCRIBE;
    case FE_CLOSE:
        return EXPECT_CLOSE;
    default:
        return EXPECT_EXECUTE;
    }
}

bool relay_after_forward(struct server *s, char type, const struct op *msg)
{
    struct relay *r = &s->relay;
    limits_on_forward(s, type);
    if (type == FE_COPY_DATA || type == FE_COPY_DONE || type == FE_COPY_FAIL || type == FE_FLUSH)
        return true; /* no reply of their own; prepared.c and refusal.c never make their msg */
    bool ends_batch = type == FE_QUERY || type == FE_FUNCTION_CALL || type == FE_SYNC;
    r->at_boundary = ends_batch;
    r->open_extended = !ends_batch;
    struct op op = {.kind = OP_MSG, .expect = expect_for(type)};
    if (ends_batch) {
        r->batch++;
        op.kind = type == FE_SYNC ? OP_SYNC : OP_QUERY;
    }
    return relay_push(s, msg ? msg : &op);
}
