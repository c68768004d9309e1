/* The [pgmesh] and [jwt] keys: one table gives each key's section, name, type, default, bounds,
 * whether a reload applies it, and one line of doc. Defaults, parsing, SHOW CONFIG, the README
 * reference and reload's restart-key handling all read it. Values live in struct config (config.h). */
#ifndef PGMESH_PROXY_CONFIG_KEYS_H
#define PGMESH_PROXY_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "proxy/config.h"

/* Room the loader keeps per key (the line each was set on); the table is checked against it at
 * compile time. */
#define CONFIG_KEYS_MAX 64

/* One documented key of [pgmesh] or [jwt], from the key table: for SHOW CONFIG, the README
 * reference and tests. Pointers are static. */
struct config_key_doc {
    const char *section;
    const char *name;
    const char *default_value; /* as it would be written in the file; "" means empty */
    bool reloadable;           /* false: a changed value takes effect only after a restart */
    const char *doc;           /* one line, no final period */
};

size_t config_keys_count(void);
/* NULL when i >= config_keys_count(). */
const struct config_key_doc *config_keys_doc(size_t i);

/* For the loader. Sets every key of cfg to its default, so a key absent from the file is still set.
 * False with err ("default of key: why") when a default is invalid or memory runs out; cfg may then
 * hold some values, which config_keys_destroy frees. */
bool config_keys_init(struct config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Frees what the keys hold in cfg (strings, the compiled tenant_pattern); not cfg itself. */
void config_keys_destroy(struct config *cfg);
/* The table index of [section] name in *index; false when there is no such key. */
bool config_keys_find(const char *section, const char *name, size_t *index) __attribute__((warn_unused_result));
/* Parses value for key index and stores it in cfg, with any derived field (alg_mask, tenant_regex).
 * False with err set ("invalid ...", "... must be ...") and the field untouched. */
bool config_keys_set(struct config *cfg, size_t index, const char *value, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Key i's value in cfg as it could be written in the file (durations in s, or ms when not whole
 * seconds), cut to len. */
void config_keys_format(const struct config *cfg, size_t i, char *buf, size_t len);
/* Whether name is one of the comma-separated names of list (admin_roles, admin_users). */
bool config_keys_name_listed(const char *list, const char *name);

/* Markdown table of every key (section, key, default, whether a reload applies it, description)
 * for the README. */
void config_keys_print_reference(FILE *out);

/* For a reload: stores in names[] (up to max_names) the keys that differ between old_cfg and
 * new_cfg but are not reloadable; returns how many differ (may exceed max_names). */
size_t config_keys_restart_changes(const struct config *old_cfg, const struct config *new_cfg, const char **names,
                                   size_t max_names);
/* For a reload: gives every key that is not reloadable and differs the value it has in old_cfg, so
 * new_cfg can be swapped in. The names go to names[] as with config_keys_restart_changes and their
 * count to *nkept. False when out of memory: new_cfg may then be part changed, free it. */
bool config_keys_keep_restart(struct config *new_cfg, const struct config *old_cfg, const char **names,
                              size_t max_names, size_t *nkept) __attribute__((warn_unused_result));

#endif
