/* Logging to stderr with levels and per-connection prefixes ("C-12 media_analytics/DE@127.0.0.1:5"
 * or "S-3 media_analytics/marketing_domain_role"), as text or as one JSON object per line
 * (log_format). Never pass a token, secret or password. A line may name its event (a stable
 * snake_case name) and carry fields; the text format writes the message alone, as it always did.
 * Repeated identical connection messages (the text after the prefix) are written once per window
 * and counted; the count is written when the window ends, so an outage or a flood of clients
 * cannot flood the log (lines without a prefix, debug lines and audit lines are never held back).
 * Audit lines (log_audit) are written whatever log_level says. */
#ifndef PGMESH_PROXY_LOG_H
#define PGMESH_PROXY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON }; /* the config key's order */

extern enum log_level log_min_level;

bool log_set_level(const char *name) __attribute__((warn_unused_result));
void log_set_format(enum log_format format);

/* Who a line is about; views the caller keeps alive for the call. NULL (or "" for the names)
 * where unknown; the JSON format leaves those out. */
struct log_who {
    const char *tag;              /* the text format's prefix */
    char kind;                    /* 'C' client, 'S' server connection */
    unsigned long long id;        /* of that connection */
    unsigned long long client_id; /* the client the line concerns (a server's linked one); 0: none */
    const char *database, *tenant, *role;
    const char *user;        /* the startup packet's user name, before the token is verified */
    const char *server_user; /* a server connection's */
    const char *addr;
};

/* Event-specific fields: LOG_FIELDS(LOG_STR("sqlstate", st), LOG_INT("timeout_ms", ms)). String
 * values may be NULL (left out). */
enum log_field_type { LOG_FIELD_END, LOG_FIELD_STR, LOG_FIELD_INT };
struct log_field {
    const char *key;
    enum log_field_type type;
    const char *str;
    long long num;
};
#define LOG_STR(k, v)                                                                                             \
    {                                                                                                             \
        (k), LOG_FIELD_STR, (v), 0                                                                                \
    }
#define LOG_INT(k, v)                                                                                             \
    {                                                                                                             \
        (k), LOG_FIELD_INT, NULL, (long long)(v)                                                                  \
    }
#define LOG_FIELDS(...) ((const struct log_field[]){__VA_ARGS__, {NULL, LOG_FIELD_END, NULL, 0}})

/* One line: the message (the text format's whole content), and in JSON the event, who and the
 * fields. who and fields may be NULL. Callers check the level first (LOG_EVENT). */
void log_event(enum log_level level, const struct log_who *who, const char *event, const struct log_field *fields,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* An audit line: written at any log_level and never held back by the repeat limiter; JSON marks
 * it "audit": true. For what pgmesh refused or ended on a client's behalf, and admin commands. */
void log_audit(enum log_level level, const struct log_who *who, const char *event, const struct log_field *fields,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A line with a text prefix only (event "log" in JSON). */
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
#define LOG_EVENT(level, who, event, fields, ...)                                                                 \
    do {                                                                                                          \
        if ((level) <= log_min_level)                                                                             \
            log_event((level), (who), (event), (fields), __VA_ARGS__);                                            \
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
