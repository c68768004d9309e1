/* Backend messages: writers for what pgmesh answers itself during startup, readers for what it
 * inspects on server links. Readers demand that every byte is consumed and write their outputs
 * only on success; views point into the caller's body. No I/O, no globals.
 * Reference: PostgreSQL documentation, "Message Formats". */
#include "protocol/be.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/wire.h"

static bool valid_tx_status(uint8_t c)
{
    return c == TX_IDLE || c == TX_IN_BLOCK || c == TX_FAILED;
}

void be_write_auth(struct pq_writer *w, uint32_t code)
{
    wr_begin(w, BE_AUTH);
    wr_u32(w, code);
    wr_end(w);
}

void be_write_parameter_status(struct pq_writer *w, const char *name, const char *value)
{
    wr_begin(w, BE_PARAMETER_STATUS);
    wr_cstr(w, name);
    wr_cstr(w, value);
    wr_end(w);
}

void be_write_backend_key(struct pq_writer *w, uint32_t pid, uint32_t key)
{
    wr_begin(w, BE_BACKEND_KEY);
    wr_u32(w, pid);
    wr_u32(w, key);
    wr_end(w);
}

void be_write_ready(struct pq_writer *w, char tx_status)
{
    if (!valid_tx_status((uint8_t)tx_status)) {
        w->failed = true;
        return;
    }
    wr_begin(w, BE_READY);
    wr_u8(w, (uint8_t)tx_status);
    wr_end(w);
}

void be_write_command_complete(struct pq_writer *w, const char *tag)
{
    wr_begin(w, BE_COMMAND_COMPLETE);
    wr_cstr(w, tag);
    wr_end(w);
}

void be_write_parse_complete(struct pq_writer *w)
{
    wr_begin(w, BE_PARSE_COMPLETE);
    wr_end(w);
}

static void empty_message(struct pq_writer *w, char type)
{
    wr_begin(w, type);
    wr_end(w);
}

void be_write_bind_complete(struct pq_writer *w)
{
    empty_message(w, BE_BIND_COMPLETE);
}

void be_write_close_complete(struct pq_writer *w)
{
    empty_message(w, BE_CLOSE_COMPLETE);
}

void be_write_no_data(struct pq_writer *w)
{
    empty_message(w, BE_NO_DATA);
}

void be_write_empty_query(struct pq_writer *w)
{
    empty_message(w, BE_EMPTY_QUERY);
}

void be_write_no_parameters(struct pq_writer *w)
{
    wr_begin(w, BE_PARAMETER_DESC);
    wr_u16(w, 0);
    wr_end(w);
}

/* Type sizes as pg_type.typlen has them: -1 for the variable-length ones. */
static int16_t type_len(uint32_t oid)
{
    return oid == BE_TYPE_INT8 ? 8 : -1;
}

void be_write_row_description(struct pq_writer *w, const struct be_column *cols, const uint8_t *formats,
                              uint16_t n)
{
    wr_begin(w, BE_ROW_DESC);
    wr_u16(w, n);
    for (uint16_t i = 0; i < n; i++) {
        wr_cstr(w, cols[i].name);
        wr_u32(w, 0); /* no table */
        wr_u16(w, 0); /* ... nor column number */
        wr_u32(w, cols[i].type_oid);
        wr_u16(w, (uint16_t)type_len(cols[i].type_oid));
        wr_i32(w, -1); /* no type modifier */
        wr_u16(w, formats ? formats[i] : 0);
    }
    wr_end(w);
}

/* int8's binary send format (int8send): the value in 8 bytes, network order. */
static void write_int8(struct pq_writer *w, const char *text)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        w->failed = true;
        return;
    }
    uint64_t u = (uint64_t)v;
    wr_i32(w, 8);
    wr_u32(w, (uint32_t)(u >> 32));
    wr_u32(w, (uint32_t)u);
}

void be_write_data_row(struct pq_writer *w, const struct be_column *cols, const uint8_t *formats,
                       const char *const *values, uint16_t n)
{
    wr_begin(w, BE_DATA_ROW);
    wr_u16(w, n);
    for (uint16_t i = 0; i < n; i++) {
        if (!values[i]) {
            wr_i32(w, -1);
            continue;
        }
        if (formats && formats[i] == 1 && cols[i].type_oid == BE_TYPE_INT8) {
            write_int8(w, values[i]);
            continue;
        }
        size_t len = strlen(values[i]);
        if (len > INT32_MAX) {
            w->failed = true;
            return;
        }
        wr_i32(w, (int32_t)len);
        wr_bytes(w, values[i], len);
    }
    wr_end(w);
}

bool be_read_ready(const uint8_t *body, size_t len, char *tx_status)
{
    struct pq_reader r;
    rd_init(&r, body, len);
    uint8_t c = rd_u8(&r);
    if (!rd_finish(&r) || !valid_tx_status(c))
        return false;
    *tx_status = (char)c;
    return true;
}

bool be_read_parameter_status(const uint8_t *body, size_t len, struct span *name, struct span *value)
{
    struct pq_reader r;
    rd_init(&r, body, len);
    struct span n = rd_cstr(&r);
    struct span v = rd_cstr(&r);
    if (!rd_finish(&r) || n.len == 0)
        return false;
    *name = n;
    *value = v;
    return true;
}

bool be_read_command_complete(const uint8_t *body, size_t len, struct span *tag)
{
    struct pq_reader r;
    rd_init(&r, body, len);
    struct span t = rd_cstr(&r);
    if (!rd_finish(&r))
        return false;
    *tag = t;
    return true;
}

/* Authentication codes PostgreSQL defines and how many bytes follow the code: SIZE_MAX when the
 * payload is variable. */
static const struct {
    uint32_t code;
    size_t payload;
} auth_codes[] = {
    {AUTH_OK, 0},
    {2, 0}, /* KerberosV5 */
    {AUTH_CLEARTEXT_PASSWORD, 0},
    {5, 4},         /* MD5Password: 4-byte salt */
    {7, 0},         /* GSS */
    {8, SIZE_MAX},  /* GSSContinue */
    {9, 0},         /* SSPI */
    {10, SIZE_MAX}, /* SASL: mechanism list */
    {11, SIZE_MAX}, /* SASLContinue */
    {12, SIZE_MAX}, /* SASLFinal */
};

/* False for codes PostgreSQL does not define. */
static bool auth_payload_len(uint32_t code, size_t *n)
{
    for (size_t i = 0; i < sizeof auth_codes / sizeof auth_codes[0]; i++) {
        if (auth_codes[i].code == code) {
            *n = auth_codes[i].payload;
            return true;
        }
    }
    return false;
}

bool be_read_auth(const uint8_t *body, size_t len, uint32_t *code)
{
    struct pq_reader r;
    rd_init(&r, body, len);
    uint32_t c = rd_u32(&r);
    size_t payload;
    if (r.bad || !auth_payload_len(c, &payload))
        return false;
    if (payload != SIZE_MAX) {
        (void)rd_bytes(&r, payload);
        if (!rd_finish(&r))
            return false;
    }
    *code = c;
    return true;
}
