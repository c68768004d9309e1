/* Startup-class packets: StartupMessage (3.0), SSLRequest, GSSENCRequest, CancelRequest.
 * Parse results are views into the packet; copy what you keep. No I/O, no globals. */
#ifndef PGMESH_PROTOCOL_STARTUP_H
#define PGMESH_PROTOCOL_STARTUP_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/buf.h"

#define STARTUP_MAX_PARAMS 64

enum startup_kind { STARTUP_MESSAGE, STARTUP_SSL_REQUEST, STARTUP_GSSENC_REQUEST, STARTUP_CANCEL };

enum startup_result {
    STARTUP_OK,
    STARTUP_BAD,                 /* malformed: missing NULs, odd lengths, trailing bytes, no user */
    STARTUP_UNSUPPORTED_VERSION, /* a protocol other than 3.x */
    STARTUP_TOO_MANY_PARAMS,
};

struct startup_param {
    struct span name, value;
};

struct startup_packet {
    enum startup_kind kind;
    uint32_t version; /* STARTUP_MESSAGE */
    size_t nparams;   /* STARTUP_MESSAGE: name/value pairs, in order */
    struct startup_param params[STARTUP_MAX_PARAMS];
    uint32_t cancel_pid; /* STARTUP_CANCEL */
    uint32_t cancel_key;
};

/* body: the packet after its length word (starts with the version or request code). A
 * StartupMessage must carry a non-empty "user"; names must be non-empty. */
enum startup_result startup_read(const uint8_t *body, size_t len, struct startup_packet *out);

/* Value of the named parameter, or NULL. */
const struct span *startup_get(const struct startup_packet *pkt, const char *name);

/* Builds a CancelRequest packet (for tests and for pgmesh's own use). */
void startup_write_cancel(struct pq_writer *w, uint32_t pid, uint32_t key);
/* Builds a StartupMessage with protocol 3.0 from NULL-terminated name, value, ... pairs. */
void startup_write_message(struct pq_writer *w, const char *const *names, const char *const *values, size_t n);

#endif
