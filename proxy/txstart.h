/* What each transaction starts with: the client's claims and its role's limits, as SET statements
 * whose values went through quote_literal. Built once per client at authentication.
 * Owner: the client; txstart_destroy frees. */
#ifndef PGMESH_PROXY_TXSTART_H
#define PGMESH_PROXY_TXSTART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct txstart {
    /* Parse/Bind/Execute of "SET name = 'value'" per setting, without Sync: sent just before the
     * client's first message of every transaction, so they run inside that transaction and before
     * any of the client's statements. Plain SET rather than SET LOCAL: outside an explicit block
     * SET LOCAL raises WARNING 25P01, which PostgreSQL also writes to its log on every transaction
     * (100 MB of log in 30 s of pgbench). The session-level value left behind is never seen by
     * another client: every transaction on every server connection starts with these SETs. */
    uint8_t *prefix;
    size_t prefix_len;
    int prefix_statements;   /* CommandCompletes to swallow */
    /* Query "RESET <claim>; ..." committed on its own just before the prefix when the server may
     * hold another client's committed claims: if the client's transaction then rolls back, its
     * SETs revert to these neutral values, never to the previous client's. */
    uint8_t *neutral;
    size_t neutral_len;
    char *session_set_sql;   /* "SET a = 'x'; SET b = 'y'" for session pooling and own-transaction statements */
    char *session_reset_sql; /* "RESET a; RESET b" */
};

struct txstart_setting {
    const char *name;  /* a constant GUC name, never client input */
    const char *value; /* any text: quoted here */
};

/* The first nclaims settings are the claims that get neutralized. */
bool txstart_build(struct txstart *t, const struct txstart_setting *settings, size_t n, size_t nclaims)
    __attribute__((warn_unused_result));
void txstart_destroy(struct txstart *t);

#endif
