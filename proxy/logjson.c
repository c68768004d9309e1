/* log_format = json: each line one JSON object (RFC 8259) that any parser reads, whatever bytes a
 * client put in its startup packet or a server in its error. Strings are escaped here and only
 * here; no I/O, no globals. */
#include "proxy/logjson.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static bool put(struct logjson_out *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        return false;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    return true;
}

static bool put_str(struct logjson_out *o, const char *s)
{
    return put(o, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF), 0 when the byte at s does not begin one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool logjson_string(struct logjson_out *o, const char *s, size_t n)
{
    if (o->cap - o->len < 2)
        return false;
    o->p[o->len++] = '"';
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        char esc[8];
        const char *out = esc;
        size_t out_len, step = 1;
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, out_len = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't', out_len = 2;
        } else if (c < 0x20 || c == 0x7f) {
            out_len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else if ((step = utf8_len(u + i, n - i)) == 0) {
            out = "\\ufffd", out_len = 6, step = 1;
        } else {
            out = s + i, out_len = step;
        }
        /* One byte stays free for the closing quote. */
        if (out_len > o->cap - o->len - 1) {
            o->truncated = true;
            break;
        }
        memcpy(o->p + o->len, out, out_len);
        o->len += out_len;
        i += step;
    }
    o->p[o->len++] = '"';
    return true;
}

/* ,"key":"value" whole or not at all; a NULL or empty value is left out. */
static void member_str(struct logjson_out *o, const char *key, const char *value)
{
    if (!value || !*value)
        return;
    size_t mark = o->len;
    if (!put(o, ",", 1) || !logjson_string(o, key, strlen(key)) || !put(o, ":", 1) ||
        !logjson_string(o, value, strlen(value))) {
        o->len = mark;
        o->truncated = true;
    }
}

static void member_raw(struct logjson_out *o, const char *key, const char *json)
{
    size_t mark = o->len;
    if (!put(o, ",", 1) || !logjson_string(o, key, strlen(key)) || !put(o, ":", 1) || !put_str(o, json)) {
        o->len = mark;
        o->truncated = true;
    }
}

static void member_int(struct logjson_out *o, const char *key, long long v)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", v);
    member_raw(o, key, num);
}

static void render_who(struct logjson_out *o, const struct log_who *w)
{
    if (w->kind) {
        char conn[32];
        snprintf(conn, sizeof conn, "%c-%llu", w->kind, w->id);
        member_str(o, "conn", conn);
    }
    if (w->client_id)
        member_int(o, "client_id", (long long)w->client_id);
    member_str(o, "database", w->database);
    member_str(o, "tenant", w->tenant);
    member_str(o, "role", w->role);
    member_str(o, "user", w->user);
    member_str(o, "server_user", w->server_user);
    member_str(o, "addr", w->addr);
}

size_t logjson_render(char *buf, size_t cap, const struct logjson_line *line)
{
    static const char *const levels[] = {"error", "warning", "info", "debug"};
    static const char tail[] = ",\"truncated\":true}";
    /* The closing brace, and the truncation mark, always fit. */
    struct logjson_out o = {.p = buf, .cap = cap - sizeof tail};
    struct tm tm;
    gmtime_r(&line->time.tv_sec, &tm);
    char head[96];
    snprintf(head, sizeof head, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(line->time.tv_nsec / 1000000));
    if (!put_str(&o, head))
        return 0;
    member_str(&o, "level", levels[line->level]);
    member_str(&o, "event", line->event ? line->event : "log");
    if (line->audit)
        member_raw(&o, "audit", "true");
    member_int(&o, "pid", line->pid);
    if (line->who)
        render_who(&o, line->who);
    for (const struct log_field *f = line->fields; f && f->key; f++) {
        if (f->type == LOG_FIELD_INT)
            member_int(&o, f->key, f->num);
        else
            member_str(&o, f->key, f->str);
    }
    /* The message last: when the line is too long, it is what gets cut. */
    size_t mark = o.len;
    const char *m = line->message ? line->message : "";
    if (!put_str(&o, ",\"message\":") || !logjson_string(&o, m, strlen(m))) {
        o.len = mark;
        o.truncated = true;
    }
    o.cap = cap;
    if (o.truncated)
        put(&o, tail, sizeof tail - 1);
    else
        put(&o, "}", 1);
    return o.len;
}
