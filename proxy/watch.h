/* The watcher: for every [databases] entry, libpq connections on libev watchers (never blocking
 * the loop) that read the cluster's replication slots every watch_interval and the database's
 * collation at start and on each reload. It logs a slot whose retained WAL crosses slot_wal_warn
 * (once per crossing) and each pair of databases whose collations differ (once per pair per start
 * or reload), and keeps the latest readings for the admin console and metrics.
 * Owner: the module itself (watch_start / watch_reload / watch_stop, called by main.c and
 * reload.c); what the readers below return belongs to it. */
#ifndef PGMESH_PROXY_WATCH_H
#define PGMESH_PROXY_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most this many slots are kept per cluster, those retaining the most WAL first. */
#define WATCH_SLOTS_MAX 256

/* One replication slot of a cluster. Several [databases] entries on one cluster (same host and
 * port in their conninfo) share one reading, named after the first of them. */
struct watch_slot {
    const char *database; /* the [databases] entry whose cluster holds the slot */
    const char *host;     /* host (or hostaddr) of its conninfo; "" when libpq's default */
    int port;             /* of its conninfo, else PGPORT or 5432 */
    const char *slot_name;
    const char *slot_type;     /* "physical" or "logical" */
    const char *slot_database; /* a logical slot's database; "" for a physical one */
    bool active;
    int64_t retained_bytes; /* WAL kept back for the slot; -1 when it reserves none */
    bool over_warn;         /* retained_bytes > slot_wal_warn */
};

/* One [databases] entry's collation, as its database's pg_database row had it. Strings are ""
 * until read (see watch_stats' collation_known) and for what the database lacks. */
struct watch_collation {
    const char *database;
    const char *host;
    int port;
    const char *datcollate;
    const char *datctype;
    const char *provider; /* "libc", "icu" (PostgreSQL 17: also "builtin") */
    const char *icu_locale;
    const char *collversion; /* the library's version now, else the one recorded at creation */
    bool mismatch;           /* differs from another entry's (each such pair was logged) */
};

/* Per [databases] entry: how its watcher's connections went. */
struct watch_stat {
    const char *database;
    const char *host;
    int port;
    uint64_t polls_ok;     /* connections that read everything they were sent for */
    uint64_t polls_failed; /* connection, login or query failures and timeouts */
    bool reachable;        /* the last attempt succeeded (false before the first) */
    bool collation_known;
};

/* Each sets *out to an array of the returned length, owned by the watcher and valid until control
 * returns to the event loop (the next reading or reload replaces it). */
size_t watch_slots(const struct watch_slot **out);
size_t watch_collations(const struct watch_collation **out);
size_t watch_stats(const struct watch_stat **out);

/* Reads rt.cfg and starts watching at once. */
void watch_start(void);
/* After a reload's swap: ends connections in flight, takes the new [databases] and keys, reads
 * every collation again and polls at once. A slot's crossing state survives for an entry whose
 * name and conninfo stay the same (no second warning for a slot still above). */
void watch_reload(void);
/* Ends connections in flight and frees everything. */
void watch_stop(void);

#endif
