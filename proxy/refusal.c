/* What pgmesh refuses of a client's messages (a managed setting, LISTEN or SQL PREPARE or a named
 * Parse in transaction pooling, a text too long to check, ...) and how: the server must see a
 * failure in the message's place, so that the error comes in order with the replies to the
 * client's other messages, an explicit transaction aborts and a pipeline skips to Sync exactly as
 * if PostgreSQL had refused it. pgmesh sends a stand-in that fails at parse analysis (a bad
 * integer literal) and reports its own error instead of the server's (replies.c). */
#include <stdio.h>
#include <string.h>

#include "protocol/error.h"
#include "protocol/fe.h"
#include "protocol/sqlstate.h"
#include "protocol/wire.h"
#include "proxy/client.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/relay_int.h"
#include "proxy/stats.h"

/* Of a refused statement's name (or the setting), what the error repeats. */
#define REFUSAL_NAME_MAX 63

const char *refusal_name(enum refusal why)
{
    static const char *const names[] = {
        [REFUSE_NONE] = "none",
        [REFUSE_NAMED_PARSE] = "named_parse",
        [REFUSE_MANAGED_SETTING] = "managed_setting",
        [REFUSE_TOO_LONG] = "too_long",
        [REFUSE_SESSION_ONLY] = "session_only",
        [REFUSE_DUPLICATE_STATEMENT] = "duplicate_statement",
        [REFUSE_DEALLOCATE] = "deallocate",
        [REFUSE_RESERVED_NAME] = "reserved_name",
        [REFUSE_TOO_MANY_STATEMENTS] = "too_many_statements",
        [REFUSE_FUNCTION_CALL] = "function_call",
    };
    return (size_t)why < sizeof names / sizeof names[0] ? names[why] : "other";
}

static void log_refusal(const struct client *c, enum refusal why, const char *what, size_t what_len)
{
    metrics_refused(why);
    static const char *const lead[] = {
        [REFUSE_NONE] = "",
        [REFUSE_NAMED_PARSE] = "named statement ",
        [REFUSE_MANAGED_SETTING] = "a change of ",
        [REFUSE_TOO_LONG] = "",
        [REFUSE_SESSION_ONLY] = "",
        [REFUSE_DUPLICATE_STATEMENT] = "a second Parse of statement ",
        [REFUSE_DEALLOCATE] = "a combined ",
        [REFUSE_RESERVED_NAME] = "a reserved name in ",
        [REFUSE_TOO_MANY_STATEMENTS] = "statement ",
        [REFUSE_FUNCTION_CALL] = "a FunctionCall of ",
    };
    static const char *const kind[] = {
        [REFUSE_NONE] = "none",
        [REFUSE_NAMED_PARSE] = "named_parse",
        [REFUSE_MANAGED_SETTING] = "managed_setting",
        [REFUSE_TOO_LONG] = "too_long",
        [REFUSE_SESSION_ONLY] = "session_only",
        [REFUSE_DUPLICATE_STATEMENT] = "duplicate_statement",
        [REFUSE_DEALLOCATE] = "deallocate",
        [REFUSE_RESERVED_NAME] = "reserved_name",
        [REFUSE_TOO_MANY_STATEMENTS] = "too_many_statements",
        [REFUSE_FUNCTION_CALL] = "function_call",
    };
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(what_len > 63 ? 63 : what_len), what);
    const struct log_field *fields = LOG_FIELDS(LOG_STR("refusal", kind[why]), LOG_STR("name", name));
    /* A change of what pgmesh manages, by SQL or by a fast-path call, is an attempt to act as
     * someone else: an audit line. The rest are features transaction pooling lacks. */
    if (why == REFUSE_MANAGED_SETTING || why == REFUSE_FUNCTION_CALL)
        CLIENT_AUDIT(LOG_WARNING, c, "tampering_refused", fields, "refused %s%s (role %s, tenant %s)", lead[why],
                     name, c->ident.role, c->ident.tenant);
    else
        CLIENT_LOG(LOG_INFO, c, "statement_refused", fields, "refused %s%s (role %s, tenant %s)", lead[why], name,
                   c->ident.role, c->ident.tenant);
}

static bool send_stand_in(struct client *c, struct server *s, const struct frame *f, enum refusal why,
                          const char *what, size_t what_len)
{
    static const char stand_in[] = "SELECT 'pgmesh: refused statement'::pg_catalog.int4";
    log_refusal(c, why, what, what_len);
    stats_guard_refusal(&c->st);
    if (relay_needs_txstart(s, f) && !relay_send_txstart(c, s))
        return false;
    struct pq_writer w;
    wr_init_dynamic(&w);
    /* A FunctionCall is answered like a Query (an error, then ReadyForQuery): a Query stands in. */
    bool query = f->type == FE_QUERY || f->type == FE_FUNCTION_CALL;
    if (query)
        fe_write_query(&w, stand_in);
    else
        fe_write_parse(&w, "", stand_in);
    if (!relay_send_written(s, &w))
        return false;
    /* The error names at most REFUSAL_NAME_MAX bytes of it. */
    struct op op = {.kind = OP_GUARD_ERROR,
                    .why = why,
                    .query = query,
                    .text = strndup(what, what_len < REFUSAL_NAME_MAX ? what_len : REFUSAL_NAME_MAX)};
    if (!op.text)
        return relay_fail_server(s, "out of memory");
    /* A Query's stand-in gets its error entry and the Query's own, through ReadyForQuery. */
    if (query)
        return relay_push(s, &op) && relay_after_forward(s, f->type, NULL);
    return relay_after_forward(s, f->type, &op);
}

bool refusal_send(struct client *c, struct server *s, const struct frame *f, enum refusal why, const char *what,
                  size_t what_len)
{
    if (!send_stand_in(c, s, f, why, what, what_len))
        return false;
    /* A message too long to check was never buffered whole: its body is dropped as it streams in. */
    if (!relay_stream_start(&c->body, &c->conn.in, f->total_len, NULL))
        return relay_fail_client(s, "out of memory");
    return true;
}

/* ---- the errors, PostgreSQL style ---- */

static void managed_setting(struct pq_error *e, const char *name, char *msg, char *detail, size_t cap)
{
    snprintf(msg, cap, "%s is managed by pgmesh", name);
    snprintf(detail, cap,
             "pgmesh sets the token's claims and the role's limits and pinned settings on every transaction; "
             "clients may not change them (%s).",
             name);
    *e = (struct pq_error){"ERROR", SQLSTATE_INSUFFICIENT_PRIVILEGE, msg, detail,
                           "Read the claims with current_setting(); ask for a token with other claims to act as "
                           "someone else."};
}

static void session_only(struct pq_error *e, const char *what, char *msg, char *detail, size_t cap)
{
    snprintf(msg, cap, "%s is not supported in transaction pooling", what);
    snprintf(detail, cap,
             "%s outlives the transaction, but each transaction may run on a different server connection.", what);
    *e = (struct pq_error){"ERROR", SQLSTATE_FEATURE_NOT_SUPPORTED, msg, detail,
                           strcmp(what, "PREPARE") == 0
                               ? "Use protocol-level prepared statements (Parse/Bind, as drivers send them), or "
                                 "pool_mode = session."
                               : "Use pool_mode = session for clients that LISTEN."};
}

static void named_parse(struct pq_error *e, const char *name, char *detail, size_t cap)
{
    snprintf(detail, cap,
             "Statement \"%s\" was prepared with a name; in transaction pooling each transaction may run on a "
             "different server connection.",
             name);
    *e = (struct pq_error){"ERROR", SQLSTATE_FEATURE_NOT_SUPPORTED,
                           "named prepared statements are not supported in transaction pooling", detail,
                           "Use unnamed statements (pgbench -M extended, pgJDBC prepareThreshold=0), or pool_mode "
                           "= session."};
}

static void too_many_statements(struct pq_error *e, const char *name, char *detail, size_t cap)
{
    snprintf(detail, cap,
             "pgmesh keeps at most %u named statements or %u MiB of their text per client connection (\"%s\" "
             "would pass that).",
             CLIENT_STMT_MAX, CLIENT_STMT_BYTES_MAX >> 20, name);
    *e = (struct pq_error){"ERROR", SQLSTATE_PROGRAM_LIMIT_EXCEEDED, "too many prepared statements", detail,
                           "Close or DEALLOCATE statements the client no longer uses."};
}

static void statement_names(struct pq_error *e, enum refusal why, const char *name, char *msg, size_t cap)
{
    if (why == REFUSE_DUPLICATE_STATEMENT) {
        /* PostgreSQL's own words for a name already in use. */
        snprintf(msg, cap, "prepared statement \"%s\" already exists", name);
        *e = (struct pq_error){"ERROR", SQLSTATE_DUPLICATE_PSTATEMENT, msg, NULL, NULL};
    } else if (why == REFUSE_DEALLOCATE) {
        *e =
            (struct pq_error){"ERROR", SQLSTATE_FEATURE_NOT_SUPPORTED,
                              "DEALLOCATE must be sent alone in a simple query in transaction pooling",
                              "pgmesh keeps each client's prepared statements and follows DEALLOCATE only when it "
                              "is the whole of a simple Query message.",
                              "Send DEALLOCATE name (or DEALLOCATE ALL) on its own, or close the statement with a "
                              "Close message."};
    } else {
        *e = (struct pq_error){
            "ERROR", SQLSTATE_RESERVED_NAME,
            "prepared statement names beginning with \"" STMT_PREFIX "\" are reserved by pgmesh",
            "pgmesh names the statements it prepares on server connections so.", "Use another name."};
    }
}

static void function_call(struct pq_error *e, const char *oid, char *detail, size_t cap)
{
    snprintf(detail, cap,
             "pgmesh passes fast-path function calls only for the large-object functions libpq's lo_* API "
             "uses; function OID %s is not one of them.",
             oid);
    *e = (struct pq_error){"ERROR", SQLSTATE_INSUFFICIENT_PRIVILEGE, "FunctionCall messages are refused by pgmesh",
                           detail, "Call the function in a query (SELECT f(...)) instead."};
}

static void too_long(struct pq_error *e, char *detail, size_t cap)
{
    snprintf(detail, cap, "Query and Parse messages are limited to %u bytes.", (unsigned)INSPECT_MAX);
    *e = (struct pq_error){"ERROR", SQLSTATE_PROGRAM_LIMIT_EXCEEDED, "statement too long for pgmesh to check",
                           detail, "Send large data with COPY or as bound parameters."};
}

void refusal_write(struct pq_writer *w, enum refusal why, const char *name)
{
    char msg[240], detail[240];
    struct pq_error e;
    switch (why) {
    case REFUSE_MANAGED_SETTING:
        managed_setting(&e, name, msg, detail, sizeof detail);
        break;
    case REFUSE_SESSION_ONLY:
        session_only(&e, name, msg, detail, sizeof detail);
        break;
    case REFUSE_NAMED_PARSE:
        named_parse(&e, name, detail, sizeof detail);
        break;
    case REFUSE_TOO_MANY_STATEMENTS:
        too_many_statements(&e, name, detail, sizeof detail);
        break;
    case REFUSE_DUPLICATE_STATEMENT:
    case REFUSE_DEALLOCATE:
    case REFUSE_RESERVED_NAME:
        statement_names(&e, why, name, msg, sizeof msg);
        break;
    case REFUSE_FUNCTION_CALL:
        function_call(&e, name, detail, sizeof detail);
        break;
    case REFUSE_NONE:
    case REFUSE_TOO_LONG:
        too_long(&e, detail, sizeof detail);
        break;
    }
    error_write(w, BE_ERROR, &e);
}
