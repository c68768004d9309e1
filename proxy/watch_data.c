/* The watcher's readings: the [databases] entries it watches (built from the config, carried over
 * a reload), the rows its queries return, the warnings they call for (judged by watchrule.c) and
 * the views watch.h hands to the admin console and metrics. No I/O beyond the log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"
#include "proxy/watch_int.h"
#include "proxy/watchrule.h"

#define DEFAULT_PGPORT 5432

/* ---- targets ---- */

static const char *conninfo_value(const PQconninfoOption *opts, const char *keyword)
{
    for (const PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0)
            return o->val && o->val[0] ? o->val : NULL;
    return NULL;
}

/* Host and port as libpq would take them from the conninfo and its environment defaults. */
static void target_address(struct watch_target *t)
{
    PQconninfoOption *opts = PQconninfoParse(t->conninfo, NULL); /* the loader parsed it already */
    const char *host = conninfo_value(opts, "host"), *port = conninfo_value(opts, "port");
    if (!host)
        host = conninfo_value(opts, "hostaddr");
    if (!host)
        host = getenv("PGHOST");
    if (!port)
        port = getenv("PGPORT");
    snprintf(t->host, sizeof t->host, "%s", host ? host : "");
    t->port = port ? atoi(port) : DEFAULT_PGPORT; /* "5432,5433": the first host's */
    if (t->port <= 0)
        t->port = DEFAULT_PGPORT;
    PQconninfoFree(opts);
}

static struct watch_target *find_old(struct watch_target *old, size_t nold, const struct db_config *db)
{
    for (size_t i = 0; i < nold; i++)
        if (strcmp(old[i].name, db->name) == 0 && strcmp(old[i].conninfo, db->conninfo) == 0)
            return &old[i];
    return NULL;
}

/* The first of ts[0..i] on ts[i]'s host and port. */
static struct watch_target *find_leader(struct watch_target *ts, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (ts[j].leader == &ts[j] && ts[j].port == ts[i].port && strcmp(ts[j].host, ts[i].host) == 0)
            return &ts[j];
    return &ts[i];
}

/* The same entry before a reload gives its slots (each slot's crossing state: no second warning
 * for a slot still above) and its counters. */
static void carry_over(struct watch_target *t, struct watch_target *was)
{
    if (!was)
        return;
    t->slots = was->slots;
    t->nslots = was->nslots;
    was->slots = NULL;
    was->nslots = 0;
    t->polls_ok = was->polls_ok;
    t->polls_failed = was->polls_failed;
    t->down = was->down;
    t->reachable = was->reachable;
}

bool watch_build_targets(const struct config *cfg, struct watch_target *old, size_t nold)
{
    struct watch_target *ts = calloc(cfg->ndatabases ? cfg->ndatabases : 1, sizeof *ts);
    if (!ts)
        return false;
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        struct watch_target *t = &ts[i];
        t->name = strdup(cfg->databases[i].name);
        t->conninfo = strdup(cfg->databases[i].conninfo);
        if (!t->name || !t->conninfo) {
            watch_free_targets(ts, i + 1);
            return false;
        }
        target_address(t);
        t->leader = find_leader(ts, i);
        t->collation_due = true;
        carry_over(t, find_old(old, nold, &cfg->databases[i]));
    }
    watch.targets = ts;
    watch.ntargets = cfg->ndatabases;
    return true;
}

void watch_free_targets(struct watch_target *targets, size_t n)
{
    for (size_t i = 0; targets && i < n; i++) {
        free(targets[i].name);
        free(targets[i].conninfo);
        free(targets[i].slots);
    }
    free(targets);
}

const char *watch_host(const struct watch_target *t)
{
    return t->host[0] ? t->host : "default socket";
}

void watch_one_line(char *msg)
{
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    for (char *q = msg; *q; q++)
        if (*q == '\n' || *q == '\t')
            *q = ' ';
}

/* ---- collations ---- */

static struct watchrule_collation collation_of(const struct watch_target *t)
{
    return (struct watchrule_collation){t->datcollate, t->datctype, t->provider, t->icu_locale, t->collversion};
}

void watch_take_collation(struct watch_target *t, const PGresult *res)
{
    if (PQntuples(res) < 1 || PQnfields(res) < 5)
        return; /* step_result is set, but nothing known: tried again at the next tick */
    snprintf(t->datcollate, sizeof t->datcollate, "%s", PQgetvalue(res, 0, 0));
    snprintf(t->datctype, sizeof t->datctype, "%s", PQgetvalue(res, 0, 1));
    snprintf(t->provider, sizeof t->provider, "%s", PQgetvalue(res, 0, 2));
    snprintf(t->icu_locale, sizeof t->icu_locale, "%s", PQgetvalue(res, 0, 3));
    snprintf(t->collversion, sizeof t->collversion, "%s", PQgetvalue(res, 0, 4));
    t->collation_known = true;
    t->collation_due = false;
    t->collation_mismatch = false;
    struct watchrule_collation mine = collation_of(t);
    /* Each pair once: when the later of the two is read. */
    for (size_t i = 0; i < watch.ntargets; i++) {
        struct watch_target *o = &watch.targets[i];
        char why[512];
        struct watchrule_collation theirs = collation_of(o);
        if (o == t || !o->collation_known || !watchrule_collation_mismatch(&theirs, &mine, why, sizeof why))
            continue;
        o->collation_mismatch = t->collation_mismatch = true;
        LOG_EVENT(LOG_WARNING, NULL, "collation_mismatch",
                  LOG_FIELDS(LOG_STR("database", o->name), LOG_STR("other_database", t->name)),
                  "watch: databases %s (%s:%d) and %s (%s:%d) have different collations (%s): postgres_fdw "
                  "pushes ORDER BY/comparisons down to the remote side; with different collations sorts and "
                  "range conditions can return wrong results",
                  o->name, watch_host(o), o->port, t->name, watch_host(t), t->port, why);
    }
}

/* ---- slots ---- */

/* "database a" or "databases a, b": the entries whose cluster leader is t. */
static void cluster_names(const struct watch_target *t, char *buf, size_t len)
{
    size_t used = 0, count = 0;
    for (size_t i = 0; i < watch.ntargets; i++)
        count += watch.targets[i].leader == t;
    int n = snprintf(buf, len, "%s ", count > 1 ? "databases" : "database");
    used = n > 0 ? (size_t)n : 0;
    for (size_t i = 0, k = 0; i < watch.ntargets && used < len; i++) {
        if (watch.targets[i].leader != t)
            continue;
        n = snprintf(buf + used, len - used, "%s%s", k++ ? ", " : "", watch.targets[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static const struct watch_slot_row *find_slot(const struct watch_slot_row *rows, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

static void read_slot(const PGresult *res, int i, struct watch_slot_row *s)
{
    snprintf(s->name, sizeof s->name, "%s", PQgetvalue(res, i, 0));
    snprintf(s->type, sizeof s->type, "%s", PQgetvalue(res, i, 1));
    s->active = strcmp(PQgetvalue(res, i, 2), "t") == 0;
    snprintf(s->database, sizeof s->database, "%s", PQgetvalue(res, i, 3));
    s->retained_bytes = -1;
    if (!PQgetisnull(res, i, 4)) {
        long long v = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        s->retained_bytes = v > 0 ? (int64_t)v : 0; /* a standby's receive position may lag a slot's */
    }
}

static void log_crossing(const struct watch_target *t, const struct watch_slot_row *s, bool over)
{
    char names[256], size[32], limit[32];
    cluster_names(t, names, sizeof names);
    watchrule_format_size(s->retained_bytes, size, sizeof size);
    watchrule_format_size(watch.warn_bytes, limit, sizeof limit);
    const struct log_field *fields =
        LOG_FIELDS(LOG_STR("slot", s->name), LOG_STR("host", watch_host(t)), LOG_INT("port", t->port),
                   LOG_INT("retained_bytes", s->retained_bytes));
    if (over)
        LOG_EVENT(LOG_WARNING, NULL, "slot_wal_over_warn", fields,
                  "watch: replication slot %s (%s%s%s, %s) on %s:%d (%s) retains %s of WAL, above "
                  "slot_wal_warn (%s): the server keeps that WAL until the slot's consumer catches up or the "
                  "slot is dropped",
                  s->name, s->type, s->database[0] ? " on " : "", s->database, s->active ? "active" : "inactive",
                  watch_host(t), t->port, names, size, limit);
    else
        LOG_EVENT(LOG_INFO, NULL, "slot_wal_below_warn", fields,
                  "watch: replication slot %s on %s:%d (%s) retains %s of WAL, below slot_wal_warn (%s) "
                  "again",
                  s->name, watch_host(t), t->port, names, size, limit);
}

void watch_take_slots(struct watch_target *t, const PGresult *res)
{
    int n = PQntuples(res);
    if (PQnfields(res) < 5)
        return;
    if (n > WATCH_SLOTS_MAX)
        n = WATCH_SLOTS_MAX; /* the query says LIMIT; this keeps the bound whatever it returns */
    struct watch_slot_row *rows = calloc(n > 0 ? (size_t)n : 1, sizeof *rows);
    if (!rows) {
        log_error("watch: out of memory: the slots of %s:%d are not updated", watch_host(t), t->port);
        return;
    }
    for (int i = 0; i < n; i++) {
        struct watch_slot_row *s = &rows[i];
        read_slot(res, i, s);
        const struct watch_slot_row *was = find_slot(t->slots, t->nslots, s->name);
        bool was_over = was && was->over_warn;
        if (watchrule_slot_crossed(was_over, s->retained_bytes, watch.warn_bytes, &s->over_warn))
            log_crossing(t, s, true);
        else if (was_over && !s->over_warn)
            log_crossing(t, s, false);
    }
    free(t->slots);
    t->slots = rows;
    t->nslots = (size_t)n;
}

/* ---- the readers' views ---- */

static struct {
    struct watch_slot *slots;
    struct watch_collation *collations;
    struct watch_stat *stats;
} views;

void watch_free_views(void)
{
    free(views.slots);
    free(views.collations);
    free(views.stats);
    views.slots = NULL;
    views.collations = NULL;
    views.stats = NULL;
}

size_t watch_slots(const struct watch_slot **out)
{
    size_t n = 0;
    *out = NULL;
    for (size_t i = 0; i < watch.ntargets; i++)
        n += watch.targets[i].nslots;
    struct watch_slot *v = realloc(views.slots, (n ? n : 1) * sizeof *v);
    if (!v)
        return 0;
    views.slots = v;
    size_t k = 0;
    for (size_t i = 0; i < watch.ntargets; i++) {
        const struct watch_target *t = &watch.targets[i];
        for (size_t j = 0; j < t->nslots; j++) {
            const struct watch_slot_row *s = &t->slots[j];
            v[k++] = (struct watch_slot){t->name,     t->host,   t->port,           s->name,     s->type,
                                         s->database, s->active, s->retained_bytes, s->over_warn};
        }
    }
    *out = v;
    return n;
}

size_t watch_collations(const struct watch_collation **out)
{
    *out = NULL;
    struct watch_collation *v = realloc(views.collations, (watch.ntargets ? watch.ntargets : 1) * sizeof *v);
    if (!v)
        return 0;
    views.collations = v;
    for (size_t i = 0; i < watch.ntargets; i++) {
        const struct watch_target *t = &watch.targets[i];
        v[i] =
            (struct watch_collation){t->name,     t->host,       t->port,        t->datcollate,        t->datctype,
                                     t->provider, t->icu_locale, t->collversion, t->collation_mismatch};
    }
    *out = v;
    return watch.ntargets;
}

size_t watch_stats(const struct watch_stat **out)
{
    *out = NULL;
    struct watch_stat *v = realloc(views.stats, (watch.ntargets ? watch.ntargets : 1) * sizeof *v);
    if (!v)
        return 0;
    views.stats = v;
    for (size_t i = 0; i < watch.ntargets; i++) {
        const struct watch_target *t = &watch.targets[i];
        v[i] = (struct watch_stat){t->name,         t->host,      t->port,           t->polls_ok,
                                   t->polls_failed, t->reachable, t->collation_known};
    }
    *out = v;
    return watch.ntargets;
}
