/* Recognizes a limit's SET or RESET in the one spelling pgmesh clamps (see limitset.h). */
#include "policy/limitset.h"

#include <string.h>

static const struct {
    const char *name;
    enum limit_kind kind;
} names[] = {
    {"statement_timeout", LIMIT_STATEMENT_TIMEOUT},
    {"work_mem", LIMIT_WORK_MEM},
    {"sort_mem", LIMIT_WORK_MEM}, /* the old name PostgreSQL 15 still maps to work_mem */
    {"idle_in_transaction_session_timeout", LIMIT_IDLE_IN_TRANSACTION},
};

const char *limit_name(enum limit_kind kind)
{
    switch (kind) {
    case LIMIT_STATEMENT_TIMEOUT:
        return "statement_timeout";
    case LIMIT_WORK_MEM:
        return "work_mem";
    case LIMIT_IDLE_IN_TRANSACTION:
        return "idle_in_transaction_session_timeout";
    }
    return "";
}

static bool read_kind(const struct sqltok *t, enum limit_kind *kind)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (sqltok_is(t, names[i].name)) {
            *kind = names[i].kind;
            return true;
        }
    }
    return false;
}

/* One number, or one '...' string with no prefix (E, U&, B, X, $$) and no '' inside. */
static bool read_value(const struct sqltok *t, struct limit_set *out)
{
    if (t->kind == SQLTOK_NUMBER) {
        out->value = t->text;
        out->value_len = t->len;
        return true;
    }
    if (t->kind != SQLTOK_STRING || t->len < 2 || t->text[0] != '\'' || t->text[t->len - 1] != '\'')
        return false;
    const char *body = t->text + 1;
    size_t len = t->len - 2;
    if (memchr(body, '\'', len))
        return false;
    out->value = body;
    out->value_len = len;
    return true;
}

static bool is_assign(const struct sqltok *t)
{
    return sqltok_is(t, "to") || (t->kind == SQLTOK_OP && t->len == 1 && t->text[0] == '=');
}

bool limit_set_read(const struct sqltok *t, size_t n, struct limit_set *out)
{
    memset(out, 0, sizeof *out);
    if (n == 2 && sqltok_is(&t[0], "reset")) {
        out->to_default = true;
        return read_kind(&t[1], &out->kind);
    }
    if (n < 4 || !sqltok_is(&t[0], "set"))
        return false;
    size_t i = 1;
    if (sqltok_is(&t[i], "session") || sqltok_is(&t[i], "local")) {
        out->local = sqltok_is(&t[i], "local");
        i++;
    }
    if (n != i + 3 || !read_kind(&t[i], &out->kind) || !is_assign(&t[i + 1]))
        return false;
    if (sqltok_is(&t[i + 2], "default")) {
        out->to_default = true;
        return true;
    }
    return read_value(&t[i + 2], out);
}
