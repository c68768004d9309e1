/* Frontend messages: readers for the ones pgmesh inspects (password, Query, Parse) and writers for
 * the ones it sends itself. Readers demand that every byte is consumed, as PostgreSQL does, and
 * write their outputs only on success; the views point into the caller's body. No I/O, no globals.
 * Reference: PostgreSQL documentation, "Message Formats". */
#include "protocol/fe.h"

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
