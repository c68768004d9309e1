/* Logging to stderr with levels and per-connection prefixes ("C-12 media_analytics/DE@127.0.0.1:5"
 * or "S-3 media_analytics/marketing_domain_role"). Never pass a token, secret or password.
 * Repeated identical connection messages (the text after the prefix) are written once per window
 * and counted; the count is written when the window ends, so an outage or a flood of clients
 * cannot flood the log (lines without a prefix and debug lines are never held back). */
#ifndef PGMESH_PROXY_LOG_H
#define PGMESH_PROXY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

extern enum log_level log_min_level;

bool log_set_level(const char *name) __attribute__((warn_unused_result));
void log_write(enum log_level level, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes the counts of repeats whose window is over (main.c's janitor calls it every second),
 * or all of them (at exit). */
void log_flush_repeats(bool all);

#define LOG_AT(level, prefix, ...)                                                                                \
    do {                                                                                                          \
        if ((level) <= log_min_level)                                                                             \
            log_write((level), (prefix), __VA_ARGS__);                                                            \
    } while (0)
#define log_error(...) LOG_AT(LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_WARNING, NULL, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_DEBUG, NULL, __VA_ARGS__)

/* The repeat limiter, pure (the caller passes the time and does the writing) for unit tests.
 * A message's first occurrence in a window of LOG_REPEAT_WINDOW_S is written; the others are
 * counted. A report is a count to write before (or instead of) a message: the window of that
 * text is over, or its slot was taken by another text. An all-zero struct is empty. */
#define LOG_REPEAT_SLOTS 32
#define LOG_REPEAT_WINDOW_S 10.0
#define LOG_REPEAT_TEXT 200

struct log_repeat_report {
    enum log_level level;
    unsigned count; /* messages held back */
    char text[LOG_REPEAT_TEXT];
};

struct log_repeat_slot {
    bool used;
    uint64_t hash; /* of the level and the whole text */
    double window_start;
    unsigned held;
    enum log_level level;
    char text[LOG_REPEAT_TEXT]; /* the first LOG_REPEAT_TEXT - 1 bytes, for the report */
};

struct log_repeats {
    struct log_repeat_slot slot[LOG_REPEAT_SLOTS];
};

/* Whether text (at level, at time now in seconds) is to be written. report->count > 0 when a
 * count must be written first. */
bool log_repeat_admit(struct log_repeats *r, enum log_level level, const char *text, double now,
                      struct log_repeat_report *report) __attribute__((warn_unused_result));
/* Takes the next window that is over with messages held back into *report (and starts the slot
 * afresh); false when there is none. */
bool log_repeat_expired(struct log_repeats *r, double now, struct log_repeat_report *report)
    __attribute__((warn_unused_result));

#endif
