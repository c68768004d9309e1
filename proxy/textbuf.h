/* A growable NUL-terminated text that records a failed allocation instead of returning it, so that
 * a builder appends freely and checks once at the end (clamp.c's rewritten statements, txstart.c's
 * transaction starts). */
#ifndef PGMESH_PROXY_TEXTBUF_H
#define PGMESH_PROXY_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct textbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

/* Appends s[0..n); the buffer grows by doubling, not per piece (logins build many small ones). */
static inline void textbuf_put(struct textbuf *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 128;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

#endif
