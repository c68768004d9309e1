/* pgmesh entry point: options, config and key loading, listeners, one libev loop, signals (SIGHUP
 * reloads the config through reload.c), and shutdown order (stop accepting, then let the loop
 * end). Only startup errors exit the process. */
#include <ev.h>
#include <getopt.h>
#include <malloc.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/cache.h"
#include "auth/jwt.h"
#include "auth/keys.h"
#include "protocol/wire.h"
#include "proxy/admin.h"
#include "proxy/cancel.h"
#include "proxy/config.h"
#include "proxy/config_keys.h"
#include "proxy/conn.h"
#include "proxy/enforce.h"
#include "proxy/link.h"
#include "proxy/listen.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/pool.h"
#include "proxy/reload.h"
#include "proxy/runtime.h"
#include "proxy/shutdown.h"
#include "proxy/stats.h"
#include "proxy/stmt.h"
#include "proxy/tls.h"
#include "proxy/version.h"
#include "proxy/watch.h"
#include "proxy/workers.h"
#include "proxy/workmsg.h"

#define JANITOR_INTERVAL_S 1.0

struct runtime rt;

static void usage(FILE *out)
{
    fprintf(out,
            "pgmesh %s: PostgreSQL pooler that authenticates clients by JWT and sets their claims\n"
            "on every transaction.\n\n"
            "Usage: pgmesh -c FILE.ini    run in the foreground, log to stderr\n"
            "       pgmesh --version\n"
            "       pgmesh --help\n\n"
            "Options:\n"
            "  -c, --config FILE   configuration file (INI; see pgmesh.ini)\n"
            "  -v, --verbose       log at debug level (overrides log_level)\n"
            "  -V, --version       print the version and exit\n"
            "      --config-reference  print every configuration key as a Markdown table\n"
            "  -h, --help          print this help and exit\n",
            PGMESH_VERSION);
}

/* After many clients leave, glibc keeps their freed memory in its heap; malloc_trim gives the
 * free pages back so that a storm of connections does not raise RSS for good. */
static void trim_after_storm(void)
{
    static int peak;
    if (rt.nclients > peak) {
        peak = rt.nclients;
    } else if (peak - rt.nclients >= 256) {
        malloc_trim(0);
        peak = rt.nclients;
    }
}

static void janitor_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    pool_reap_idle(ev_now(loop));
    log_flush_repeats(false);
    trim_after_storm();
}

/* The first SIGTERM or SIGINT stops accepting and lets transactions in progress finish (up to
 * shutdown_timeout); clients between transactions get FATAL 57P01. A second one stops at once. */
static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    char cause[32];
    snprintf(cause, sizeof cause, "received signal %d", w->signum);
    shutdown_begin(cause);
}

static void hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    char err[1024];
    log_info("SIGHUP: reloading %s", rt.cfg->path);
    if (!reload_config(err, sizeof err))
        log_audit(LOG_ERROR, NULL, "config_reload_failed", LOG_FIELDS(LOG_STR("path", rt.cfg->path)),
                  "SIGHUP: configuration not reloaded, nothing changed: %s", err);
}

/* Opens one server connection per database at start, so clients are told the real
 * server_version and friends and the first transaction finds a warm connection. */
static void warm_pools(void)
{
    const struct config *cfg = rt.cfg;
    for (size_t i = 0; i < cfg->ndatabases && cfg->nroles > 0; i++) {
        struct pool *p =
            pool_find_or_create(cfg->databases[i].name, cfg->roles[0].server_user, cfg->databases[i].conninfo);
        if (p && !server_connect(p))
            log_warn("could not start a connection for %s", cfg->databases[i].name);
    }
}

/* Another worker's gather: its /metrics figures, or the console's part. */
static char *worker_answer(char kind, const char *arg, size_t *len)
{
    return kind == 'M' ? metrics_render(len) : admin_answer(kind, arg, len);
}

/* In each worker as it starts: its own listeners only. */
static void worker_setup(void)
{
    listen_keep_worker(worker_index);
    if (worker_count > 1)
        log_info("worker %d started (pid %d)", worker_index, (int)getpid());
}

/* What the command line asks for: run with a config file, or print something and exit. */
enum cli_action { CLI_RUN, CLI_EXIT_OK, CLI_USAGE_ERROR };

static enum cli_action parse_options(int argc, char **argv, const char **config_path)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},     {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},          {"help", no_argument, NULL, 'h'},
        {"config-reference", no_argument, NULL, 'R'}, {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            *config_path = optarg;
            break;
        case 'v':
            rt.debug_forced = true;
            break;
        case 'V':
            printf("pgmesh %s\n", PGMESH_VERSION);
            return CLI_EXIT_OK;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        case 'R':
            config_keys_print_reference(stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_USAGE_ERROR;
        }
    }
    return *config_path && optind == argc ? CLI_RUN : CLI_USAGE_ERROR;
}

/* Config, log level, keys, token cache and TLS: what must load before anything listens. */
static bool load_startup(const char *config_path, char *err, size_t errlen)
{
    rt.cfg = config_load(config_path, err, errlen);
    if (!rt.cfg)
        return false;
    if (!log_set_level(rt.debug_forced ? "debug" : rt.cfg->log_level)) {
        snprintf(err, errlen, "bad log_level");
        return false;
    }
    log_set_format(rt.cfg->log_format);
    struct keys_source src = {rt.cfg->secret_file, rt.cfg->public_key_file, rt.cfg->jwks_file};
    rt.keys = keys_load_config(&src, err, errlen);
    if (!rt.keys)
        return false;
    if ((rt.cfg->alg_mask & jwt_algs_for_keys(rt.keys)) == 0) {
        snprintf(err, errlen, "none of algorithms = %s can be verified with the configured key",
                 rt.cfg->algorithms);
        return false;
    }
    rt.token_cache = jwt_cache_new((size_t)rt.cfg->verify_cache_size);
    if (!enforce_init(rt.cfg, err, errlen))
        return false;
    if (rt.cfg->server_enforcement != ENFORCE_OFF && !enforce_active())
        log_warn("server_enforcement = prefer without server_key_file: claims and limits are set with plain SET, "
                 "which SQL run inside functions, views and DO blocks can change, and sent with every "
                 "transaction (no fast path; scripts/server-setup.sh)");
    else if (rt.cfg->server_enforcement == ENFORCE_OFF)
        log_info("server_enforcement = off: claims and limits are set with plain SET and sent with every "
                 "transaction (no fast path)");
    OPENSSL_init_ssl(0, NULL);
    if (!stmt_name_key_init(NULL, 0)) {
        snprintf(err, errlen, "no random bytes for the prepared statements' key");
        return false;
    }
    return tls_init(rt.cfg, err, errlen);
}

/* Runs the loop until SIGINT or SIGTERM: signals, the janitor, warm pools. */
static void run_loop(void)
{
    ev_signal sigint, sigterm, sighup;
    ev_signal_init(&sigint, stop_cb, SIGINT);
    ev_signal_init(&sigterm, stop_cb, SIGTERM);
    ev_signal_init(&sighup, hup_cb, SIGHUP);
    ev_signal_start(rt.loop, &sigint);
    ev_signal_start(rt.loop, &sigterm);
    ev_signal_start(rt.loop, &sighup);
    ev_timer janitor;
    ev_timer_init(&janitor, janitor_cb, JANITOR_INTERVAL_S, JANITOR_INTERVAL_S);
    ev_timer_start(rt.loop, &janitor);
    LOG_EVENT(LOG_INFO, NULL, "started", LOG_FIELDS(LOG_STR("version", PGMESH_VERSION)),
              "pgmesh %s started (pool_mode=%s, %zu database(s), %zu role(s))", PGMESH_VERSION,
              rt.cfg->pool_mode == POOL_SESSION ? "session" : "transaction", rt.cfg->ndatabases, rt.cfg->nroles);
    warm_pools();
    /* One watcher per instance: the clusters are the same for every worker. */
    if (worker_index == 0)
        watch_start();
    ev_run(rt.loop, 0);
    if (worker_index == 0)
        watch_stop();
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    enum cli_action action = parse_options(argc, argv, &config_path);
    if (action != CLI_RUN) {
        if (action == CLI_USAGE_ERROR)
            usage(stderr);
        return action == CLI_EXIT_OK ? 0 : 2;
    }
    char err[512];
    if (!load_startup(config_path, err, sizeof err)) {
        fprintf(stderr, "pgmesh: %s\n", err);
        return 1;
    }
    rt.limits = (struct frame_limits){
        .control_max = CONTROL_MAX_LEN, .large_max = LARGE_MAX_LEN, .password_max = PASSWORD_MAX_LEN};
    TAILQ_INIT(&rt.clients);
    TAILQ_INIT(&rt.pools);
    signal(SIGPIPE, SIG_IGN);
    if (!workers_prepare(rt.cfg->workers, err, sizeof err)) {
        fprintf(stderr, "pgmesh: %s\n", err);
        return 1;
    }
    if (!listen_open())
        return 1;
    int exit_code = 0;
    if (worker_count > 1 && !workers_run(worker_setup, &exit_code)) {
        listen_close_all();
        log_info("supervisor: every worker has ended");
        return exit_code;
    }
    if (worker_count == 1)
        worker_setup();
    rt.loop = ev_default_loop(EVFLAG_AUTO);
    rt.started_at = ev_now(rt.loop);
    conn_global_init(rt.loop);
    cancel_init(rt.loop);
    server_init();
    link_init();
    admin_init();
    listen_start();
    workmsg_start(rt.loop,
                  &(struct workmsg_handlers){.answer = worker_answer, .act = admin_act, .adopt = listen_adopt});
    /* One metrics endpoint per instance, on the first worker (its figures; see README). */
    if (worker_index == 0 && !metrics_start())
        return 1;
    run_loop();
    conn_linger_end_all();
    metrics_stop();
    log_flush_repeats(true);
    LOG_EVENT(LOG_INFO, NULL, "stopped", NULL, "stopped");
    iobuf_spares_trim();
    tls_shutdown();
    keys_free(rt.keys);
    config_free(rt.cfg);
    stats_tenants_free();
    return 0;
}
