/* ErrorResponse and NoticeResponse: one builder for every client-facing error pgmesh emits, and a
 * reader for the ones servers send. Text follows PostgreSQL's message style: lower-case primary
 * message without a final period; facts in detail, what to do in hint. */
#ifndef PGMESH_PROTOCOL_ERROR_H
#define PGMESH_PROTOCOL_ERROR_H

#include <stdbool.h>

#include "protocol/buf.h"

struct pq_error {
    const char *severity; /* "ERROR", "FATAL", "WARNING", ...; also sent as the V field */
    const char *sqlstate; /* a SQLSTATE_* constant */
    const char *message;
    const char *detail; /* NULL: omitted */
    const char *hint;   /* NULL: omitted */
};

/* type: 'E' (ErrorResponse) or 'N' (NoticeResponse). */
void error_write(struct pq_writer *w, char type, const struct pq_error *e);

struct pq_error_fields {
    struct span severity, sqlstate, message, detail, hint; /* empty span when absent */
};
bool error_read(const uint8_t *body, size_t len, struct pq_error_fields *out) __attribute__((warn_unused_result));

/* Copies a server's ErrorResponse or NoticeResponse (type, body) with every occurrence of `from`
 * in its text fields replaced by `to`: the server names pgmesh's statements, the client knows its
 * own names. */
void error_rename(struct pq_writer *w, char type, const uint8_t *body, size_t len, const char *from,
                  const char *to);

#endif
