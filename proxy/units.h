/* Numbers as written in the config: counts, durations ("30s", "5min") and sizes ("128MB").
 * Digits and a unit only: no sign, no spaces, no overflow. No I/O. */
#ifndef PGMESH_PROXY_UNITS_H
#define PGMESH_PROXY_UNITS_H

#include <stdbool.h>
#include <stdint.h>

/* A plain non-negative integer: digits only, no sign or spaces, no overflow. */
bool units_parse_count(const char *s, int64_t *out) __attribute__((warn_unused_result));
/* "30s", "10m", "5min", "250ms", "2h", "1d"; a bare number is seconds. */
bool units_parse_duration_ms(const char *s, int64_t *out_ms) __attribute__((warn_unused_result));
/* "128MB", "64kB", "1GB"; a bare number is kB (as PostgreSQL's work_mem). */
bool units_parse_size_kb(const char *s, int64_t *out_kb) __attribute__((warn_unused_result));

#endif
