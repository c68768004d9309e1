/* Session parameters that clients rely on and that follow a client across server connections in
 * transaction pooling: from the startup packet (and its options -c), and from the client's own
 * SET / RESET of them. Values are kept as SQL fragments ready for "SET name TO <value>": quoted
 * literals for startup values, the client's own text for its SETs (one statement's worth, as the
 * lexer split it). Owner: the client (wanted) and the server (what it has); params_clear frees. */
#ifndef PGMESH_PROXY_PARAMS_H
#define PGMESH_PROXY_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "protocol/buf.h"
#include "protocol/startup.h"

#define PARAM_COUNT 7
#define PARAM_CLIENT_ENCODING 0
#define PARAM_TIMEZONE 3
#define PARAM_SEARCH_PATH 5
#define PARAM_APPLICATION_NAME 6 /* from the client's SETs only: the startup value is txstart's */
extern const char *const param_names[PARAM_COUNT];

/* Most clients set none of these, so the values live in one array allocated with the first:
 * v[i] the SQL value (NULL: the server's default), v[PARAM_COUNT + i] the startup value as given,
 * for ParameterStatus (NULL otherwise). v is NULL while nothing was ever set. */
struct param_set {
    char **v;
};

static inline const char *params_sql(const struct param_set *ps, int i)
{
    return ps->v ? ps->v[i] : NULL;
}

/* Neither set holds a parameter: the common case at every transaction start, nothing to sync or
 * copy (and no writer to set up for it). */
static inline bool params_both_empty(const struct param_set *a, const struct param_set *b)
{
    return !a->v && !b->v;
}

/* Fills ps from a startup packet. False on memory exhaustion or an unquotable value. */
bool params_from_startup(struct param_set *ps, const struct startup_packet *pkt)
    __attribute__((warn_unused_result));
/* Follows SET/RESET of tracked parameters in a client's Query text. RESET ALL puts each back to
 * its startup value when startup_on_reset_all (a client's set), else to the server's default. */
void params_track_sql(struct param_set *ps, const char *sql, size_t len, bool startup_on_reset_all);
/* Writes a Query that makes `have` into `want`; false when they already agree (nothing written). */
bool params_write_sync(const struct param_set *want, const struct param_set *have, struct pq_writer *w);
bool params_copy(struct param_set *dst, const struct param_set *src) __attribute__((warn_unused_result));
void params_clear(struct param_set *ps);
/* A parameter's value as the client gave it at startup (for ParameterStatus), or NULL. */
const char *params_reported(const struct param_set *ps, const char *name);

#endif
