/* Builds the per-client transaction-start Queries. Values come from a verified token and the
 * config; they still only reach SQL through quote_literal. pgmesh uses plain SET (never
 * set_config) so a database owner can revoke set_config from reader roles. */
#include "proxy/txstart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "auth/jwt.h"
#include "policy/managed.h"
#include "policy/quote.h"
#include "protocol/buf.h"
#include "protocol/fe.h"
#include "protocol/sqlstate.h"
#include "proxy/config.h"
#include "proxy/textbuf.h"

#define SETTING_SQL_MAX 512
/* How [roles] spells a pin's key. */
#define PIN_KEY_FMT "pin.%s"

static void sql_add(struct textbuf *b, const char *piece)
{
    textbuf_put(b, piece, strlen(piece));
}

/* Appends one statement, after a separator unless it is the first. */
static void sql_add_stmt(struct textbuf *b, const char *stmt)
{
    if (b->p)
        sql_add(b, "; ");
    sql_add(b, stmt);
}

/* Done: at least one statement and no failure. */
static bool sql_done(const struct textbuf *b)
{
    return !b->failed && b->p;
}

/* SET name = 'value' in a new buffer; failed when out of memory or the value cannot be quoted
 * (invalid UTF-8). */
static struct textbuf set_statement(const struct txstart_setting *s)
{
    struct textbuf stmt = {0};
    /* Quoting at most doubles the text and may add E, two quotes and a NUL. */
    size_t vlen = strlen(s->value), cap = 2 * vlen + 4;
    char *lit = malloc(cap);
    if (lit && quote_literal(lit, cap, s->value, vlen)) {
        sql_add(&stmt, "SET ");
        sql_add(&stmt, s->name);
        sql_add(&stmt, " = ");
        sql_add(&stmt, lit);
    } else {
        stmt.failed = true;
    }
    free(lit);
    return stmt;
}

/* The SET of every setting goes into the switch Query, all but the switch_only ones into the
 * per-transaction one. False when a value cannot be quoted. */
static bool add_sets(struct textbuf *set, struct textbuf *sw, const struct txstart_setting *settings, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct textbuf stmt = set_statement(&settings[i]);
        if (stmt.failed) {
            free(stmt.p);
            return false;
        }
        if (!settings[i].switch_only)
            sql_add_stmt(set, stmt.p);
        sql_add_stmt(sw, stmt.p);
        free(stmt.p);
    }
    return true;
}

static void add_resets(struct textbuf *reset, const struct txstart_setting *claims, size_t nclaims)
{
    for (size_t i = 0; i < nclaims; i++) {
        char stmt[SETTING_SQL_MAX];
        snprintf(stmt, sizeof stmt, "RESET %s", claims[i].name);
        sql_add_stmt(reset, stmt);
    }
}

static bool to_query_msg(const char *sql, uint8_t **out, size_t *len)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    fe_write_query(&w, sql);
    if (!wr_ok(&w)) {
        wr_destroy(&w);
        return false;
    }
    *out = w.p;
    *len = w.len;
    return true;
}

/* "<length>:<bytes>", the MAC's unambiguous field encoding. */
static void mac_field(struct textbuf *b, const char *field)
{
    /* Digits by hand: snprintf was a tenth of a login's instructions here. */
    size_t n = strlen(field);
    char digits[24];
    size_t at = sizeof digits;
    digits[--at] = ':';
    do
        digits[--at] = (char)('0' + n % 10);
    while ((n /= 10) > 0);
    textbuf_put(b, digits + at, sizeof digits - at);
    sql_add(b, field);
}

/* For the extension: ARRAY['name', 'value', ...] and the pairs' MAC encoding of the
 * per-transaction settings, the switch_only SETs on their own. Fields hold no NUL (quote_literal
 * refused those), so the MAC body is text too. */
/* One element of an array literal: double-quoted, with '"' and '\\' escaped by a backslash. */
static void array_element(struct textbuf *b, const char *v, bool first)
{
    sql_add(b, first ? "\"" : ",\"");
    while (*v) {
        size_t run = strcspn(v, "\"\\");
        textbuf_put(b, v, run);
        v += run;
        if (*v) {
            char esc[3] = {'\\', *v, '\0'};
            textbuf_put(b, esc, 2);
            v++;
        }
    }
    sql_add(b, "\"");
}

/* One setting in the array literal (when arr is given), the Bind parameter's literal and the MAC
 * body; false when its value cannot be quoted. */
static bool add_apply_pair(struct textbuf *arr, struct textbuf *param, struct textbuf *mac,
                           const struct txstart_setting *set, bool first)
{
    array_element(param, set->name, first);
    array_element(param, set->value, false);
    struct textbuf stmt = set_statement(set);
    /* set_statement's text is "SET name = <literal>": the literal is what follows " = ". */
    const char *lit = !stmt.failed && stmt.p ? strstr(stmt.p, " = ") : NULL;
    if (lit && arr) {
        sql_add(arr, first ? "'" : ", '");
        sql_add(arr, set->name);
        sql_add(arr, "', ");
        sql_add(arr, lit + 3);
    }
    if (lit) {
        mac_field(mac, set->name);
        mac_field(mac, set->value);
    }
    free(stmt.p);
    return lit != NULL;
}

/* For the extension: ARRAY['name', 'value', ...] and the pairs' MAC encoding of the
 * per-transaction settings, the switch_only SETs on their own, and for pgmesh.switch the array and
 * MAC body with the switch_only pairs after the others. Fields hold no NUL (quote_literal refused
 * those), so the MAC bodies are text too. */
static bool add_apply_parts(struct txstart *t, const struct txstart_setting *settings, size_t n)
{
    struct textbuf arr = {0}, pairs = {0}, mac = {0}, sw = {0}, sw_pairs = {0}, sw_mac = {0};
    bool ok = true, first = true, sw_first = true;
    for (size_t i = 0; i < n && ok; i++) {
        if (settings[i].switch_only) {
            struct textbuf stmt = set_statement(&settings[i]);
            ok = !stmt.failed && stmt.p && add_apply_pair(NULL, &sw_pairs, &sw_mac, &settings[i], sw_first);
            sql_add_stmt(&sw, ok ? stmt.p : "");
            free(stmt.p);
            sw_first = false;
        } else {
            ok = add_apply_pair(&arr, &pairs, &mac, &settings[i], first);
            first = false;
        }
    }
    struct textbuf array = {0}, param = {0}, sw_param = {0}, sw_body = {0};
    sql_add(&array, "ARRAY[");
    sql_add(&array, arr.p ? arr.p : "");
    sql_add(&array, "]::pg_catalog.text[]");
    sql_add(&param, "{");
    sql_add(&param, pairs.p ? pairs.p : "");
    sql_add(&param, "}");
    sql_add(&sw_param, "{");
    sql_add(&sw_param, pairs.p ? pairs.p : "");
    if (pairs.p && sw_pairs.p)
        sql_add(&sw_param, ",");
    sql_add(&sw_param, sw_pairs.p ? sw_pairs.p : "");
    sql_add(&sw_param, "}");
    sql_add(&sw_body, mac.p ? mac.p : "");
    sql_add(&sw_body, sw_mac.p ? sw_mac.p : "");
    ok = ok && !arr.failed && !pairs.failed && !mac.failed && !sw.failed && !sw_pairs.failed && !sw_mac.failed &&
         !array.failed && !param.failed && !sw_param.failed && !sw_body.failed;
    if (ok) {
        t->apply_array = array.p;
        t->apply_param = param.p;
        t->mac_body = (uint8_t *)mac.p;
        t->mac_body_len = mac.len;
        t->switch_sql = sw.p;
        t->switch_param = sw_param.p;
        t->switch_mac_body = sw_body.p;
    } else {
        free(array.p);
        free(param.p);
        free(mac.p);
        free(sw.p);
        free(sw_param.p);
        free(sw_body.p);
    }
    free(arr.p);
    free(pairs.p);
    free(sw_pairs.p);
    free(sw_mac.p);
    return ok;
}

/* The counter in decimal into num, and the MAC of one apply message whose pairs encode as body
 * (NULL or "": none) as 64 lowercase hex digits (and a NUL) into hex. */
static bool apply_mac(const uint8_t *body, const char *nonce, uint64_t counter_value, EVP_MAC_CTX *ctx,
                      char num[static 24], char hex[static 65])
{
    snprintf(num, 24, "%llu", (unsigned long long)counter_value);
    const char *counter = num;
    struct textbuf m = {0};
    sql_add(&m, "pgmesh-v1");
    mac_field(&m, nonce);
    mac_field(&m, counter);
    sql_add(&m, body ? (const char *)body : "");
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    bool ok = !m.failed && ctx && EVP_MAC_init(ctx, NULL, 0, NULL) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)m.p, m.len) == 1 &&
              EVP_MAC_final(ctx, mac, &mac_len, sizeof mac) == 1 && mac_len == 32;
    free(m.p);
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; ok && i < mac_len; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 0xf];
    }
    hex[ok ? 2 * mac_len : 0] = '\0';
    return ok;
}

bool txstart_write_apply(const struct txstart *t, struct pq_writer *w, const char *nonce, uint64_t counter,
                         EVP_MAC_CTX *mac_ctx, bool switching)
{
    char num[24], hex[65];
    if (!apply_mac(t->mac_body_len ? t->mac_body : NULL, nonce, counter, mac_ctx, num, hex))
        return false;
    struct textbuf q = {0};
    sql_add(&q, "SELECT pgmesh.apply(");
    sql_add(&q, num);
    sql_add(&q, ", ");
    sql_add(&q, t->apply_array);
    sql_add(&q, ", '");
    sql_add(&q, hex);
    sql_add(&q, "')");
    if (switching && t->switch_sql)
        sql_add_stmt(&q, t->switch_sql);
    bool ok = !q.failed;
    if (ok)
        fe_write_query(w, q.p);
    free(q.p);
    return ok && wr_ok(w);
}

bool txstart_write_switch(const struct txstart *t, struct pq_writer *w, const char *nonce, uint64_t counter,
                          EVP_MAC_CTX *mac_ctx, uint32_t switch_oid, bool with_switch_only)
{
    const char *body = with_switch_only ? t->switch_mac_body : (const char *)t->mac_body;
    char num[24], hex[65];
    if (!apply_mac((const uint8_t *)body, nonce, counter, mac_ctx, num, hex))
        return false;
    const char *const args[] = {num, with_switch_only ? t->switch_param : t->apply_param, hex};
    fe_write_function_call_text(w, switch_oid, 3, args);
    return wr_ok(w);
}

bool txstart_write_clear(struct pq_writer *w, const char *nonce, uint64_t counter, EVP_MAC_CTX *mac_ctx)
{
    char num[24], hex[65], sql[160];
    if (!apply_mac(NULL, nonce, counter, mac_ctx, num, hex))
        return false;
    snprintf(sql, sizeof sql, "SELECT pgmesh.apply(%s, '{}'::pg_catalog.text[], '%s')", num, hex);
    fe_write_query(w, sql);
    return wr_ok(w);
}

bool txstart_write_apply_prepared(const struct txstart *t, struct pq_writer *w, const char *nonce,
                                  uint64_t counter, EVP_MAC_CTX *mac_ctx, bool parse)
{
    /* int8, text[], text: the function's own types, so the plan needs no casts. */
    static const uint8_t types[] = {0, 0, 0, 20, 0, 0, 3, 241, 0, 0, 0, 25};
    static const char sql[] = "SELECT pgmesh.apply($1, $2, $3)";
    char num[24], hex[65];
    if (!apply_mac(t->mac_body_len ? t->mac_body : NULL, nonce, counter, mac_ctx, num, hex))
        return false;
    if (parse)
        fe_write_parse_typed(w, TXSTART_APPLY_STMT, (struct span){(const uint8_t *)sql, sizeof sql - 1}, 3, types);
    const char *const params[] = {num, t->apply_param, hex};
    fe_write_bind_text(w, "", TXSTART_APPLY_STMT, 3, params);
    fe_write_execute(w, "", 0);
    fe_write_sync(w);
    return wr_ok(w);
}

/* The three texts as Query messages into t; t untouched on failure. */
static bool to_query_msgs(struct txstart *t, const char *set, const char *sw, const char *reset)
{
    struct txstart built = {0};
    if (!to_query_msg(set, &built.set_msg, &built.set_len) ||
        !to_query_msg(sw, &built.switch_msg, &built.switch_len) ||
        !to_query_msg(reset, &built.reset_msg, &built.reset_len)) {
        txstart_destroy(&built);
        return false;
    }
    *t = built;
    return true;
}

/* A start that resets no claim or sets nothing per transaction is refused: every client has
 * claims, and the per-transaction Query is what carries them. */
bool txstart_build(struct txstart *t, const struct txstart_setting *settings, size_t n, size_t nclaims)
{
    struct textbuf set = {0}, sw = {0}, reset = {0};
    add_resets(&reset, settings, nclaims < n ? nclaims : n);
    struct txstart built = {0};
    bool ok = add_sets(&set, &sw, settings, n) && sql_done(&set) && sql_done(&sw) && sql_done(&reset) &&
              to_query_msgs(&built, set.p, sw.p, reset.p) && add_apply_parts(&built, settings, n);
    if (ok)
        *t = built;
    else
        txstart_destroy(&built);
    free(set.p);
    free(sw.p);
    free(reset.p);
    return ok;
}

void txstart_destroy(struct txstart *t)
{
    free(t->set_msg);
    free(t->switch_msg);
    free(t->reset_msg);
    free(t->apply_array);
    free(t->apply_param);
    free(t->mac_body);
    free(t->switch_sql);
    free(t->switch_param);
    free(t->switch_mac_body);
    memset(t, 0, sizeof *t);
}

/* One setting's value for this client, from the managed table's source; NULL when the role does
 * not set it. buf holds formatted numbers. */
static const char *managed_value(enum managed_source src, const struct jwt_identity *id,
                                 const struct role_config *role, char *buf, size_t cap)
{
    switch (src) {
    case MANAGED_TENANT:
        return id->tenant;
    case MANAGED_ROLE:
        return id->role;
    case MANAGED_CLAIMS_JSON:
        return id->claims_json;
    case MANAGED_STATEMENT_TIMEOUT:
        if (role->statement_timeout_ms <= 0)
            return NULL;
        snprintf(buf, cap, "%lld", (long long)role->statement_timeout_ms);
        return buf;
    case MANAGED_WORK_MEM:
        if (role->work_mem_kb <= 0)
            return NULL;
        snprintf(buf, cap, "%lldkB", (long long)role->work_mem_kb);
        return buf;
    case MANAGED_PROTECTED:
        return NULL;
    }
    return NULL;
}

/* Three claims, two limits, the pins, application_name. */
_Static_assert(TXSTART_SETTINGS_MAX >= 5 + ROLE_PINS_MAX + 1, "room for every setting of a client");

bool txstart_for_client(struct txstart *t, const struct jwt_identity *id, const struct role_config *role,
                        const char *application_name)
{
    struct txstart_setting set[TXSTART_SETTINGS_MAX];
    char num[TXSTART_SETTINGS_MAX][32];
    size_t n = 0, nclaims = 0;
    /* Claims first: they are the ones the reset Query clears. */
    for (int claims = 1; claims >= 0; claims--) {
        for (size_t i = 0; i < managed_settings_count && n < TXSTART_SETTINGS_MAX - 1; i++) {
            const struct managed_setting *m = &managed_settings[i];
            if (managed_is_claim(m->source) != claims)
                continue;
            const char *v = managed_value(m->source, id, role, num[n], sizeof num[n]);
            if (v)
                set[n++] = (struct txstart_setting){m->name, v, false};
        }
        if (claims)
            nclaims = n;
    }
    /* The role's pinned settings ride with its limits (roles.c made sure none is managed). */
    for (size_t i = 0; i < role->npins && n < TXSTART_SETTINGS_MAX - 1; i++)
        set[n++] = (struct txstart_setting){role->pins[i].name, role->pins[i].value, false};
    set[n++] = (struct txstart_setting){"application_name", application_name, true};
    return txstart_build(t, set, n, nclaims);
}

/* The pin of role that the server's message names: PostgreSQL quotes the parameter first
 * ("invalid value for parameter \"x\": ...", "permission denied to set parameter \"x\"",
 * "unrecognized configuration parameter \"x\"", "\"x\" cannot be changed now"), and so does the
 * extension ("pgmesh: \"x\" is not a setting pgmesh.apply() may set"). */
static const struct role_pin *named_pin(const struct role_config *role, const char *message)
{
    const char *open = strchr(message, '"');
    const char *close = open ? strchr(open + 1, '"') : NULL;
    if (!role || !close)
        return NULL;
    size_t len = (size_t)(close - open - 1);
    for (size_t i = 0; i < role->npins; i++)
        if (strlen(role->pins[i].name) == len && strncasecmp(role->pins[i].name, open + 1, len) == 0)
            return &role->pins[i];
    return NULL;
}

bool txstart_explain_failure(const struct role_config *role, const char *sqlstate, const char *message,
                             const char *server_hint, struct txstart_failure *out)
{
    const struct role_pin *pin = named_pin(role, message);
    if (!pin)
        return false;
    const char *n = pin->name;
    bool denied = strcmp(sqlstate, SQLSTATE_INSUFFICIENT_PRIVILEGE) == 0;
    bool not_listed = denied && strstr(message, "pgmesh.apply() may set") != NULL;
    if (not_listed)
        snprintf(out->message, sizeof out->message, "the server's pgmesh.pinned_settings does not list %s", n);
    else
        snprintf(out->message, sizeof out->message, "the server refused " PIN_KEY_FMT " of role \"%s\"", n,
                 role->name);
    snprintf(out->detail, sizeof out->detail,
             "Role \"%s\" has " PIN_KEY_FMT "=%s in pgmesh's [roles]; the server refused it: %s %s", role->name, n,
             pin->value, sqlstate, message);
    if (not_listed)
        snprintf(out->hint, sizeof out->hint,
                 "Add %s to pgmesh.pinned_settings on the server (scripts/server-setup.sh --pinned NAME,...), or "
                 "remove " PIN_KEY_FMT " from the role and reload pgmesh.",
                 n, n);
    else if (denied)
        snprintf(out->hint, sizeof out->hint,
                 "Only superusers may set %s unless it is granted: GRANT SET ON PARAMETER %s TO %s on the server, "
                 "or use the pgmesh extension with %s in pgmesh.pinned_settings; or remove " PIN_KEY_FMT
                 " from the role and reload pgmesh.",
                 n, n, role->server_user, n, n);
    else
        snprintf(out->hint, sizeof out->hint, "Fix " PIN_KEY_FMT " of role \"%s\" and reload pgmesh (SIGHUP).%s%s",
                 n, role->name, server_hint && *server_hint ? " " : "", server_hint ? server_hint : "");
    return true;
}
