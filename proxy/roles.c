/* The value grammar of a [roles] line: space-separated key=value pairs (server_user,
 * statement_timeout, work_mem, idle_in_transaction_timeout, max_transaction_age,
 * max_client_conn). Declared in config.h; no I/O. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "proxy/config.h"

bool config_parse_role_options(char *opts, struct role_config *r, const char **server_user, char *err,
                               size_t errlen)
{
    bool seen_timeout = false, seen_mem = false;
    *server_user = NULL;
    for (char *save = NULL, *tok = strtok_r(opts, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || eq[1] == '\0') {
            snprintf(err, errlen, "expected key=value, not \"%s\"", tok);
            return false;
        }
        *eq = '\0';
        const char *key = tok, *val = eq + 1;
        if (strcmp(key, "server_user") == 0) {
            if (*server_user) {
                snprintf(err, errlen, "server_user given twice");
                return false;
            }
            if (strlen(val) > PG_NAME_MAX) {
                snprintf(err, errlen, "server_user must be at most %d bytes long", PG_NAME_MAX);
                return false;
            }
            *server_user = val;
        } else if (strcmp(key, "statement_timeout") == 0) {
            if (seen_timeout) {
                snprintf(err, errlen, "statement_timeout given twice");
                return false;
            }
            seen_timeout = true;
            if (!config_parse_duration_ms(val, &r->statement_timeout_ms) || r->statement_timeout_ms < 1 ||
                r->statement_timeout_ms > INT_MAX) {
                snprintf(err, errlen, "invalid statement_timeout \"%s\" (use e.g. 250ms, 30s, 5min; 0 is not "
                         "allowed, leave the key out instead)", val);
                return false;
            }
        } else if (strcmp(key, "work_mem") == 0) {
            if (seen_mem) {
                snprintf(err, errlen, "work_mem given twice");
                return false;
            }
            seen_mem = true;
            if (!config_parse_size_kb(val, &r->work_mem_kb) || r->work_mem_kb < 64 || r->work_mem_kb > INT_MAX) {
                snprintf(err, errlen, "invalid work_mem \"%s\" (use e.g. 64kB, 128MB, 1GB; at least 64kB)", val);
                return false;
            }
        } else if (strcmp(key, "idle_in_transaction_timeout") == 0 || strcmp(key, "max_transaction_age") == 0) {
            int64_t *dst = key[0] == 'i' ? &r->idle_in_transaction_timeout_ms : &r->max_transaction_age_ms;
            if (*dst != 0) {
                snprintf(err, errlen, "%s given twice", key);
                return false;
            }
            if (!config_parse_duration_ms(val, dst) || *dst < 1) {
                snprintf(err, errlen, "invalid %s \"%s\" (use e.g. 30s, 10min)", key, val);
                return false;
            }
        } else if (strcmp(key, "max_client_conn") == 0) {
            if (r->max_client_conn != 0) {
                snprintf(err, errlen, "max_client_conn given twice");
                return false;
            }
            int64_t n;
            if (!config_parse_count(val, &n) || n < 1 || n > INT_MAX) {
                snprintf(err, errlen, "invalid max_client_conn \"%s\" (a positive integer)", val);
                return false;
            }
            r->max_client_conn = (int)n;
        } else {
            snprintf(err, errlen, "unknown role setting \"%s\" (expected server_user, statement_timeout, work_mem, "
                     "idle_in_transaction_timeout, max_transaction_age, max_client_conn)", key);
            return false;
        }
    }
    if (!*server_user) {
        snprintf(err, errlen, "server_user is required");
        return false;
    }
    return true;
}
