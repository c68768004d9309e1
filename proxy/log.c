/* Log lines: "2026-11-27 23:05:01.123 UTC [pid] LEVEL prefix: message" on stderr, or the same
 * as a JSON object (logjson.c) under log_format = json; one write(2) per line so lines from a crash or a
 * concurrent cancel thread never interleave mid-line. The repeat limiter (log.h) is shared with the cancel thread,
 * hence the mutex. */
#include "proxy/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "proxy/logjson.h"

enum log_level log_min_level = LOG_INFO;
/* Set by the loop (start, reload) and read by it; the cancel thread does not log. */
static enum log_format log_format_in_use = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"ERROR", "WARNING", "INFO", "DEBUG"};

static struct log_repeats repeats;
static pthread_mutex_t repeats_lock = PTHREAD_MUTEX_INITIALIZER;

bool log_set_level(const char *name)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcasecmp(name, level_names[i]) == 0 || (i == LOG_WARNING && strcasecmp(name, "warn") == 0)) {
            log_min_level = (enum log_level)i;
            return true;
        }
    }
    return false;
}

void log_set_format(enum log_format format)
{
    log_format_in_use = format;
}

/* FNV-1a over the level and the text. */
static uint64_t text_hash(enum log_level level, const char *text)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)level;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static void report_slot(struct log_repeat_slot *s, struct log_repeat_report *report)
{
    report->level = s->level;
    report->count = s->held;
    memcpy(report->text, s->text, sizeof report->text);
}

bool log_repeat_admit(struct log_repeats *r, enum log_level level, const char *text, double now,
                      struct log_repeat_report *report)
{
    uint64_t h = text_hash(level, text);
    struct log_repeat_slot *free_slot = NULL, *oldest = NULL;
    report->count = 0;
    for (size_t i = 0; i < LOG_REPEAT_SLOTS; i++) {
        struct log_repeat_slot *s = &r->slot[i];
        if (!s->used) {
            if (!free_slot)
                free_slot = s;
            continue;
        }
        if (s->hash == h && s->level == level) {
            if (now - s->window_start < LOG_REPEAT_WINDOW_S) {
                s->held++;
                return false;
            }
            if (s->held > 0)
                report_slot(s, report);
            s->window_start = now;
            s->held = 0;
            return true;
        }
        if (!oldest || s->window_start < oldest->window_start)
            oldest = s;
    }
    struct log_repeat_slot *s = free_slot;
    if (!s) {
        /* Every slot busy: the oldest window gives way, its count written now. */
        s = oldest;
        if (s->held > 0)
            report_slot(s, report);
    }
    *s = (struct log_repeat_slot){.used = true, .hash = h, .window_start = now, .level = level};
    snprintf(s->text, sizeof s->text, "%s", text);
    return true;
}

bool log_repeat_expired(struct log_repeats *r, double now, struct log_repeat_report *report)
{
    for (size_t i = 0; i < LOG_REPEAT_SLOTS; i++) {
        struct log_repeat_slot *s = &r->slot[i];
        if (s->used && now - s->window_start >= LOG_REPEAT_WINDOW_S) {
            bool held = s->held > 0;
            if (held)
                report_slot(s, report);
            s->used = false; /* a window that held nothing frees its slot too */
            if (held)
                return true;
        }
    }
    return false;
}

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_all(char *line, size_t len, size_t cap)
{
    if (len > cap - 1)
        len = cap - 1;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* What a line carries besides its level and text. */
struct line_meta {
    const struct log_who *who;
    const char *event;
    const struct log_field *fields;
    bool audit;
};

static void write_line(enum log_level level, const struct line_meta *meta, const char *text)
{
    char line[8192];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (log_format_in_use == LOG_FORMAT_JSON) {
        struct logjson_line l = {.time = now,
                                 .level = level,
                                 .audit = meta->audit,
                                 .event = meta->event,
                                 .pid = (int)getpid(),
                                 .who = meta->who,
                                 .fields = meta->fields,
                                 .message = text};
        /* One byte stays free for the newline. */
        write_all(line, logjson_render(line, sizeof line - 1, &l), sizeof line);
        return;
    }
    const char *prefix = meta->who ? meta->who->tag : NULL;
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, 2048, "%04d-%02d-%02d %02d:%02d:%02d.%03d UTC [%d] %s %s%s%s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000),
                     (int)getpid(), level_names[level], prefix ? prefix : "", prefix ? ": " : "", text);
    size_t len = n < 0 ? 0 : (size_t)n < 2048 ? (size_t)n : 2047;
    /* A newline in a client's startup user name must not start a line of its own making. */
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    }
    write_all(line, len, 2048);
}

static void write_report(const struct log_repeat_report *report)
{
    char text[LOG_REPEAT_TEXT + 96];
    snprintf(text, sizeof text, "repeated %u more time%s in %.0f s: %s", report->count,
             report->count == 1 ? "" : "s", LOG_REPEAT_WINDOW_S, report->text);
    struct line_meta meta = {.event = "log_repeated",
                             .fields = LOG_FIELDS(LOG_INT("count", report->count),
                                                  LOG_INT("window_s", (long long)LOG_REPEAT_WINDOW_S))};
    write_line(report->level, &meta, text);
}

static void write_message(enum log_level level, const struct line_meta *meta, const char *fmt, va_list ap)
{
    char text[1800];
    int m = vsnprintf(text, sizeof text, fmt, ap);
    if (m < 0)
        text[0] = '\0';
    /* Floods come from connections (a login, a refusal, a failed attempt per client); the
     * process's own lines (signals, reloads, pauses) are each news and always written, and an
     * audit line is a record of one client's attempt that a count would lose. */
    if (level == LOG_DEBUG || !meta->who || !meta->who->tag || meta->audit) {
        write_line(level, meta, text);
        return;
    }
    struct log_repeat_report report;
    pthread_mutex_lock(&repeats_lock);
    bool admit = log_repeat_admit(&repeats, level, text, monotonic_s(), &report);
    pthread_mutex_unlock(&repeats_lock);
    if (report.count > 0)
        write_report(&report);
    if (admit)
        write_line(level, meta, text);
}

void log_event(enum log_level level, const struct log_who *who, const char *event, const struct log_field *fields,
               const char *fmt, ...)
{
    struct line_meta meta = {who, event, fields, false};
    va_list ap;
    va_start(ap, fmt);
    write_message(level, &meta, fmt, ap);
    va_end(ap);
}

void log_audit(enum log_level level, const struct log_who *who, const char *event, const struct log_field *fields,
               const char *fmt, ...)
{
    struct line_meta meta = {who, event, fields, true};
    va_list ap;
    va_start(ap, fmt);
    write_message(level, &meta, fmt, ap);
    va_end(ap);
}

void log_write(enum log_level level, const char *prefix, const char *fmt, ...)
{
    struct log_who who = {.tag = prefix};
    struct line_meta meta = {prefix ? &who : NULL, "log", NULL, false};
    va_list ap;
    va_start(ap, fmt);
    write_message(level, &meta, fmt, ap);
    va_end(ap);
}

void log_flush_repeats(bool all)
{
    struct log_repeat_report report;
    double now = all ? 1e300 : monotonic_s();
    for (;;) {
        pthread_mutex_lock(&repeats_lock);
        bool more = log_repeat_expired(&repeats, now, &report);
        pthread_mutex_unlock(&repeats_lock);
        if (!more)
            return;
        write_report(&report);
    }
}
