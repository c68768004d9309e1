/* What admin.c (session, protocol, commands) and admin_show.c (the SHOW commands) share: the SHOW
 * table and the row builder. Adding a SHOW command is one entry in admin_show.c's table and one
 * function filling its rows. Not for other modules: they see admin.h. */
#ifndef PGMESH_PROXY_ADMIN_INT_H
#define PGMESH_PROXY_ADMIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/be.h"
#include "protocol/buf.h"

struct client;

#define ADMIN_COLS_MAX 24
#define ADMIN_VALUE_MAX 96

/* One result's rows as they are built: each value is added in column order, then rows_end writes
 * the DataRow. Values are copied into the builder (cut to ADMIN_VALUE_MAX - 1 bytes) except those
 * of rows_text, which must stay valid until rows_end. */
/* Rows serialized for another worker (admin_workers.c) instead of written as DataRows. */
struct rows_capture {
    char *p;
    size_t len, cap;
    bool failed;
};

struct admin_rows {
    struct pq_writer *w;
    struct rows_capture *capture; /* set: rows_end appends here, w unused */
    const struct be_column *cols;
    const uint8_t *formats; /* per column, 0 text or 1 binary; NULL: all text */
    uint16_t ncols, n;
    uint64_t count; /* rows written */
    const char *vals[ADMIN_COLS_MAX];
    char bufs[ADMIN_COLS_MAX][ADMIN_VALUE_MAX];
};

void rows_text(struct admin_rows *r, const char *v); /* NULL: SQL NULL */
void rows_textf(struct admin_rows *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rows_int(struct admin_rows *r, int64_t v);
void rows_uint(struct admin_rows *r, uint64_t v);
/* A loop time (seconds since the epoch) as "YYYY-MM-DD HH:MM:SS UTC"; 0 is NULL. */
void rows_time(struct admin_rows *r, double t);
void rows_end(struct admin_rows *r);

struct admin_show {
    const char *name; /* upper case: SHOW <name> */
    const struct be_column *cols;
    uint16_t ncols;
    void (*rows)(struct admin_rows *r);
};

/* The SHOW command of that name (ASCII case-insensitive), or NULL. */
const struct admin_show *admin_show_find(const char *name);
/* The table in order, for the list of commands an unknown one is answered with; NULL past the end. */
const struct admin_show *admin_show_at(size_t i);

/* ---- across workers (admin_workers.c) ---- */

/* Appends one row (n values, NULL for SQL NULL) to a capture. */
void rows_capture_add(struct rows_capture *cap, const char *const *vals, uint16_t n);
/* A SHOW's rows from every worker, merged as the command asks (summed per pool, database or
 * tenant; listed for clients and servers; the watcher's from worker 0), written through rows. */
void admin_show_all_workers(const struct admin_show *sh, struct admin_rows *rows);
/* Pools matching db ("" for all) paused or resumed in the other workers. */
void admin_others_pause(const char *db, bool pause);
/* Whether every other worker's pools matching db have no server lent or being reset. */
bool admin_others_idle(const char *db);
/* KILL_CLIENT of a client of another worker (its id names it): whether it was there. */
bool admin_kill_elsewhere(uint64_t id);
/* This worker's share of those, for the others' requests (admin.c). */
void admin_pools_pause_local(const char *db, bool pause);
bool admin_pools_idle_local(const char *db);
struct client *admin_find_client(uint64_t id); /* a live client of this worker, or NULL */
void admin_kill(struct client *t);

#endif
