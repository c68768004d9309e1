/* Clients whose transaction starts are identical (same tenant, role, role settings and
 * application_name) share one built struct txstart: ten thousand idle clients of a few tenants
 * hold a few sets of messages, not one each. Reference-counted; the table is the process's. */
#ifndef PGMESH_PROXY_TXSHARE_H
#define PGMESH_PROXY_TXSHARE_H

#include "proxy/txstart.h"

/* Takes t (built by txstart_for_client) and returns the shared copy holding the same bytes, one
 * reference more: t's own buffers are freed when an equal one is there, else t becomes it. NULL
 * when out of memory (t freed). */
const struct txstart *txshare_intern(struct txstart *t) __attribute__((warn_unused_result));
/* One reference more to a shared transaction start (one txshare_intern returned). */
const struct txstart *txshare_get(const struct txstart *t);
/* Drops a reference; the last one frees it. Accepts NULL. */
void txshare_put(const struct txstart *t);
/* How many distinct transaction starts are held (tests). */
size_t txshare_count(void);

#endif
