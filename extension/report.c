/*
 * Session-change reports for pgmesh. At each commit the backend fingerprints every setting whose
 * value this session SET (source PGC_S_SESSION), names and values, and when the fingerprint
 * differs from the last commit's it raises pgmesh.session_changes, a GUC_REPORT setting: the
 * server sends its new value in a ParameterStatus before ReadyForQuery, so pgmesh learns that the
 * server connection holds settings it did not put there, however they were made (a SQL function
 * running SET search_path, set_config in a view, a RESET). pgmesh then discards the session before
 * another client gets it and sets the claims and limits again. The report is not transactional
 * (as in_hot_standby's): a rolled-back transaction changed nothing, and reaches no commit.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"

#include "report.h"

#define FNV_OFFSET UINT64CONST(0xcbf29ce484222325)
#define FNV_PRIME UINT64CONST(0x100000001b3)

static char *changes_value;
static uint64 last_fingerprint = FNV_OFFSET;	/* what a session with nothing SET hashes to */
static uint64 changes;

static uint64
mix(uint64 h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t		i;

	for (i = 0; i < n; i++)
		h = (h ^ b[i]) * FNV_PRIME;
	return h;
}

static uint64
mix_value(uint64 h, const struct config_generic *g)
{
	switch (g->vartype)
	{
		case PGC_BOOL:
			return mix(h, ((const struct config_bool *) g)->variable, sizeof(bool));
		case PGC_INT:
			return mix(h, ((const struct config_int *) g)->variable, sizeof(int));
		case PGC_REAL:
			return mix(h, ((const struct config_real *) g)->variable, sizeof(double));
		case PGC_ENUM:
			return mix(h, ((const struct config_enum *) g)->variable, sizeof(int));
		case PGC_STRING:
			{
				const char *v = *((const struct config_string *) g)->variable;

				return v ? mix(h, v, strlen(v) + 1) : mix(h, "", 1);
			}
	}
	return h;
}

/*
 * Settings this session SET, in the order PostgreSQL keeps them (sorted by name). A SET LOCAL
 * alone ends with the transaction and is left out; one over a SET counts as a change, which is
 * only a report too many.
 */
static uint64
session_fingerprint(void)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	uint64		h = FNV_OFFSET;
	int			i;

	for (i = 0; i < n; i++)
	{
		const struct config_generic *g = vars[i];

		if (g->source != PGC_S_SESSION || (g->stack != NULL && g->stack->state == GUC_LOCAL))
			continue;
		h = mix(h, g->name, strlen(g->name) + 1);
		h = mix_value(h, g);
	}
	return h;
}

static void
report_at_commit(XactEvent event, void *arg)
{
	uint64		now;
	char		value[32];

	if (event != XACT_EVENT_COMMIT || IsParallelWorker())
		return;
	now = session_fingerprint();
	if (now == last_fingerprint)
		return;
	last_fingerprint = now;
	snprintf(value, sizeof(value), UINT64_FORMAT, ++changes);
	/* PGC_S_OVERRIDE makes it the default: kept whatever the transaction's fate, like a report. */
	SetConfigOption(REPORT_SETTING, value, PGC_INTERNAL, PGC_S_OVERRIDE);
}

void
report_init(void)
{
	DefineCustomStringVariable(REPORT_SETTING,
							   "Counts the transactions that changed this session's settings.",
							   "pgmesh reads it to know when a pooled connection holds "
							   "settings it did not set.",
							   &changes_value, "0", PGC_INTERNAL,
							   GUC_REPORT | GUC_NOT_IN_SAMPLE | GUC_NO_RESET_ALL, NULL, NULL, NULL);
	RegisterXactCallback(report_at_commit, NULL);
}
