/* Message framing: decides from a header alone whether the next message is complete enough to
 * act on. The type is checked before the length is trusted, and every limit compares the length
 * word (which counts itself, as PostgreSQL's do) against a per-type bound from the caller.
 * Reads only the header bytes; no I/O, no globals. */
#include "protocol/frame.h"

#include "protocol/wire.h"

enum frame_class { CLASS_INVALID, CLASS_CONTROL, CLASS_PASSWORD, CLASS_LARGE };

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Message classes by type byte; every type not listed is invalid (CLASS_INVALID is 0). */
static const enum frame_class fe_classes[256] = {
    [FE_SYNC] = CLASS_CONTROL,      [FE_FLUSH] = CLASS_CONTROL,       [FE_TERMINATE] = CLASS_CONTROL,
    [FE_CLOSE] = CLASS_CONTROL,     [FE_DESCRIBE] = CLASS_CONTROL,    [FE_EXECUTE] = CLASS_CONTROL,
    [FE_COPY_DONE] = CLASS_CONTROL, [FE_PASSWORD] = CLASS_PASSWORD,   [FE_QUERY] = CLASS_LARGE,
    [FE_PARSE] = CLASS_LARGE,       [FE_BIND] = CLASS_LARGE,          [FE_COPY_DATA] = CLASS_LARGE,
    [FE_COPY_FAIL] = CLASS_LARGE,   [FE_FUNCTION_CALL] = CLASS_LARGE,
};

static const enum frame_class be_classes[256] = {
    [BE_READY] = CLASS_CONTROL,
    [BE_PARSE_COMPLETE] = CLASS_CONTROL,
    [BE_BIND_COMPLETE] = CLASS_CONTROL,
    [BE_CLOSE_COMPLETE] = CLASS_CONTROL,
    [BE_NO_DATA] = CLASS_CONTROL,
    [BE_PORTAL_SUSPENDED] = CLASS_CONTROL,
    [BE_EMPTY_QUERY] = CLASS_CONTROL,
    [BE_BACKEND_KEY] = CLASS_CONTROL,
    [BE_AUTH] = CLASS_CONTROL,
    [BE_COPY_DONE] = CLASS_CONTROL,
    [BE_COMMAND_COMPLETE] = CLASS_LARGE,
    [BE_COPY_BOTH] = CLASS_LARGE,
    [BE_COPY_DATA] = CLASS_LARGE,
    [BE_COPY_IN] = CLASS_LARGE,
    [BE_COPY_OUT] = CLASS_LARGE,
    [BE_DATA_ROW] = CLASS_LARGE,
    [BE_ERROR] = CLASS_LARGE,
    [BE_FUNCTION_RESULT] = CLASS_LARGE,
    [BE_NEGOTIATE_VERSION] = CLASS_LARGE,
    [BE_NOTICE] = CLASS_LARGE,
    [BE_NOTIFICATION] = CLASS_LARGE,
    [BE_PARAMETER_DESC] = CLASS_LARGE,
    [BE_PARAMETER_STATUS] = CLASS_LARGE,
    [BE_ROW_DESC] = CLASS_LARGE,
};

static enum frame_result peek_typed(const uint8_t *p, size_t avail, const struct frame_limits *lim,
                                    enum frame_class cls, struct frame *out)
{
    if (cls == CLASS_INVALID)
        return FRAME_BAD;
    if (avail < MSG_HEADER_LEN)
        return FRAME_NEED_MORE;
    uint32_t len = get_u32(p + 1);
    if (len < 4)
        return FRAME_BAD;
    uint32_t max = cls == CLASS_CONTROL    ? lim->control_max
                   : cls == CLASS_PASSWORD ? lim->password_max
                                           : lim->large_max;
    if (len > max)
        return FRAME_TOO_BIG;
    out->type = (char)p[0];
    out->body_len = len - 4;
    out->total_len = (size_t)len + 1;
    return FRAME_OK;
}

enum frame_result frame_peek_fe(const uint8_t *p, size_t avail, const struct frame_limits *lim, struct frame *out)
{
    /* The type byte alone is enough to reject garbage early, before the length arrives. */
    if (avail < 1)
        return FRAME_NEED_MORE;
    return peek_typed(p, avail, lim, fe_classes[p[0]], out);
}

enum frame_result frame_peek_be(const uint8_t *p, size_t avail, const struct frame_limits *lim, struct frame *out)
{
    if (avail < 1)
        return FRAME_NEED_MORE;
    return peek_typed(p, avail, lim, be_classes[p[0]], out);
}

enum frame_result frame_peek_startup(const uint8_t *p, size_t avail, uint32_t max_len, struct frame *out)
{
    if (avail < 4)
        return FRAME_NEED_MORE;
    uint32_t len = get_u32(p);
    /* 8 = length word + the version or request code every startup-class packet starts with. */
    if (len < 8)
        return FRAME_BAD;
    if (len > max_len)
        return FRAME_TOO_BIG;
    out->type = 0;
    out->body_len = len - 4;
    out->total_len = len;
    return FRAME_OK;
}
