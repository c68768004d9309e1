/* Backend messages (server -> client): writers for what pgmesh answers itself during startup,
 * readers for what it inspects on server links. Bodies exclude the 5-byte header. */
#ifndef PGMESH_PROTOCOL_BE_H
#define PGMESH_PROTOCOL_BE_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/buf.h"

void be_write_auth(struct pq_writer *w, uint32_t code); /* AuthenticationOk, Cleartext */
void be_write_parameter_status(struct pq_writer *w, const char *name, const char *value);
void be_write_backend_key(struct pq_writer *w, uint32_t pid, uint32_t key);
void be_write_ready(struct pq_writer *w, char tx_status);
void be_write_command_complete(struct pq_writer *w, const char *tag);
void be_write_parse_complete(struct pq_writer *w);
void be_write_bind_complete(struct pq_writer *w);
void be_write_close_complete(struct pq_writer *w);
void be_write_no_data(struct pq_writer *w);
void be_write_empty_query(struct pq_writer *w);
/* ParameterDescription of a statement without parameters. */
void be_write_no_parameters(struct pq_writer *w);

/* One column of a result pgmesh answers itself (the admin console): text format, no table. */
struct be_column {
    const char *name;
    uint32_t type_oid; /* BE_TYPE_* */
};
#define BE_TYPE_INT8 20u
#define BE_TYPE_TEXT 25u
/* RowDescription of n columns; formats (NULL: all text) gives each column's format code, 0 text or
 * 1 binary, as a Bind asked for them. */
void be_write_row_description(struct pq_writer *w, const struct be_column *cols, const uint8_t *formats,
                              uint16_t n);
/* DataRow of n values given as text; a NULL pointer is SQL NULL. A column whose format is 1 is
 * sent in binary: int8 as 8 bytes in network order (its text must be a decimal integer, else the
 * writer fails), text as its bytes. formats NULL: all text. */
void be_write_data_row(struct pq_writer *w, const struct be_column *cols, const uint8_t *formats,
                       const char *const *values, uint16_t n);

bool be_read_ready(const uint8_t *body, size_t len, char *tx_status)
    __attribute__((warn_unused_result)); /* I, T or E only */
bool be_read_parameter_status(const uint8_t *body, size_t len, struct span *name, struct span *value)
    __attribute__((warn_unused_result));
bool be_read_command_complete(const uint8_t *body, size_t len, struct span *tag)
    __attribute__((warn_unused_result));
bool be_read_auth(const uint8_t *body, size_t len, uint32_t *code) __attribute__((warn_unused_result));

#endif
