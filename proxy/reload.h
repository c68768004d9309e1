/* Config reload, for SIGHUP and the admin console's RELOAD: parse and check the whole file, load
 * the keys and certificate it names, then swap it in for rt.cfg and apply it to the pools and
 * logged-in clients. Either all of it applies or nothing changes. */
#ifndef PGMESH_PROXY_RELOAD_H
#define PGMESH_PROXY_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

/* Re-reads rt.cfg->path. False, with err saying why ("file:line: ..." for a bad file, or which key
 * or certificate file failed), when nothing changed; the caller logs it. On success logs what the
 * reload changed, and by name the keys that need a restart (they keep their running values). */
bool reload_config(char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
