/* [roles] lines: "jwt_role = server_user=... statement_timeout=30s work_mem=128MB ...". Turns one
 * line's value into a struct role_config (config.h) and compares two. No I/O. */
#ifndef PGMESH_PROXY_ROLES_H
#define PGMESH_PROXY_ROLES_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/config.h"

/* Parses a [roles] value into r (opts is modified); *server_user points into opts. False with
 * err set on an unknown key, a repeated key, a bad value or a missing server_user. */
bool roles_parse_options(char *opts, struct role_config *r, const char **server_user, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The entry for role name with options value: *out gets its own copies of name and server_user,
 * which config_free frees once the entry is in a config. False with err set ("role \"x\": why" or
 * out of memory); *out is then untouched. */
bool roles_make_entry(const char *name, const char *value, struct role_config *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Same server_user and the same value for every role option (the names are not compared). */
bool roles_equal(const struct role_config *a, const struct role_config *b);

#endif
