/* Logging to stderr with levels and per-connection prefixes ("C-12 media_analytics/DE@127.0.0.1:5"
 * or "S-3 media_analytics/marketing_domain_role"). Never pass a token, secret or password. */
#ifndef PGMESH_PROXY_LOG_H
#define PGMESH_PROXY_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

extern enum log_level log_min_level;

bool log_set_level(const char *name) __attribute__((warn_unused_result));
void log_write(enum log_level level, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_AT(level, prefix, ...)                                                                                \
    do {                                                                                                          \
        if ((level) <= log_min_level)                                                                             \
            log_write((level), (prefix), __VA_ARGS__);                                                            \
    } while (0)
#define log_error(...) LOG_AT(LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_WARNING, NULL, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_DEBUG, NULL, __VA_ARGS__)

#endif
