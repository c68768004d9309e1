/* Startup-class packets: StartupMessage 3.x, SSLRequest, GSSENCRequest, CancelRequest.
 * Parsing is strict (exact lengths, final NUL as the last byte, a non-empty user, no duplicate
 * names) because this is the first thing an unauthenticated peer sends. Results are views into
 * the caller's bytes. No I/O, no globals.
 * Reference: PostgreSQL documentation, "Message Formats", StartupMessage and CancelRequest. */
#include "protocol/startup.h"

#include <string.h>

#include "protocol/wire.h"

static bool name_seen(const struct startup_packet *pkt, struct span name)
{
    for (size_t i = 0; i < pkt->nparams; i++)
        if (pkt->params[i].name.len == name.len && memcmp(pkt->params[i].name.p, name.p, name.len) == 0)
            return true;
    return false;
}

/* Name/value pairs after the version word, ended by an empty name that is the last byte. */
static enum startup_result read_params(struct pq_reader *r, struct startup_packet *pkt)
{
    for (;;) {
        struct span name = rd_cstr(r);
        if (r->bad)
            return STARTUP_BAD;
        if (name.len == 0)
            break;
        struct span value = rd_cstr(r);
        if (r->bad)
            return STARTUP_BAD;
        /* PostgreSQL lets a repeated name override the earlier one; refusing it keeps what
         * pgmesh checks and what a server would use from ever differing. */
        if (name_seen(pkt, name))
            return STARTUP_BAD;
        if (pkt->nparams == STARTUP_MAX_PARAMS)
            return STARTUP_TOO_MANY_PARAMS;
        pkt->params[pkt->nparams].name = name;
        pkt->params[pkt->nparams].value = value;
        pkt->nparams++;
    }
    if (!rd_finish(r))
        return STARTUP_BAD;
    const struct span *user = startup_get(pkt, "user");
    if (!user || user->len == 0)
        return STARTUP_BAD;
    return STARTUP_OK;
}

enum startup_result startup_read(const uint8_t *body, size_t len, struct startup_packet *out)
{
    struct pq_reader r;
    rd_init(&r, body, len);
    uint32_t code = rd_u32(&r);
    if (r.bad)
        return STARTUP_BAD;

    /* Built in a local so that *out is written only on success. */
    struct startup_packet pkt;
    memset(&pkt, 0, sizeof pkt);
    switch (code) {
    case REQUEST_SSL:
    case REQUEST_GSSENC:
        if (!rd_finish(&r))
            return STARTUP_BAD;
        pkt.kind = code == REQUEST_SSL ? STARTUP_SSL_REQUEST : STARTUP_GSSENC_REQUEST;
        break;
    case REQUEST_CANCEL:
        pkt.kind = STARTUP_CANCEL;
        pkt.cancel_pid = rd_u32(&r);
        pkt.cancel_key = rd_u32(&r);
        if (!rd_finish(&r))
            return STARTUP_BAD;
        break;
    default: {
        if (PROTOCOL_MAJOR(code) != 3)
            return STARTUP_UNSUPPORTED_VERSION;
        pkt.kind = STARTUP_MESSAGE;
        pkt.version = code;
        enum startup_result res = read_params(&r, &pkt);
        if (res != STARTUP_OK)
            return res;
        break;
    }
    }
    memcpy(out, &pkt, sizeof pkt);
    return STARTUP_OK;
}

const struct span *startup_get(const struct startup_packet *pkt, const char *name)
{
    if (pkt->kind != STARTUP_MESSAGE)
        return NULL;
    for (size_t i = 0; i < pkt->nparams && i < STARTUP_MAX_PARAMS; i++)
        if (span_eq(pkt->params[i].name, name))
            return &pkt->params[i].value;
    return NULL;
}

void startup_write_cancel(struct pq_writer *w, uint32_t pid, uint32_t key)
{
    wr_begin(w, 0);
    wr_u32(w, REQUEST_CANCEL);
    wr_u32(w, pid);
    wr_u32(w, key);
    wr_end(w);
}

void startup_write_message(struct pq_writer *w, const char *const *names, const char *const *values, size_t n)
{
    wr_begin(w, 0);
    wr_u32(w, PROTOCOL_V3);
    for (size_t i = 0; i < n; i++) {
        /* An empty name would end the list early and make the rest look like trailing bytes. */
        if (!names[i] || !names[i][0] || !values[i]) {
            w->failed = true;
            break;
        }
        wr_cstr(w, names[i]);
        wr_cstr(w, values[i]);
    }
    wr_u8(w, 0);
    wr_end(w);
}
