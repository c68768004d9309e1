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

static enum frame_class fe_class(uint8_t type)
{
    switch (type) {
    case FE_SYNC: case FE_FLUSH: case FE_TERMINATE: case FE_CLOSE:
    case FE_DESCRIBE: case FE_EXECUTE: case FE_COPY_DONE:
        return CLASS_CONTROL;
    case FE_PASSWORD:
        return CLASS_PASSWORD;
    case FE_QUERY: case FE_PARSE: case FE_BIND: case FE_COPY_DATA:
    case FE_COPY_FAIL: case FE_FUNCTION_CALL:
        return CLASS_LARGE;
    default:
        return CLASS_INVALID;
    }
}

static enum frame_class be_class(uint8_t type)
{
    switch (type) {
    case BE_READY: case BE_PARSE_COMPLETE: case BE_BIND_COMPLETE: case BE_CLOSE_COMPLETE:
    case BE_NO_DATA: case BE_PORTAL_SUSPENDED: case BE_EMPTY_QUERY: case BE_BACKEND_KEY:
    case BE_AUTH: case BE_COPY_DONE:
        return CLASS_CONTROL;
    case BE_COMMAND_COMPLETE: case BE_COPY_BOTH: case BE_COPY_DATA: case BE_COPY_IN:
    case BE_COPY_OUT: case BE_DATA_ROW: case BE_ERROR: case BE_FUNCTION_RESULT:
    case BE_NEGOTIATE_VERSION: case BE_NOTICE: case BE_NOTIFICATION: case BE_PARAMETER_DESC:
    case BE_PARAMETER_STATUS: case BE_ROW_DESC:
        return CLASS_LARGE;
    default:
        return CLASS_INVALID;
    }
}

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
    uint32_t max = cls == CLASS_CONTROL ? lim->control_max
                 : cls == CLASS_PASSWORD ? lim->password_max
                                         : lim->large_max;
    if (len > max)
        return FRAME_TOO_BIG;
    out->type = (char)p[0];
    out->body_len = len - 4;
    out->total_len = (size_t)len + 1;
    return FRAME_OK;
}

enum frame_result frame_peek_fe(const uint8_t *p, size_t avail, const struct frame_limits *lim,
                                struct frame *out)
{
    /* The type byte alone is enough to reject garbage early, before the length arrives. */
    if (avail < 1)
        return FRAME_NEED_MORE;
    return peek_typed(p, avail, lim, fe_class(p[0]), out);
}

enum frame_result frame_peek_be(const uint8_t *p, size_t avail, const struct frame_limits *lim,
                                struct frame *out)
{
    if (avail < 1)
        return FRAME_NEED_MORE;
    return peek_typed(p, avail, lim, be_class(p[0]), out);
}

enum frame_result frame_peek_startup(const uint8_t *p, size_t avail, uint32_t max_len,
                                     struct frame *out)
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
