/* Host names of [databases] conninfos, looked up on worker threads (getaddrinfo blocks, for as
 * long as a DNS server takes to answer or not) and kept a few seconds, so that a pool opening
 * twenty connections looks a name up once. The threads touch nothing but their own job; the loop
 * reads the answers through a locked list and an ev_async, as cancel.c does. At most one lookup
 * per name runs: a name that never answers holds one thread, and the servers waiting for it end
 * at server_connect_timeout. */
#include "proxy/resolve.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/log.h"

#define RESOLVE_OK_S 5.0   /* how long an answer is used: short, so a moved name is followed */
#define RESOLVE_FAIL_S 1.0 /* ... and a failure: the pool's own retry delay paces new attempts */
#define RESOLVE_ADDRS_MAX 8
#define RESOLVE_ENTRY_MAX 1024 /* a longer host entry is left to libpq */

/* One name's answer; the list lives until exit (one entry per name of the configuration). */
struct name_entry {
    char *name;
    bool pending;
    char *addrs; /* comma-separated numeric addresses; NULL when the lookup failed */
    char err[200];
    ev_tstamp expires;
    struct name_entry *next;
};

struct lookup_job {
    struct name_entry *entry; /* read by the loop only */
    char *name;               /* the thread's own copy */
    char addrs[RESOLVE_ADDRS_MAX * (INET6_ADDRSTRLEN + 1)];
    char err[200];
    ev_tstamp started;
    struct lookup_job *next;
};

#define RESOLVE_SUBSCRIBERS 4
static struct ev_loop *loop_;
static void (*subscribers[RESOLVE_SUBSCRIBERS])(void);
static struct name_entry *names;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lookup_job *done_jobs;
static ev_async done_async;

bool resolve_is_name(const char *entry)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (!entry[0] || entry[0] == '/' || entry[0] == '@')
        return false; /* libpq's default, a socket directory, an abstract socket */
    return inet_pton(AF_INET, entry, buf) != 1 && inet_pton(AF_INET6, entry, buf) != 1;
}

static void *lookup_worker(void *arg)
{
    struct lookup_job *job = arg;
    /* The hints libpq itself uses for a host name. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(job->name, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(job->err, sizeof job->err, "could not translate host name \"%s\" to address: %s", job->name,
                 gai_strerror(rc));
    } else {
        size_t n = 0, len = 0;
        for (struct addrinfo *a = res; a && n < RESOLVE_ADDRS_MAX; a = a->ai_next) {
            char host[INET6_ADDRSTRLEN + 1];
            if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
                getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof host, NULL, 0, NI_NUMERICHOST) != 0)
                continue;
            /* getaddrinfo repeats an address per socket type and protocol on some systems. */
            char quoted[INET6_ADDRSTRLEN + 3];
            snprintf(quoted, sizeof quoted, ",%s,", host);
            char list[sizeof job->addrs + 2];
            snprintf(list, sizeof list, ",%s,", job->addrs);
            if (strstr(list, quoted))
                continue;
            len += (size_t)snprintf(job->addrs + len, sizeof job->addrs - len, "%s%s", n ? "," : "", host);
            n++;
        }
        if (n == 0)
            snprintf(job->err, sizeof job->err, "host name \"%s\" has no IPv4 or IPv6 address", job->name);
        freeaddrinfo(res);
    }
    pthread_mutex_lock(&done_lock);
    job->next = done_jobs;
    done_jobs = job;
    pthread_mutex_unlock(&done_lock);
    ev_async_send(loop_, &done_async);
    return NULL;
}

static void on_lookups_done(struct ev_loop *loop, ev_async *w, int revents)
{
    pthread_mutex_lock(&done_lock);
    struct lookup_job *job = done_jobs;
    done_jobs = NULL;
    pthread_mutex_unlock(&done_lock);
    ev_tstamp now = ev_now(loop);
    while (job) {
        struct lookup_job *next = job->next;
        struct name_entry *e = job->entry;
        e->pending = false;
        free(e->addrs);
        e->addrs = job->addrs[0] ? strdup(job->addrs) : NULL;
        snprintf(e->err, sizeof e->err, "%s", e->addrs ? "" : job->err[0] ? job->err : "out of memory");
        e->expires = now + (e->addrs ? RESOLVE_OK_S : RESOLVE_FAIL_S);
        if (e->addrs)
            log_debug("resolved %s off the loop in %.0f ms: %s", e->name, (now - job->started) * 1000, e->addrs);
        else
            log_debug("%s", e->err); /* the connection attempt that waited for it says it as a warning */
        free(job->name);
        free(job);
        job = next;
    }
    for (size_t i = 0; i < RESOLVE_SUBSCRIBERS && subscribers[i]; i++)
        subscribers[i]();
}

bool resolve_subscribe(void (*done)(void))
{
    for (size_t i = 0; i < RESOLVE_SUBSCRIBERS; i++) {
        if (!subscribers[i] || subscribers[i] == done) {
            subscribers[i] = done;
            return true;
        }
    }
    return false;
}

void resolve_init(struct ev_loop *loop)
{
    loop_ = loop;
    ev_async_init(&done_async, on_lookups_done);
    ev_async_start(loop, &done_async);
    ev_unref(loop); /* the loop's lifetime is the listeners' and connections', not this */
}

static bool start_lookup(struct name_entry *e)
{
    struct lookup_job *job = calloc(1, sizeof *job);
    if (!job || !(job->name = strdup(e->name))) {
        free(job);
        return false;
    }
    job->entry = e;
    job->started = ev_now(loop_);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool ok = pthread_create(&t, &attr, lookup_worker, job) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        free(job->name);
        free(job);
        return false;
    }
    e->pending = true;
    return true;
}

/* The cached answer for name, starting a lookup when there is none or it is old. */
static const char *cache_lookup(const char *name, bool *pending, const char **err, void *arg)
{
    (void)arg;
    struct name_entry *e;
    for (e = names; e && strcmp(e->name, name) != 0; e = e->next)
        ;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e || !(e->name = strdup(name))) {
            free(e);
            *err = "out of memory";
            return NULL;
        }
        e->next = names;
        names = e;
    }
    if (!e->pending && ev_now(loop_) >= e->expires && !start_lookup(e)) {
        *err = "could not start a thread to look the host name up";
        return NULL;
    }
    if (e->pending) {
        *pending = true;
        return NULL;
    }
    *err = e->err;
    return e->addrs;
}

/* Appends "entry" to a comma-separated list. */
static void put(FILE *f, bool first, const char *entry)
{
    if (!first)
        fputc(',', f);
    fputs(entry, f);
}

/* The n-th comma-separated entry of list into out; false when there is none or it is too long. */
static bool nth(const char *list, size_t n, char *out, size_t outlen)
{
    const char *p = list;
    for (size_t i = 0; i < n; i++) {
        p = strchr(p, ',');
        if (!p)
            return false;
        p++;
    }
    size_t len = strcspn(p, ",");
    if (len >= outlen)
        return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

static size_t count_entries(const char *list)
{
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    return n;
}

enum resolve_status resolve_expand(const char *host, const char *port, bool always,
                                   const char *(*lookup)(const char *name, bool *pending, const char **err,
                                                         void *arg),
                                   void *arg, struct resolve_lists *out, char *err, size_t errlen)
{
    if (!host || !host[0])
        return RESOLVE_NONE;
    size_t nhosts = count_entries(host), nports = port && port[0] ? count_entries(port) : 0;
    if (nports > 1 && nports != nhosts)
        return RESOLVE_NONE; /* libpq says what is wrong with the lists */
    char entry[RESOLVE_ENTRY_MAX], portv[64] = "", addr[INET6_ADDRSTRLEN + 1];
    bool any_name = false;
    for (size_t i = 0; i < nhosts; i++) {
        if (!nth(host, i, entry, sizeof entry))
            return RESOLVE_NONE;
        any_name |= resolve_is_name(entry);
    }
    if (!any_name && !always)
        return RESOLVE_NONE;

    struct resolve_lists l = {0};
    size_t hlen, alen, plen, n = 0;
    FILE *fh = open_memstream(&l.host, &hlen), *fa = open_memstream(&l.hostaddr, &alen),
         *fp = open_memstream(&l.port, &plen);
    enum resolve_status st = RESOLVE_READY;
    if (!fh || !fa || !fp) {
        snprintf(err, errlen, "out of memory");
        st = RESOLVE_FAILED;
        goto out;
    }
    err[0] = '\0';
    for (size_t i = 0; i < nhosts; i++) {
        (void)nth(host, i, entry, sizeof entry);
        if (nports > 0 && !nth(port, nports > 1 ? i : 0, portv, sizeof portv)) {
            st = RESOLVE_NONE;
            goto out;
        }
        if (!resolve_is_name(entry)) {
            put(fh, n == 0, entry);
            put(fa, n == 0, "");
            put(fp, n == 0, portv);
            n++;
            continue;
        }
        bool pending = false;
        const char *why = NULL;
        const char *addrs = lookup(entry, &pending, &why, arg);
        if (pending) {
            st = RESOLVE_PENDING;
            continue;
        }
        if (!addrs) {
            /* libpq goes on with the next host too; its message if none is left. */
            if (!err[0])
                snprintf(err, errlen, "%s", why ? why : "host name lookup failed");
            continue;
        }
        for (size_t k = 0; nth(addrs, k, addr, sizeof addr); k++) {
            put(fh, n == 0, entry);
            put(fa, n == 0, addr);
            put(fp, n == 0, portv);
            n++;
        }
    }
    if (st == RESOLVE_READY && n == 0)
        st = RESOLVE_FAILED;
out:
    if (fh)
        fclose(fh);
    if (fa)
        fclose(fa);
    if (fp)
        fclose(fp);
    if (st == RESOLVE_READY && nports == 0) {
        free(l.port); /* none given: libpq's default (PGPORT) stays, which empty entries would not */
        l.port = NULL;
    }
    if (st == RESOLVE_READY && l.host && l.hostaddr)
        *out = l;
    else
        resolve_lists_free(&l);
    return st;
}

static const char *option(const PQconninfoOption *opts, const char *key)
{
    for (const PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, key) == 0)
            return o->val;
    return NULL;
}

enum resolve_status resolve_conninfo(const char *conninfo, bool always, struct resolve_lists *out, char *err,
                                     size_t errlen)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (!opts)
        return RESOLVE_NONE; /* libpq says what is wrong with it */
    const char *hostaddr = option(opts, "hostaddr");
    enum resolve_status st = RESOLVE_NONE;
    if (!hostaddr || !hostaddr[0]) /* given: libpq resolves nothing */
        st = resolve_expand(option(opts, "host"), option(opts, "port"), always, cache_lookup, NULL, out, err,
                            errlen);
    PQconninfoFree(opts);
    return st;
}

size_t resolve_lists_params(const struct resolve_lists *l, const char **keys, const char **vals, size_t n)
{
    if (!l->host)
        return n;
    keys[n] = "host", vals[n++] = l->host;
    keys[n] = "hostaddr", vals[n++] = l->hostaddr;
    if (l->port)
        keys[n] = "port", vals[n++] = l->port;
    return n;
}

void resolve_lists_free(struct resolve_lists *l)
{
    free(l->host);
    free(l->hostaddr);
    free(l->port);
    *l = (struct resolve_lists){0};
}

bool resolve_lists_copy(const struct resolve_lists *from, struct resolve_lists *to)
{
    *to = (struct resolve_lists){0};
    to->host = from->host ? strdup(from->host) : NULL;
    to->hostaddr = from->hostaddr ? strdup(from->hostaddr) : NULL;
    to->port = from->port ? strdup(from->port) : NULL;
    if ((from->host && !to->host) || (from->hostaddr && !to->hostaddr) || (from->port && !to->port)) {
        resolve_lists_free(to);
        return false;
    }
    return true;
}

size_t resolve_lists_count(const struct resolve_lists *l)
{
    return l->host ? count_entries(l->host) : 0;
}

static bool entry_is(const char *list, size_t i, const char *want)
{
    char v[RESOLVE_ENTRY_MAX];
    return !want || (list && nth(list, i, v, sizeof v) && strcmp(v, want) == 0);
}

long resolve_lists_find(const struct resolve_lists *l, size_t from, const char *host, const char *port,
                        const char *hostaddr)
{
    size_t n = resolve_lists_count(l);
    for (size_t i = from; i < n; i++) {
        char a[INET6_ADDRSTRLEN + 1];
        /* An empty hostaddr entry: libpq looked the entry's host up itself, any address. */
        bool addr_ok = !hostaddr || !nth(l->hostaddr, i, a, sizeof a) || !a[0] || strcmp(a, hostaddr) == 0;
        if (entry_is(l->host, i, host) && (!l->port || entry_is(l->port, i, port)) && addr_ok)
            return (long)i;
    }
    return -1;
}

/* The list without its first n entries, in place. */
static bool drop_entries(char *list, size_t n)
{
    char *p = list;
    for (size_t i = 0; i < n; i++) {
        p = strchr(p, ',');
        if (!p)
            return false;
        p++;
    }
    memmove(list, p, strlen(p) + 1);
    return true;
}

bool resolve_lists_drop(struct resolve_lists *l, size_t n)
{
    if (n == 0)
        return true;
    return l->host && drop_entries(l->host, n) && drop_entries(l->hostaddr, n) &&
           (!l->port || drop_entries(l->port, n));
}
