/* Enforcement through the pgmesh extension: the shared key and the per-connection probe. The
 * probe runs on libpq's own asynchronous API before pgmesh takes the socket over for raw relay:
 * the reply (one row, or an error) is consumed whole, so nothing of it is left in libpq's
 * buffers when the relay starts reading the socket. */
#include "proxy/enforce.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"

#define KEY_MIN 32
#define KEY_MAX 256

static uint8_t key[KEY_MAX];
static size_t key_len;
static bool active;
/* Keyed once: OpenSSL 3's one-shot HMAC() sets the algorithm and key up on every call, about four
 * times the cost of reusing a keyed context, on every transaction. */
static EVP_MAC_CTX *mac_ctx;

static bool key_mac_ctx(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    mac_ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    return mac_ctx && EVP_MAC_init(mac_ctx, key, key_len, params) == 1;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex digits, white space at the end allowed (a trailing newline). */
static bool decode_key(const char *text, size_t len, char *err, size_t errlen)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (len % 2 != 0 || len / 2 < KEY_MIN || len / 2 > KEY_MAX) {
        snprintf(err, errlen, "must hold %d to %d bytes as hex digits", KEY_MIN, KEY_MAX);
        return false;
    }
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(err, errlen, "holds something other than hex digits");
            return false;
        }
        key[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    key_len = len / 2;
    return true;
}

bool enforce_init(const struct config *cfg, char *err, size_t errlen)
{
    enforce_shutdown();
    if (cfg->server_key_file[0] == '\0')
        return true;
    FILE *f = fopen(cfg->server_key_file, "r");
    if (!f) {
        snprintf(err, errlen, "server_key_file %s: %s", cfg->server_key_file, strerror(errno));
        return false;
    }
    char text[2 * KEY_MAX + 8];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    char why[96];
    if (n == sizeof text || !decode_key(text, n, why, sizeof why)) {
        snprintf(err, errlen, "server_key_file %s %s", cfg->server_key_file,
                 n == sizeof text ? "is too long" : why);
        OPENSSL_cleanse(text, sizeof text);
        return false;
    }
    OPENSSL_cleanse(text, sizeof text);
    if (!key_mac_ctx()) {
        snprintf(err, errlen, "HMAC-SHA256 is not available from OpenSSL");
        return false;
    }
    active = cfg->server_enforcement != ENFORCE_OFF;
    return true;
}

void enforce_shutdown(void)
{
    EVP_MAC_CTX_free(mac_ctx);
    mac_ctx = NULL;
    OPENSSL_cleanse(key, sizeof key);
    key_len = 0;
    active = false;
}

bool enforce_active(void)
{
    return active;
}

EVP_MAC_CTX *enforce_mac(void)
{
    return mac_ctx;
}

bool enforce_probe_start(PGconn *pg)
{
    /* switch() only where the library this backend runs has it too (version() is the loaded
     * library's): SQL updated to 1.1 under a 1.0 library still preloaded would fail the call with
     * an ERROR, not the FATAL the statements pipelined behind it rely on. Types spelled with their
     * schema: a search_path (a role default) cannot make the lookup find something else; at worst
     * it finds nothing and pgmesh does without switch(). */
    return PQsetnonblocking(pg, 1) == 0 &&
           PQsendQuery(
               pg, "SELECT pgmesh.nonce(), CASE WHEN pg_catalog.string_to_array(pgmesh.version(), '.')::"
                   "pg_catalog.int4[] >= '{1,1}' THEN COALESCE(pg_catalog.to_regprocedure('pgmesh.switch("
                   "pg_catalog.int8, pg_catalog.text[], pg_catalog.text)')::pg_catalog.oid, 0) ELSE 0 END") == 1;
}

static bool is_nonce(const char *v)
{
    if (strlen(v) != ENFORCE_NONCE_LEN)
        return false;
    for (const char *p = v; *p; p++)
        if (hex_value(*p) < 0)
            return false;
    return true;
}

/* One result of the probe: the row, or the error saying the function is not there. */
static enum enforce_probe read_result(PGresult *res, char *nonce, uint32_t *switch_oid, char *why, size_t whylen)
{
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        if (PQntuples(res) == 1 && PQnfields(res) == 2 && is_nonce(PQgetvalue(res, 0, 0))) {
            memcpy(nonce, PQgetvalue(res, 0, 0), ENFORCE_NONCE_LEN + 1);
            *switch_oid = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
            return PROBE_FOUND;
        }
        snprintf(why, whylen, "pgmesh.nonce() returned something other than a nonce");
        return PROBE_FAILED;
    }
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    /* 42883: no such function; 3F000: no schema pgmesh (no CREATE EXTENSION in this database). */
    if (state && (strcmp(state, "42883") == 0 || strcmp(state, "3F000") == 0))
        return PROBE_ABSENT;
    snprintf(why, whylen, "the probe for the pgmesh extension failed: %s", PQresultErrorMessage(res));
    return PROBE_FAILED;
}

enum enforce_probe enforce_probe_poll(PGconn *pg, enum enforce_probe *seen, char *nonce, uint32_t *switch_oid,
                                      bool *want_write, char *why, size_t whylen)
{
    int flushed = PQflush(pg);
    *want_write = flushed == 1;
    if (flushed < 0 || !PQconsumeInput(pg)) {
        snprintf(why, whylen, "%s", PQerrorMessage(pg));
        return PROBE_FAILED;
    }
    while (!PQisBusy(pg)) {
        PGresult *res = PQgetResult(pg);
        if (!res) { /* the whole reply is read */
            if (*seen == PROBE_BUSY)
                snprintf(why, whylen, "the probe for the pgmesh extension got no answer");
            return *seen == PROBE_BUSY ? PROBE_FAILED : *seen;
        }
        if (*seen == PROBE_BUSY)
            *seen = read_result(res, nonce, switch_oid, why, whylen);
        PQclear(res);
    }
    return PROBE_BUSY;
}
