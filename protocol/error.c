/* ErrorResponse and NoticeResponse: the single builder for every error pgmesh sends a client and
 * the reader for the ones servers send. The builder refuses (sets the writer's failed flag)
 * rather than emit a message without severity, a well-formed SQLSTATE and a primary message.
 * No I/O, no globals. Reference: PostgreSQL documentation, "Error and Notice Message Fields". */
#include "protocol/error.h"

#include <string.h>

#include "protocol/wire.h"

static bool valid_sqlstate(const char *s)
{
    if (!s || strlen(s) != 5)
        return false;
    for (size_t i = 0; i < 5; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

static void field(struct pq_writer *w, char code, const char *value)
{
    if (!value)
        return;
    wr_u8(w, (uint8_t)code);
    wr_cstr(w, value);
}

void error_write(struct pq_writer *w, char type, const struct pq_error *e)
{
    if ((type != BE_ERROR && type != BE_NOTICE) || !e->severity || !e->severity[0] ||
        !valid_sqlstate(e->sqlstate) || !e->message) {
        w->failed = true;
        return;
    }
    wr_begin(w, type);
    field(w, 'S', e->severity);
    field(w, 'V', e->severity); /* the never-localized copy clients since 9.6 prefer */
    field(w, 'C', e->sqlstate);
    field(w, 'M', e->message);
    field(w, 'D', e->detail);
    field(w, 'H', e->hint);
    wr_u8(w, 0);
    wr_end(w);
}

/* A server's fields as read, before the severity is chosen. */
struct fields_read {
    struct pq_error_fields f;
    struct span localized, plain; /* S and V */
};

/* Where a field's value goes (a repeated field overrides, as in libpq); NULL for fields pgmesh
 * does not use: unknown ones must be ignored. */
static struct span *field_slot(struct fields_read *fr, uint8_t code)
{
    switch (code) {
    case 'S':
        return &fr->localized;
    case 'V':
        return &fr->plain;
    case 'C':
        return &fr->f.sqlstate;
    case 'M':
        return &fr->f.message;
    case 'D':
        return &fr->f.detail;
    case 'H':
        return &fr->f.hint;
    default:
        return NULL;
    }
}

bool error_read(const uint8_t *body, size_t len, struct pq_error_fields *out)
{
    struct pq_reader r;
    rd_init(&r, body, len);
    /* Absent fields are empty spans over "" so that p[len] == '\0' holds for every field. */
    const struct span none = {.p = (const uint8_t *)"", .len = 0};
    struct fields_read fr = {{none, none, none, none, none}, none, none};
    for (;;) {
        uint8_t code = rd_u8(&r);
        if (r.bad || code == 0)
            break;
        struct span v = rd_cstr(&r);
        struct span *slot = field_slot(&fr, code);
        if (slot)
            *slot = v;
    }
    if (!rd_finish(&r))
        return false;
    fr.f.severity = fr.plain.len ? fr.plain : fr.localized;
    *out = fr.f;
    return true;
}

void error_rename(struct pq_writer *w, char type, const uint8_t *body, size_t len, const char *from,
                  const char *to)
{
    size_t flen = strlen(from), tlen = strlen(to);
    struct pq_reader r;
    rd_init(&r, body, len);
    wr_begin(w, type);
    for (;;) {
        uint8_t code = rd_u8(&r);
        if (r.bad || code == 0)
            break;
        struct span v = rd_cstr(&r);
        wr_u8(w, code);
        size_t i = 0;
        while (i < v.len) {
            if (flen && v.len - i >= flen && memcmp(v.p + i, from, flen) == 0) {
                wr_bytes(w, to, tlen);
                i += flen;
            } else {
                wr_u8(w, v.p[i++]);
            }
        }
        wr_u8(w, 0);
    }
    wr_u8(w, 0);
    wr_end(w);
    if (!rd_finish(&r))
        w->failed = true;
}
