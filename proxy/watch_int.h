/* What watch.c (the connections) and watch_data.c (the readings, their log lines and the readers'
 * views) share; no other module includes it. */
#ifndef PGMESH_PROXY_WATCH_INT_H
#define PGMESH_PROXY_WATCH_INT_H

#include <ev.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/config.h"
#include "proxy/watch.h"

#define WATCH_STR_(x) #x
#define WATCH_STR(x) WATCH_STR_(x)

/* What a connection runs, in this order, each only when due. */
enum watch_step { STEP_NONE, STEP_COLLATION, STEP_SLOTS };

/* One kept slot; its strings are the public view's. */
struct watch_slot_row {
    char name[PG_NAME_MAX + 1];
    char type[16];
    char database[PG_NAME_MAX + 1];
    bool active;
    int64_t retained_bytes; /* -1: reserves no WAL */
    bool over_warn;
};

/* One [databases] entry. Owns its strings, its slots and, while busy, its PGconn. */
struct watch_target {
    char *name;
    char *conninfo;
    char host[256]; /* from the conninfo, for logs and views */
    int port;
    struct watch_target *leader; /* the first entry on the same host and port: only it reads slots */
    /* the attempt in flight */
    PGconn *pg;
    ev_io io;
    ev_timer timeout;
    bool busy, connected;
    bool awaiting_lookup; /* job_start waits for a host name lookup (resolve.c) */
    enum watch_step step;
    bool step_result; /* the step's query returned rows */
    char step_error[256];
    bool collation_due, slots_due;
    /* outcome */
    bool down; /* the last attempt failed and that was logged */
    bool reachable;
    uint64_t polls_ok, polls_failed;
    bool collation_known, collation_mismatch;
    char datcollate[128], datctype[128], provider[16], icu_locale[128], collversion[64];
    struct watch_slot_row *slots; /* latest reading, kept while the cluster is down */
    size_t nslots;
};

struct watch_state {
    struct watch_target *targets; /* one per [databases] entry, in file order */
    size_t ntargets;
    ev_timer tick;
    bool polling;       /* watch_interval > 0 */
    double interval_s;  /* the tick's period */
    int64_t warn_bytes; /* slot_wal_warn */
};

extern struct watch_state watch;

/* watch_data.c */
/* Fills watch.targets from cfg's [databases]; an entry of old (nold, may be NULL) with the same
 * name and conninfo gives its slots (their crossing state) and counters. Every target is due a
 * collation read. False when out of memory (watch.targets then stays empty). */
bool watch_build_targets(const struct config *cfg, struct watch_target *old, size_t nold)
    __attribute__((warn_unused_result));
/* Frees the targets' strings and slots (their connections must be ended) and the array. */
void watch_free_targets(struct watch_target *targets, size_t n);
void watch_free_views(void);
/* The collation row of t's database: stored, compared with every other entry read since the last
 * start or reload, each differing pair logged. */
void watch_take_collation(struct watch_target *t, const PGresult *res);
/* The slots of t's cluster: replace the last reading, crossings of slot_wal_warn logged. */
void watch_take_slots(struct watch_target *t, const PGresult *res);
const char *watch_host(const struct watch_target *t);
/* libpq's message on one line, without the trailing newline. */
void watch_one_line(char *msg);

#endif
