/* Linking, relaying and unlinking (see link.h). Every relay call returns a verdict that is acted
 * on here and only here; the lower modules' news (a server's bytes, a finished cancel, an
 * expired limit, a failed connection) arrives through session_events. A server goes back to its
 * pool only when the relay says it is clean; otherwise it is reset or closed, never lent dirty. */
#include "proxy/link.h"

#include <string.h>

#include "protocol/frame.h"
#include "protocol/sqlstate.h"
#include "protocol/wire.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/events.h"
#include "proxy/limits.h"
#include "proxy/metrics.h"
#include "proxy/pool.h"
#include "proxy/relay.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/stats.h"

struct session_events session_events;

static void act(struct server *s, enum relay_verdict v);

static void link_pair(struct client *c, struct server *s)
{
    ev_tstamp now = ev_now(rt.loop);
    metrics_wait_observed(c->mrole, c->state == CLIENT_WAIT_SERVER ? now - c->st.wait_start : 0.0);
    s->linked_at = now;
    c->server = s;
    s->client = c;
    server_set_state(s, SERVER_LINKED);
    client_set_state(c, CLIENT_LINKED);
    enum relay_verdict v = relay_begin(c, s);
    if (v != RELAY_GO_ON) {
        act(s, v);
        return;
    }
    conn_start_reading(&c->conn);
    link_client_input(c);
}

static void unlink_pair(struct client *c, struct server *s)
{
    metrics_link_observed(c->mrole, ev_now(rt.loop) - s->linked_at);
    limits_unlink(s);
    s->client = NULL;
    c->server = NULL;
}

/* Waiters looked at for one of the claims a freed server holds. */
#define AFFINITY_WINDOW 32

/* Who gets a freed server: the longest-waiting client, unless it is of other claims and a client of
 * the server's claims waits among the next AFFINITY_WINDOW, none ahead of which was passed over
 * claim_affinity_passes times yet. With many tenants sharing a saturated pool nearly every hand-over
 * in plain order switches tenants, and a switch costs the server a reset and the claims again
 * (relay_send_txstart); the bound keeps every waiter's delay to a few transactions. */
static struct client *waiter_for(const struct server *s)
{
    struct client *first = pool_first_waiter(s->pool);
    int passes = rt.cfg->claim_affinity_passes;
    if (!first || passes == 0 || !s->relay.per_transaction ||
        relay_holds_claims(&s->relay, first->ident.tenant, first->ident.role))
        return first;
    struct client *match = NULL;
    int n = 0;
    for (struct client *c = first; c && !match && n <= AFFINITY_WINDOW; c = TAILQ_NEXT(c, wait_link), n++) {
        if ((int)c->passed_over >= passes)
            return first;
        if (relay_holds_claims(&s->relay, c->ident.tenant, c->ident.role))
            match = c;
    }
    if (!match)
        return first;
    for (struct client *a = first; a != match; a = TAILQ_NEXT(a, wait_link))
        a->passed_over++;
    return match;
}

/* A server became usable (connected, reset, its client's transaction over, its last cancel
 * back): the longest-waiting client gets it (or one of the server's claims, waiter_for), else (or
 * while its pool is paused) it goes idle; after a reload it closes instead
 * when outdated or beyond the pool's size. */
static void server_usable(struct server *s)
{
    const char *retire = pool_retire_reason(s);
    if (retire) {
        server_close(s, retire);
        pool_open_for_waiters(s->pool); /* a waiting client gets a fresh connection, up to the pool size */
        return;
    }
    struct client *c = s->pool->paused ? NULL : waiter_for(s);
    if (c)
        link_pair(c, s);
    else
        server_set_state(s, SERVER_IDLE);
}

/* The client hears why when the relay knows more than that the server is gone (its transaction
 * start failed); the closed server keeps its texts until it is freed after this loop iteration. */
static void server_lost(struct server *s, const char *why, const struct relay_fatal *f)
{
    struct client *c = s->client;
    if (c)
        unlink_pair(c, s);
    pool_server_lost(s->pool);
    server_close(s, why);
    if (c && f && f->sqlstate)
        client_error(c, "FATAL", f->sqlstate, f->message, f->detail, f->hint);
    else if (c)
        client_error(c, "FATAL", SQLSTATE_CONNECTION_FAILURE, "server connection lost", why, NULL);
}

static void transaction_over(struct server *s)
{
    struct client *c = s->client;
    if (s->state == SERVER_RESETTING) {
        server_usable(s);
        return;
    }
    if (!c || s->state != SERVER_LINKED)
        return;
    unlink_pair(c, s);
    server_usable(s);
    client_set_state(c, CLIENT_IDLE);
    conn_start_reading(&c->conn);
    link_client_idle(c); /* pipelined messages already buffered start the next transaction */
}

static void act(struct server *s, enum relay_verdict v)
{
    struct client *c = s->client;
    switch (v) {
    case RELAY_GO_ON:
        return;
    case RELAY_TX_OVER:
        transaction_over(s);
        return;
    case RELAY_CLOSE_SERVER:
        server_lost(s, s->relay.why, &s->relay.fatal);
        return;
    case RELAY_CLOSE_CLIENT:
        if (c && s->relay.fatal.sqlstate)
            client_error(c, "FATAL", s->relay.fatal.sqlstate, s->relay.fatal.message, s->relay.fatal.detail,
                         s->relay.fatal.hint);
        else if (c)
            client_close(c, s->relay.why);
        return;
    }
}

static void end_for_shutdown(struct client *c)
{
    client_error(c, "FATAL", SQLSTATE_ADMIN_SHUTDOWN, "terminating connection due to administrator command",
                 "pgmesh is shutting down.", NULL);
}

void link_client_idle(struct client *c)
{
    struct iobuf *in = &c->conn.in;
    if (rt.shutting_down) {
        /* Between transactions: the client is done here, before it starts another one. */
        end_for_shutdown(c);
        return;
    }
    if (iobuf_len(in) == 0)
        return;
    if (frame_type(iobuf_head(in)) == FE_TERMINATE) {
        client_close(c, "client terminated");
        return;
    }
    struct pool *p = c->pool;
    /* A paused pool lends nothing: the client waits for RESUME (or query_wait_timeout). */
    struct server *s = p->paused ? NULL : pool_idle_server(p, c->ident.tenant, c->ident.role, c->tx);
    if (s && !pool_first_waiter(p)) {
        link_pair(c, s);
        return;
    }
    client_set_state(c, CLIENT_WAIT_SERVER);
    if (s)
        server_usable(s); /* cannot happen with FIFO order kept, but never strand a waiter */
    else
        pool_open_for_waiters(p);
}

void link_pool_resumed(struct pool *p)
{
    struct server *s;
    /* server_usable gives each idle server to a waiter (or closes an outdated one). */
    while (pool_first_waiter(p) && (s = TAILQ_FIRST(&p->idle)) != NULL)
        server_usable(s);
    pool_open_for_waiters(p);
}

void link_client_input(struct client *c)
{
    if (c->server)
        act(c->server, relay_from_client(c, c->server));
}

void link_client_gone(struct client *c)
{
    struct server *s = c->server;
    if (!s)
        return;
    uint32_t pending = c->body.remaining;
    unlink_pair(c, s);
    if (s->state != SERVER_LINKED)
        return;
    server_set_state(s, SERVER_RESETTING);
    act(s, relay_client_gone(s, pending));
}

/* In session pooling a linked client is between transactions when its server is idle with
 * nothing in flight and nothing of the client's is pending. */
static bool between_transactions(const struct client *c)
{
    const struct server *s = c->server;
    return s && s->relay.tx_status == 'I' && s->relay.ops.len == 0 && !s->relay.in_copy &&
           c->body.remaining == 0 && iobuf_len(&c->conn.in) == 0;
}

void link_shutdown_sweep(void)
{
    struct client *c;
    TAILQ_FOREACH(c, &rt.clients, link) {
        switch (c->state) {
        case CLIENT_STARTUP:
        case CLIENT_AUTH:
            client_error(c, "FATAL", SQLSTATE_CANNOT_CONNECT_NOW, "the database system is shutting down", NULL,
                         NULL);
            break;
        case CLIENT_TLS_HANDSHAKE: /* no ErrorResponse fits in a handshake */
            client_close(c, "shutting down");
            break;
        case CLIENT_IDLE:
        case CLIENT_WAIT_SERVER:
            end_for_shutdown(c);
            break;
        case CLIENT_LINKED:
            if (c->server && !c->server->relay.per_transaction && between_transactions(c))
                end_for_shutdown(c);
            break;
        case CLIENT_CLOSING:
            break;
        }
    }
}

/* ---- session_events ---- */

static void on_server_connected(struct server *s)
{
    pool_remember_params(s->pool, s->pg);
    server_usable(s);
}

static void on_connect_failed(struct pool *p, const char *server_message)
{
    /* While another attempt is under way, leave the waiters to it. */
    if (pool_connecting(p))
        return;
    struct client *c;
    while ((c = pool_first_waiter(p)) != NULL)
        client_error(c, "FATAL", SQLSTATE_CONNECTION_FAILURE, "could not connect to the database server",
                     server_message, "Check the [databases] entry and that the server accepts the role's login.");
}

static void on_server_input(struct server *s)
{
    act(s, replies_from_server(s));
}

static void on_server_settled(struct server *s)
{
    act(s, relay_settle(s));
}

static void on_limit_expired(struct server *s, const char *sqlstate, const char *message, const char *detail)
{
    if (!s->client)
        return;
    stats_limit_end(&s->client->st);
    client_error(s->client, "FATAL", sqlstate, message, detail, NULL);
}

void link_init(void)
{
    session_events = (struct session_events){
        .server_connected = on_server_connected,
        .connect_failed = on_connect_failed,
        .server_input = on_server_input,
        .server_settled = on_server_settled,
        .limit_expired = on_limit_expired,
    };
}
