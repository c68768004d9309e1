/* A client's CancelRequest, routed to the instance and worker its key names and checked here,
 * and cancels on the server: PQcancel blocks, so it runs on a worker thread that owns its PGcancel
 * copy and touches nothing else. When it is done it hands the job back to the loop (a locked
 * list and an ev_async), which lets the server connection go to another client again: a cancel
 * that reached PostgreSQL late must not cancel the next client's statement. */
#include "proxy/cancel.h"

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/events.h"
#include "proxy/log.h"
#include "proxy/peers.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/workers.h"
#include "proxy/workmsg.h"

struct cancel_job {
    PGcancel *cancel;
    uint64_t server_id;
    uint64_t client_id; /* linked when the cancel was sent; 0: none */
    char tag[128];
    bool sent;     /* the worker's outcome, logged by the loop (the log is the loop's alone) */
    char err[256]; /* ... libpq's reason when not sent */
    struct cancel_job *next;
};

/* Each PQcancel holds a thread and a connection to PostgreSQL for up to a connect timeout; past
 * this many at once further cancels are dropped (logged), as PostgreSQL itself does not promise
 * that a cancel arrives. Counted on the loop thread only. */
#define CANCELS_MAX 64
static unsigned cancels_running;

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cancel_job *done_jobs;
static ev_async done_async;

static struct server *find_server(uint64_t id)
{
    struct pool *p;
    TAILQ_FOREACH(p, &rt.pools, link) {
        struct server_list *lists[] = {&p->linked, &p->resetting, &p->idle, &p->connecting};
        for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
            struct server *s;
            TAILQ_FOREACH(s, lists[i], link)
                if (s->id == id)
                    return s;
        }
    }
    return NULL;
}

static void on_cancels_done(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    pthread_mutex_lock(&done_lock);
    struct cancel_job *job = done_jobs;
    done_jobs = NULL;
    pthread_mutex_unlock(&done_lock);
    while (job) {
        struct cancel_job *next = job->next;
        /* The server may be gone by now: the job's copy of its tag and ids names it. */
        struct log_who who = {.tag = job->tag, .kind = 'S', .id = job->server_id, .client_id = job->client_id};
        if (job->sent)
            LOG_EVENT(LOG_INFO, &who, "cancel_sent", NULL, "cancel sent to server");
        else
            LOG_EVENT(LOG_WARNING, &who, "cancel_failed", NULL, "cancel failed: %s", job->err);
        cancels_running--;
        struct server *s = find_server(job->server_id);
        if (s && s->cancels_in_flight > 0 && --s->cancels_in_flight == 0)
            session_events.server_settled(s);
        free(job);
        job = next;
    }
}

void cancel_init(struct ev_loop *loop)
{
    ev_async_init(&done_async, on_cancels_done);
    ev_async_start(loop, &done_async);
    ev_unref(loop); /* the loop's lifetime is the listeners' and connections', not this */
}

static void *cancel_worker(void *arg)
{
    struct cancel_job *job = arg;
    job->sent = PQcancel(job->cancel, job->err, sizeof job->err) == 1;
    PQfreeCancel(job->cancel);
    pthread_mutex_lock(&done_lock);
    job->next = done_jobs;
    done_jobs = job;
    pthread_mutex_unlock(&done_lock);
    ev_async_send(rt.loop, &done_async);
    return NULL;
}

void cancel_server(struct server *s)
{
    if (!s->pg)
        return;
    if (cancels_running >= CANCELS_MAX) {
        SERVER_LOG(LOG_WARNING, s, "cancel_dropped", NULL, "cancel dropped: %u cancels already in progress",
                   cancels_running);
        return;
    }
    struct cancel_job *job = calloc(1, sizeof *job);
    if (!job)
        return;
    job->cancel = PQgetCancel(s->pg);
    job->server_id = s->id;
    job->client_id = s->client ? s->client->id : 0;
    snprintf(job->tag, sizeof job->tag, "%s", s->tag);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!job->cancel || pthread_create(&t, &attr, cancel_worker, job) != 0) {
        if (job->cancel)
            PQfreeCancel(job->cancel);
        free(job);
        SERVER_LOG(LOG_WARNING, s, "cancel_failed", NULL, "cancel could not be started");
    } else {
        s->cancels_in_flight++;
        cancels_running++;
    }
    pthread_attr_destroy(&attr);
}

/* A CancelRequest is forwarded only when pid and key both match a live client (the key compared
 * in constant time) and that client is linked to a server; anything else is ignored silently, as
 * PostgreSQL does. One whose pid names another instance or worker goes there first. */
void cancel_request(uint32_t pid, uint32_t key)
{
    int peer = workers_pid_peer(pid);
    if (peer != rt.cfg->peer_id) {
        if (rt.cfg->peer_id == 0)
            LOG_EVENT(LOG_INFO, NULL, "cancel_ignored", NULL,
                      "cancel request for peer %d ignored: this instance has no peer_id", peer);
        else
            peers_forward_cancel(peer, pid, key);
        return;
    }
    if (workmsg_forward_cancel(pid, key))
        return;
    struct client *c = client_find_by_pid(pid);
    /* Peers count hops in the key's low bits (peers.h): they are not part of what must match. */
    uint32_t want = c ? c->cancel_key | PEERS_KEY_HOPS : 0, got = key | PEERS_KEY_HOPS;
    if (!c || CRYPTO_memcmp(&want, &got, sizeof got) != 0) {
        LOG_EVENT(LOG_INFO, NULL, "cancel_ignored", NULL, "cancel request with unknown pid or wrong key ignored");
        return;
    }
    if (!c->server || !c->server->pg) {
        CLIENT_LOG(LOG_INFO, c, "cancel_ignored", NULL, "cancel request: nothing running on a server");
        return;
    }
    cancel_server(c->server);
}
