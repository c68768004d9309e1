/* Interned names: the tenant and role claims of logged-in clients. Ten thousand clients of a few
 * tenants hold a few copies of each name, not one per client, and equal names are one pointer.
 * Reference-counted; the table is the process's. */
#ifndef PGMESH_PROXY_NAMES_H
#define PGMESH_PROXY_NAMES_H

#include <stddef.h>

/* The empty name, which holds no reference: what a client has before login. */
extern const char names_empty[];

/* The shared copy of s, one reference more; NULL when out of memory. "" gives names_empty. */
const char *names_get(const char *s) __attribute__((warn_unused_result));
/* Drops a reference; accepts NULL and names_empty. */
void names_put(const char *name);
/* Distinct names held (tests). */
size_t names_count(void);

#endif
