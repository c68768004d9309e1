/* pgmesh-token: mints a JWT for pgmesh clients with libjwt, from an HMAC secret file or a PEM
 * private key. Also makes deliberately bad tokens for tests (--alg none, --omit exp, ...) and,
 * with --jwks-out, the public JWKS a private key's tokens verify with. It verifies nothing and
 * prints only the token; errors go to stderr with exit status 2. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/jwks.h"
#include "auth/keys.h"

#define MAX_LIST 32

static const char usage[] =
    "Usage: pgmesh-token (--secret-file FILE | --private-key FILE) [options]\n"
    "Prints a signed JWT for pgmesh on stdout.\n"
    "\n"
    "Key (one of):\n"
    "  --secret-file FILE   HMAC secret (trailing newline stripped); default alg HS256\n"
    "  --private-key FILE   PEM RSA or EC private key; default alg RS256 (RSA), ES256 (EC)\n"
    "Options:\n"
    "  --alg ALG            HS256..HS512, RS256..RS512, ES256..ES512, or none (unsigned;\n"
    "                       for negative tests; needs no key)\n"
    "  --tenant T           tenant claim\n"
    "  --role R             role claim\n"
    "  --ttl SECONDS        exp = now + SECONDS (default 3600)\n"
    "  --exp UNIX           exp claim, overriding --ttl\n"
    "  --nbf UNIX           nbf claim\n"
    "  --iss S              iss claim\n"
    "  --aud S              aud claim\n"
    "  --sub S              sub claim\n"
    "  --kid K              kid header (and the JWK's kid with --jwks-out)\n"
    "  --jwks-out FILE      also write the public JWKS of --private-key to FILE; an existing\n"
    "                       JWKS there gets this key added (its kid must be new). The JWK\n"
    "                       carries \"use\":\"sig\", and \"alg\" only when --alg is given\n"
    "  --claim NAME=VALUE   extra string claim (repeatable)\n"
    "  --claim-json NAME=JSON  extra claim with a raw JSON value, e.g. tenant=42 (repeatable)\n"
    "  --omit NAME          drop a claim (tenant, role, exp, iat, ...) (repeatable)\n"
    "  --help               this text\n"
    "Exit status: 0 on success, 2 on any error.\n";

struct options {
    const char *secret_file, *private_key, *alg;
    const char *tenant, *role, *iss, *aud, *sub, *kid, *jwks_out;
    long long ttl, exp, nbf;
    bool have_exp, have_nbf;
    const char *claims[MAX_LIST], *claims_json[MAX_LIST], *omit[MAX_LIST];
    int n_claims, n_claims_json, n_omit;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pgmesh-token: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static long long parse_int(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        die("%s: \"%s\" is not an integer", opt, s);
    if (v > LONG_MAX || v < LONG_MIN)
        die("%s: %s is out of range", opt, s);
    return v;
}

static void push(const char **list, int *n, const char *opt, const char *value)
{
    if (*n >= MAX_LIST)
        die("%s given more than %d times", opt, MAX_LIST);
    list[(*n)++] = value;
}

enum option_id {
    O_SECRET = 256,
    O_PRIV,
    O_ALG,
    O_KID,
    O_JWKS_OUT,
    O_TENANT,
    O_ROLE,
    O_ISS,
    O_AUD,
    O_SUB,
    O_TTL,
    O_EXP,
    O_NBF,
    O_CLAIM,
    O_CLAIM_JSON,
    O_OMIT,
    O_HELP
};

static const struct option longopts[] = {
    {"secret-file", required_argument, NULL, O_SECRET},
    {"private-key", required_argument, NULL, O_PRIV},
    {"alg", required_argument, NULL, O_ALG},
    {"tenant", required_argument, NULL, O_TENANT},
    {"role", required_argument, NULL, O_ROLE},
    {"ttl", required_argument, NULL, O_TTL},
    {"exp", required_argument, NULL, O_EXP},
    {"nbf", required_argument, NULL, O_NBF},
    {"iss", required_argument, NULL, O_ISS},
    {"aud", required_argument, NULL, O_AUD},
    {"sub", required_argument, NULL, O_SUB},
    {"kid", required_argument, NULL, O_KID},
    {"claim", required_argument, NULL, O_CLAIM},
    {"claim-json", required_argument, NULL, O_CLAIM_JSON},
    {"omit", required_argument, NULL, O_OMIT},
    {"jwks-out", required_argument, NULL, O_JWKS_OUT},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

/* The *_option helpers each take one group of options and return false for any other id. This
 * group: the key, the algorithm, the kid header and the JWKS to publish the key in. */
static bool key_option(struct options *o, int id, const char *arg)
{
    switch (id) {
    case O_SECRET:
        o->secret_file = arg;
        return true;
    case O_PRIV:
        o->private_key = arg;
        return true;
    case O_ALG:
        o->alg = arg;
        return true;
    case O_KID:
        o->kid = arg;
        return true;
    case O_JWKS_OUT:
        o->jwks_out = arg;
        return true;
    }
    return false;
}

static bool string_claim_option(struct options *o, int id, const char *arg)
{
    switch (id) {
    case O_TENANT:
        o->tenant = arg;
        return true;
    case O_ROLE:
        o->role = arg;
        return true;
    case O_ISS:
        o->iss = arg;
        return true;
    case O_AUD:
        o->aud = arg;
        return true;
    case O_SUB:
        o->sub = arg;
        return true;
    }
    return false;
}

static bool time_option(struct options *o, int id, const char *arg)
{
    switch (id) {
    case O_TTL:
        o->ttl = parse_int("--ttl", arg);
        return true;
    case O_EXP:
        o->exp = parse_int("--exp", arg);
        o->have_exp = true;
        return true;
    case O_NBF:
        o->nbf = parse_int("--nbf", arg);
        o->have_nbf = true;
        return true;
    }
    return false;
}

/* The repeatable options. */
static bool list_option(struct options *o, int id, const char *arg)
{
    switch (id) {
    case O_CLAIM:
        push(o->claims, &o->n_claims, "--claim", arg);
        return true;
    case O_CLAIM_JSON:
        push(o->claims_json, &o->n_claims_json, "--claim-json", arg);
        return true;
    case O_OMIT:
        push(o->omit, &o->n_omit, "--omit", arg);
        return true;
    }
    return false;
}

static void bad_option(char **argv) __attribute__((noreturn));

static void bad_option(char **argv)
{
    if (optopt != 0)
        die("option requires an argument or is unknown: %s (see --help)", argv[optind - 1]);
    die("unknown option %s (see --help)", argv[optind - 1]);
}

static bool apply_option(struct options *o, int id, const char *arg)
{
    return key_option(o, id, arg) || string_claim_option(o, id, arg) || time_option(o, id, arg) ||
           list_option(o, id, arg);
}

/* Options that are fine alone but not together. */
static void check_combination(const struct options *o)
{
    if (o->secret_file != NULL && o->private_key != NULL)
        die("give --secret-file or --private-key, not both");
    if (o->jwks_out != NULL && o->private_key == NULL)
        die("--jwks-out needs --private-key (a JWKS never holds shared secrets)");
}

static void parse_options(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->ttl = 3600;
    int id;
    opterr = 0;
    while ((id = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (id == O_HELP) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!apply_option(o, id, optarg))
            bad_option(argv);
    }
    if (optind < argc)
        die("unexpected argument \"%s\" (see --help)", argv[optind]);
    check_combination(o);
}

/* The --alg given, or JWT_ALG_INVAL when there is none. */
static jwt_alg_t requested_alg(const char *name)
{
    if (name == NULL)
        return JWT_ALG_INVAL;
    jwt_alg_t alg = jwt_str_alg(name);
    if (alg == JWT_ALG_INVAL)
        die("--alg: unknown algorithm \"%s\"", name);
    return alg;
}

/* The private key in pem (read from path), as OpenSSL parses it. */
static EVP_PKEY *parse_private_key(const unsigned char *pem, size_t pem_len, const char *path)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
    EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (pkey == NULL)
        die("\"%s\" holds no PEM private key (unencrypted)", path);
    return pkey;
}

static void read_secret(const char *path, unsigned char **key, size_t *key_len)
{
    char err[512];
    if (!keys_read_secret(path, key, key_len, err, sizeof(err)))
        die("%s", err);
    if (*key_len == 0)
        die("secret in \"%s\" is empty", path);
}

/* Reads the PEM text libjwt signs with into *key; returns its EVP_PKEY_RSA or EVP_PKEY_EC. */
static int read_private_key(const char *path, unsigned char **key, size_t *key_len)
{
    char err[512];
    /* Read through keys_read_secret for the size limit; PEM does not mind the stripped newline. */
    if (!keys_read_secret(path, key, key_len, err, sizeof(err)))
        die("%s", err);
    EVP_PKEY *pkey = parse_private_key(*key, *key_len, path);
    int base = EVP_PKEY_get_base_id(pkey);
    EVP_PKEY_free(pkey);
    if (base != EVP_PKEY_RSA && base != EVP_PKEY_EC)
        die("key in \"%s\" is neither RSA nor EC", path);
    return base;
}

/* Reads the key and settles the algorithm; *key is malloc'd (NULL for alg none). */
static jwt_alg_t load_key(const struct options *o, unsigned char **key, size_t *key_len)
{
    *key = NULL;
    *key_len = 0;
    jwt_alg_t alg = requested_alg(o->alg);
    if (alg == JWT_ALG_NONE)
        return alg; /* unsigned: any key given is ignored */
    if (o->secret_file != NULL) {
        read_secret(o->secret_file, key, key_len);
        return alg != JWT_ALG_INVAL ? alg : JWT_ALG_HS256;
    }
    if (o->private_key == NULL)
        die("give --secret-file or --private-key (see --help)");
    int base = read_private_key(o->private_key, key, key_len);
    if (alg != JWT_ALG_INVAL)
        return alg; /* a mismatching --alg is allowed: it makes a negative-test token */
    return base == EVP_PKEY_RSA ? JWT_ALG_RS256 : JWT_ALG_ES256;
}

static void add_string(jwt_t *jwt, const char *name, const char *value)
{
    int rc = jwt_add_grant(jwt, name, value);
    if (rc == EEXIST)
        die("claim \"%s\" given twice", name);
    if (rc != 0)
        die("cannot add claim \"%s\": %s", name, strerror(rc));
}

static void add_int(jwt_t *jwt, const char *name, long long value)
{
    int rc = jwt_add_grant_int(jwt, name, (long)value);
    if (rc == EEXIST)
        die("claim \"%s\" given twice", name);
    if (rc != 0)
        die("cannot add claim \"%s\": %s", name, strerror(rc));
}

/* "name=value" split at the first '='; name must be non-empty. */
static const char *split_pair(const char *opt, const char *arg, char *name, size_t name_len)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg || (size_t)(eq - arg) >= name_len)
        die("%s: expected NAME=VALUE, got \"%s\"", opt, arg);
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    return eq + 1;
}

static void add_json(jwt_t *jwt, const char *arg)
{
    char name[256];
    const char *text = split_pair("--claim-json", arg, name, sizeof(name));
    json_error_t jerr;
    json_t *value = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (value == NULL)
        die("--claim-json %s: not JSON: %s", name, jerr.text);
    json_t *obj = json_object();
    if (obj == NULL || json_object_set_new(obj, name, value) != 0)
        die("out of memory");
    char *dumped = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (dumped == NULL)
        die("out of memory");
    char *existing = jwt_get_grants_json(jwt, name);
    if (existing != NULL)
        die("claim \"%s\" given twice", name);
    if (jwt_add_grants_json(jwt, dumped) != 0)
        die("cannot add claim \"%s\"", name);
    free(dumped);
}

static void add_claims(jwt_t *jwt, const struct options *o)
{
    long long now = (long long)time(NULL);
    add_int(jwt, "iat", now);
    add_int(jwt, "exp", o->have_exp ? o->exp : now + o->ttl);
    if (o->have_nbf)
        add_int(jwt, "nbf", o->nbf);
    const struct {
        const char *name, *value;
    } strings[] = {{"tenant", o->tenant}, {"role", o->role}, {"iss", o->iss}, {"aud", o->aud}, {"sub", o->sub}};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (strings[i].value != NULL)
            add_string(jwt, strings[i].name, strings[i].value);
    for (int i = 0; i < o->n_claims; i++) {
        char name[256];
        const char *value = split_pair("--claim", o->claims[i], name, sizeof(name));
        add_string(jwt, name, value);
    }
    for (int i = 0; i < o->n_claims_json; i++)
        add_json(jwt, o->claims_json[i]);
    for (int i = 0; i < o->n_omit; i++)
        jwt_del_grants(jwt, o->omit[i]);
}

/* The public JWK of --private-key, with --kid and (unless none) --alg. */
static json_t *public_jwk(const struct options *o)
{
    char err[512];
    unsigned char *pem;
    size_t pem_len;
    if (!keys_read_secret(o->private_key, &pem, &pem_len, err, sizeof(err)))
        die("%s", err);
    EVP_PKEY *pkey = parse_private_key(pem, pem_len, o->private_key);
    OPENSSL_cleanse(pem, pem_len);
    free(pem);
    const char *alg = o->alg != NULL && strcmp(o->alg, "none") != 0 ? o->alg : NULL;
    json_t *jwk = jwks_public_jwk(pkey, o->kid, alg, err, sizeof(err));
    EVP_PKEY_free(pkey);
    if (jwk == NULL)
        die("--jwks-out: %s", err);
    return jwk;
}

/* The JWKS at path, or an empty one when there is no such file. */
static json_t *read_or_new_jwks(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL && errno == ENOENT)
        return json_pack("{s[]}", "keys");
    if (f == NULL)
        die("--jwks-out: cannot open \"%s\": %s", path, strerror(errno));
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (root == NULL || !json_is_array(json_object_get(root, "keys")))
        die("--jwks-out: \"%s\" exists and is not a JWKS", path);
    return root;
}

/* A token must be able to name its key, so every key in a set needs its own kid. */
static void check_new_kid(const json_t *list, const char *kid, const char *path)
{
    size_t i;
    json_t *old;
    json_array_foreach(list, i, old)
    {
        const char *old_kid = json_string_value(json_object_get(old, "kid"));
        if (kid == NULL || old_kid == NULL || strcmp(old_kid, kid) == 0)
            die("--jwks-out: \"%s\" already has a key %s; give each key a distinct --kid", path,
                old_kid != NULL ? "with this kid" : "without a kid");
    }
}

/* Adds the public JWK of the --private-key to the JWKS at o->jwks_out (created when absent). */
static void write_jwks(const struct options *o)
{
    json_t *jwk = public_jwk(o);
    json_t *root = read_or_new_jwks(o->jwks_out);
    json_t *list = json_object_get(root, "keys");
    check_new_kid(list, o->kid, o->jwks_out);
    if (json_array_append_new(list, jwk) != 0 || json_dump_file(root, o->jwks_out, JSON_INDENT(2)) != 0)
        die("--jwks-out: cannot write \"%s\"", o->jwks_out);
    json_decref(root);
}

/* The signed (or, for alg none, unsigned) token text, malloc'd. */
static char *make_token(const struct options *o, jwt_alg_t alg, const unsigned char *key, size_t key_len)
{
    if (key_len > INT_MAX)
        die("key too large");
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        die("out of memory");
    add_claims(jwt, o);
    if (o->kid != NULL && jwt_add_header(jwt, "kid", o->kid) != 0)
        die("cannot set kid");
    if (jwt_set_alg(jwt, alg, key, (int)key_len) != 0)
        die("cannot use algorithm %s with this key", jwt_alg_str(alg));
    char *token = jwt_encode_str(jwt);
    if (token == NULL)
        die("signing failed (does --alg match the key type?)");
    jwt_free(jwt);
    return token;
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(argc, argv, &o);
    unsigned char *key;
    size_t key_len;
    jwt_alg_t alg = load_key(&o, &key, &key_len);
    if (o.jwks_out != NULL)
        write_jwks(&o);
    char *token = make_token(&o, alg, key, key_len);
    printf("%s\n", token);
    free(token);
    if (key != NULL) {
        OPENSSL_cleanse(key, key_len);
        free(key);
    }
    return fflush(stdout) == 0 ? 0 : 2;
}
