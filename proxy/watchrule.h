/* The watcher's judgements, pure (no I/O, no globals) so they are unit-tested on their own: when a
 * replication slot's retained WAL is worth a warning, whether two databases' collations differ in
 * a way that makes postgres_fdw's pushed-down sorts and comparisons disagree, and how a byte count
 * reads in a log line. proxy/watch.c does the connecting and the logging. */
#ifndef PGMESH_PROXY_WATCHRULE_H
#define PGMESH_PROXY_WATCHRULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A slot's WAL against slot_wal_warn: *over is the slot's new state (retained_bytes < 0, WAL not
 * reserved, is never over). True only when it crosses from below (or from unknown, was_over false)
 * to above: one warning per crossing, none while it stays above. */
bool watchrule_slot_crossed(bool was_over, int64_t retained_bytes, int64_t warn_bytes, bool *over)
    __attribute__((warn_unused_result));

/* One database's collation as pg_database has it. Empty strings for what it lacks (no ICU locale,
 * no version). provider is "libc" or "icu". */
struct watchrule_collation {
    const char *datcollate;
    const char *datctype;
    const char *provider;
    const char *icu_locale;
    const char *collversion;
};

/* False when a and b sort and compare alike; true with what differs written to why (e.g.
 * "datcollate C vs C.UTF-8"; every difference, "; "-separated). Versions are compared only when
 * both are known: a database without one (C, POSIX) has nothing to drift. */
bool watchrule_collation_mismatch(const struct watchrule_collation *a, const struct watchrule_collation *b,
                                  char *why, size_t whylen) __attribute__((warn_unused_result));

/* "1.5 GB", "12 MB", "512 kB", "100 bytes" (1024 steps, one decimal below 10 of a unit). */
void watchrule_format_size(int64_t bytes, char *buf, size_t len);

#endif
