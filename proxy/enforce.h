/* Server-side enforcement through the pgmesh extension (extension/): the key pgmesh shares with
 * it, and the probe that finds out, once per server connection, whether the extension is there
 * and reads that backend's nonce, which binds every claims message to the one backend. */
#ifndef PGMESH_PROXY_ENFORCE_H
#define PGMESH_PROXY_ENFORCE_H

#include <libpq-fe.h>
#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;

#define ENFORCE_NONCE_LEN 32 /* hex characters */
/* The extension's GUC_REPORT count of transactions that changed session settings
 * (extension/report.h): a ParameterStatus of it means the server holds settings pgmesh did not set. */
#define ENFORCE_REPORT_SETTING "pgmesh.session_changes"

/* Loads server_key_file when set (hex, at least 32 bytes of key). False with err on a missing,
 * unreadable or malformed file. */
bool enforce_init(const struct config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
void enforce_shutdown(void);
/* Whether new server connections are probed: server_enforcement is not off and a key is loaded. */
bool enforce_active(void);
/* HMAC-SHA256 keyed with the loaded key (NULL when none), for txstart_write_apply. */
EVP_MAC_CTX *enforce_mac(void);

enum enforce_probe { PROBE_BUSY, PROBE_FOUND, PROBE_ABSENT, PROBE_FAILED };

/* Sends the probe on a connection libpq has just opened (it is made non-blocking). */
bool enforce_probe_start(PGconn *pg) __attribute__((warn_unused_result));
/* Reads what has arrived: PROBE_BUSY until the reply is complete; PROBE_FOUND with the nonce
 * (ENFORCE_NONCE_LEN hex digits and a NUL) and the OID of pgmesh.switch (0: the extension is 1.0,
 * not yet updated on that server); PROBE_ABSENT when the database has no extension;
 * PROBE_FAILED with why. *seen (PROBE_BUSY at the start) keeps the verdict of a result read
 * before the reply was complete; *want_write is set when libpq still has the query to send. */
enum enforce_probe enforce_probe_poll(PGconn *pg, enum enforce_probe *seen, char *nonce, uint32_t *switch_oid,
                                      bool *want_write, char *why, size_t whylen);

#endif
