/* The admin console (see admin.h): login, the simple and extended protocol, and the commands
 * that change something (RELOAD, PAUSE, RESUME, KILL_CLIENT, SHUTDOWN). The SHOW commands are in
 * admin_show.c. Nothing here reaches a server: answers are built with protocol/be.c and queued on
 * the client's connection. */
#include "proxy/admin.h"

#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "protocol/be.h"
#include "protocol/error.h"
#include "protocol/fe.h"
#include "protocol/frame.h"
#include "protocol/sqlstate.h"
#include "protocol/wire.h"
#include "proxy/admin_int.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/config_keys.h"
#include "proxy/link.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/reload.h"
#include "proxy/runtime.h"
#include "proxy/shutdown.h"
#include "proxy/workers.h"

/* Console messages are short: anything longer is not a command. */
#define ADMIN_MESSAGE_MAX (64u * 1024u)
/* Named statements kept per console client (psycopg prepares a query it ran five times). */
#define ADMIN_STMTS_MAX 16
/* How often a pending PAUSE looks whether its pools' servers are all idle. */
#define ADMIN_PAUSE_POLL_S 0.02
#define ADMIN_WORDS_MAX 4

struct admin_stmt {
    char *name; /* NULL: free slot; "" the unnamed statement */
    char *sql;
};

/* Per console client; owned by it (client.c frees it with the client). */
struct admin_session {
    struct client *c;
    struct admin_stmt stmts[ADMIN_STMTS_MAX];
    char *portal_sql;  /* the last Bind's statement text (one portal is kept); NULL: none */
    uint16_t nformats; /* ... its result format codes, as the Bind gave them (fe_bind) */
    uint8_t formats[ADMIN_COLS_MAX];
    bool skipping;                      /* an extended-protocol message failed: the rest up to Sync is ignored */
    bool pausing;                       /* a PAUSE waits for its pools' servers to be idle; input waits with it */
    bool ready_after;                   /* ... it came in a Query: ReadyForQuery follows its CommandComplete */
    char pause_db[CLIENT_NAME_MAX + 1]; /* ... "": every pool */
    ev_timer poll;
};

enum run { RUN_DONE, RUN_FAILED, RUN_PENDING };
/* What a command's answer holds: everything (a Query), only its row description (Describe), or
 * its rows and CommandComplete (Execute). */
enum mode { MODE_SIMPLE, MODE_DESCRIBE, MODE_EXECUTE };

/* A command split into upper-cased words (arguments keep their case in args). */
struct words {
    int n;
    char upper[ADMIN_WORDS_MAX][CLIENT_NAME_MAX + 1];
    char args[ADMIN_WORDS_MAX][CLIENT_NAME_MAX + 1];
};

struct admin_command {
    const char *name;
    const char *usage;      /* for the list of commands */
    int min_args, max_args; /* words after the name */
    enum run (*run)(struct admin_session *a, const struct words *cmd, struct pq_writer *w);
};

static void cmd_error(struct pq_writer *w, const char *sqlstate, const char *message, const char *detail,
                      const char *hint)
{
    struct pq_error e = {"ERROR", sqlstate, message, detail, hint};
    error_write(w, BE_ERROR, &e);
}

static void send_written(struct client *c, struct pq_writer *w)
{
    if (w->len && (!wr_ok(w) || !conn_send(&c->conn, w->p, w->len)))
        client_close(c, "out of memory");
    wr_reset(w);
}

/* ---- login ---- */

static bool admin_database(const char *name)
{
    return strcmp(name, ADMIN_DATABASE) == 0;
}

static void poll_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void admin_input(struct client *c);

static bool admin_begin(struct client *c)
{
    c->admin = calloc(1, sizeof *c->admin);
    if (!c->admin) {
        client_error(c, "FATAL", SQLSTATE_INTERNAL_ERROR, "out of memory", NULL, NULL);
        return false;
    }
    c->admin->c = c;
    ev_timer_init(&c->admin->poll, poll_cb, ADMIN_PAUSE_POLL_S, ADMIN_PAUSE_POLL_S);
    return true;
}

/* The startup replies: what psql, libpq, JDBC and psycopg read at connect. */
static void login_done(struct client *c, const char *how, const char *who)
{
    static const char *const params[][2] = {
        {"server_version", "15.0"},  {"server_encoding", "UTF8"},           {"client_encoding", "UTF8"},
        {"DateStyle", "ISO, MDY"},   {"IntervalStyle", "postgres"},         {"TimeZone", "UTC"},
        {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"}, {"is_superuser", "off"},
    };
    struct pq_writer w;
    wr_init_dynamic(&w);
    be_write_auth(&w, AUTH_OK);
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        be_write_parameter_status(&w, params[i][0], params[i][1]);
    be_write_parameter_status(&w, "application_name", c->application_name ? c->application_name : "");
    be_write_backend_key(&w, workers_cancel_pid(c->id), c->cancel_key);
    be_write_ready(&w, TX_IDLE);
    send_written(c, &w);
    wr_destroy(&w);
    LOG_AT(LOG_INFO, c->tag, "admin console login (%s): %s", how, who);
    if (c->state == CLIENT_STARTUP)
        client_set_state(c, CLIENT_AUTH);
    client_set_state(c, CLIENT_IDLE);
    ev_timer_stop(rt.loop, &c->timer);
}

/* The connecting process's OS user, from the kernel (SO_PEERCRED). */
static bool peer_user(int fd, char *name, size_t len)
{
    struct ucred cred;
    socklen_t n = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) != 0 || n != sizeof cred)
        return false;
    struct passwd pw, *found = NULL;
    char buf[2048];
    if (getpwuid_r(cred.uid, &pw, buf, sizeof buf, &found) != 0 || !found)
        return false;
    snprintf(name, len, "%s", pw.pw_name);
    return true;
}

static bool admin_peer_login(struct client *c)
{
    char user[JWT_CLAIM_MAX + 1];
    if (!rt.cfg->admin_users[0] || !peer_user(c->conn.fd, user, sizeof user) ||
        !config_keys_name_listed(rt.cfg->admin_users, user))
        return false;
    /* SHOW CLIENTS names a peer login by its OS user. */
    if (!client_set_names(c, "", user))
        return false;
    login_done(c, "Unix socket peer, admin_users", user);
    return true;
}

static void admin_token_login(struct client *c, const char *sub)
{
    if (!config_keys_name_listed(rt.cfg->admin_roles, c->ident.role)) {
        char msg[200];
        snprintf(msg, sizeof msg, "role \"%s\" may not use the admin console; list it in admin_roles",
                 c->ident.role);
        client_error(c, "FATAL", SQLSTATE_INVALID_AUTHORIZATION, msg,
                     "The admin console (dbname=pgmesh) takes tokens whose role admin_roles lists, or Unix-socket "
                     "connections of the OS users admin_users lists.",
                     NULL);
        return;
    }
    login_done(c, "token", sub);
    admin_input(c); /* what the client sent after its token */
}

static void admin_session_free(struct admin_session *a)
{
    if (!a)
        return;
    ev_timer_stop(rt.loop, &a->poll);
    for (size_t i = 0; i < ADMIN_STMTS_MAX; i++) {
        free(a->stmts[i].name);
        free(a->stmts[i].sql);
    }
    free(a->portal_sql);
    free(a);
}

/* ---- commands ---- */

static const struct admin_command commands[];

/* "SHOW POOLS, SHOW CLIENTS, ..., RELOAD, PAUSE [db], ..." for errors. */
static void command_list(char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    const struct admin_show *sh;
    for (size_t i = 0; (sh = admin_show_at(i)) != NULL && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "SHOW %s, ", sh->name);
    for (size_t i = 0; commands[i].name && used < len; i++)
        used +=
            (size_t)snprintf(buf + used, len - used, "%s%s", commands[i].usage, commands[i + 1].name ? ", " : "");
}

static void unknown_command(struct pq_writer *w, const char *what)
{
    char msg[160], hint[1024];
    snprintf(msg, sizeof msg, "unknown admin console command \"%.100s\"", what);
    char list[900];
    command_list(list, sizeof list);
    snprintf(hint, sizeof hint, "The admin console understands: %s.", list);
    cmd_error(w, SQLSTATE_SYNTAX_ERROR, msg, NULL, hint);
}

/* A configured database named in PAUSE or RESUME; else the error. */
static bool known_database(const char *db, struct pq_writer *w)
{
    if (!db || config_find_database(rt.cfg, db))
        return true;
    char msg[160];
    snprintf(msg, sizeof msg, "database \"%s\" does not exist", db);
    cmd_error(w, SQLSTATE_INVALID_CATALOG_NAME, msg, "pgmesh has no [databases] entry of that name.", NULL);
    return false;
}

/* PAUSE is over when no server of the paused pools is lent or being reset, in any worker. */
static bool pause_done(const struct admin_session *a)
{
    return admin_pools_idle_local(a->pause_db) && (worker_count == 1 || admin_others_idle(a->pause_db));
}

static void pause_finish(struct admin_session *a)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    be_write_command_complete(&w, "PAUSE");
    if (a->ready_after)
        be_write_ready(&w, TX_IDLE);
    a->pausing = a->ready_after = false;
    ev_timer_stop(rt.loop, &a->poll);
    LOG_AT(LOG_INFO, a->c->tag, "PAUSE %s: every server of the paused pools is idle",
           a->pause_db[0] ? a->pause_db : "(all)");
    send_written(a->c, &w);
    wr_destroy(&w);
    admin_input(a->c); /* what came after the PAUSE waited for it */
}

static void poll_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct admin_session *a = container_of(t, struct admin_session, poll);
    if (a->pausing && pause_done(a))
        pause_finish(a);
}

static enum run cmd_pause(struct admin_session *a, const struct words *cmd, struct pq_writer *w)
{
    const char *db = cmd->n > 1 ? cmd->args[1] : NULL;
    if (!known_database(db, w))
        return RUN_FAILED;
    snprintf(a->pause_db, sizeof a->pause_db, "%s", db ? db : "");
    admin_pools_pause_local(a->pause_db, true);
    admin_others_pause(a->pause_db, true);
    LOG_AT(LOG_INFO, a->c->tag, "PAUSE %s: no server is lent until RESUME; waiting for transactions in progress",
           db ? db : "(all)");
    if (pause_done(a)) {
        be_write_command_complete(w, "PAUSE");
        return RUN_DONE;
    }
    a->pausing = true;
    ev_timer_start(rt.loop, &a->poll);
    return RUN_PENDING;
}

static enum run cmd_resume(struct admin_session *a, const struct words *cmd, struct pq_writer *w)
{
    const char *db = cmd->n > 1 ? cmd->args[1] : NULL;
    if (!known_database(db, w))
        return RUN_FAILED;
    admin_pools_pause_local(db ? db : "", false);
    admin_others_pause(db ? db : "", false);
    LOG_AT(LOG_INFO, a->c->tag, "RESUME %s", db ? db : "(all)");
    be_write_command_complete(w, "RESUME");
    return RUN_DONE;
}

static enum run cmd_reload(struct admin_session *a, const struct words *cmd, struct pq_writer *w)
{
    char err[1024];
    LOG_AT(LOG_INFO, a->c->tag, "RELOAD: reloading %s", rt.cfg->path);
    if (!reload_config(err, sizeof err)) {
        log_error("RELOAD: configuration not reloaded, nothing changed: %s", err);
        cmd_error(w, SQLSTATE_CONFIG_FILE_ERROR, "configuration not reloaded, nothing changed", err,
                  "Fix the file and run RELOAD again.");
        return RUN_FAILED;
    }
    workers_tell_others(false);
    be_write_command_complete(w, "RELOAD");
    return RUN_DONE;
}

static enum run cmd_kill_client(struct admin_session *a, const struct words *cmd, struct pq_writer *w)
{
    const char *arg = cmd->args[1];
    char *end;
    unsigned long long id = strtoull(arg, &end, 10);
    bool valid = isdigit((unsigned char)arg[0]) && *end == '\0';
    struct client *t = valid ? admin_find_client(id) : NULL;
    if (!t && valid && worker_count > 1 && admin_kill_elsewhere(id)) {
        LOG_AT(LOG_INFO, a->c->tag, "KILL_CLIENT %llu (in worker %d)", id, (int)(id % (uint64_t)worker_count));
        be_write_command_complete(w, "KILL_CLIENT");
        return RUN_DONE;
    }
    if (!t) {
        char msg[160];
        snprintf(msg, sizeof msg, "no client with id %s", arg);
        cmd_error(w, SQLSTATE_UNDEFINED_OBJECT, msg, NULL, "SHOW CLIENTS lists the connected clients' ids.");
        return RUN_FAILED;
    }
    LOG_AT(LOG_INFO, a->c->tag, "KILL_CLIENT %llu", id);
    /* The answer first: the client may be this one. */
    be_write_command_complete(w, "KILL_CLIENT");
    send_written(a->c, w);
    admin_kill(t);
    return RUN_DONE;
}

static enum run cmd_shutdown(struct admin_session *a, const struct words *cmd, struct pq_writer *w)
{
    if (cmd->n > 1 && strcmp(cmd->upper[1], "WAIT") != 0) {
        unknown_command(w, cmd->args[1]);
        return RUN_FAILED;
    }
    be_write_command_complete(w, "SHUTDOWN");
    send_written(a->c, w);
    workers_tell_others(true);
    if (cmd->n > 1)
        shutdown_begin("SHUTDOWN WAIT from the admin console");
    else
        shutdown_now("SHUTDOWN from the admin console");
    return RUN_DONE;
}

static const struct admin_command commands[] = {
    {"RELOAD", "RELOAD", 0, 0, cmd_reload},
    {"PAUSE", "PAUSE [db]", 0, 1, cmd_pause},
    {"RESUME", "RESUME [db]", 0, 1, cmd_resume},
    {"KILL_CLIENT", "KILL_CLIENT id", 1, 1, cmd_kill_client},
    {"SHUTDOWN", "SHUTDOWN [WAIT]", 0, 1, cmd_shutdown},
    {NULL, NULL, 0, 0, NULL},
};

/* Splits text into at most ADMIN_WORDS_MAX words; false when there are more, a word is too long,
 * or a ';' is followed by more text. A trailing ';' is dropped. */
static bool split_words(const char *sql, size_t len, struct words *out)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    while (i < len) {
        while (i < len && isspace((unsigned char)sql[i]))
            i++;
        if (i < len && sql[i] == ';') {
            for (i++; i < len; i++)
                if (!isspace((unsigned char)sql[i]))
                    return false;
            break;
        }
        if (i == len)
            break;
        size_t start = i;
        while (i < len && !isspace((unsigned char)sql[i]) && sql[i] != ';')
            i++;
        size_t n = i - start;
        if (out->n == ADMIN_WORDS_MAX || n > CLIENT_NAME_MAX)
            return false;
        for (size_t k = 0; k < n; k++) {
            out->args[out->n][k] = sql[start + k];
            out->upper[out->n][k] = (char)toupper((unsigned char)sql[start + k]);
        }
        out->n++;
    }
    return true;
}

/* The portal's format code per column of a result of ncols columns, into out; false (with the
 * error written) when the Bind gave several codes but not one per column. */
static bool column_formats(const struct admin_session *a, uint16_t ncols, uint8_t *out, struct pq_writer *w)
{
    if (a->nformats > 1 && a->nformats != ncols) {
        char msg[120];
        snprintf(msg, sizeof msg, "bind message has %u result formats but query has %u columns", a->nformats,
                 ncols);
        cmd_error(w, SQLSTATE_PROTOCOL_VIOLATION, msg, NULL, NULL);
        return false;
    }
    for (uint16_t i = 0; i < ncols; i++)
        out[i] = a->nformats == 0 ? 0 : a->formats[a->nformats == 1 ? 0 : i];
    return true;
}

/* A SHOW: its RowDescription, rows and CommandComplete as the mode asks. A Query's results and a
 * statement's description are text; a portal's are as its Bind asked. */
static enum run run_show(const struct admin_session *a, const struct words *cmd, enum mode mode, bool portal,
                         struct pq_writer *w)
{
    if (cmd->n != 2) {
        cmd_error(w, SQLSTATE_SYNTAX_ERROR, "usage: SHOW what", "SHOW takes one word, e.g. SHOW POOLS.", NULL);
        return RUN_FAILED;
    }
    const struct admin_show *sh = admin_show_find(cmd->upper[1]);
    if (!sh) {
        unknown_command(w, cmd->args[1]);
        return RUN_FAILED;
    }
    uint8_t formats[ADMIN_COLS_MAX];
    if (portal && !column_formats(a, sh->ncols, formats, w))
        return RUN_FAILED;
    if (mode != MODE_EXECUTE)
        be_write_row_description(w, sh->cols, portal ? formats : NULL, sh->ncols);
    if (mode == MODE_DESCRIBE)
        return RUN_DONE;
    struct admin_rows rows = {.w = w, .cols = sh->cols, .formats = portal ? formats : NULL, .ncols = sh->ncols};
    if (worker_count > 1)
        admin_show_all_workers(sh, &rows);
    else
        sh->rows(&rows);
    be_write_command_complete(w, "SHOW");
    return RUN_DONE;
}

/* Every command run, with who ran it: the words as given (at most four, each at most
 * CLIENT_NAME_MAX bytes). */
static void audit_command(const struct admin_session *a, const struct words *cmd)
{
    char text[ADMIN_WORDS_MAX * (CLIENT_NAME_MAX + 1) + 1] = "";
    size_t n = 0;
    for (int i = 0; i < cmd->n; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s%s", i ? " " : "", cmd->args[i]);
    const char *role = a->c->ident.role;
    CLIENT_AUDIT(LOG_INFO, a->c, "admin_command", LOG_FIELDS(LOG_STR("command", text)), "admin console%s%s%s: %s",
                 role[0] ? " (role " : "", role, role[0] ? ")" : "", text);
}

static bool starts_with_word(const struct words *cmd, const char *word)
{
    return cmd->n > 0 && strcmp(cmd->upper[0], word) == 0;
}

/* One command's answer. SET (what drivers send at connect) is acknowledged and ignored; in
 * Describe only a SHOW has columns, and nothing runs. */
static enum run run_command(struct admin_session *a, const char *sql, size_t len, enum mode mode, bool portal,
                            struct pq_writer *w)
{
    struct words cmd;
    /* sql[len] is a NUL (a Query's or Parse's text as read, or a copy of it). A SET's value may
     * hold anything (quotes, ';'): it is not split. */
    const char *p = sql + strspn(sql, " \t\r\n\f\v");
    if (strncasecmp(p, "SET", 3) == 0 && p[3] != '\0' && strchr(" \t\r\n\f\v", p[3])) {
        if (mode == MODE_DESCRIBE)
            be_write_no_data(w);
        else
            be_write_command_complete(w, "SET");
        return RUN_DONE;
    }
    if (!split_words(sql, len, &cmd)) {
        cmd_error(w, SQLSTATE_FEATURE_NOT_SUPPORTED, "the admin console runs one command per query",
                  "A command is at most four words, and only a final ';' may follow it.", NULL);
        return RUN_FAILED;
    }
    if (cmd.n == 0) {
        if (mode == MODE_DESCRIBE)
            be_write_no_data(w);
        else
            be_write_empty_query(w);
        return RUN_DONE;
    }
    if (mode != MODE_DESCRIBE)
        audit_command(a, &cmd);
    if (starts_with_word(&cmd, "SHOW"))
        return run_show(a, &cmd, mode, portal, w);
    for (size_t i = 0; commands[i].name; i++) {
        if (strcmp(cmd.upper[0], commands[i].name) != 0)
            continue;
        if (cmd.n - 1 < commands[i].min_args || cmd.n - 1 > commands[i].max_args) {
            char msg[120];
            snprintf(msg, sizeof msg, "usage: %s", commands[i].usage);
            cmd_error(w, SQLSTATE_SYNTAX_ERROR, msg, NULL, NULL);
            return RUN_FAILED;
        }
        if (mode == MODE_DESCRIBE) {
            be_write_no_data(w);
            return RUN_DONE;
        }
        return commands[i].run(a, &cmd, w);
    }
    unknown_command(w, cmd.args[0]);
    return RUN_FAILED;
}

/* ---- the protocol ---- */

static struct admin_stmt *find_stmt(struct admin_session *a, struct span name)
{
    for (size_t i = 0; i < ADMIN_STMTS_MAX; i++) {
        const char *n = a->stmts[i].name;
        if (n && strlen(n) == name.len && memcmp(n, name.p, name.len) == 0)
            return &a->stmts[i];
    }
    return NULL;
}

static void drop_stmt(struct admin_stmt *st)
{
    free(st->name);
    free(st->sql);
    st->name = st->sql = NULL;
}

/* Parse: the text is kept under its name (the unnamed one replaced); a full table drops the oldest. */
static bool on_parse(struct admin_session *a, const uint8_t *body, size_t len, struct pq_writer *w)
{
    struct fe_parse p;
    if (!fe_read_parse(body, len, &p))
        return false;
    struct admin_stmt *st = find_stmt(a, p.name);
    if (st && p.name.len > 0) {
        cmd_error(w, SQLSTATE_DUPLICATE_PSTATEMENT, "prepared statement already exists", NULL, NULL);
        a->skipping = true;
        return true;
    }
    if (!st) {
        for (size_t i = 0; i < ADMIN_STMTS_MAX && !st; i++)
            if (!a->stmts[i].name)
                st = &a->stmts[i];
        if (!st) {
            drop_stmt(&a->stmts[0]);
            memmove(&a->stmts[0], &a->stmts[1], sizeof a->stmts - sizeof a->stmts[0]);
            st = &a->stmts[ADMIN_STMTS_MAX - 1];
            st->name = st->sql = NULL;
        }
    }
    drop_stmt(st);
    st->name = strndup((const char *)p.name.p, p.name.len);
    st->sql = strndup((const char *)p.query.p, p.query.len);
    if (!st->name || !st->sql) {
        drop_stmt(st);
        return false;
    }
    be_write_parse_complete(w);
    return true;
}

static bool on_bind(struct admin_session *a, const uint8_t *body, size_t len, struct pq_writer *w)
{
    struct fe_bind b;
    if (!fe_read_bind(body, len, &b))
        return false;
    if (b.nresult_formats > ADMIN_COLS_MAX) {
        cmd_error(w, SQLSTATE_PROTOCOL_VIOLATION, "too many result formats for the admin console", NULL, NULL);
        a->skipping = true;
        return true;
    }
    const struct admin_stmt *st = find_stmt(a, b.stmt);
    if (!st) {
        cmd_error(w, SQLSTATE_INVALID_SQL_STATEMENT_NAME, "prepared statement does not exist", NULL, NULL);
        a->skipping = true;
        return true;
    }
    char *sql = strdup(st->sql);
    if (!sql)
        return false;
    free(a->portal_sql);
    a->portal_sql = sql;
    a->nformats = b.nresult_formats;
    for (uint16_t i = 0; i < b.nresult_formats; i++)
        a->formats[i] = (uint8_t)fe_bind_result_format(&b, i);
    be_write_bind_complete(w);
    return true;
}

static bool on_describe(struct admin_session *a, const uint8_t *body, size_t len, struct pq_writer *w)
{
    char kind;
    struct span name;
    if (!fe_read_target(body, len, &kind, &name))
        return false;
    const char *sql = a->portal_sql;
    if (kind == 'S') {
        const struct admin_stmt *st = find_stmt(a, name);
        sql = st ? st->sql : NULL;
        if (sql)
            be_write_no_parameters(w);
    }
    if (!sql) {
        cmd_error(w, kind == 'S' ? SQLSTATE_INVALID_SQL_STATEMENT_NAME : SQLSTATE_UNDEFINED_OBJECT,
                  kind == 'S' ? "prepared statement does not exist" : "portal does not exist", NULL, NULL);
        a->skipping = true;
        return true;
    }
    if (run_command(a, sql, strlen(sql), MODE_DESCRIBE, kind == 'P', w) == RUN_FAILED)
        a->skipping = true;
    return true;
}

static bool on_close(struct admin_session *a, const uint8_t *body, size_t len, struct pq_writer *w)
{
    char kind;
    struct span name;
    if (!fe_read_target(body, len, &kind, &name))
        return false;
    struct admin_stmt *st = kind == 'S' ? find_stmt(a, name) : NULL;
    if (st)
        drop_stmt(st);
    be_write_close_complete(w);
    return true;
}

/* One whole message. False: a protocol violation (the client is ended). Stops further input
 * while a PAUSE is pending. */
static bool on_message(struct admin_session *a, char type, const uint8_t *body, size_t len, struct pq_writer *w)
{
    struct span sql;
    switch (type) {
    case FE_QUERY:
        if (!fe_read_query(body, len, &sql))
            return false;
        a->skipping = false;
        enum run r = run_command(a, (const char *)sql.p, sql.len, MODE_SIMPLE, false, w);
        if (r == RUN_PENDING)
            a->ready_after = true;
        else
            be_write_ready(w, TX_IDLE);
        return true;
    case FE_SYNC:
        a->skipping = false;
        be_write_ready(w, TX_IDLE);
        return true;
    case FE_FLUSH:
        return true;
    default:
        break;
    }
    if (a->skipping)
        return true;
    switch (type) {
    case FE_PARSE:
        return on_parse(a, body, len, w);
    case FE_BIND:
        return on_bind(a, body, len, w);
    case FE_DESCRIBE:
        return on_describe(a, body, len, w);
    case FE_CLOSE:
        return on_close(a, body, len, w);
    case FE_EXECUTE:
        if (!a->portal_sql) {
            cmd_error(w, SQLSTATE_UNDEFINED_OBJECT, "portal does not exist", NULL, NULL);
            a->skipping = true;
        } else if (run_command(a, a->portal_sql, strlen(a->portal_sql), MODE_EXECUTE, true, w) == RUN_FAILED) {
            a->skipping = true;
        }
        return true;
    default:
        cmd_error(w, SQLSTATE_FEATURE_NOT_SUPPORTED, "the admin console does not take this message",
                  "Only Query and Parse, Bind, Describe, Execute, Close, Sync and Flush are answered.", NULL);
        a->skipping = true;
        return true;
    }
}

static void admin_input(struct client *c)
{
    struct admin_session *a = c->admin;
    struct iobuf *in = &c->conn.in;
    struct pq_writer w;
    wr_init_dynamic(&w);
    while (!a->pausing && !c->conn.closing && c->state == CLIENT_IDLE && iobuf_len(in) > 0) {
        struct frame f;
        enum frame_result fr = frame_peek_fe(iobuf_head(in), iobuf_len(in), &rt.limits, &f);
        if (fr == FRAME_NEED_MORE)
            break;
        if (fr != FRAME_OK || f.total_len > ADMIN_MESSAGE_MAX) {
            client_error(c, "FATAL", SQLSTATE_PROTOCOL_VIOLATION,
                         fr == FRAME_OK || fr == FRAME_TOO_BIG ? "message too long for the admin console"
                                                               : "invalid message",
                         NULL, NULL);
            break;
        }
        if (iobuf_len(in) < f.total_len)
            break;
        if (f.type == FE_TERMINATE) {
            client_close(c, "client terminated");
            break;
        }
        bool ok = on_message(a, f.type, frame_body(iobuf_head(in)), f.body_len, &w);
        iobuf_consume(in, f.total_len);
        send_written(c, &w);
        if (!ok) {
            client_error(c, "FATAL", SQLSTATE_PROTOCOL_VIOLATION, "invalid message", NULL, NULL);
            break;
        }
    }
    wr_destroy(&w);
}

void admin_init(void)
{
    client_console = (struct client_console){
        .wants = admin_database,
        .begin = admin_begin,
        .peer_login = admin_peer_login,
        .token_login = admin_token_login,
        .input = admin_input,
        .session_free = admin_session_free,
    };
}
