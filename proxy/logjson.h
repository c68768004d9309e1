/* The JSON form of a log line (log_format = json): one object, no newline, always valid JSON
 * however long or odd its strings. Pure: the caller passes the time and writes the bytes. */
#ifndef PGMESH_PROXY_LOGJSON_H
#define PGMESH_PROXY_LOGJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "proxy/log.h"

/* A bounded output buffer. Appends that do not fit leave it as it was and report false; a
 * string that does not fit is cut at a character boundary, closed, and marks it truncated. */
struct logjson_out {
    char *p;
    size_t cap, len;
    bool truncated;
};

/* Appends s (n bytes) as a quoted JSON string: quotes, backslashes and control characters
 * escaped, each byte that is not part of valid UTF-8 replaced by \ufffd. False (nothing
 * appended) when not even "" fits. */
bool logjson_string(struct logjson_out *o, const char *s, size_t n) __attribute__((warn_unused_result));

struct logjson_line {
    struct timespec time; /* wall clock, UTC */
    enum log_level level;
    bool audit;
    const char *event;
    int pid;
    const struct log_who *who;      /* may be NULL */
    const struct log_field *fields; /* may be NULL */
    const char *message;
};

/* Renders the line into buf (at least LOGJSON_MIN bytes); returns its length. A line too long
 * for cap has its message cut and "truncated": true. */
#define LOGJSON_MIN 512
size_t logjson_render(char *buf, size_t cap, const struct logjson_line *line);

#endif
