/*
 * Shared key loading and HMAC-SHA256 verification for pgmesh.apply(). Errors say what is wrong
 * with the key file but never print the key, and the path only to the server log (readers may
 * not even see pgmesh.key_file).
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>

#include "storage/fd.h"
#include "utils/memutils.h"

#include "mac.h"

#define KEY_MIN_BYTES 32
#define KEY_MAX_BYTES 512
#define KEY_FILE_MAX_BYTES 4096

/* The loaded key, and the setting it was loaded for (NULL: none loaded). */
static uint8 key_bytes[KEY_MAX_BYTES];
static size_t key_len;
static char *key_loaded_from;

/*
 * The HMAC context keyed once per key load: OpenSSL 3's one-shot HMAC() fetches the algorithm and
 * sets the key up on every call, about four times the cost of reusing a keyed context.
 */
static EVP_MAC_CTX *mac_ctx;

static void
key_forget(void)
{
	EVP_MAC_CTX_free(mac_ctx);
	mac_ctx = NULL;
	explicit_bzero(key_bytes, sizeof(key_bytes));
	key_len = 0;
	if (key_loaded_from != NULL)
		pfree(key_loaded_from);
	key_loaded_from = NULL;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

pg_attribute_noreturn() static void
key_error(const char *msg, const char *path)
{
	key_forget();
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("pgmesh: %s", msg),
			 path ? errdetail_log("pgmesh.key_file is \"%s\".", path) : 0,
			 errhint("A superuser sets pgmesh.key_file to a file readable only by the server's "
					 "OS user, holding the key pgmesh shares (hex, at least %d bytes).",
					 KEY_MIN_BYTES)));
}

/*
 * Like PostgreSQL's check on ssl_key_file: owned by us with no group or other access, or owned
 * by root and at most group-readable.
 */
static bool
key_file_protected(const struct stat *st)
{
	if (st->st_uid == geteuid())
		return (st->st_mode & (S_IRWXG | S_IRWXO)) == 0;
	if (st->st_uid == 0)
		return (st->st_mode & (S_IWGRP | S_IXGRP | S_IRWXO)) == 0;
	return false;
}

/* Decodes hex with optional surrounding whitespace into key_bytes; false on anything else. */
static bool
key_decode(const char *text, size_t len)
{
	size_t		start = 0,
				end = len,
				i;

	while (start < end && isspace((unsigned char) text[start]))
		start++;
	while (end > start && isspace((unsigned char) text[end - 1]))
		end--;
	if ((end - start) % 2 != 0 || (end - start) / 2 < KEY_MIN_BYTES ||
		(end - start) / 2 > KEY_MAX_BYTES)
		return false;
	for (i = start; i < end; i += 2)
	{
		int			hi = hex_value(text[i]),
					lo = hex_value(text[i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		key_bytes[(i - start) / 2] = (uint8) (hi << 4 | lo);
	}
	key_len = (end - start) / 2;
	return true;
}

static void
key_load(const char *path)
{
	FILE	   *f;
	struct stat st;
	char		buf[KEY_FILE_MAX_BYTES + 1];
	size_t		n;
	bool		ok;

	key_forget();
	if (path == NULL || path[0] == '\0')
		key_error("no shared key configured", NULL);
	f = AllocateFile(path, "r");
	if (f == NULL)
		key_error("could not open the shared key file", path);
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
	{
		FreeFile(f);
		key_error("the shared key file is not a regular file", path);
	}
	if (!key_file_protected(&st))
	{
		FreeFile(f);
		key_error("the shared key file is readable by others than the server's OS user", path);
	}
	n = fread(buf, 1, sizeof(buf), f);
	ok = !ferror(f) && n <= KEY_FILE_MAX_BYTES;
	FreeFile(f);
	ok = ok && key_decode(buf, n);
	explicit_bzero(buf, sizeof(buf));
	if (!ok)
		key_error("the shared key file does not hold a key", path);
	{
		EVP_MAC   *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		OSSL_PARAM	params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
			OSSL_PARAM_construct_end()
		};

		mac_ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
		EVP_MAC_free(mac);
		if (mac_ctx == NULL || EVP_MAC_init(mac_ctx, key_bytes, key_len, params) != 1)
		{
			key_forget();
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("pgmesh: HMAC-SHA256 is not available")));
		}
	}
	key_loaded_from = MemoryContextStrdup(TopMemoryContext, path);
}

void
mac_message_begin(StringInfo out)
{
	appendStringInfoString(out, "pgmesh-v1");
}

void
mac_message_field(StringInfo out, const char *bytes, size_t len)
{
	appendStringInfo(out, "%zu:", len);
	appendBinaryStringInfo(out, bytes, (int) len);
}

bool
mac_verify(const char *key_file, const StringInfo msg, const char *mac_hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char digest[EVP_MAX_MD_SIZE];
	size_t		digest_len = 0;
	char		expected[MAC_HEX_LEN];
	int			i;
	bool		same;

	if (key_loaded_from == NULL || key_file == NULL || strcmp(key_loaded_from, key_file) != 0)
		key_load(key_file);

	if (EVP_MAC_init(mac_ctx, NULL, 0, NULL) != 1 ||
		EVP_MAC_update(mac_ctx, (const unsigned char *) msg->data, (size_t) msg->len) != 1 ||
		EVP_MAC_final(mac_ctx, digest, &digest_len, sizeof(digest)) != 1 ||
		digest_len * 2 != MAC_HEX_LEN)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("pgmesh: HMAC-SHA256 failed")));
	for (i = 0; i < MAC_HEX_LEN / 2; i++)
	{
		expected[2 * i] = digits[digest[i] >> 4];
		expected[2 * i + 1] = digits[digest[i] & 0xf];
	}
	/* The length is no secret; the bytes are compared in constant time. */
	same = mac_hex != NULL && strlen(mac_hex) == MAC_HEX_LEN &&
		CRYPTO_memcmp(expected, mac_hex, MAC_HEX_LEN) == 0;
	explicit_bzero(digest, sizeof(digest));
	explicit_bzero(expected, sizeof(expected));
	return same;
}
