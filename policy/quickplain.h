/* The guard's quick path for the common statement (quickplain.c). */
#ifndef PGMESH_POLICY_QUICKPLAIN_H
#define PGMESH_POLICY_QUICKPLAIN_H

#include <stdbool.h>
#include <stddef.h>

/* True for text that guard_check_sql_plain passes and finds plain, decided in one pass over its
 * bytes without guard.c's token walk; false means "take the walk", not "refused". True only for
 * one statement (a ';' only at its end) with a plain first word, no quote of any kind, no comment,
 * no dollar quote, and none of the words the walk acts on inside such a statement (set_config,
 * pg_settings, and temp, pg_temp, temporary, which make a statement not plain) anywhere in the
 * text, not even inside a longer word. A token is a piece of the text, so no token of such text
 * can be one of those words, and with no quote, comment or second statement the walk would refuse
 * nothing and find it plain. Anything else takes the walk. Most DML, and nearly every statement of
 * the extended protocol ($1 parameters, no literals), passes here: the walk costs ten times as
 * much. */
bool guard_quick_plain(const char *sql, size_t len);

#endif
