/* [roles] lines: "jwt_role = server_user=... statement_timeout=30s work_mem=128MB pin.x=y ...".
 * Turns one line's value into a struct role_config (config.h) and compares two. No I/O. */
#ifndef PGMESH_PROXY_ROLES_H
#define PGMESH_PROXY_ROLES_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/config.h"

/* What a [roles] value names, as views into the options text it was parsed from. */
struct role_text {
    const char *server_user;
    struct {
        const char *name, *value; /* pin.<name>=<value> */
    } pins[ROLE_PINS_MAX];
    size_t npins;
};

/* Parses a [roles] value: the numbers into r, the names into *text, which points into opts
 * (modified). False with err set on an unknown key, a repeated key, a bad value, a pinned setting
 * pgmesh manages or follows itself, too many pins or a missing server_user. */
bool roles_parse_options(char *opts, struct role_config *r, struct role_text *text, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The entry for role name with options value: *out gets its own copies of every string, which
 * roles_free_entry (config_free, once the entry is in a config) frees. False with err set
 * ("role \"x\": why" or out of memory); *out is then untouched. */
bool roles_make_entry(const char *name, const char *value, struct role_config *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Frees what roles_make_entry allocated and zeroes *r; accepts NULL. */
void roles_free_entry(struct role_config *r);
/* Same server_user, the same value for every role option and the same pins in the same order
 * (the names are not compared). */
bool roles_equal(const struct role_config *a, const struct role_config *b);

#endif
