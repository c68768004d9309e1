/* The guard's quick path: see quickplain.h. No I/O, no globals, no allocation. */
#include "policy/quickplain.h"

#include "policy/sqllex.h"
#include "policy/sqlstmt.h"

/* Case-insensitive: the text at sql[i..len) starts with word (lower case). */
static bool text_opens(const char *sql, size_t len, size_t i, const char *word)
{
    for (; *word; word++, i++) {
        char ch = i < len ? sql[i] : '\0';
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != *word)
            return false;
    }
    return true;
}

static bool ascii_letter(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

bool guard_quick_plain(const char *sql, size_t len)
{
    /* 1: ends the quick path or needs a look (quotes, comments, '$', ';', NUL); 2: the anchor of
     * one of the words ('m' of temp, '_' of set_config and pg_settings), both rare in SQL text.
     * Everything else is skipped with one load a byte, four bytes a step. */
    static const unsigned char look[256] = {
        ['\''] = 1, ['"'] = 1, ['\\'] = 1, ['\0'] = 1, ['$'] = 1, ['-'] = 1,
        ['/'] = 1,  [';'] = 1, ['m'] = 2,  ['M'] = 2,  ['_'] = 2,
    };
    size_t i = 0;
    while (i < len && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r'))
        i++;
    size_t start = i;
    while (i < len && ascii_letter(sql[i]))
        i++;
    /* The lexer's word goes on through digits, '_', '$' and non-ASCII bytes: select_x is not select. */
    if (i < len &&
        ((sql[i] >= '0' && sql[i] <= '9') || sql[i] == '_' || sql[i] == '$' || (unsigned char)sql[i] >= 0x80))
        return false;
    struct sqltok lead = {.kind = SQLTOK_WORD, .text = sql + start, .len = i - start};
    if (!sqltok_plain_lead(&lead))
        return false;
    for (;; i++) {
        /* Four bytes a step while none needs a look: most text is letters, digits and spaces. */
        const unsigned char *u = (const unsigned char *)sql;
        while (i + 4 <= len && (look[u[i]] | look[u[i + 1]] | look[u[i + 2]] | look[u[i + 3]]) == 0)
            i += 4;
        while (i < len && look[u[i]] == 0)
            i++;
        if (i >= len)
            return true;
        char ch = sql[i], next = i + 1 < len ? sql[i + 1] : '\0';
        switch (ch) {
        case '$': /* $1 only: $$ and $tag$ open strings */
            if (next < '0' || next > '9')
                return false;
            break;
        case '-':
            if (next == '-')
                return false;
            break;
        case '/':
            if (next == '*')
                return false;
            break;
        case ';':
            for (i++; i < len; i++)
                if (sql[i] != ' ' && sql[i] != '\t' && sql[i] != '\n' && sql[i] != '\r')
                    return false;
            return true;
        case 'm':
        case 'M': /* temp, and so temporary and pg_temp */
            if (i >= 2 && text_opens(sql, len, i - 2, "temp"))
                return false;
            break;
        case '_':
            if ((i >= 3 && text_opens(sql, len, i - 3, "set_config")) ||
                (i >= 2 && text_opens(sql, len, i - 2, "pg_settings")))
                return false;
            break;
        default: /* a quote of any kind, a backslash, a NUL */
            return false;
        }
    }
}
