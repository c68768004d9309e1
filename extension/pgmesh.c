/*
 * pgmesh server extension: the claim settings (request.jwt.claim.tenant, .role, .claims) are
 * superuser-only, so no SQL a reader writes, at any depth, can change them; pgmesh sets them and
 * the per-role limits through pgmesh.apply(), with a MAC under a key shared with pgmesh, bound
 * to this backend's nonce and an increasing counter, so a message seen in pg_stat_activity is
 * useless. Nothing a client can write (a setting, a table, SQL text) decides what passes.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/sequence.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/portal.h"
#include "utils/varlena.h"

#include "ceilings.h"
#include "mac.h"
#include "report.h"

PG_MODULE_MAGIC;

#define PGMESH_VERSION "1.1"
#define NONCE_BYTES 16

static const char *const claim_names[] = {
	"request.jwt.claim.tenant",
	"request.jwt.claim.role",
	"request.jwt.claims",
};
#define N_CLAIMS lengthof(claim_names)

/* Limits pgmesh always manages; pgmesh.pinned_settings adds more. */
static const char *const limit_names[] = {"statement_timeout", "work_mem"};

static char *claim_values[N_CLAIMS];
static char *key_file;
static char *pinned_settings;

/* Per backend: made on first use (never in the postmaster, whose children would share it). */
static char nonce_hex[NONCE_BYTES * 2 + 1];
static int64 last_counter;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(pgmesh_nonce);
PG_FUNCTION_INFO_V1(pgmesh_apply);
PG_FUNCTION_INFO_V1(pgmesh_switch);
PG_FUNCTION_INFO_V1(pgmesh_clear);
PG_FUNCTION_INFO_V1(pgmesh_version);

/*
 * Whether a library list setting names this library. Being loaded while session_preload_libraries
 * names it means being loaded by it: once loaded, a library is never loaded again.
 */
static bool
listed_in(const char *setting)
{
	const char *value = GetConfigOption(setting, true, false);
	char	   *copy;
	List	   *libs;
	ListCell   *lc;
	bool		found = false;

	if (value == NULL)
		return false;
	copy = pstrdup(value);
	if (SplitDirectoriesString(copy, ',', &libs))
	{
		foreach(lc, libs)
		{
			const char *lib = lfirst(lc);
			const char *base = strrchr(lib, '/') ? strrchr(lib, '/') + 1 : lib;

			if (strcmp(base, "pgmesh") == 0 || strcmp(base, "pgmesh" DLSUFFIX) == 0)
				found = true;
		}
	}
	list_free_deep(libs);
	pfree(copy);
	return found;
}

void
_PG_init(void)
{
	int			i;

	/*
	 * Loaded on demand (a C function's first call), the library would come after a reader's own
	 * placeholders and be missing from the next backend: only the preload settings, both
	 * superuser-only, give every backend the protection from its start. Parallel workers load
	 * what their leader had.
	 */
	if (!process_shared_preload_libraries_in_progress && !IsParallelWorker() &&
		!listed_in("session_preload_libraries"))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgmesh must be loaded through shared_preload_libraries or "
						"session_preload_libraries"),
				 errhint("Add pgmesh to shared_preload_libraries in postgresql.conf and restart.")));

	for (i = 0; i < (int) N_CLAIMS; i++)
		DefineCustomStringVariable(claim_names[i],
								   "Claim set by pgmesh for the current client.",
								   "Only superusers and pgmesh.apply() can set it.",
								   &claim_values[i], "", PGC_SUSET,
								   GUC_NO_RESET_ALL | GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	/*
	 * No MarkGUCPrefixReserved("request.jwt"): PostgreSQL 15 reserves by the part before the
	 * first dot only, so it would reserve nothing, and reserving "request" would break
	 * PostgREST's request.headers and request.method. Policies must read only these three.
	 */

	DefineCustomStringVariable("pgmesh.key_file",
							   "File holding the key shared with pgmesh (hex).",
							   NULL, &key_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("pgmesh.pinned_settings",
							   "Settings besides statement_timeout and work_mem that "
							   "pgmesh.apply() may set and caps, comma-separated.",
							   NULL, &pinned_settings, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("pgmesh");

	ceilings_init();
	report_init();
}

static const char *
backend_nonce(void)
{
	static const char digits[] = "0123456789abcdef";
	uint8		raw[NONCE_BYTES];
	int			i;

	if (nonce_hex[0] != '\0')
		return nonce_hex;
	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
						errmsg("pgmesh: could not generate a random nonce")));
	for (i = 0; i < NONCE_BYTES; i++)
	{
		nonce_hex[2 * i] = digits[raw[i] >> 4];
		nonce_hex[2 * i + 1] = digits[raw[i] & 0xf];
	}
	nonce_hex[2 * NONCE_BYTES] = '\0';
	return nonce_hex;
}

static bool
is_claim(const char *name)
{
	int			i;

	for (i = 0; i < (int) N_CLAIMS; i++)
		if (pg_strcasecmp(name, claim_names[i]) == 0)
			return true;
	return false;
}

static bool
is_limit(const char *name)
{
	char	   *copy;
	List	   *names;
	ListCell   *lc;
	bool		found = false;
	int			i;

	for (i = 0; i < (int) lengthof(limit_names); i++)
		if (pg_strcasecmp(name, limit_names[i]) == 0)
			return true;
	if (pinned_settings == NULL || pinned_settings[0] == '\0')
		return false;
	copy = pstrdup(pinned_settings);
	if (!SplitIdentifierString(copy, ',', &names))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("pgmesh: pgmesh.pinned_settings is not a list of setting names")));
	foreach(lc, names)
		if (pg_strcasecmp(name, (const char *) lfirst(lc)) == 0)
			found = true;
	list_free(names);
	pfree(copy);
	return found;
}

/* Splits the flat name/value array; ERROR 22023 unless it is one-dimensional, even, NULL-free. */
static int
settings_pairs(ArrayType *arr, char ***names, char ***values)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("pgmesh: settings must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n % 2 != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("pgmesh: settings must be name, value pairs")));
	*names = palloc(sizeof(char *) * (n / 2 + 1));
	*values = palloc(sizeof(char *) * (n / 2 + 1));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("pgmesh: settings must not contain NULL")));
		if (i % 2 == 0)
			(*names)[i / 2] = TextDatumGetCString(elems[i]);
		else
			(*values)[i / 2] = TextDatumGetCString(elems[i]);
	}
	return n / 2;
}

static void
set_claim(const char *name, const char *value, bool change_val)
{
	(void) set_config_option(name, value, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SET, change_val,
							 ERROR, false);
}

Datum
pgmesh_nonce(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(backend_nonce()));
}

/* Whether names[0..n) holds name. */
static bool
named(char **names, int n, const char *name)
{
	int			i;

	for (i = 0; i < n; i++)
		if (pg_strcasecmp(names[i], name) == 0)
			return true;
	return false;
}

/* Every claim to its value in the message, "" where the message names none. */
static void
set_claims(char **names, char **values, int n, bool change_val)
{
	int			c,
				i;

	for (c = 0; c < (int) N_CLAIMS; c++)
		if (!named(names, n, claim_names[c]))
			set_claim(claim_names[c], "", change_val);
	for (i = 0; i < n; i++)
		if (is_claim(names[i]))
			set_claim(names[i], values[i], change_val);
}

/*
 * What pgmesh's next client, of another tenant or role, must not inherit from the session:
 * settings (RESET ALL; the caller then sets the new role's limits and drops the ceilings of
 * those it has not, ceilings_keep_only), WITH HOLD cursors (CLOSE ALL; the portal running this
 * call is active and stays), LISTEN, session advisory locks, sequence state, temporary objects.
 * The server's prepared statements stay: pgmesh shares its own between
 * clients, and it ends the session (DISCARD ALL) where a client prepared any of its own. The same
 * as pgmesh's scrub Query, in one call that costs the server a fraction of its six statements.
 */
static void
scrub_session(void)
{
	ResetAllOptions();
	PortalHashTableDeleteAll();
	Async_UnlistenAll();
	LockReleaseSession(USER_LOCKMETHOD);
	ResetSequenceCaches();
	ResetTempTableNamespace();
}

/* application_name goes with the claims when a connection changes hands (pgmesh.switch only). */
static bool
is_session_name(const char *name)
{
	return pg_strcasecmp(name, "application_name") == 0;
}

static void
set_session_names(char **names, char **values, int n, bool change_val)
{
	int			i;

	for (i = 0; i < n; i++)
		if (is_session_name(names[i]))
			(void) set_config_option(names[i], values[i], PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SET, change_val, ERROR, false);
}

static void
apply_checked(FunctionCallInfo fcinfo, bool switching)
{
	int64		counter;
	char	  **names,
			  **values;
	int			n,
				i;
	char		counter_text[32];
	StringInfoData msg;
	const char *nonce = backend_nonce();

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("pgmesh: counter and settings must not be NULL")));
	counter = PG_GETARG_INT64(0);
	n = settings_pairs(PG_GETARG_ARRAYTYPE_P(1), &names, &values);

	initStringInfo(&msg);
	mac_message_begin(&msg);
	mac_message_field(&msg, nonce, strlen(nonce));
	snprintf(counter_text, sizeof(counter_text), INT64_FORMAT, counter);
	mac_message_field(&msg, counter_text, strlen(counter_text));
	for (i = 0; i < n; i++)
	{
		mac_message_field(&msg, names[i], strlen(names[i]));
		mac_message_field(&msg, values[i], strlen(values[i]));
	}
	if (!mac_verify(key_file, &msg, PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2))))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("pgmesh: claims message is not authentic")));
	if (counter <= last_counter)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("pgmesh: claims message replayed or out of order")));
	/* Consumed even if what follows fails: an authentic message is good for one try only. */
	last_counter = counter;

	for (i = 0; i < n; i++)
		if (!is_claim(names[i]) && !is_limit(names[i]) && !(switching && is_session_name(names[i])))
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							errmsg("pgmesh: \"%s\" is not a setting pgmesh.apply() may set",
								   names[i]),
							errhint("pgmesh.apply() sets the request.jwt claims, "
									"statement_timeout, work_mem and pgmesh.pinned_settings.")));
	if (switching)
		scrub_session();
	/* Every value is checked before any is set, so a bad one leaves no ceiling behind. */
	set_claims(names, values, n, false);
	set_session_names(names, values, n, false);
	for (i = 0; i < n; i++)
		if (is_limit(names[i]))
			ceilings_set(names[i], values[i], false);
	set_claims(names, values, n, true);
	set_session_names(names, values, n, true);
	ceilings_keep_only(names, n);
	for (i = 0; i < n; i++)
		if (is_limit(names[i]))
			ceilings_set(names[i], values[i], true);
}

/*
 * Any failure ends the backend (FATAL, with the error's code and text). An ERROR would leave the
 * session running with the claims it had before: the previous client's, which the statements
 * pgmesh pipelines behind this call would then run under. It also means a reader calling apply()
 * or switch() with a forged or replayed message loses its own connection, and nothing else.
 */
static void
apply_or_die(FunctionCallInfo fcinfo, bool switching)
{
	MemoryContext caller = CurrentMemoryContext;

	PG_TRY();
	{
		apply_checked(fcinfo, switching);
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(caller);
		e = CopyErrorData();
		FlushErrorState();
		ereport(FATAL,
				(errcode(e->sqlerrcode), errmsg("%s", e->message),
				 e->detail ? errdetail("%s", e->detail) : 0,
				 e->hint ? errhint("%s", e->hint) : 0));
	}
	PG_END_TRY();
}

Datum
pgmesh_apply(PG_FUNCTION_ARGS)
{
	apply_or_die(fcinfo, false);
	PG_RETURN_VOID();
}

/*
 * apply() for a connection passing to a client of another tenant or role: the session is
 * scrubbed first (scrub_session), and the message may also name application_name. The scrub
 * happens only after the message proved authentic, and within the same transaction as the new
 * claims, so there is no moment, committed or not, where the next statement could run with the
 * previous client's state or without claims.
 */
Datum
pgmesh_switch(PG_FUNCTION_ARGS)
{
	apply_or_die(fcinfo, true);
	PG_RETURN_VOID();
}

/*
 * For superusers only (the extension script grants it to nobody): with it, a reader could empty
 * the claims that pgmesh relies on the next client of the same tenant finding here.
 */
Datum
pgmesh_clear(PG_FUNCTION_ARGS)
{
	int			i;

	for (i = 0; i < (int) N_CLAIMS; i++)
		set_claim(claim_names[i], "", true);
	PG_RETURN_VOID();
}

Datum
pgmesh_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(PGMESH_VERSION));
}
