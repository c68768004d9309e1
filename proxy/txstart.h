/* What each transaction starts with: the client's claims and its role's limits, as one simple
 * Query of plain SET statements whose values went through quote_literal. Built once per client at
 * authentication. Owner: the client; txstart_destroy frees. */
#ifndef PGMESH_PROXY_TXSTART_H
#define PGMESH_PROXY_TXSTART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

/* Why a committed Query of its own rather than SET LOCAL inside the client's transaction:
 * - SET LOCAL outside an explicit block raises WARNING 25P01, which PostgreSQL writes to its log
 *   for every statement (100 MB of log in 30 s of pgbench) and which costs half the throughput.
 * - Committed values survive a ROLLBACK inside the client's own Query or pipeline, so statements
 *   after it still see this client's claims; with uncommitted SETs they would fall back to
 *   whatever was committed before, possibly another client's.
 * - VACUUM and other statements that refuse a transaction block need no special path.
 * The Query is pipelined with the client's first message, so it costs no extra round trip. */
struct txstart {
    uint8_t *set_msg; /* Query: SET claim = '..'; SET ...; (limits too) */
    size_t set_len;
    /* For a server whose last claims were another client's: a Query that RESETs the claims,
     * committed on its own (a COMMIT inside one multi-statement Query would log a WARNING per
     * transaction), so that even if the SETs failed the client would run with no claims at
     * all, never with the previous client's; then the SETs plus the switch_only settings. */
    uint8_t *reset_msg;
    size_t reset_len;
    uint8_t *switch_msg;
    size_t switch_len;
    /* Where the server has the pgmesh extension, the same settings go through pgmesh.apply,
     * authenticated per backend and per call (txstart_write_apply): the array literal of name,
     * value pairs, the pairs as the MAC reads them, and the switch_only SETs. */
    char *apply_array;
    char *apply_param; /* the same pairs as an array literal, {"name","value",...}, for a Bind */
    uint8_t *mac_body;
    size_t mac_body_len;
    char *switch_sql;
    /* For pgmesh.switch: apply_param and the MAC body with the switch_only pairs at the end. */
    char *switch_param;
    char *switch_mac_body;
};

struct txstart_setting {
    const char *name;  /* a constant GUC name, never client input */
    const char *value; /* any text: quoted here */
    bool switch_only;  /* set when the client gets a server another client used last, not per
                        * transaction (application_name: the client may change it itself) */
};

struct jwt_identity;
struct pq_writer;
struct role_config;

/* At most this many settings in one transaction start: claims, limits, a role's pins
 * (ROLE_PINS_MAX) and application_name. */
#define TXSTART_SETTINGS_MAX 24

/* The transaction start of a client with this identity and role: every setting of the managed
 * table (policy/managed.c) that has a value for them, claims first, then the role's pinned
 * settings in [roles] order, then application_name when the server switches clients. The pins go
 * wherever the limits go: SETs in the per-transaction and switch Queries, pairs in pgmesh.apply's
 * array. False when out of memory (t untouched). */
bool txstart_for_client(struct txstart *t, const struct jwt_identity *id, const struct role_config *role,
                        const char *application_name) __attribute__((warn_unused_result));
/* The first nclaims settings are the claims; t is written only on success. */
bool txstart_build(struct txstart *t, const struct txstart_setting *settings, size_t n, size_t nclaims)
    __attribute__((warn_unused_result));
void txstart_destroy(struct txstart *t);

/* The Query "SELECT pgmesh.apply(counter, ARRAY[...], 'mac')" (then the switch_only SETs when
 * switching) for the backend whose nonce is given: mac is HMAC-SHA256 under key over "pgmesh-v1"
 * and, for the nonce, the counter in decimal and each name and value in turn, the field's length
 * in decimal, ':' and its bytes (the extension computes the same). False when out of memory. */
bool txstart_write_apply(const struct txstart *t, struct pq_writer *w, const char *nonce, uint64_t counter,
                         EVP_MAC_CTX *mac, bool switching) __attribute__((warn_unused_result));
/* pgmesh.switch(counter, settings, mac), the same message as apply's (with the switch_only settings
 * among the pairs when with_switch_only), as a FunctionCall of the OID the connection's probe
 * found: the extension scrubs the session of the last client, another tenant's or role's, and sets
 * these in the same call, which ends the backend if anything in it fails. Called by OID, it has no
 * statement to parse or plan, and nothing the last client did to the server's prepared statements
 * or search_path can keep it from running or make it run something else. */
bool txstart_write_switch(const struct txstart *t, struct pq_writer *w, const char *nonce, uint64_t counter,
                          EVP_MAC_CTX *mac, uint32_t switch_oid, bool with_switch_only)
    __attribute__((warn_unused_result));
/* The same message as Bind/Execute/Sync of the statement TXSTART_APPLY_STMT, prepared once per
 * server connection: with parse set, its Parse goes first. PostgreSQL then neither parses nor
 * plans it per transaction. */
bool txstart_write_apply_prepared(const struct txstart *t, struct pq_writer *w, const char *nonce,
                                  uint64_t counter, EVP_MAC_CTX *mac, bool parse)
    __attribute__((warn_unused_result));
#define TXSTART_APPLY_STMT "pgmesh_apply"
/* A Query that clears the claims on a server with the extension, before it passes to another
 * client: an authenticated apply naming no setting (the extension clears every claim a message
 * does not name). A simple Query of its own, so nothing a client did to the prepared statement can
 * keep it from running, and a failure ends the backend. */
bool txstart_write_clear(struct pq_writer *w, const char *nonce, uint64_t counter, EVP_MAC_CTX *mac)
    __attribute__((warn_unused_result));

/* What a client is told when the server refuses its transaction start (the SETs, or
 * pgmesh.apply) because of one of its role's pinned settings: which [roles] setting, and what to
 * do about it. Texts follow PostgreSQL's message style. */
struct txstart_failure {
    char message[192];
    char detail[640];
    char hint[448];
};
/* When the server's error (message and hint as it sent them, hint may be NULL) names a pinned
 * setting of role (its first double-quoted word, as PostgreSQL's and the extension's messages
 * do), fills *out and returns true: the extension refusing a name its pgmesh.pinned_settings does
 * not list (42501, "... pgmesh.apply() may set"), a setting the server role may not SET (42501
 * without the extension), or anything else (an invalid value, an unknown setting). The texts name
 * no file: they go to a client. False, *out untouched, for any other error. */
bool txstart_explain_failure(const struct role_config *role, const char *sqlstate, const char *message,
                             const char *server_hint, struct txstart_failure *out)
    __attribute__((warn_unused_result));

#endif
