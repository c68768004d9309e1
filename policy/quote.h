/* SQL literal and identifier quoting: the only way a value from a token or a client reaches SQL
 * text that pgmesh sends. Output is correct whatever standard_conforming_strings is. */
#ifndef PGMESH_POLICY_QUOTE_H
#define PGMESH_POLICY_QUOTE_H

#include <stdbool.h>
#include <stddef.h>

/* Writes a NUL-terminated literal for src[0..len) into dst: 'a''b', or E'a\\b''c' when src has a
 * backslash. Returns false (dst untouched beyond cap) if src holds a NUL byte, is not valid UTF-8,
 * or the result does not fit in cap. */
bool quote_literal(char *dst, size_t cap, const char *src, size_t len) __attribute__((warn_unused_result));
/* Same for a double-quoted identifier: "a""b". Also returns false for an empty src or one longer
 * than QUOTE_IDENT_MAX_LEN bytes, which PostgreSQL would reject or silently truncate. */
#define QUOTE_IDENT_MAX_LEN 63 /* NAMEDATALEN - 1 in a default PostgreSQL build */
bool quote_ident(char *dst, size_t cap, const char *src, size_t len) __attribute__((warn_unused_result));

#endif
