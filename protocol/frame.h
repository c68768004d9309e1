/* Message framing: looks at the header of the next message in a byte stream and says whether it
 * is complete enough to act on. Checks the type before trusting the length, applies per-type
 * size limits passed in by the caller. No I/O, no globals. */
#ifndef PGMESH_PROTOCOL_FRAME_H
#define PGMESH_PROTOCOL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/wire.h"

enum frame_result {
    FRAME_NEED_MORE, /* fewer bytes than a header */
    FRAME_OK,        /* header valid; body may still be arriving */
    FRAME_TOO_BIG,   /* length over the limit for this type */
    FRAME_BAD,       /* unknown type, or length below the minimum */
};

struct frame_limits {
    uint32_t control_max; /* Sync, Flush, Describe, Execute, Close, ReadyForQuery, ... */
    uint32_t large_max;   /* Query, Parse, Bind, CopyData, DataRow, FunctionCall, ... */
    uint32_t password_max;
};

struct frame {
    char type;         /* 0 for startup-class packets */
    uint32_t body_len; /* bytes after the header */
    size_t total_len;  /* header + body */
};

/* Typed frontend message (client -> server). */
enum frame_result frame_peek_fe(const uint8_t *p, size_t avail, const struct frame_limits *lim, struct frame *out);
/* Typed backend message (server -> client). */
enum frame_result frame_peek_be(const uint8_t *p, size_t avail, const struct frame_limits *lim, struct frame *out);
/* Untyped startup-class packet: int32 length (counting itself, at least 8) then body.
 * out->type is 0; body_len excludes the length word. */
enum frame_result frame_peek_startup(const uint8_t *p, size_t avail, uint32_t max_len, struct frame *out);

/* The type byte of the typed message that starts at msg (at least one byte there). */
static inline char frame_type(const uint8_t *msg)
{
    return (char)msg[0];
}

/* The body of the typed message that starts at msg: what follows its type byte and length. */
static inline const uint8_t *frame_body(const uint8_t *msg)
{
    return msg + MSG_HEADER_LEN;
}

/* The body of the startup-class packet that starts at msg: what follows its length word. */
static inline const uint8_t *frame_startup_body(const uint8_t *msg)
{
    return msg + 4;
}

/* The bytes of a typed message up to body_bytes into its body: what to consume to pass its head. */
static inline size_t frame_prefix_len(size_t body_bytes)
{
    return MSG_HEADER_LEN + body_bytes;
}

/* How much of a typed message's body is among the avail bytes that start with its header. */
static inline size_t frame_body_arrived(size_t avail)
{
    return avail > MSG_HEADER_LEN ? avail - MSG_HEADER_LEN : 0;
}

#endif
