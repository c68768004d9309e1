/* The one spelling of a limit's SET or RESET that pgmesh lets a client send, because pgmesh reads
 * its value and clamps it to the role's (proxy/clamp.c): SET [SESSION | LOCAL] name {TO | =}
 * value, SET [SESSION | LOCAL] name {TO | =} DEFAULT and RESET name, where name is
 * statement_timeout, work_mem (or its old name sort_mem) or idle_in_transaction_session_timeout
 * written as a plain word, and value is one number or one plain '...' string. The guard passes
 * exactly these when asked to (guard_options.limits_clamped); any other spelling of those names
 * stays refused. No I/O, no globals, no allocation. */
#ifndef PGMESH_POLICY_LIMITSET_H
#define PGMESH_POLICY_LIMITSET_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/sqllex.h"

enum limit_kind {
    LIMIT_STATEMENT_TIMEOUT,
    LIMIT_WORK_MEM,
    LIMIT_IDLE_IN_TRANSACTION,
};

struct limit_set {
    enum limit_kind kind;
    bool local;      /* SET LOCAL */
    bool to_default; /* RESET name, or SET name TO DEFAULT */
    /* The number's text, or the string's body without its quotes (no '' inside); unset when
     * to_default. */
    const char *value;
    size_t value_len;
};

/* PostgreSQL's name of a limit, lower case. */
const char *limit_name(enum limit_kind kind);

/* True when the n tokens of one statement (without its ';') are such a SET or RESET. */
bool limit_set_read(const struct sqltok *t, size_t n, struct limit_set *out) __attribute__((warn_unused_result));

#endif
