/* A cancel is forwarded only when pid and key both match a live client (the key compared in
 * constant time) and that client is linked to a server; anything else is ignored silently, as
 * PostgreSQL does. The worker thread owns its PGcancel copy and touches nothing else. */
#include "proxy/cancel.h"

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "proxy/client.h"
#include "proxy/log.h"
#include "proxy/server.h"

struct cancel_job {
    PGcancel *cancel;
    char tag[128];
};

static void *cancel_worker(void *arg)
{
    struct cancel_job *job = arg;
    char err[256];
    if (!PQcancel(job->cancel, err, sizeof err))
        LOG_AT(LOG_WARNING, job->tag, "cancel failed: %s", err);
    else
        LOG_AT(LOG_INFO, job->tag, "cancel sent to server");
    PQfreeCancel(job->cancel);
    free(job);
    return NULL;
}

void cancel_server(struct server *s)
{
    if (!s->pg)
        return;
    struct cancel_job *job = calloc(1, sizeof *job);
    if (!job)
        return;
    job->cancel = PQgetCancel(s->pg);
    snprintf(job->tag, sizeof job->tag, "%s", s->tag);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!job->cancel || pthread_create(&t, &attr, cancel_worker, job) != 0) {
        if (job->cancel)
            PQfreeCancel(job->cancel);
        free(job);
        LOG_AT(LOG_WARNING, s->tag, "cancel could not be started");
    }
    pthread_attr_destroy(&attr);
}

void cancel_request(uint32_t pid, uint32_t key)
{
    struct client *c = client_find_by_pid(pid);
    if (!c || CRYPTO_memcmp(&c->cancel_key, &key, sizeof key) != 0) {
        log_info("cancel request with unknown pid or wrong key ignored");
        return;
    }
    struct server *s = c->server;
    if (!s || !s->pg) {
        LOG_AT(LOG_INFO, c->tag, "cancel request: nothing running on a server");
        return;
    }
    cancel_server(s);
}
