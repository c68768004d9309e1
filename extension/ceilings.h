/*
 * Ceilings on limit settings (statement_timeout, work_mem, pgmesh.pinned_settings): the value
 * pgmesh.apply() last set is the most any other path may set in this backend. Nothing is
 * refused before the first ceiling, and parallel workers never get one.
 */
#ifndef PGMESH_CEILINGS_H
#define PGMESH_CEILINGS_H

#include "postgres.h"

/* Installs the utility hook; from _PG_init only. */
extern void ceilings_init(void);

/*
 * Checks (change_val false) or sets (true) a limit setting as pgmesh: past the ceiling checks,
 * with PGC_SUSET, transactional like SET. When set, the new value becomes the ceiling. Unknown
 * settings and bad values are ERROR.
 */
extern void ceilings_set(const char *name, const char *value, bool change_val);

/*
 * Every limit with a ceiling that names[0..n-1] does not name back at the session's default, with
 * no ceiling: the session passes to a role without that limit, and RESET ALL or DISCARD ALL put
 * the previous role's value back (ceilings_restore). Those it names are set next: resetting
 * them too would only cost time. With no ceiling left, nothing is refused, as before the first.
 */
extern void ceilings_keep_only(char **names, int n);

/* Every limit back at its ceiling, as after RESET ALL (which runs no check hooks). */
extern void ceilings_restore(void);

#endif
