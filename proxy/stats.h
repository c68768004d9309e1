/* Counters of what clients do: per pool (database, server role) and per tenant, for the admin
 * console's SHOW STATS and SHOW TENANTS and later for metrics. A client resolves its tenant's row
 * once at login and keeps pointers to both rows, so a transaction costs a few additions: no
 * allocation, lookup or hashing after login. No I/O; the caller passes the clock. */
#ifndef PGMESH_PROXY_STATS_H
#define PGMESH_PROXY_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h"

/* Totals since start. Times in microseconds. */
struct stats_counters {
    uint64_t xact_count, query_count;
    uint64_t bytes_received, bytes_sent; /* from and to clients */
    uint64_t xact_time_us, query_time_us;
    uint64_t wait_time_us, max_wait_us; /* waiting for a server connection */
    uint64_t guard_refusals;            /* client messages pgmesh refused (a managed setting, ...) */
    uint64_t enforce_refusals;          /* transaction starts or server logins refused by enforcement */
    uint64_t limit_ends;                /* transactions ended by a role limit (FATAL) */
    /* Transaction starts (transaction pooling) on a server connection another tenant or role used
     * last, which pgmesh reset and gave the client's claims; and those that found the client's
     * claims and limits in force and sent nothing first (with the extension only): how well claim
     * affinity and the fast path work for a pool. */
    uint64_t claim_switches, claims_held;
};

/* Tenants get a row each up to this many; later ones share the "other" row. */
#define STATS_TENANTS_MAX 1000
#define STATS_OTHER_TENANT "other"

struct stats_tenant {
    char name[JWT_CLAIM_MAX + 1];
    int clients; /* logged-in clients holding this row */
    struct stats_counters c;
};

/* What one client's session keeps to count itself: embedded in struct client, all-zero at first. */
struct stats_session {
    struct stats_counters *pool;            /* its pool's counters; NULL: not counted (admin console) */
    struct stats_tenant *tenant;            /* NULL until login */
    double query_start, xact_start;         /* loop time the current query / transaction began; 0: none */
    double wait_start;                      /* ... it began waiting for a server; 0: not waiting */
    double request_time;                    /* ... its last query began (SHOW CLIENTS) */
    uint64_t bytes_in_seen, bytes_out_seen; /* the connection's byte counts already added */
};

/* The row of this tenant, made at the first login of it (the "other" row once the table is full
 * or memory runs out); never NULL. The caller counts itself in (stats_session_login). */
struct stats_tenant *stats_tenant_for(const char *tenant);
/* Rows in the order tenants first logged in, then "other" when it was used; NULL past the end. */
const struct stats_tenant *stats_tenant_at(size_t i);
/* Frees the table and empties "other" (at exit; tests). */
void stats_tenants_free(void);

void stats_session_login(struct stats_session *st, struct stats_counters *pool, const char *tenant);
/* The client is going: its last bytes are added and it leaves its tenant's client count. */
void stats_session_logout(struct stats_session *st, uint64_t bytes_in, uint64_t bytes_out);

/* Input arrived: a query begins unless one is running (and a transaction unless one is open). */
static inline void stats_input(struct stats_session *st, double now)
{
    if (st->query_start == 0) {
        st->query_start = now;
        st->request_time = now;
    }
    if (st->xact_start == 0)
        st->xact_start = now;
}

/* ReadyForQuery forwarded to the client: a query ended, and a transaction when the status is
 * idle; the connection's byte counts so far are added. */
void stats_ready(struct stats_session *st, char tx_status, double now, uint64_t bytes_in, uint64_t bytes_out);
void stats_wait_begin(struct stats_session *st, double now);
void stats_wait_end(struct stats_session *st, double now);
void stats_guard_refusal(struct stats_session *st);
void stats_enforce_refusal(struct stats_session *st);
void stats_limit_end(struct stats_session *st);
/* A transaction start: switched (another tenant's or role's connection), held (nothing sent). */
void stats_txstart(struct stats_session *st, bool switched, bool held);

/* a += b, with max_wait_us the larger of both. */
void stats_add(struct stats_counters *a, const struct stats_counters *b);

#endif
