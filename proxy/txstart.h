/* What each transaction starts with: the client's claims and its role's limits, as SET statements
 * whose values went through quote_literal. Built once per client at authentication.
 * Owner: the client; txstart_destroy frees. */
#ifndef PGMESH_PROXY_TXSTART_H
#define PGMESH_PROXY_TXSTART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct txstart {
    /* Parse/Bind/Execute of "SET LOCAL ..." per setting, without Sync: sent just before the
     * client's first message of a transaction so the settings belong to that transaction. */
    uint8_t *prefix;
    size_t prefix_len;
    int prefix_statements;   /* CommandCompletes to swallow */
    char *session_set_sql;   /* "SET a = 'x'; SET b = 'y'" for session pooling and own-transaction statements */
    char *session_reset_sql; /* "RESET a; RESET b" */
};

struct txstart_setting {
    const char *name;  /* a constant GUC name, never client input */
    const char *value; /* any text: quoted here */
};

bool txstart_build(struct txstart *t, const struct txstart_setting *settings, size_t n)
    __attribute__((warn_unused_result));
void txstart_destroy(struct txstart *t);

#endif
