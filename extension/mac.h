/*
 * The shared key and the MAC over a pgmesh.apply() message. The key is hex in the file that
 * pgmesh.key_file names, read on first use and again whenever that setting changes; it never
 * appears in a message, log line or error.
 */
#ifndef PGMESH_MAC_H
#define PGMESH_MAC_H

#include "postgres.h"

#include "lib/stringinfo.h"

#define MAC_HEX_LEN 64 /* HMAC-SHA256, lowercase hex */

/*
 * Appends M to out: "pgmesh-v1", then per field its byte length in decimal, ':' and its bytes.
 * Length-prefixing every field keeps ("ab","c") and ("a","bc") apart.
 */
extern void mac_message_begin(StringInfo out);
extern void mac_message_field(StringInfo out, const char *bytes, size_t len);

/*
 * True when mac_hex is the lowercase hex HMAC-SHA256 of msg under the key in key_file, compared
 * in constant time. A NULL or malformed mac_hex is false. A missing, unreadable, badly
 * protected or malformed key file is ERROR 55000 with a hint naming pgmesh.key_file.
 */
extern bool mac_verify(const char *key_file, const StringInfo msg, const char *mac_hex);

#endif
