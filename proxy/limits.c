/* Timers behind the per-role limits. All three live on the server connection and act on the
 * client linked to it at the time they fire; unlinking stops them. Cancels go through the same
 * off-loop path as client CancelRequests. */
#include "proxy/limits.h"

#include <stdio.h>

#include "protocol/sqlstate.h"
#include "protocol/wire.h"
#include "proxy/cancel.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/events.h"
#include "proxy/log.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

static const struct role_limits *limits_of(const struct server *s)
{
    return s->client ? &s->client->limits : NULL;
}

/* Why pgmesh ends a client's transaction: the limit's key and its value. */
struct limit_hit {
    const char *limit;
    int64_t limit_ms;
};

static void end_client(struct server *s, struct limit_hit hit, const char *sqlstate, const char *message,
                       const char *detail);
static void arm(ev_timer *t, int64_t ms);

/* ev_timer_stop, without the call for a timer that is neither running nor pending: limits_on_forward
 * and limits_on_reply stop timers for every message relayed, and nearly all are stopped already. */
static inline void stop_timer(ev_timer *t)
{
    if (ev_is_active(t) || ev_is_pending(t))
        ev_timer_stop(rt.loop, t);
}

/* The statement limit is a lazy timer: starting a statement moves stmt_deadline and an ending
 * one clears it, and the timer, left running, looks at the deadline when it fires. A
 * transaction's statements then cost no timer-heap operations but the first's. */
static void statement_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *s = container_of(w, struct server, stmt_timer);
    struct client *c = s->client;
    if (!c || s->stmt_deadline == 0)
        return;
    ev_tstamp left = s->stmt_deadline - ev_now(loop);
    if (left > 0.001) {
        ev_timer_set(w, left, 0.);
        ev_timer_start(loop, w);
        return;
    }
    if (s->stmt_cancel_sent) {
        char detail[200];
        snprintf(
            detail, sizeof detail,
            "The server did not act on the cancel within %d ms; its connection was closed and the transaction "
            "rolled back.",
            LIMITS_CANCEL_WAIT_MS);
        end_client(s, (struct limit_hit){"statement_timeout", c->limits.statement_timeout_ms},
                   SQLSTATE_QUERY_CANCELED, "terminating connection: statement ran past statement_timeout",
                   detail);
        return;
    }
    s->stmt_deadline = ev_now(loop) + LIMITS_CANCEL_WAIT_MS / 1000.0;
    arm(&s->stmt_timer, LIMITS_CANCEL_WAIT_MS);
    s->stmt_cancel_sent = true;
    CLIENT_AUDIT(LOG_WARNING, c, "statement_cancelled",
                 LOG_FIELDS(LOG_STR("limit", "statement_timeout"),
                            LOG_INT("limit_ms", c->limits.statement_timeout_ms), LOG_INT("server_id", s->id)),
                 "statement ran past statement_timeout %lld ms (role %s, tenant %s): cancelling it",
                 (long long)c->limits.statement_timeout_ms, c->ident.role, c->ident.tenant);
    cancel_server(s);
}

static void end_client(struct server *s, struct limit_hit hit, const char *sqlstate, const char *message,
                       const char *detail)
{
    struct client *c = s->client;
    if (!c)
        return;
    CLIENT_AUDIT(LOG_WARNING, c, "transaction_ended",
                 LOG_FIELDS(LOG_STR("limit", hit.limit), LOG_INT("limit_ms", hit.limit_ms),
                            LOG_STR("sqlstate", sqlstate), LOG_INT("server_id", s->id)),
                 "%s (role %s, tenant %s)", message, c->ident.role, c->ident.tenant);
    if (s->relay.ops.len)
        cancel_server(s); /* a running statement holds the snapshot too */
    session_events.limit_expired(s, sqlstate, message, detail);
}

/* The role's idle_in_transaction_timeout, else the pool-wide idle_transaction_timeout of the
 * config in force (a reload changes it from the next time it is armed). */
static int64_t idle_limit_ms(const struct role_limits *l)
{
    return l->idle_in_transaction_ms > 0 ? l->idle_in_transaction_ms : rt.cfg->idle_transaction_timeout_ms;
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *s = container_of(w, struct server, idle_timer);
    const struct role_limits *l = limits_of(s);
    bool role_own = l && l->idle_in_transaction_ms > 0;
    char detail[192];
    snprintf(detail, sizeof detail, "The transaction was idle for longer than %s (%lld ms) and was rolled back.",
             role_own ? "idle_in_transaction_timeout" : "idle_transaction_timeout",
             l ? (long long)idle_limit_ms(l) : 0LL);
    struct limit_hit hit = {role_own ? "idle_in_transaction_timeout" : "idle_transaction_timeout",
                            l ? idle_limit_ms(l) : 0};
    end_client(s, hit, SQLSTATE_IDLE_IN_TRANSACTION_TIMEOUT,
               "terminating connection due to idle-in-transaction timeout", detail);
}

static void age_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *s = container_of(w, struct server, age_timer);
    char detail[160];
    snprintf(detail, sizeof detail,
             "The transaction was open for longer than max_transaction_age (%lld ms) and was rolled back.",
             s->client ? (long long)s->client->limits.max_transaction_age_ms : 0LL);
    struct limit_hit hit = {"max_transaction_age", s->client ? s->client->limits.max_transaction_age_ms : 0};
    end_client(s, hit, SQLSTATE_QUERY_CANCELED, "terminating connection: transaction exceeded max_transaction_age",
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

/* A statement's own limit, from the start: any cancel sent was for an earlier one. The running
 * timer serves when it fires no later than the new deadline (statement_cb waits on from there). */
static void arm_statement(struct server *s, int64_t ms)
{
    s->stmt_cancel_sent = false;
    double after = (double)ms / 1000.0;
    s->stmt_deadline = ev_now(rt.loop) + after;
    if (ev_is_active(&s->stmt_timer) && ev_timer_remaining(rt.loop, &s->stmt_timer) <= after)
        return;
    arm(&s->stmt_timer, ms);
}

static void stop_statement(struct server *s)
{
    s->stmt_deadline = 0;
}

void limits_on_forward(struct server *s, char fe_type)
{
    const struct role_limits *l = limits_of(s);
    if (!l)
        return;
    stop_timer(&s->idle_timer); /* the client is active again */
    bool starts_statement = fe_type == FE_QUERY || fe_type == FE_EXECUTE || fe_type == FE_FUNCTION_CALL;
    if (starts_statement && l->statement_timeout_ms > 0 && s->stmt_deadline == 0)
        arm_statement(s, l->statement_timeout_ms + LIMITS_STATEMENT_GRACE_MS);
    if (l->max_transaction_age_ms > 0 && !ev_is_active(&s->age_timer) && fe_type != FE_SYNC &&
        fe_type != FE_FLUSH && fe_type != FE_TERMINATE)
        arm(&s->age_timer, l->max_transaction_age_ms);
}

/* Extended-protocol messages without a Sync hold the server (and any transaction it has open)
 * while the client is silent, and PostgreSQL's own idle timeouts only start at ReadyForQuery:
 * once the server has answered everything it was sent (this reply completes the last queued
 * message; replies.c calls before taking its entry off the queue) or skips to Sync after an
 * error, it waits for the client, and the idle limit runs. */
static void server_waits_for_client(struct server *s, const struct role_limits *l, char be_type)
{
    const struct relay *r = &s->relay;
    bool completes = be_type == BE_PARSE_COMPLETE || be_type == BE_BIND_COMPLETE || be_type == BE_CLOSE_COMPLETE ||
                     be_type == BE_ROW_DESC || be_type == BE_NO_DATA || be_type == BE_COMMAND_COMPLETE ||
                     be_type == BE_EMPTY_QUERY || be_type == BE_PORTAL_SUSPENDED;
    if (!r->open_extended || !(r->skipping || (completes && r->ops.len <= 1)))
        return;
    stop_statement(s);
    arm(&s->idle_timer, idle_limit_ms(l));
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
        if (s->stmt_deadline != 0)
            arm_statement(s, l->statement_timeout_ms + LIMITS_STATEMENT_GRACE_MS);
        break;
    case BE_READY:
        stop_statement(s);
        if (s->relay.ops.len > 0)
            break; /* more of the client's requests are in flight */
        if (s->relay.tx_status == TX_IDLE) {
            stop_timer(&s->age_timer);
            stop_timer(&s->idle_timer);
        } else {
            arm(&s->idle_timer, idle_limit_ms(l));
        }
        break;
    default:
        break;
    }
    server_waits_for_client(s, l, be_type);
}

void limits_unlink(struct server *s)
{
    stop_statement(s);
    stop_timer(&s->idle_timer);
    stop_timer(&s->age_timer);
}

void limits_stop(struct server *s)
{
    stop_statement(s);
    ev_timer_stop(rt.loop, &s->stmt_timer);
    stop_timer(&s->idle_timer);
    stop_timer(&s->age_timer);
}
