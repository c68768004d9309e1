/* Worker processes, their supervisor and what they share (see workers.h). */
#include "proxy/workers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/runtime.h"

int worker_index;
int worker_count = 1;

/* A tenant's or role's logins, counted per worker so that a worker that dies can be taken out
 * of every count at once. Open addressing on the name; a slot once named stays named. */
#define COUNT_SLOTS 16384
#define COUNT_NAME_MAX 66 /* kind letter, a name of up to 64 bytes, NUL */
struct count_slot {
    char name[COUNT_NAME_MAX];
    int n[WORKERS_MAX];
};

struct shared {
    atomic_int clients[WORKERS_MAX];
    atomic_int placed[WORKERS_MAX]; /* connections passed to a worker that it has not taken in yet */
    pthread_mutex_t lock;           /* robust: a worker may die holding it */
    int used;
    bool full_logged;
    struct count_slot slots[COUNT_SLOTS];
};

static struct shared *shared;
static int cancel_pair[WORKERS_MAX][2]; /* inboxes: [i][0] worker i reads; [i][1] the others write */
static pid_t worker_pids[WORKERS_MAX];

bool workers_prepare(int count, char *err, size_t errlen)
{
    worker_count = count;
    /* Shared even with one worker: pages are only touched where counts are kept. */
    // cppcheck-suppress invalidFunctionArg ; fd -1 is what MAP_ANONYMOUS asks for
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        snprintf(err, errlen, "could not map the workers' shared counts: %s", strerror(errno));
        return false;
    }
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&shared->lock, &a);
    pthread_mutexattr_destroy(&a);
    for (int i = 0; i < count && count > 1; i++) {
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, cancel_pair[i]) != 0) {
            snprintf(err, errlen, "could not make the workers' cancel channel: %s", strerror(errno));
            return false;
        }
    }
    return true;
}

static void lock_shared(void)
{
    if (pthread_mutex_lock(&shared->lock) == EOWNERDEAD)
        pthread_mutex_consistent(&shared->lock); /* counts are plain ints: nothing half-made */
}

/* A worker that died took its clients with it: its column of every count goes back to zero. */
static void forget_worker(int w)
{
    atomic_store(&shared->clients[w], 0);
    atomic_store(&shared->placed[w], 0);
    lock_shared();
    for (int i = 0; i < COUNT_SLOTS; i++)
        if (shared->slots[i].name[0])
            shared->slots[i].n[w] = 0;
    pthread_mutex_unlock(&shared->lock);
}

static pid_t start_worker(int i, void (*child_setup)(void), const sigset_t *old_mask)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    worker_index = i;
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* a supervisor killed outright takes its workers along */
    for (int j = 0; j < worker_count; j++) {
        close(cancel_pair[j][j == i ? 1 : 0]);
        if (j != i)
            cancel_pair[j][0] = -1;
    }
    child_setup();
    sigprocmask(SIG_SETMASK, old_mask, NULL);
    return 0;
}

/* except: a worker to leave out; WORKERS_MAX for none. */
static void signal_workers(int sig, int except)
{
    for (int i = 0; i < worker_count; i++) {
        if (i == except)
            continue;
        if (worker_pids[i] > 0)
            kill(worker_pids[i], sig);
    }
}

void workers_tell_others(bool shutdown)
{
    if (worker_count < 2)
        return;
    union sigval v = {.sival_int = worker_index};
    sigqueue(getppid(), shutdown ? SIGUSR2 : SIGUSR1, v);
}

bool workers_run(void (*child_setup)(void), int *exit_code)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, &old);
    time_t started[WORKERS_MAX];
    for (int i = 0; i < worker_count; i++) {
        started[i] = time(NULL);
        if ((worker_pids[i] = start_worker(i, child_setup, &old)) == 0)
            return true;
        if (worker_pids[i] < 0)
            log_error("could not start worker %d: %s", i, strerror(errno));
    }
    log_info("supervisor %d: %d workers started", (int)getpid(), worker_count);
    bool stopping = false, failed_start = false;
    for (;;) {
        int alive = 0;
        for (int i = 0; i < worker_count; i++)
            alive += worker_pids[i] > 0;
        if (alive == 0) {
            *exit_code = failed_start ? 1 : 0;
            return false;
        }
        siginfo_t info;
        int sig = sigwaitinfo(&set, &info);
        if (sig == SIGHUP) {
            signal_workers(SIGHUP, WORKERS_MAX);
        } else if (sig == SIGUSR1 || sig == SIGUSR2) {
            /* The admin console's RELOAD or SHUTDOWN in one worker, which has done it itself. */
            int from = info.si_value.sival_int;
            if (from < 0 || from >= worker_count)
                from = WORKERS_MAX;
            if (sig == SIGUSR2)
                stopping = true;
            signal_workers(sig == SIGUSR1 ? SIGHUP : SIGTERM, from);
        } else if (sig == SIGTERM || sig == SIGINT) {
            stopping = true;
            signal_workers(sig, WORKERS_MAX);
        } else if (sig == SIGCHLD) {
            int status;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                for (int i = 0; i < worker_count; i++) {
                    if (worker_pids[i] != pid)
                        continue;
                    worker_pids[i] = 0;
                    forget_worker(i);
                    if (stopping)
                        break;
                    /* Failing at once with an error (its metrics port taken, say) is a start-up
                     * error of the whole instance, as it is with one process. */
                    if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && time(NULL) - started[i] < 2) {
                        log_error("worker %d failed at start (exit status %d): stopping", i, WEXITSTATUS(status));
                        stopping = failed_start = true;
                        signal_workers(SIGTERM, WORKERS_MAX);
                        break;
                    }
                    log_error("worker %d (pid %d) ended (%s %d): starting it again", i, (int)pid,
                              WIFSIGNALED(status) ? "signal" : "exit status",
                              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
                    /* One that dies at once would die again: at most one start a second. */
                    if (time(NULL) - started[i] < 1)
                        sleep(1);
                    started[i] = time(NULL);
                    if ((worker_pids[i] = start_worker(i, child_setup, &old)) == 0)
                        return true;
                    if (worker_pids[i] < 0)
                        worker_pids[i] = 0;
                }
            }
        }
    }
}

uint32_t workers_cancel_pid(uint64_t client_id)
{
    return ((uint32_t)rt.cfg->peer_id << 24) | ((uint32_t)worker_index << 20) | (uint32_t)(client_id & 0xFFFFF);
}

int workers_pid_peer(uint32_t pid)
{
    return (int)(pid >> 24) & 0x7F;
}

int workers_pid_worker(uint32_t pid)
{
    return (int)(pid >> 20) & 0xF;
}

int workers_inbox_fd(int worker, bool reading)
{
    return cancel_pair[worker][reading ? 0 : 1];
}

int workers_clients_add(int delta)
{
    atomic_fetch_add(&shared->clients[worker_index], delta);
    int total = 0;
    for (int i = 0; i < worker_count; i++)
        total += atomic_load(&shared->clients[i]);
    return total;
}

int workers_share(int size, int w)
{
    int share = size / worker_count + (w < size % worker_count);
    return share > 0 ? share : 1;
}

int workers_place(int fill_size)
{
    if (worker_count < 2)
        return worker_index;
    int best = worker_index, best_over = 0;
    for (int w = 0; w < worker_count; w++) {
        int load = atomic_load(&shared->clients[w]) + atomic_load(&shared->placed[w]);
        int over = load - workers_share(fill_size, w);
        if (over < 0) { /* the first worker with room: the lower ones fill first */
            best = w;
            break;
        }
        if (w == 0 || over < best_over || (over == best_over && w == worker_index))
            best = w, best_over = over;
    }
    if (best != worker_index)
        atomic_fetch_add(&shared->placed[best], 1);
    return best;
}

void workers_placed_done(int w)
{
    /* A worker that died had its count zeroed while a connection passed to it was still queued
     * for its successor: never below zero. */
    int n = atomic_load(&shared->placed[w]);
    while (n > 0 && !atomic_compare_exchange_weak(&shared->placed[w], &n, n - 1))
        ;
}

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* The slot of kind+name, made if make and there is room; NULL otherwise. Under the lock. */
static struct count_slot *find_slot(char kind, const char *name, bool make)
{
    char key[COUNT_NAME_MAX];
    snprintf(key, sizeof key, "%c%s", kind, name);
    for (uint32_t i = name_hash(key) % COUNT_SLOTS, tries = 0; tries < COUNT_SLOTS;
         i = (i + 1) % COUNT_SLOTS, tries++) {
        struct count_slot *s = &shared->slots[i];
        if (strcmp(s->name, key) == 0)
            return s;
        if (s->name[0] == '\0') {
            /* Three quarters full: lookups would grow long; new names go uncounted instead. */
            if (!make || shared->used >= COUNT_SLOTS / 4 * 3)
                return NULL;
            memcpy(s->name, key, sizeof key);
            shared->used++;
            return s;
        }
    }
    return NULL;
}

static int slot_total(const struct count_slot *s)
{
    int n = 0;
    for (int i = 0; i < worker_count; i++)
        n += s->n[i];
    return n;
}

enum login_take workers_login_take(const char *tenant, const char *role, int tenant_max, int role_max, int *count)
{
    lock_shared();
    struct count_slot *t = find_slot('t', tenant, true), *r = find_slot('r', role, true);
    enum login_take res = LOGIN_TAKEN;
    if (t && tenant_max > 0 && (*count = slot_total(t)) >= tenant_max)
        res = LOGIN_TENANT_FULL;
    else if (r && role_max > 0 && (*count = slot_total(r)) >= role_max)
        res = LOGIN_ROLE_FULL;
    if (res == LOGIN_TAKEN) {
        if (t)
            t->n[worker_index]++;
        if (r)
            r->n[worker_index]++;
    }
    bool warn = (!t || !r) && !shared->full_logged;
    if (warn)
        shared->full_logged = true;
    pthread_mutex_unlock(&shared->lock);
    if (warn)
        log_warn("more than %d tenants and roles logged in at once: the ones past that are not counted for "
                 "max_client_conn_per_tenant and the roles' max_client_conn",
                 COUNT_SLOTS / 4 * 3);
    return res;
}

void workers_login_give(const char *tenant, const char *role)
{
    lock_shared();
    struct count_slot *t = find_slot('t', tenant, false), *r = find_slot('r', role, false);
    if (t && t->n[worker_index] > 0)
        t->n[worker_index]--;
    if (r && r->n[worker_index] > 0)
        r->n[worker_index]--;
    pthread_mutex_unlock(&shared->lock);
}
