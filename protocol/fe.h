/* Frontend messages (client -> server): readers for what pgmesh inspects, writers for what it
 * sends on its own (the transaction-start prefix, reset queries, the head of a Bind it renames).
 * Bodies exclude the 5-byte header. No I/O, no globals. */
#ifndef PGMESH_PROTOCOL_FE_H
#define PGMESH_PROTOCOL_FE_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/buf.h"

struct fe_parse {
    struct span name, query;
    uint16_t nparams;
    struct span param_types; /* nparams * 4 bytes, network order */
};

bool fe_read_password(const uint8_t *body, size_t len, struct span *password) __attribute__((warn_unused_result));
bool fe_read_query(const uint8_t *body, size_t len, struct span *sql) __attribute__((warn_unused_result));
bool fe_read_parse(const uint8_t *body, size_t len, struct fe_parse *out) __attribute__((warn_unused_result));

/* The two names that open a Bind (portal, statement), read from the part of its body that has
 * arrived: FE_HEAD_OK with *used the bytes they take, FE_HEAD_MORE when avail ends first,
 * FE_HEAD_BAD when len (the whole body) ends first. */
enum fe_head { FE_HEAD_OK, FE_HEAD_MORE, FE_HEAD_BAD };
struct fe_bind_head {
    struct span portal, stmt;
    size_t used; /* bytes of the body the two names take */
};
enum fe_head fe_read_bind_names(const uint8_t *body, size_t avail, size_t len, struct span *portal,
                                struct span *stmt, size_t *used) __attribute__((warn_unused_result));
/* A whole Bind, for a client pgmesh answers itself (the admin console): its names, how many
 * parameter values it carries, and its result format codes (each 0, text, or 1, binary). Every
 * byte is checked; values are skipped. */
struct fe_bind {
    struct span portal, stmt;
    uint16_t nparams;
    uint16_t nresult_formats;
    struct span result_formats; /* nresult_formats codes of 2 bytes, network order */
};
bool fe_read_bind(const uint8_t *body, size_t len, struct fe_bind *out) __attribute__((warn_unused_result));
/* The format code of result column i (0 or 1): none given means text, one applies to every
 * column. The caller checks that several are as many as the columns. */
uint16_t fe_bind_result_format(const struct fe_bind *b, uint16_t i);
/* The function OID that opens a FunctionCall body, from the avail bytes of it that have arrived
 * (len: the whole body). False until 4 bytes are there, or when the body is shorter. */
bool fe_read_function_oid(const uint8_t *body, size_t avail, size_t len, uint32_t *oid)
    __attribute__((warn_unused_result));
/* Describe and Close: 'S' (statement) or 'P' (portal), and the name. */
bool fe_read_target(const uint8_t *body, size_t len, char *kind, struct span *name)
    __attribute__((warn_unused_result));

void fe_write_query(struct pq_writer *w, const char *sql);
void fe_write_parse(struct pq_writer *w, const char *stmt_name, const char *sql); /* no param types */
/* A Parse with the client's parameter types: ntypes OIDs of 4 bytes each, network order, as a
 * client's own Parse carried them. */
void fe_write_parse_typed(struct pq_writer *w, const char *stmt_name, struct span query, uint16_t ntypes,
                          const uint8_t *types);
void fe_write_bind_simple(struct pq_writer *w, const char *portal, const char *stmt_name); /* no params */
/* A FunctionCall of the function with this OID, nargs text arguments (no NULLs), the result in
 * text. */
void fe_write_function_call_text(struct pq_writer *w, uint32_t oid, uint16_t nargs, const char *const *values);
/* A Bind with nparams text parameters (no NULLs), results in text. */
void fe_write_bind_text(struct pq_writer *w, const char *portal, const char *stmt_name, uint16_t nparams,
                        const char *const *values);
/* The head of a Bind that names another statement: 'B', a length that also counts the rest_len
 * bytes of the original body after its two names, the portal and stmt_name. The caller then sends
 * those rest_len bytes as they were. A portal holding a NUL fails the writer. */
void fe_write_bind_head(struct pq_writer *w, struct span portal, const char *stmt_name, size_t rest_len);
void fe_write_close(struct pq_writer *w, char kind, const char *name);
void fe_write_describe(struct pq_writer *w, char kind, const char *name);

void fe_write_execute(struct pq_writer *w, const char *portal, uint32_t max_rows);
void fe_write_sync(struct pq_writer *w);
void fe_write_flush(struct pq_writer *w);
void fe_write_terminate(struct pq_writer *w);
void fe_write_password(struct pq_writer *w, const char *password);

#endif
