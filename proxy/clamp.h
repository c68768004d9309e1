/* A client's SET or RESET of statement_timeout, work_mem or idle_in_transaction_session_timeout is
 * a request (pg_dump asks for statement_timeout = 0, applications lower work_mem for one job): at
 * or below its role's value it runs as written; above it, 0 (no limit), DEFAULT or RESET runs as a
 * SET of the role's value instead, and the client gets a NOTICE saying so. Only the spelling
 * policy/limitset.h reads is rewritten, and only that spelling passes the guard. No I/O. */
#ifndef PGMESH_PROXY_CLAMP_H
#define PGMESH_PROXY_CLAMP_H

#include <stdbool.h>
#include <stddef.h>

struct role_limits;

struct clamp {
    char *sql; /* the rewritten text, NUL-terminated; NULL when nothing was clamped */
    size_t len;
    char notice[256]; /* the NOTICE's message (the last statement clamped) */
    size_t count;     /* statements clamped */
};

/* Reads sql[0..len) against the limits of the client's role (named role in the NOTICE); false only
 * when out of memory. */
bool clamp_sql(const char *sql, size_t len, const struct role_limits *limits, const char *role, struct clamp *out)
    __attribute__((warn_unused_result));
/* Empty, without clearing the notice's buffer: every relayed Query and Parse passes here, and
 * the notice is written before it is read. */
void clamp_init(struct clamp *c);
void clamp_free(struct clamp *c);

#endif
