/* See text.h. Truncation is fine here: texts are one sentence for a client or a log line. */
#include "auth/text.h"

#include <stdarg.h>
#include <stdio.h>

void auth_text(char *buf, size_t len, const char *fmt, ...)
{
    if (buf == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}
