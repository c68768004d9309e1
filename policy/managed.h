/* The one list of settings pgmesh manages: what the transaction start sets (the token's claims,
 * the role's limits) and what the guard refuses to let a client change (those, everything under
 * request.jwt., and what would let a client act as another role or fool the lexer). Both read
 * this table, so a setting cannot be set without being protected. No I/O, no globals but the
 * constant table. */
#ifndef PGMESH_POLICY_MANAGED_H
#define PGMESH_POLICY_MANAGED_H

#include <stdbool.h>
#include <stddef.h>

/* Where a managed setting's value comes from. */
enum managed_source {
    MANAGED_PROTECTED,         /* never set by pgmesh, only guarded */
    MANAGED_TENANT,            /* the token's tenant claim */
    MANAGED_ROLE,              /* the token's role claim */
    MANAGED_CLAIMS_JSON,       /* the token's claim set as JSON, with claims_json = on */
    MANAGED_STATEMENT_TIMEOUT, /* the role's statement_timeout, when it has one */
    MANAGED_WORK_MEM,          /* the role's work_mem, when it has one */
};

struct managed_setting {
    const char *name; /* lower case, as PostgreSQL names it */
    bool prefix;      /* every setting whose name starts with name (which ends in '.') */
    enum managed_source source;
};

extern const struct managed_setting managed_settings[];
extern const size_t managed_settings_count;

/* Claims are reset when a server connection passes to a client with other claims; limits are
 * simply set again. */
static inline bool managed_is_claim(enum managed_source s)
{
    return s == MANAGED_TENANT || s == MANAGED_ROLE || s == MANAGED_CLAIMS_JSON;
}

#endif
