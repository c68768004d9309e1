/* The watcher's connections: per [databases] entry, a libpq connection opened with
 * PQconnectStartParams and driven by PQconnectPoll, then PQsendQuery / PQconsumeInput / PQisBusy /
 * PQgetResult, all on one ev_io the way server.c opens server connections, under one timeout. It
 * must never block the loop nor retry in a loop: a failed attempt is logged (once per outage) and
 * tried again at the next tick. What the readings mean (thresholds, collation differences) is
 * watchrule.c's; the readings and the readers' views are watch_data.c's. */
#include "proxy/watch.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"
#include "proxy/conn.h"
#include "proxy/log.h"
#include "proxy/resolve.h"
#include "proxy/runtime.h"
#include "proxy/watch_int.h"

/* Without slot polling, a collation that could not be read is tried again this often. */
#define COLLATION_RETRY_S 60.0

struct watch_state watch;

/* ---- one connection: connect, run the steps due, close ---- */

/* One connection per poll, closed after it, rather than one kept per cluster: at one poll a
 * minute a connection costs the cluster a backend start, where a kept one would hold a
 * connection slot of every domain cluster for good, and would need its own health checks and
 * reconnects after restarts; a fresh one also follows conninfo and role changes without more
 * code. */
static void job_end(struct watch_target *t)
{
    ev_io_stop(rt.loop, &t->io);
    ev_timer_stop(rt.loop, &t->timeout);
    if (t->pg)
        PQfinish(t->pg);
    t->pg = NULL;
    t->busy = false;
}

/* what, then libpq's own message unless what already holds the server's. */
static void job_failed_as(struct watch_target *t, const char *what, bool add_libpq)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s%s", what, t->pg && add_libpq ? PQerrorMessage(t->pg) : "");
    watch_one_line(msg);
    t->polls_failed++;
    if (!t->down)
        LOG_EVENT(
            LOG_WARNING, NULL, "cluster_unreadable",
            LOG_FIELDS(LOG_STR("database", t->name), LOG_STR("host", watch_host(t)), LOG_INT("port", t->port)),
            "watch: database %s (%s:%d) not readable: %s; next attempt in %.3g s", t->name, watch_host(t), t->port,
            msg, watch.interval_s);
    else
        log_debug("watch: database %s (%s:%d) still not readable: %s", t->name, watch_host(t), t->port, msg);
    t->down = true;
    t->reachable = false;
    job_end(t);
}

static void job_failed(struct watch_target *t, const char *what)
{
    job_failed_as(t, what, true);
}

static void job_done(struct watch_target *t)
{
    if (t->down)
        LOG_EVENT(
            LOG_INFO, NULL, "cluster_readable",
            LOG_FIELDS(LOG_STR("database", t->name), LOG_STR("host", watch_host(t)), LOG_INT("port", t->port)),
            "watch: database %s (%s:%d) readable again", t->name, watch_host(t), t->port);
    t->down = false;
    t->reachable = true;
    t->polls_ok++;
    job_end(t);
}

/* The one watcher on the direction libpq waits for; its socket may change between the hosts of a
 * multi-host conninfo. */
static void job_wait(struct watch_target *t, bool write)
{
    int fd = PQsocket(t->pg);
    if (fd < 0) {
        job_failed(t, "no socket: ");
        return;
    }
    ev_io_stop(rt.loop, &t->io);
    ev_io_set(&t->io, fd, write ? EV_WRITE : EV_READ);
    ev_io_start(rt.loop, &t->io);
}

static const char *step_sql(const struct watch_target *t, enum watch_step step)
{
    int v = PQserverVersion(t->pg);
    if (step == STEP_SLOTS)
        /* The lag against what this server has: its own WAL position on a primary, what it has
         * received on a standby. restart_lsn is NULL for a slot that reserves no WAL. */
        return "SELECT slot_name, slot_type, active, coalesce(database::text, ''), "
               "pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() "
               "ELSE pg_current_wal_lsn() END, restart_lsn)::bigint "
               "FROM pg_replication_slots ORDER BY 5 DESC NULLS LAST, 1 LIMIT " WATCH_STR(WATCH_SLOTS_MAX);
    /* datlocprovider, daticulocale and datcollversion came with PostgreSQL 15; 17 renamed
     * daticulocale to datlocale (and added the builtin provider). */
    if (v >= 170000)
        return "SELECT datcollate, datctype, CASE datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' "
               "WHEN 'b' THEN 'builtin' ELSE datlocprovider::text END, coalesce(datlocale, ''), "
               "coalesce(pg_database_collation_actual_version(oid), datcollversion, '') "
               "FROM pg_database WHERE datname = current_database()";
    if (v >= 150000)
        return "SELECT datcollate, datctype, CASE datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' "
               "ELSE datlocprovider::text END, coalesce(daticulocale, ''), "
               "coalesce(pg_database_collation_actual_version(oid), datcollversion, '') "
               "FROM pg_database WHERE datname = current_database()";
    return "SELECT datcollate, datctype, 'libc', '', '' FROM pg_database WHERE datname = current_database()";
}

static void job_send(struct watch_target *t)
{
    if (!PQsendQuery(t->pg, step_sql(t, t->step))) {
        job_failed(t, "could not send the query: ");
        return;
    }
    int pending = PQflush(t->pg);
    if (pending < 0)
        job_failed(t, "could not send the query: ");
    else
        job_wait(t, pending == 1);
}

/* Picks the next step due, or ends the job when none is left. */
static void job_next_step(struct watch_target *t)
{
    if (t->collation_due && t->step < STEP_COLLATION) {
        t->step = STEP_COLLATION;
    } else if (t->slots_due && t->step < STEP_SLOTS) {
        t->step = STEP_SLOTS;
    } else {
        job_done(t);
        return;
    }
    t->step_error[0] = '\0';
    t->step_result = false;
    job_send(t);
}

static void step_result(struct watch_target *t, PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (!t->step_error[0])
            snprintf(t->step_error, sizeof t->step_error, "%s", PQresultErrorMessage(res));
        return;
    }
    t->step_result = true;
    if (t->step == STEP_COLLATION)
        watch_take_collation(t, res);
    else
        watch_take_slots(t, res);
}

/* Reads what arrived; a step ends with PQgetResult's NULL. */
static void job_read(struct watch_target *t)
{
    if (!PQconsumeInput(t->pg)) {
        job_failed(t, "lost the connection: ");
        return;
    }
    while (!PQisBusy(t->pg)) {
        PGresult *res = PQgetResult(t->pg);
        if (!res) {
            if (t->step_error[0] || !t->step_result) {
                char what[300];
                snprintf(what, sizeof what, "%s query failed: %s", t->step == STEP_SLOTS ? "slot" : "collation",
                         t->step_error[0] ? t->step_error : "no result");
                job_failed_as(t, what, false);
                return;
            }
            job_next_step(t);
            return;
        }
        step_result(t, res);
        PQclear(res);
    }
    job_wait(t, false);
}

static void job_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct watch_target *t = container_of(w, struct watch_target, io);
    if (!t->connected) {
        PostgresPollingStatusType st = PQconnectPoll(t->pg);
        if (st == PGRES_POLLING_FAILED) {
            job_failed(t, "");
        } else if (st == PGRES_POLLING_OK) {
            t->connected = true;
            if (PQsetnonblocking(t->pg, 1) != 0)
                job_failed(t, "");
            else
                job_next_step(t);
        } else {
            job_wait(t, st == PGRES_POLLING_WRITING);
        }
        return;
    }
    if (revents & EV_WRITE) {
        int pending = PQflush(t->pg);
        if (pending < 0)
            job_failed(t, "could not send the query: ");
        else
            job_wait(t, pending == 1);
        return;
    }
    job_read(t);
}

static void job_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct watch_target *t = container_of(w, struct watch_target, timeout);
    job_failed_as(t, "timeout expired (server_connect_timeout)", false);
}

/* The login role: watch_user, else the first role's server_user (a conninfo has no user=, the
 * loader refuses it), else libpq's default. */
static const char *job_user(void)
{
    if (rt.cfg->watch_user[0])
        return rt.cfg->watch_user;
    return rt.cfg->nroles > 0 ? rt.cfg->roles[0].server_user : NULL;
}

static void job_start(struct watch_target *t)
{
    const char *user = job_user();
    /* Host names as server.c passes them: resolved off the loop. While the lookup runs, the job
     * waits (lookups_done starts it again). */
    struct resolve_lists rl = {0};
    char err[256] = "";
    enum resolve_status rs = resolve_conninfo(t->conninfo, false, &rl, err, sizeof err);
    t->awaiting_lookup = rs == RESOLVE_PENDING;
    if (t->awaiting_lookup)
        return;
    t->step = STEP_NONE;
    t->connected = false;
    t->busy = true;
    if (rs == RESOLVE_FAILED) {
        job_failed(t, err);
        return;
    }
    /* client_encoding first so that the conninfo's own wins; user and the host lists last so
     * that they do. */
    const char *keys[8] = {"client_encoding", "fallback_application_name", "dbname"};
    const char *vals[8] = {"UTF8", "pgmesh-watch", t->conninfo};
    size_t n = 3;
    if (user)
        keys[n] = "user", vals[n++] = user;
    if (rs == RESOLVE_READY)
        n = resolve_lists_params(&rl, keys, vals, n);
    keys[n] = vals[n] = NULL;
    t->pg = PQconnectStartParams(keys, vals, 1);
    resolve_lists_free(&rl);
    if (!t->pg || PQstatus(t->pg) == CONNECTION_BAD) {
        job_failed(t, t->pg ? "" : "out of memory");
        return;
    }
    ev_timer_set(&t->timeout, (double)rt.cfg->server_connect_timeout_ms / 1000.0, 0.);
    ev_timer_start(rt.loop, &t->timeout);
    job_wait(t, true); /* as if PQconnectPoll had said WRITING, as server.c does */
}

/* ---- the tick: every watch_interval, each target that has something due and is not busy ---- */

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    for (size_t i = 0; i < watch.ntargets; i++) {
        struct watch_target *t = &watch.targets[i];
        if (t->busy)
            continue; /* a slow cluster: its attempt still runs under its timeout */
        t->slots_due = watch.polling && t->leader == t;
        if (t->slots_due || t->collation_due)
            job_start(t);
    }
}

/* For the targets just built: their watchers, and the tick, which fires at once. */
static void arm_tick(void)
{
    for (size_t i = 0; i < watch.ntargets; i++) {
        ev_init(&watch.targets[i].io, job_io_cb);
        ev_init(&watch.targets[i].timeout, job_timeout_cb);
    }
    ev_timer_stop(rt.loop, &watch.tick);
    watch.polling = rt.cfg->watch_interval_ms > 0;
    watch.interval_s = watch.polling ? (double)rt.cfg->watch_interval_ms / 1000.0 : COLLATION_RETRY_S;
    watch.warn_bytes = rt.cfg->slot_wal_warn_kb * 1024;
    ev_timer_init(&watch.tick, tick_cb, 0., watch.interval_s);
    ev_timer_start(rt.loop, &watch.tick);
}

static void lookups_done(void)
{
    for (size_t i = 0; i < watch.ntargets; i++) {
        struct watch_target *t = &watch.targets[i];
        if (t->awaiting_lookup && !t->busy)
            job_start(t);
    }
}

void watch_start(void)
{
    resolve_subscribe(lookups_done);
    if (!watch_build_targets(rt.cfg, NULL, 0))
        log_error("watch: out of memory: replication slots and collations are not watched");
    arm_tick();
}

void watch_reload(void)
{
    struct watch_target *old = watch.targets;
    size_t nold = watch.ntargets;
    for (size_t i = 0; i < nold; i++)
        if (old[i].busy)
            job_end(&old[i]);
    watch.targets = NULL;
    watch.ntargets = 0;
    if (!watch_build_targets(rt.cfg, old, nold))
        log_error("watch: out of memory: replication slots and collations are not watched");
    watch_free_targets(old, nold);
    arm_tick();
}

void watch_stop(void)
{
    for (size_t i = 0; i < watch.ntargets; i++)
        if (watch.targets[i].busy)
            job_end(&watch.targets[i]);
    ev_timer_stop(rt.loop, &watch.tick);
    watch_free_targets(watch.targets, watch.ntargets);
    watch.targets = NULL;
    watch.ntargets = 0;
    watch_free_views();
}
