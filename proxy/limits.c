/* Timers behind the per-role limits. All three live on the server connection and act on the
 * client linked to it at the time they fire; unlinking stops them. Cancels go through the same
 * off-loop path as client CancelRequests. */
#include "proxy/limits.h"

#include <stdio.h>

#include "protocol/sqlstate.h"
#include "protocol/wire.h"
#include "proxy/cancel.h"
#include "proxy/client.h"
#include "proxy/events.h"
#include "proxy/log.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

static const struct role_limits *limits_of(const struct server *s)
{
    return s->client ? &s->client->limits : NULL;
}

static void statement_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *s = container_of(w, struct server, stmt_timer);
    struct client *c = s->client;
    if (!c)
        return;
    LOG_AT(LOG_WARNING, c->tag, "statement ran past statement_timeout %lld ms (role %s, tenant %s): cancelling it",
           (long long)c->limits.statement_timeout_ms, c->ident.role, c->ident.tenant);
    cancel_server(s);
}

static void end_client(struct server *s, const char *sqlstate, const char *message, const char *detail)
{
    struct client *c = s->client;
    if (!c)
        return;
    LOG_AT(LOG_WARNING, c->tag, "%s (role %s, tenant %s)", message, c->ident.role, c->ident.tenant);
    if (s->relay.ops.len)
        cancel_server(s); /* a running statement holds the snapshot too */
    session_events.limit_expired(s, sqlstate, message, detail);
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *s = container_of(w, struct server, idle_timer);
    char detail[160];
    snprintf(detail, sizeof detail,
             "The transaction was idle for longer than idle_in_transaction_timeout (%lld ms) and was rolled back.",
             s->client ? (long long)s->client->limits.idle_in_transaction_ms : 0LL);
    end_client(s, SQLSTATE_IDLE_IN_TRANSACTION_TIMEOUT,
               "terminating connection due to idle-in-transaction timeout", detail);
}

static void age_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *s = container_of(w, struct server, age_timer);
    char detail[160];
    snprintf(detail, sizeof detail,
             "The transaction was open for longer than max_transaction_age (%lld ms) and was rolled back.",
             s->client ? (long long)s->client->limits.max_transaction_age_ms : 0LL);
    end_client(s, SQLSTATE_QUERY_CANCELED, "terminating connection: transaction exceeded max_transaction_age",
               detail);
}

void limits_init(struct server *s)
{
    ev_timer_init(&s->stmt_timer, statement_cb, 0., 0.);
    ev_timer_init(&s->idle_timer, idle_cb, 0., 0.);
    ev_timer_init(&s->age_timer, age_cb, 0., 0.);
}

static void arm(ev_timer *t, int64_t ms)
{
    ev_timer_stop(rt.loop, t);
    if (ms > 0) {
        ev_timer_set(t, (double)ms / 1000.0, 0.);
        ev_timer_start(rt.loop, t);
    }
}

void limits_on_forward(struct server *s, char fe_type)
{
    const struct role_limits *l = limits_of(s);
    if (!l)
        return;
    ev_timer_stop(rt.loop, &s->idle_timer); /* the client is active again */
    bool starts_statement = fe_type == FE_QUERY || fe_type == FE_EXECUTE || fe_type == FE_FUNCTION_CALL;
    if (starts_statement && l->statement_timeout_ms > 0 && !ev_is_active(&s->stmt_timer))
        arm(&s->stmt_timer, l->statement_timeout_ms + LIMITS_STATEMENT_GRACE_MS);
    if (l->max_transaction_age_ms > 0 && !ev_is_active(&s->age_timer) && fe_type != FE_SYNC &&
        fe_type != FE_FLUSH && fe_type != FE_TERMINATE)
        arm(&s->age_timer, l->max_transaction_age_ms);
}

void limits_on_reply(struct server *s, char be_type)
{
    const struct role_limits *l = limits_of(s);
    if (!l)
        return;
    switch (be_type) {
    case BE_COMMAND_COMPLETE:
    case BE_EMPTY_QUERY:
    case BE_PORTAL_SUSPENDED:
    case BE_ERROR:
        /* One statement ended; the next one of a multi-statement Query gets its own limit. */
        if (ev_is_active(&s->stmt_timer))
            arm(&s->stmt_timer, l->statement_timeout_ms + LIMITS_STATEMENT_GRACE_MS);
        break;
    case BE_READY:
        ev_timer_stop(rt.loop, &s->stmt_timer);
        if (s->relay.ops.len > 0)
            break; /* more of the client's requests are in flight */
        if (s->relay.tx_status == TX_IDLE) {
            ev_timer_stop(rt.loop, &s->age_timer);
            ev_timer_stop(rt.loop, &s->idle_timer);
        } else {
            arm(&s->idle_timer, l->idle_in_transaction_ms);
        }
        break;
    default:
        break;
    }
}

void limits_stop(struct server *s)
{
    ev_timer_stop(rt.loop, &s->stmt_timer);
    ev_timer_stop(rt.loop, &s->idle_timer);
    ev_timer_stop(rt.loop, &s->age_timer);
}
