/* Config reload. Everything that can fail comes first (parse and check the file, keep the keys that
 * need a restart, load the JWT keys, rebuild the TLS context); only then is the new config swapped
 * in and applied: log level, pools (size, conninfo), logged-in clients' roles, the watcher. Nothing keeps a
 * pointer into the old config after the swap: pools, clients and keys own copies. */
#include "proxy/reload.h"

#include <stdio.h>
#include <string.h>

#include "auth/cache.h"
#include "auth/jwt.h"
#include "auth/keys.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/config_keys.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/roles.h"
#include "proxy/runtime.h"
#include "proxy/tls.h"
#include "proxy/watch.h"

/* What a reload swaps in, built before anything running changes. */
struct staged {
    struct config *cfg;
    struct jwt_keys *keys;
};

/* Keys that need a restart keep their running values; they are logged by name. */
static bool keep_restart_keys(struct config *cfg, char *err, size_t errlen)
{
    const char *names[16];
    size_t n;
    if (!config_keys_keep_restart(cfg, rt.cfg, names, sizeof names / sizeof names[0], &n)) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    char list[256] = "";
    for (size_t i = 0, used = 0; i < n && i < sizeof names / sizeof names[0] && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
    if (n > 0)
        log_warn("config reload: %s changed but only a restart applies %s; keeping the running value%s", list,
                 n > 1 ? "them" : "it", n > 1 ? "s" : "");
    return true;
}

static bool load_keys(struct staged *st, char *err, size_t errlen)
{
    struct keys_source src = {st->cfg->secret_file, st->cfg->public_key_file, st->cfg->jwks_file};
    char why[256];
    st->keys = keys_load_config(&src, why, sizeof why);
    if (!st->keys) {
        snprintf(err, errlen, "keys: %s", why);
        return false;
    }
    if ((st->cfg->alg_mask & jwt_algs_for_keys(st->keys)) == 0) {
        snprintf(err, errlen, "none of algorithms = %s can be verified with the configured key",
                 st->cfg->algorithms);
        return false;
    }
    return true;
}

/* Rebuilds the TLS context from the new settings. It swaps itself in on success, so it is the
 * last step that may fail. Without tls_cert_file the running context (self-signed, made at
 * start) stays. */
static bool reload_tls(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->client_tls == CLIENT_TLS_DISABLE || cfg->tls_cert_file[0] == '\0') {
        if (cfg->client_tls != CLIENT_TLS_DISABLE && !tls_available())
            log_warn("config reload: client_tls = %s but no TLS certificate is loaded: SSLRequests are "
                     "answered N until tls_cert_file is set or pgmesh restarts",
                     cfg->client_tls == CLIENT_TLS_REQUIRE ? "require" : "allow");
        return true;
    }
    char why[512];
    if (!tls_reload(cfg, why, sizeof why)) {
        snprintf(err, errlen, "TLS: %s", why);
        return false;
    }
    return true;
}

static bool stage(struct staged *st, char *err, size_t errlen)
{
    st->cfg = config_load(rt.cfg->path, err, errlen);
    return st->cfg && keep_restart_keys(st->cfg, err, errlen) && load_keys(st, err, errlen) &&
           reload_tls(st->cfg, err, errlen);
}

/* ---- applying the new config; nothing below fails as a whole ---- */

static void apply_pools(const struct config *cfg)
{
    struct pool *p;
    TAILQ_FOREACH(p, &rt.pools, link) {
        const struct db_config *db = config_find_database(cfg, p->database);
        if (!pool_reconfigure(p, pool_worker_share(cfg->default_pool_size), db ? db->conninfo : NULL))
            log_error("config reload: pool %s/%s keeps its old size and conninfo: out of memory", p->database,
                      p->server_user);
    }
}

static void log_databases(const struct config *old_cfg, const struct config *cfg)
{
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        const struct db_config *was = config_find_database(old_cfg, cfg->databases[i].name);
        if (!was)
            log_info("config reload: database %s added", cfg->databases[i].name);
        else if (strcmp(was->conninfo, cfg->databases[i].conninfo) != 0)
            log_info("config reload: database %s has a new conninfo: new server connections use it, open ones "
                     "close when they are next idle",
                     cfg->databases[i].name);
    }
    for (size_t i = 0; i < old_cfg->ndatabases; i++)
        if (!config_find_database(cfg, old_cfg->databases[i].name))
            log_warn("config reload: database %s removed: new logins to it are refused, connected clients keep "
                     "their server connections",
                     old_cfg->databases[i].name);
}

static void log_role(const struct role_config *was, const struct role_config *now)
{
    if (!was)
        log_info("config reload: role %s added", now->name);
    else if (strcmp(was->server_user, now->server_user) != 0)
        log_warn("config reload: role %s now maps to server_user %s: connected clients keep %s and its limits "
                 "until they reconnect",
                 now->name, now->server_user, was->server_user);
    else if (!roles_equal(was, now))
        log_info("config reload: role %s changed: connected clients get its new limits from their next "
                 "transaction",
                 now->name);
}

static void log_roles(const struct config *old_cfg, const struct config *cfg)
{
    for (size_t i = 0; i < cfg->nroles; i++)
        log_role(config_find_role(old_cfg, cfg->roles[i].name), &cfg->roles[i]);
    for (size_t i = 0; i < old_cfg->nroles; i++)
        if (!config_find_role(cfg, old_cfg->roles[i].name))
            log_warn("config reload: role %s removed: new logins with it are refused, connected clients keep "
                     "their settings",
                     old_cfg->roles[i].name);
}

/* A logged-in client whose role entry changed, with the same server_user its pool logs in as,
 * takes the new entry (statement_timeout, work_mem and the limits pgmesh enforces) from its next
 * transaction start. A removed role or another server_user leaves it as it is (logged above). */
static void apply_roles(const struct config *old_cfg, const struct config *cfg)
{
    struct client *c;
    TAILQ_FOREACH(c, &rt.clients, link) {
        if (c->state < CLIENT_IDLE || c->state == CLIENT_CLOSING || !c->pool)
            continue;
        const struct role_config *was = config_find_role(old_cfg, c->ident.role);
        const struct role_config *now = config_find_role(cfg, c->ident.role);
        if (!now || strcmp(now->server_user, c->pool->server_user) != 0 || (was && roles_equal(was, now)))
            continue;
        if (!client_apply_role(c, now))
            CLIENT_LOG(LOG_WARNING, c, "role_settings_kept", NULL,
                       "keeps its role's old settings after the reload: out of memory");
    }
}

static void commit(struct staged *st)
{
    struct config *old_cfg = rt.cfg;
    keys_free(rt.keys);
    rt.keys = st->keys;
    jwt_cache_clear(rt.token_cache); /* entries were verified under the old keys and [jwt] settings */
    rt.cfg = st->cfg;
    if (!rt.debug_forced && !log_set_level(rt.cfg->log_level))
        log_warn("config reload: log_level %s not applied", rt.cfg->log_level); /* the key table checked it */
    log_set_format(rt.cfg->log_format);
    apply_pools(rt.cfg);
    log_databases(old_cfg, rt.cfg);
    log_roles(old_cfg, rt.cfg);
    apply_roles(old_cfg, rt.cfg);
    watch_reload(); /* collations read again: a database may have been replaced behind its name */
    config_free(old_cfg);
}

bool reload_config(char *err, size_t errlen)
{
    struct staged st = {0};
    if (!stage(&st, err, errlen)) {
        keys_free(st.keys);
        config_free(st.cfg);
        return false;
    }
    commit(&st);
    /* A change of what pgmesh lets whom do: audited, whatever log_level the new config has. */
    log_audit(LOG_INFO, NULL, "config_reloaded", LOG_FIELDS(LOG_STR("path", rt.cfg->path)),
              "config reload: %s applied (%zu database(s), %zu role(s), default_pool_size %d, log_level %s)",
              rt.cfg->path, rt.cfg->ndatabases, rt.cfg->nroles, rt.cfg->default_pool_size, rt.cfg->log_level);
    return true;
}
