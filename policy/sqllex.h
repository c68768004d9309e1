/* SQL lexer: splits SQL text into tokens the way PostgreSQL's scanner does, for the checks pgmesh
 * makes on client statements. Handles -- and nested block comments, "quoted" and U&"quoted"
 * identifiers, '...', E'...', U&'...', B'...', X'...' strings, $tag$ dollar quoting, ; between
 * statements. No I/O, no globals, no allocation. */
#ifndef PGMESH_POLICY_SQLLEX_H
#define PGMESH_POLICY_SQLLEX_H

#include <stdbool.h>
#include <stddef.h>

enum sqltok_kind {
    SQLTOK_EOF,
    SQLTOK_WORD,   /* keyword or unquoted identifier; compare with sqltok_is */
    SQLTOK_QIDENT, /* "quoted" or U&"quoted" identifier (text includes the quotes) */
    SQLTOK_STRING, /* any string constant, dollar-quoted included (text includes the quotes) */
    SQLTOK_NUMBER,
    SQLTOK_PARAM,        /* $1 */
    SQLTOK_SEMI,         /* ; */
    SQLTOK_OP,           /* any other punctuation or operator, one token per run of operator chars */
    SQLTOK_UNTERMINATED, /* a string, identifier or comment that never ends */
};

struct sqltok {
    enum sqltok_kind kind;
    const char *text;
    size_t len;
};

struct sqllex {
    const char *p;
    size_t len, pos;
};

void sqllex_init(struct sqllex *lx, const char *sql, size_t len);
/* Next token, skipping white space and comments. After SQLTOK_EOF or SQLTOK_UNTERMINATED it keeps
 * returning that. */
struct sqltok sqllex_next(struct sqllex *lx);
/* True when tok is a WORD equal to word, ASCII case-insensitive. Inline, and with no strlen of
 * word: the guard asks this several times for every token of every statement, and the first
 * byte nearly always decides. A WORD never holds a NUL, so a shorter word differs at its end. */
static inline bool sqltok_is(const struct sqltok *tok, const char *word)
{
    if (tok->kind != SQLTOK_WORD)
        return false;
    for (size_t i = 0; i < tok->len; i++) {
        char a = tok->text[i], b = word[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (a != b)
            return false;
    }
    return word[tok->len] == '\0';
}

#endif
