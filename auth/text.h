/* The one formatter auth/ uses for error and detail texts handed back to callers. */
#ifndef PGMESH_AUTH_TEXT_H
#define PGMESH_AUTH_TEXT_H

#include <stddef.h>

/* vsnprintf into buf; does nothing when buf is NULL or len is 0 (callers may pass no buffer). */
void auth_text(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
