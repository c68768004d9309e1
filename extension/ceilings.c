/*
 * Ceilings: once pgmesh.apply() has set a limit in this backend, a top-level SET at or below it
 * passes and every other change is refused: SET/RESET below the top level (SQL functions,
 * procedures, DO, plpgsql EXECUTE), set_config and function SET clauses (through the setting's
 * check hook, wrapped here), and RESET ALL / DISCARD ALL put the ceilings back afterwards.
 * It must not refuse what PostgreSQL does by itself: config file, role and database defaults,
 * startup options, validation (PGC_S_TEST) and transaction rollback.
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/memutils.h"

#include "ceilings.h"

/* Settings pgmesh has set at least once in this backend; enough for every sensible pin list. */
#define MAX_SLOTS 16

union guc_value
{
	bool		b;
	int			i;				/* int and enum */
	double		r;
	char	   *s;
};

struct slot
{
	struct config_generic *gen;
	union
	{
		GucBoolCheckHook b;
		GucIntCheckHook i;
		GucRealCheckHook r;
		GucStringCheckHook s;
		GucEnumCheckHook e;
	}			orig;			/* the setting's own check hook, called first */
	bool		has_ceiling;
	union guc_value ceiling;	/* string: in TopMemoryContext */
	char	   *ceiling_text;	/* as pgmesh sent it, for messages and restoring */
};

static struct slot slots[MAX_SLOTS];
static int	n_slots;
static bool any_ceiling;

/* pgmesh's own changes (apply, restoring after RESET ALL) pass the checks. */
static int	bypass_depth;

/* A top-level SET of one setting is running: the check hook compares against the ceiling. */
static bool in_toplevel_set;

static ProcessUtility_hook_type prev_utility;

static void
current_value(const struct slot *s, union guc_value *out)
{
	switch (s->gen->vartype)
	{
		case PGC_BOOL:
			out->b = *((struct config_bool *) s->gen)->variable;
			break;
		case PGC_INT:
			out->i = *((struct config_int *) s->gen)->variable;
			break;
		case PGC_REAL:
			out->r = *((struct config_real *) s->gen)->variable;
			break;
		case PGC_STRING:
			out->s = *((struct config_string *) s->gen)->variable;
			break;
		case PGC_ENUM:
			out->i = *((struct config_enum *) s->gen)->variable;
			break;
	}
}

/*
 * Int settings where one value means "no limit", above any ceiling: 0 for timeouts, -1 for
 * temp_file_limit. Other ints, and reals, are ordered plainly; bool, enum and string settings
 * have no order, so only the pinned value itself is within.
 */
static bool
int_unlimited_value(const char *name, int *unlimited)
{
	size_t		len = strlen(name);

	if (len >= 8 && pg_strcasecmp(name + len - 8, "_timeout") == 0)
	{
		*unlimited = 0;
		return true;
	}
	if (pg_strcasecmp(name, "temp_file_limit") == 0)
	{
		*unlimited = -1;
		return true;
	}
	return false;
}

static bool
within(const struct slot *s, const union guc_value *v)
{
	const union guc_value *c = &s->ceiling;
	int			unlimited;

	switch (s->gen->vartype)
	{
		case PGC_BOOL:
			return v->b == c->b;
		case PGC_INT:
			if (int_unlimited_value(s->gen->name, &unlimited))
			{
				if (c->i == unlimited)
					return true;
				if (v->i == unlimited)
					return false;
			}
			return v->i <= c->i;
		case PGC_REAL:
			return v->r <= c->r;
		case PGC_STRING:
			return v->s != NULL && c->s != NULL && strcmp(v->s, c->s) == 0;
		case PGC_ENUM:
			return v->i == c->i;
	}
	return false;
}

static bool
same_value(const struct slot *s, const union guc_value *a, const union guc_value *b)
{
	switch (s->gen->vartype)
	{
		case PGC_BOOL:
			return a->b == b->b;
		case PGC_INT:
		case PGC_ENUM:
			return a->i == b->i;
		case PGC_REAL:
			return a->r == b->r;
		case PGC_STRING:
			if (a->s == NULL || b->s == NULL)
				return a->s == b->s;
			return strcmp(a->s, b->s) == 0;
	}
	return false;
}

#define NESTED_DETAIL \
	"pgmesh sets this connection's limits; only a top-level SET at or below them can change " \
	"them, not set_config, function SET clauses, or SET and RESET inside functions, " \
	"procedures and DO blocks."

/*
 * The common part of every wrapped check hook. Sources below PGC_S_SESSION are the config file,
 * defaults, role/database settings, startup options and PGC_S_TEST validation (CREATE FUNCTION
 * ... SET, ALTER ROLE ... SET, which change nothing now); SET, set_config and function SET
 * clauses all arrive as PGC_S_SESSION.
 */
static bool
may_set(const struct slot *s, const union guc_value *v, GucSource source)
{
	if (!s->has_ceiling || bypass_depth > 0 || source < PGC_S_SESSION)
		return true;
	if (!in_toplevel_set)
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("pgmesh: \"%s\" can only be changed by a top-level SET", s->gen->name);
		GUC_check_errdetail(NESTED_DETAIL);
		return false;
	}
	if (!within(s, v))
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("pgmesh: \"%s\" cannot be set above %s", s->gen->name, s->ceiling_text);
		GUC_check_errdetail("pgmesh set %s = %s for this connection.", s->gen->name,
							s->ceiling_text);
		return false;
	}
	return true;
}

static bool
check_bool(int n, bool *newval, void **extra, GucSource source)
{
	union guc_value v;

	if (slots[n].orig.b && !slots[n].orig.b(newval, extra, source))
		return false;
	v.b = *newval;
	return may_set(&slots[n], &v, source);
}

static bool
check_int(int n, int *newval, void **extra, GucSource source)
{
	union guc_value v;

	if (slots[n].orig.i && !slots[n].orig.i(newval, extra, source))
		return false;
	v.i = *newval;
	return may_set(&slots[n], &v, source);
}

static bool
check_real(int n, double *newval, void **extra, GucSource source)
{
	union guc_value v;

	if (slots[n].orig.r && !slots[n].orig.r(newval, extra, source))
		return false;
	v.r = *newval;
	return may_set(&slots[n], &v, source);
}

static bool
check_string(int n, char **newval, void **extra, GucSource source)
{
	union guc_value v;

	if (slots[n].orig.s && !slots[n].orig.s(newval, extra, source))
		return false;
	v.s = *newval;
	return may_set(&slots[n], &v, source);
}

static bool
check_enum(int n, int *newval, void **extra, GucSource source)
{
	union guc_value v;

	if (slots[n].orig.e && !slots[n].orig.e(newval, extra, source))
		return false;
	v.i = *newval;
	return may_set(&slots[n], &v, source);
}

/*
 * A check hook is not told which setting it checks, so each slot gets its own small wrapper
 * per type that passes its slot number on.
 */
#define SLOT_HOOKS(n) \
	static bool hook_bool_##n(bool *v, void **x, GucSource s) { return check_bool(n, v, x, s); } \
	static bool hook_int_##n(int *v, void **x, GucSource s) { return check_int(n, v, x, s); } \
	static bool hook_real_##n(double *v, void **x, GucSource s) { return check_real(n, v, x, s); } \
	static bool hook_string_##n(char **v, void **x, GucSource s) { return check_string(n, v, x, s); } \
	static bool hook_enum_##n(int *v, void **x, GucSource s) { return check_enum(n, v, x, s); }

SLOT_HOOKS(0) SLOT_HOOKS(1) SLOT_HOOKS(2) SLOT_HOOKS(3) SLOT_HOOKS(4) SLOT_HOOKS(5)
SLOT_HOOKS(6) SLOT_HOOKS(7) SLOT_HOOKS(8) SLOT_HOOKS(9) SLOT_HOOKS(10) SLOT_HOOKS(11)
SLOT_HOOKS(12) SLOT_HOOKS(13) SLOT_HOOKS(14) SLOT_HOOKS(15)

#define SLOT_HOOK_TABLE(kind) \
	{ kind##_0, kind##_1, kind##_2, kind##_3, kind##_4, kind##_5, kind##_6, kind##_7, \
	  kind##_8, kind##_9, kind##_10, kind##_11, kind##_12, kind##_13, kind##_14, kind##_15 }

static const GucBoolCheckHook bool_hooks[MAX_SLOTS] = SLOT_HOOK_TABLE(hook_bool);
static const GucIntCheckHook int_hooks[MAX_SLOTS] = SLOT_HOOK_TABLE(hook_int);
static const GucRealCheckHook real_hooks[MAX_SLOTS] = SLOT_HOOK_TABLE(hook_real);
static const GucStringCheckHook string_hooks[MAX_SLOTS] = SLOT_HOOK_TABLE(hook_string);
static const GucEnumCheckHook enum_hooks[MAX_SLOTS] = SLOT_HOOK_TABLE(hook_enum);

/* find_option() is static in PostgreSQL 15; the table is a few hundred entries. */
static struct config_generic *
find_setting(const char *name)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	int			i;

	for (i = 0; i < n; i++)
		if (pg_strcasecmp(vars[i]->name, name) == 0 &&
			(vars[i]->flags & GUC_CUSTOM_PLACEHOLDER) == 0)
			return vars[i];
	return NULL;
}

/* The slot for name, wrapping the setting's check hook the first time. */
static struct slot *
slot_for(const char *name)
{
	struct config_generic *gen;
	struct slot *s;
	int			i;

	for (i = 0; i < n_slots; i++)
		if (pg_strcasecmp(slots[i].gen->name, name) == 0)
			return &slots[i];
	gen = find_setting(name);
	if (gen == NULL)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("pgmesh: unrecognized configuration parameter \"%s\"", name)));
	if (n_slots == MAX_SLOTS)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("pgmesh: more than %d limit settings", MAX_SLOTS),
						errhint("Shorten pgmesh.pinned_settings.")));
	s = &slots[n_slots];
	memset(s, 0, sizeof(*s));
	s->gen = gen;
	switch (gen->vartype)
	{
		case PGC_BOOL:
			s->orig.b = ((struct config_bool *) gen)->check_hook;
			((struct config_bool *) gen)->check_hook = bool_hooks[n_slots];
			break;
		case PGC_INT:
			s->orig.i = ((struct config_int *) gen)->check_hook;
			((struct config_int *) gen)->check_hook = int_hooks[n_slots];
			break;
		case PGC_REAL:
			s->orig.r = ((struct config_real *) gen)->check_hook;
			((struct config_real *) gen)->check_hook = real_hooks[n_slots];
			break;
		case PGC_STRING:
			s->orig.s = ((struct config_string *) gen)->check_hook;
			((struct config_string *) gen)->check_hook = string_hooks[n_slots];
			break;
		case PGC_ENUM:
			s->orig.e = ((struct config_enum *) gen)->check_hook;
			((struct config_enum *) gen)->check_hook = enum_hooks[n_slots];
			break;
	}
	n_slots++;
	return s;
}

static void
set_bypassing(const char *name, const char *value, bool change_val)
{
	bypass_depth++;
	PG_TRY();
	{
		(void) set_config_option(name, value, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SET,
								 change_val, ERROR, false);
	}
	PG_FINALLY();
	{
		bypass_depth--;
	}
	PG_END_TRY();
}

static void
forget(struct slot *s)
{
	if (s->gen->vartype == PGC_STRING && s->has_ceiling && s->ceiling.s != NULL)
		pfree(s->ceiling.s);
	if (s->ceiling_text != NULL)
		pfree(s->ceiling_text);
	s->ceiling_text = NULL;
	s->has_ceiling = false;
}

void
ceilings_set(const char *name, const char *value, bool change_val)
{
	struct slot *s = slot_for(name);
	union guc_value now;

	set_bypassing(s->gen->name, value, change_val);
	if (!change_val)
		return;
	/*
	 * The ceiling is not transactional: pgmesh commits apply() in a statement of its own, and a
	 * ceiling left from a rolled-back apply() is still one pgmesh chose.
	 */
	forget(s);
	current_value(s, &now);
	if (s->gen->vartype == PGC_STRING && now.s != NULL)
		now.s = MemoryContextStrdup(TopMemoryContext, now.s);
	s->ceiling = now;
	s->ceiling_text = MemoryContextStrdup(TopMemoryContext, value);
	s->has_ceiling = true;
	any_ceiling = true;
}

void
ceilings_keep_only(char **names, int n)
{
	int			i,
				j;

	for (i = 0; i < n_slots; i++)
	{
		bool		named = false;

		for (j = 0; j < n && !named; j++)
			named = pg_strcasecmp(slots[i].gen->name, names[j]) == 0;
		if (!slots[i].has_ceiling || named)
			continue;
		set_bypassing(slots[i].gen->name, NULL, true);
		forget(&slots[i]);
	}
	any_ceiling = false;
	for (i = 0; i < n_slots; i++)
		any_ceiling |= slots[i].has_ceiling;
}

/* RESET ALL and DISCARD ALL reset without check hooks; this puts every limit back. */
void
ceilings_restore(void)
{
	int			i;

	for (i = 0; i < n_slots; i++)
		if (slots[i].has_ceiling)
			set_bypassing(slots[i].gen->name, slots[i].ceiling_text, true);
}

pg_attribute_noreturn() static void
refuse_nested(const char *what)
{
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					errmsg("pgmesh: %s can only run at the top level once pgmesh has set limits",
						   what),
					errdetail(NESTED_DETAIL)));
}

/*
 * RESET and SET ... TO DEFAULT take the reset value without a check hook, under any name
 * (also old aliases such as sort_mem): after the statement, any limit that changed must be
 * within its ceiling and changed at the top level. The ERROR rolls the change back with the
 * transaction or subtransaction that made it.
 */
static void
check_after_set(const union guc_value *before, bool toplevel)
{
	int			i;

	for (i = 0; i < n_slots; i++)
	{
		struct slot *s = &slots[i];
		union guc_value now;

		if (!s->has_ceiling)
			continue;
		current_value(s, &now);
		if (same_value(s, before + i, &now))
			continue;
		if (!toplevel)
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							errmsg("pgmesh: \"%s\" can only be changed by a top-level SET",
								   s->gen->name),
							errdetail(NESTED_DETAIL)));
		if (!within(s, &now))
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							errmsg("pgmesh: \"%s\" cannot be set above %s", s->gen->name,
								   s->ceiling_text),
							errdetail("The reset value is above what pgmesh set for this "
									  "connection.")));
	}
}

/* The next utility hook (or PostgreSQL's own) with in_toplevel_set as given, restored after. */
static void
run_utility(bool toplevel_set, PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
			ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
			DestReceiver *dest, QueryCompletion *qc)
{
	bool		saved = in_toplevel_set;

	in_toplevel_set = toplevel_set;
	PG_TRY();
	{
		if (prev_utility)
			prev_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
		else
			standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params,
									query_env, dest, qc);
	}
	PG_FINALLY();
	{
		in_toplevel_set = saved;
	}
	PG_END_TRY();
}

static void
pgmesh_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
			   ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
			   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	bool		toplevel = context == PROCESS_UTILITY_TOPLEVEL;
	bool		restore = false;
	union guc_value before[MAX_SLOTS];
	bool		check_after = false;

	if (any_ceiling && IsA(stmt, VariableSetStmt))
	{
		VariableSetStmt *vs = (VariableSetStmt *) stmt;
		int			i;

		if (vs->kind == VAR_RESET_ALL)
		{
			if (!toplevel)
				refuse_nested("RESET ALL");
			restore = true;
		}
		else
		{
			for (i = 0; i < n_slots; i++)
			{
				current_value(&slots[i], &before[i]);
				if (slots[i].gen->vartype == PGC_STRING && before[i].s != NULL)
					before[i].s = pstrdup(before[i].s);
			}
			check_after = true;
		}
	}
	else if (any_ceiling && IsA(stmt, DiscardStmt) && ((DiscardStmt *) stmt)->target == DISCARD_ALL)
		restore = true;

	/* Only the statement's own setting is checked under this flag: SET runs no user code. */
	run_utility(toplevel && check_after, pstmt, query_string, read_only_tree, context, params,
				query_env, dest, qc);

	if (check_after)
		check_after_set(before, toplevel);
	if (restore)
		ceilings_restore();
}

void
ceilings_init(void)
{
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = pgmesh_utility;
}
