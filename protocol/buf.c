/* Bounded reader and writer for protocol messages. The reader never reads past its length: every
 * getter checks what is left and, on overrun, returns zero and sets the sticky `bad` flag. The
 * writer never writes past its capacity: overflow, allocation failure or misuse sets the sticky
 * `failed` flag. No I/O, no globals, no logging. */
#include "protocol/buf.h"

#include <stdlib.h>
#include <string.h>

/* Spans handed out on failure point here so that the p[len] == '\0' promise still holds. */
static const uint8_t empty_cstr[1] = {0};

static struct span empty_span(void)
{
    return (struct span){.p = empty_cstr, .len = 0};
}

bool span_eq(struct span s, const char *cstr)
{
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.p, cstr, n) == 0);
}

static uint8_t ascii_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

bool span_ieq(struct span s, const char *cstr)
{
    size_t n = strlen(cstr);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(s.p[i]) != ascii_lower((uint8_t)cstr[i]))
            return false;
    return true;
}

void rd_init(struct pq_reader *r, const void *p, size_t len)
{
    /* NULL becomes an empty buffer so that no getter ever does arithmetic on a null pointer. */
    r->p = p ? p : empty_cstr;
    r->len = p ? len : 0;
    r->pos = 0;
    r->bad = false;
}

/* True when n more bytes may be read; marks the reader bad otherwise. */
static bool rd_have(struct pq_reader *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        return false;
    }
    return true;
}

uint8_t rd_u8(struct pq_reader *r)
{
    if (!rd_have(r, 1))
        return 0;
    return r->p[r->pos++];
}

uint16_t rd_u16(struct pq_reader *r)
{
    if (!rd_have(r, 2))
        return 0;
    const uint8_t *q = r->p + r->pos;
    r->pos += 2;
    return (uint16_t)((uint16_t)q[0] << 8 | q[1]);
}

uint32_t rd_u32(struct pq_reader *r)
{
    if (!rd_have(r, 4))
        return 0;
    const uint8_t *q = r->p + r->pos;
    r->pos += 4;
    return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
}

int32_t rd_i32(struct pq_reader *r)
{
    uint32_t u = rd_u32(r);
    /* Two's complement conversion without implementation-defined behaviour. */
    if (u <= INT32_MAX)
        return (int32_t)u;
    return (int32_t)(u - 2147483648u) - INT32_MAX - 1;
}

struct span rd_cstr(struct pq_reader *r)
{
    if (r->bad)
        return empty_span();
    const uint8_t *start = r->p + r->pos;
    const uint8_t *nul = memchr(start, 0, r->len - r->pos);
    if (!nul) {
        r->bad = true;
        return empty_span();
    }
    size_t n = (size_t)(nul - start);
    r->pos += n + 1;
    return (struct span){.p = start, .len = n};
}

struct span rd_bytes(struct pq_reader *r, size_t n)
{
    if (!rd_have(r, n))
        return empty_span();
    struct span s = {.p = r->p + r->pos, .len = n};
    r->pos += n;
    return s;
}

size_t rd_remaining(const struct pq_reader *r)
{
    return r->bad ? 0 : r->len - r->pos;
}

bool rd_finish(const struct pq_reader *r)
{
    return !r->bad && r->pos == r->len;
}

void wr_init_fixed(struct pq_writer *w, void *buf, size_t cap)
{
    *w = (struct pq_writer){.p = buf, .cap = buf ? cap : 0, .msg_start = SIZE_MAX};
}

void wr_init_dynamic(struct pq_writer *w)
{
    *w = (struct pq_writer){.msg_start = SIZE_MAX, .dynamic = true};
}

void wr_destroy(struct pq_writer *w)
{
    if (!w)
        return;
    if (w->dynamic)
        free(w->p);
    bool dynamic = w->dynamic;
    *w = (struct pq_writer){.msg_start = SIZE_MAX, .dynamic = dynamic};
}

void wr_reset(struct pq_writer *w)
{
    w->len = 0;
    w->failed = false;
    w->msg_start = SIZE_MAX;
}

/* Makes room for n more bytes, growing a dynamic buffer; false (and failed) when impossible. */
static bool wr_room(struct pq_writer *w, size_t n)
{
    if (w->failed)
        return false;
    if (n <= w->cap - w->len)
        return true;
    if (!w->dynamic || n > SIZE_MAX / 2 - w->len) {
        w->failed = true;
        return false;
    }
    size_t want = w->len + n;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < want)
        cap *= 2;
    uint8_t *p = realloc(w->p, cap);
    if (!p) {
        w->failed = true;
        return false;
    }
    w->p = p;
    w->cap = cap;
    return true;
}

static void put_u32_at(uint8_t *q, uint32_t v)
{
    q[0] = (uint8_t)(v >> 24);
    q[1] = (uint8_t)(v >> 16);
    q[2] = (uint8_t)(v >> 8);
    q[3] = (uint8_t)v;
}

void wr_begin(struct pq_writer *w, char type)
{
    if (w->msg_start != SIZE_MAX) { /* messages do not nest: a caller bug, caught once at wr_ok */
        w->failed = true;
        return;
    }
    if (!wr_room(w, type ? 5 : 4))
        return;
    if (type)
        w->p[w->len++] = (uint8_t)type;
    w->msg_start = w->len;
    put_u32_at(w->p + w->len, 0);
    w->len += 4;
}

void wr_u8(struct pq_writer *w, uint8_t v)
{
    if (wr_room(w, 1))
        w->p[w->len++] = v;
}

void wr_u16(struct pq_writer *w, uint16_t v)
{
    if (!wr_room(w, 2))
        return;
    w->p[w->len++] = (uint8_t)(v >> 8);
    w->p[w->len++] = (uint8_t)v;
}

void wr_u32(struct pq_writer *w, uint32_t v)
{
    if (!wr_room(w, 4))
        return;
    put_u32_at(w->p + w->len, v);
    w->len += 4;
}

void wr_i32(struct pq_writer *w, int32_t v)
{
    wr_u32(w, (uint32_t)v);
}

void wr_bytes(struct pq_writer *w, const void *p, size_t n)
{
    if (n == 0 || !wr_room(w, n))
        return;
    memcpy(w->p + w->len, p, n);
    w->len += n;
}

void wr_cstr(struct pq_writer *w, const char *s)
{
    if (!s) {
        w->failed = true;
        return;
    }
    wr_bytes(w, s, strlen(s) + 1);
}

void wr_cstrn(struct pq_writer *w, const char *s, size_t n)
{
    /* An embedded NUL would end the string early on the wire and turn the rest into other fields. */
    if ((n && !s) || (n && memchr(s, 0, n))) {
        w->failed = true;
        return;
    }
    if (!wr_room(w, n + 1))
        return;
    wr_bytes(w, s, n);
    wr_u8(w, 0);
}

void wr_end_head(struct pq_writer *w, size_t rest_len)
{
    if (w->msg_start == SIZE_MAX) {
        w->failed = true;
        return;
    }
    size_t start = w->msg_start;
    w->msg_start = SIZE_MAX;
    if (w->failed)
        return;
    size_t n = w->len - start; /* the length word counts itself */
    if (n > UINT32_MAX || rest_len > UINT32_MAX - n) {
        w->failed = true;
        return;
    }
    put_u32_at(w->p + start, (uint32_t)(n + rest_len));
}

void wr_end(struct pq_writer *w)
{
    wr_end_head(w, 0);
}
