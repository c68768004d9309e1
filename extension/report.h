/*
 * Tells pgmesh when a transaction changed the session's settings, whatever did it (SET or RESET at
 * any depth, set_config, a RESET ALL): PostgreSQL 15 reports only a few settings to the client
 * (not search_path), so a function body could leave one behind that pgmesh never sees.
 */
#ifndef PGMESH_EXT_REPORT_H
#define PGMESH_EXT_REPORT_H

/* The setting pgmesh watches (GUC_REPORT): a count of transactions that changed the session. */
#define REPORT_SETTING "pgmesh.session_changes"

void		report_init(void);

#endif
