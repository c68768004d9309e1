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

/* Every limit back at its ceiling, as after RESET ALL (which runs no check hooks). */
extern void ceilings_restore(void);

#endif
