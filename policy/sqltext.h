/* Decoding of names and strings as PostgreSQL reads them, from sqllex tokens: identifiers
 * (unquoted ones folded to lower case, "quoted" ones with "" undoubled, U&"..." with escapes) and
 * string constants ('...', E'...', N'...', U&'...', $tag$...$tag$), for the guard to compare
 * against the names it manages. Pure functions over borrowed tokens: no I/O, no globals, no
 * allocation; a result holds a copy, never a pointer into the SQL. */
#ifndef PGMESH_POLICY_SQLTEXT_H
#define PGMESH_POLICY_SQLTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/sqllex.h"

/* Decoded text, owned by the caller (usually on the stack); all-zero is the empty text.
 * - Cut at SQLTEXT_MAX bytes, possibly inside a UTF-8 character: buf holds the first bytes and
 *   `truncated` is set. A cut text can still be recognized by its prefix (request.jwt.*) but
 *   never equals a word (sqltext_equals is false), so a long name cannot pass for a short one.
 * - `bad`: the text could not be decoded the way the server would (a malformed or refused escape,
 *   a missing closing quote, a token form this module does not read); buf then holds a meaningless
 *   partial result and the caller must assume the worst case. Decoding stops at the first fault.
 * buf is not NUL-terminated. An escape that yields NUL makes the text bad; a NUL byte in the
 * token itself (never in a Query message) is copied like any other. */
#define SQLTEXT_MAX 128
struct sqltext {
    char buf[SQLTEXT_MAX];
    size_t len;
    bool truncated, bad;
};

/* Appends one byte, or sets truncated when the buffer is full. */
void sqltext_put(struct sqltext *t, char c);

/* c folded to lower case the way PostgreSQL folds identifiers in a UTF-8 database: ASCII A-Z
 * only; every other byte, multi-byte characters' included, is left as it is. */
char sqltext_lower(char c) __attribute__((warn_unused_result));

/* Appends the identifier tok (a SQLTOK_WORD or SQLTOK_QIDENT as sqllex returns it): a WORD folded
 * with sqltext_lower, a "quoted" one verbatim with "" read as one ", a U&"quoted" one with
 * \XXXX, \+XXXXXX and \\ decoded to UTF-8. Sets bad for any other token and for an escape that is
 * malformed or names NUL, a surrogate or a code point past U+10FFFF (PostgreSQL combines surrogate
 * pairs; they come back bad here). Unlike PostgreSQL it does not cut identifiers at 63 bytes.
 * Only the default escape character is read: a U& token followed by UESCAPE uses another one,
 * and the caller, which sees the next token, must treat the result as bad. */
void sqltext_put_ident(struct sqltext *t, const struct sqltok *tok);

/* The value of the SQLTOK_STRING tok as sqllex returns it: '...' and N'...' with '' read as one '
 * (standard_conforming_strings on, which the guard keeps); E'...' with \b \f \n \r \t, \o to \ooo
 * (low byte), \xh and \xhh, \uXXXX, \UXXXXXXXX, and \c for any other c; U&'...' as in
 * sqltext_put_ident (default escape character only, so U&'...' UESCAPE is the caller's to see);
 * $tag$...$tag$ verbatim. A string continued across a newline ('a'\n'b') is joined. bad for
 * B'...' and X'...', for a quoted string that does not end in its closing quote, for a dollar
 * string shorter than its two tags (that the closing tag matches is the lexer's check), and for
 * an escape that is malformed or yields NUL, a surrogate or a code point past U+10FFFF, including
 * the \x without a hex digit that PostgreSQL reads as a plain x. */
struct sqltext sqltext_decode_string(const struct sqltok *tok) __attribute__((warn_unused_result));

/* True when t, not truncated, equals word compared ASCII case-insensitively as guc.c compares
 * names. word must be lower case. A bad text compares by whatever bytes it holds; callers check
 * bad first. */
bool sqltext_equals(const struct sqltext *t, const char *word) __attribute__((warn_unused_result));

/* True when t starts with prefix (lower case), compared as sqltext_equals does; true for a
 * truncated text whose kept bytes start with it. */
bool sqltext_has_prefix(const struct sqltext *t, const char *prefix) __attribute__((warn_unused_result));

#endif
