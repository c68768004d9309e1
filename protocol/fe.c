/* Frontend messages: readers for the ones pgmesh inspects (password, Query, Parse) and writers for
 * the ones it sends itself. Readers demand that every byte is consumed, as PostgreSQL does, and
 * write their outputs only on success; the views point into the caller's body. No I/O, no globals.
 * Reference: PostgreSQL documentation, "Message Formats". */
#include "protocol/fe.h"

#include <string.h>

#include "protocol/wire.h"

bool fe_read_password(const uint8_t *body, size_t len, struct span *password)
{
    struct pq_reader r;
    rd_init(&r, body, len);
    struct span pw = rd_cstr(&r);
    if (!rd_finish(&r))
        return false;
    *password = pw;
    return true;
}

bool fe_read_query(const uint8_t *body, size_t len, struct span *sql)
{
    struct pq_reader r;
    rd_init(&r, body, len);
    struct span q = rd_cstr(&r);
    if (!rd_finish(&r))
        return false;
    *sql = q;
    return true;
}

bool fe_read_parse(const uint8_t *body, size_t len, struct fe_parse *out)
{
    struct pq_reader r;
    rd_init(&r, body, len);
    struct fe_parse p;
    p.name = rd_cstr(&r);
    p.query = rd_cstr(&r);
    p.nparams = rd_u16(&r);
    p.param_types = rd_bytes(&r, (size_t)p.nparams * 4);
    if (!rd_finish(&r))
        return false;
    *out = p;
    return true;
}

static bool cstr_at(const uint8_t *p, size_t avail, size_t *at, struct span *out)
{
    const uint8_t *nul = memchr(p + *at, 0, avail - *at);
    if (!nul)
        return false;
    out->p = p + *at;
    out->len = (size_t)(nul - (p + *at));
    *at += out->len + 1;
    return true;
}

enum fe_head fe_read_bind_names(const uint8_t *body, size_t avail, size_t len, struct span *portal,
                                struct span *stmt, size_t *used)
{
    size_t have = avail < len ? avail : len, at = 0;
    struct span a, b;
    if (!cstr_at(body, have, &at, &a) || !cstr_at(body, have, &at, &b))
        return have < len ? FE_HEAD_MORE : FE_HEAD_BAD;
    *portal = a;
    *stmt = b;
    *used = at;
    return FE_HEAD_OK;
}

bool fe_read_bind(const uint8_t *body, size_t len, struct fe_bind *out)
{
    struct pq_reader r;
    rd_init(&r, body, len);
    struct fe_bind b = {.portal = rd_cstr(&r), .stmt = rd_cstr(&r)};
    uint16_t nformats = rd_u16(&r);
    (void)rd_bytes(&r, (size_t)nformats * 2);
    b.nparams = rd_u16(&r);
    for (uint16_t i = 0; i < b.nparams && !r.bad; i++) {
        int32_t n = rd_i32(&r);
        if (n < -1)
            return false;
        if (n > 0)
            (void)rd_bytes(&r, (size_t)n);
    }
    b.nresult_formats = rd_u16(&r);
    b.result_formats = rd_bytes(&r, (size_t)b.nresult_formats * 2);
    for (uint16_t i = 0; i < b.nresult_formats && !r.bad; i++)
        if (fe_bind_result_format(&b, i) > 1)
            return false;
    if (!rd_finish(&r))
        return false;
    *out = b;
    return true;
}

uint16_t fe_bind_result_format(const struct fe_bind *b, uint16_t i)
{
    if (b->nresult_formats == 0)
        return 0;
    if (b->nresult_formats == 1)
        i = 0;
    if (i >= b->nresult_formats)
        return 0;
    const uint8_t *p = b->result_formats.p + (size_t)i * 2;
    return (uint16_t)(p[0] << 8 | p[1]);
}

bool fe_read_target(const uint8_t *body, size_t len, char *kind, struct span *name)
{
    struct pq_reader r;
    rd_init(&r, body, len);
    uint8_t k = rd_u8(&r);
    struct span n = rd_cstr(&r);
    if (!rd_finish(&r) || (k != 'S' && k != 'P'))
        return false;
    *kind = (char)k;
    *name = n;
    return true;
}

void fe_write_query(struct pq_writer *w, const char *sql)
{
    wr_begin(w, FE_QUERY);
    wr_cstr(w, sql);
    wr_end(w);
}

void fe_write_parse(struct pq_writer *w, const char *stmt_name, const char *sql)
{
    wr_begin(w, FE_PARSE);
    wr_cstr(w, stmt_name);
    wr_cstr(w, sql);
    wr_u16(w, 0); /* no parameter types: the server infers them */
    wr_end(w);
}

void fe_write_parse_typed(struct pq_writer *w, const char *stmt_name, struct span query, uint16_t ntypes,
                          const uint8_t *types)
{
    wr_begin(w, FE_PARSE);
    wr_cstr(w, stmt_name);
    wr_cstrn(w, (const char *)query.p, query.len);
    wr_u16(w, ntypes);
    wr_bytes(w, types, (size_t)ntypes * 4);
    wr_end(w);
}

void fe_write_bind_text(struct pq_writer *w, const char *portal, const char *stmt_name, uint16_t nparams,
                        const char *const *values)
{
    wr_begin(w, FE_BIND);
    wr_cstr(w, portal);
    wr_cstr(w, stmt_name);
    wr_u16(w, 0); /* parameter format codes: all text */
    wr_u16(w, nparams);
    for (uint16_t i = 0; i < nparams; i++) {
        size_t n = strlen(values[i]);
        wr_i32(w, (int32_t)n);
        wr_bytes(w, values[i], n);
    }
    wr_u16(w, 0); /* result format codes: all text */
    wr_end(w);
}

void fe_write_function_call_text(struct pq_writer *w, uint32_t oid, uint16_t nargs, const char *const *values)
{
    wr_begin(w, FE_FUNCTION_CALL);
    wr_u32(w, oid);
    wr_u16(w, 1); /* one format code for every argument: text */
    wr_u16(w, 0);
    wr_u16(w, nargs);
    for (uint16_t i = 0; i < nargs; i++) {
        size_t n = strlen(values[i]);
        wr_i32(w, (int32_t)n);
        wr_bytes(w, values[i], n);
    }
    wr_u16(w, 0); /* the result in text */
    wr_end(w);
}

void fe_write_bind_simple(struct pq_writer *w, const char *portal, const char *stmt_name)
{
    wr_begin(w, FE_BIND);
    wr_cstr(w, portal);
    wr_cstr(w, stmt_name);
    wr_u16(w, 0); /* parameter format codes */
    wr_u16(w, 0); /* parameter values */
    wr_u16(w, 0); /* result format codes: all text */
    wr_end(w);
}

void fe_write_bind_head(struct pq_writer *w, struct span portal, const char *stmt_name, size_t rest_len)
{
    wr_begin(w, FE_BIND);
    wr_cstrn(w, (const char *)portal.p, portal.len);
    wr_cstr(w, stmt_name);
    wr_end_head(w, rest_len);
}

void fe_write_close(struct pq_writer *w, char kind, const char *name)
{
    wr_begin(w, FE_CLOSE);
    wr_u8(w, (uint8_t)kind);
    wr_cstr(w, name);
    wr_end(w);
}

void fe_write_execute(struct pq_writer *w, const char *portal, uint32_t max_rows)
{
    wr_begin(w, FE_EXECUTE);
    wr_cstr(w, portal);
    wr_u32(w, max_rows);
    wr_end(w);
}

void fe_write_sync(struct pq_writer *w)
{
    wr_begin(w, FE_SYNC);
    wr_end(w);
}

void fe_write_flush(struct pq_writer *w)
{
    wr_begin(w, FE_FLUSH);
    wr_end(w);
}

void fe_write_terminate(struct pq_writer *w)
{
    wr_begin(w, FE_TERMINATE);
    wr_end(w);
}

void fe_write_password(struct pq_writer *w, const char *password)
{
    wr_begin(w, FE_PASSWORD);
    wr_cstr(w, password);
    wr_end(w);
}

void fe_write_describe(struct pq_writer *w, char kind, const char *name)
{
    wr_begin(w, FE_DESCRIBE);
    wr_u8(w, (uint8_t)kind);
    wr_cstr(w, name);
    wr_end(w);
}

bool fe_read_function_oid(const uint8_t *body, size_t avail, size_t len, uint32_t *oid)
{
    struct pq_reader r;
    if (avail < 4 || len < 4)
        return false;
    rd_init(&r, body, 4);
    *oid = rd_u32(&r);
    return rd_finish(&r);
}
