/* SQL literal and identifier quoting: the only way a value from a token or a client reaches SQL
 * text that pgmesh sends. Output is correct whatever standard_conforming_strings is. */
#ifndef PGMESH_PROTOCOL_QUOTE_H
#define PGMESH_PROTOCOL_QUOTE_H

#include <stdbool.h>
#include <stddef.h>

/* Writes a NUL-terminated literal for src[0..len) into dst: 'a''b', or E'a\\b''c' when src has a
 * backslash. Returns false (dst untouched beyond cap) if src holds a NUL byte, is not valid UTF-8,
 * or the result does not fit in cap. */
bool quote_literal(char *dst, size_t cap, const char *src, size_t len) __attribute__((warn_unused_result));
/* Same for a double-quoted identifier: "a""b". */
bool quote_ident(char *dst, size_t cap, const char *src, size_t len) __attribute__((warn_unused_result));

#endif
