/*
 * mc_meta.c - memcached meta commands (mg ms md ma): their flags, modes and
 * base64 keys; the line was found and split by mc_proto.c (grammar, errors
 * and differences from memcached in mc_proto.h).
 *
 * Owns only code and const tables. memcached checks meta requests in this
 * order, and the first problem found is the one reported:
 *
 *   token count, key, too many flags, (ms) data length    no data swallowed
 *   flags: duplicate/unknown at once, bad arguments after  ms swallows data
 *   mode (ms, ma), opaque length, (ms) value size          ms swallows data
 *
 * Flags go into req->mflags (one bit per letter, MC_MF()), req->order (the
 * letters in request order, for the reply) and the value fields.
 */
#include "mc_proto.h"
#include "mc_internal.h"

#include <string.h>

/* How memcached's flag pre-parser treats each flag byte. */
enum flag_kind {
    F_BAD = 0, /* not a flag: "invalid flag" */
    F_PLAIN,   /* no argument; the rest of the token is ignored */
    F_B64,     /* b: the key is base64 */
    F_TTL,     /* N R T: signed number, "bad token" */
    F_CAS,     /* C E: unsigned 64, "bad token" */
    F_FLAGS,   /* F: unsigned 32, no message of its own */
    F_MODE,    /* M: exactly one byte */
    F_INITIAL, /* J: unsigned 64 */
    F_DELTA,   /* D: unsigned 64 */
    F_OPAQUE,  /* O: any token */
};

/* MC_MF() of a letter, 0 for any other byte (never a known flag). */
static uint64_t flag_bit(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return MC_MF(c);
    return 0;
}

static const uint8_t flag_kinds[128] = {
    ['b'] = F_B64,
    ['N'] = F_TTL, ['R'] = F_TTL, ['T'] = F_TTL,
    ['C'] = F_CAS, ['E'] = F_CAS,
    ['F'] = F_FLAGS,
    ['M'] = F_MODE,
    ['J'] = F_INITIAL,
    ['D'] = F_DELTA,
    ['O'] = F_OPAQUE,
    ['c'] = F_PLAIN, ['f'] = F_PLAIN, ['h'] = F_PLAIN, ['k'] = F_PLAIN,
    ['l'] = F_PLAIN, ['q'] = F_PLAIN, ['s'] = F_PLAIN, ['t'] = F_PLAIN,
    ['u'] = F_PLAIN, ['v'] = F_PLAIN, ['x'] = F_PLAIN,
    ['I'] = F_PLAIN, ['L'] = F_PLAIN, ['P'] = F_PLAIN,
};

/*
 * Read flags tokens t[0..n) into req, as memcached's pre-parser: a
 * duplicate (or a byte >= 0x7f) or an unknown flag stops at once; a bad
 * argument is remembered (the last message wins, F has none of its own)
 * and reported after all tokens. *mode gets M's byte, *opaque_long whether
 * an O token is too long (checked later by each command). Returns
 * MC_ERR_NONE or the error.
 */
static enum mc_error meta_flags(const struct tok *t, size_t n, const struct tok *key,
                                struct mc_request *req, char *mode, bool *opaque_long)
{
    enum mc_error bad = MC_ERR_NONE, msg = MC_ERR_FORMAT;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i].p[0];
        const char *arg = t[i].p + 1;
        size_t alen = t[i].len - 1;

        if (c >= 0x7f || (req->mflags & flag_bit(c)))
            return MC_ERR_DUP_FLAG;
        switch ((enum flag_kind)flag_kinds[c]) {
        case F_BAD:
            return MC_ERR_INVALID_FLAG;
        case F_PLAIN:
            break;
        case F_B64: {
            size_t dec = mc_base64_decode(key->p, key->len, req->key_buf);
            if (dec == 0) {
                bad = msg = MC_ERR_DECODE_KEY;
            } else {
                req->key = req->key_buf;
                req->key_len = (uint8_t)dec;
            }
            break;
        }
        case F_TTL: {
            int64_t *dst = c == 'N' ? &req->vivify_ttl
                         : c == 'R' ? &req->recache_ttl : &req->exptime;
            if (!mcp_read_i64(arg, alen, dst))
                bad = msg = MC_ERR_BAD_TOKEN;
            break;
        }
        case F_CAS:
            if (!mcp_read_u64(arg, alen, c == 'C' ? &req->cas : &req->new_cas))
                bad = msg = MC_ERR_BAD_TOKEN;
            break;
        case F_FLAGS:
            if (!mcp_read_u32(arg, alen, &req->client_flags))
                bad = msg; /* memcached sets no message of its own here */
            break;
        case F_MODE:
            if (alen != 1)
                bad = msg = MC_ERR_M_LENGTH;
            else
                *mode = arg[0];
            break;
        case F_INITIAL:
            if (!mcp_read_u64(arg, alen, &req->initial))
                bad = msg = MC_ERR_INITIAL;
            break;
        case F_DELTA:
            if (!mcp_read_u64(arg, alen, &req->delta))
                bad = msg = MC_ERR_DELTA_VALUE;
            break;
        case F_OPAQUE:
            if (t[i].len > MC_OPAQUE_MAX + 1) {
                *opaque_long = true;
            } else {
                req->opaque = arg;
                req->opaque_len = (uint8_t)alen;
            }
            break;
        }
        req->mflags |= flag_bit(c);
        req->order[req->nflags++] = (char)c;
    }
    return bad;
}

static enum mc_op ms_mode(char m)
{
    switch (m) {
    case 0: case 'S': case 's': return MC_OP_SET;
    case 'E': case 'e': return MC_OP_ADD;
    case 'A': case 'a': return MC_OP_APPEND;
    case 'P': case 'p': return MC_OP_PREPEND;
    case 'R': case 'r': return MC_OP_REPLACE;
    default: return MC_OP_NONE;
    }
}

static enum mc_op ma_mode(char m)
{
    switch (m) {
    case 0: case 'I': case 'i': case '+': return MC_OP_INCR;
    case 'D': case 'd': case '-': return MC_OP_DECR;
    default: return MC_OP_NONE;
    }
}

/* mg|md|ma <key> <flag>* ; ms <key> <datalen> <flag>*\r\n<data>\r\n */
enum mc_status mcp_parse_meta(const char *buf, size_t len, const struct line *l,
                                 size_t max_value, struct mc_request *req,
                                 size_t *consumed)
{
    const enum mc_cmd cmd = req->cmd;
    const bool ms = cmd == MC_CMD_MS;
    size_t first = 2; /* first flag token */
    int64_t vlen = 0;
    char mode = 0;
    bool opaque_long = false;

    if (l->n < 2)
        return mcp_fail(req, MC_ERR_UNKNOWN, false);
    if (!mcp_set_key(req, &l->t[1]) || (ms && l->n == 2))
        return mcp_fail(req, MC_ERR_FORMAT, false);
    if (l->n > MC_META_FLAGS_MAX + 2)
        return mcp_fail(req, cmd == MC_CMD_MG ? MC_ERR_MG_FLAGS_LONG : MC_ERR_FLAGS_LONG, false);
    if (ms) {
        if (!TOK_I64(&l->t[2], &vlen) || vlen < 0 || vlen > (int64_t)MC_DATA_MAX)
            return mcp_fail(req, MC_ERR_FORMAT, false);
        first = 3;
    }
    if (cmd == MC_CMD_MA)
        req->delta = 1;

    enum mc_error e = meta_flags(&l->t[first], l->n - first, &l->t[1], req, &mode,
                                 &opaque_long);
    req->noreply = mc_has(req, 'q');
    if (e != MC_ERR_NONE && (cmd == MC_CMD_MD || cmd == MC_CMD_MA))
        e = MC_ERR_BAD_FLAG;
    if (e == MC_ERR_NONE && ms) {
        req->op = ms_mode(mode);
        if (req->op == MC_OP_NONE)
            e = MC_ERR_MS_MODE;
    } else if (e == MC_ERR_NONE && cmd == MC_CMD_MA) {
        req->op = ma_mode(mode);
        if (req->op == MC_OP_NONE)
            e = MC_ERR_MA_MODE;
    }
    if (e == MC_ERR_NONE && opaque_long)
        e = MC_ERR_OPAQUE_LONG;
    if (e == MC_ERR_NONE && ms && (uint64_t)vlen > max_value) {
        req->unlink = true; /* in every mode, as memcached */
        e = MC_ERR_TOO_LARGE;
    }
    if (e != MC_ERR_NONE)
        return ms ? mcp_refuse_data(len, l, (uint32_t)vlen, e, false, req, consumed)
                  : mcp_fail(req, e, false);

    req->has_cas = cmd != MC_CMD_MG && mc_has(req, 'C');
    if (ms && req->has_cas) {
        if (req->op == MC_OP_SET || req->op == MC_OP_REPLACE)
            req->op = MC_OP_CAS;
        else if (req->op == MC_OP_ADD)
            req->has_cas = false; /* memcached's add ignores C */
    }
    if (ms)
        return mcp_take_data(buf, len, l, (uint32_t)vlen, false, req, consumed);
    return MC_OK;
}

/* ---- Base64 keys ------------------------------------------------------ */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

size_t mc_base64_decode(const char *src, size_t src_len, char *dst)
{
    if (src_len == 0 || src_len % 4 != 0)
        return 0;
    size_t pad = src[src_len - 1] == '=' ? (src[src_len - 2] == '=' ? 2 : 1) : 0;
    size_t data = src_len - pad, w = 0;

    for (size_t i = 0; i < src_len; i += 4) {
        uint32_t x = 0;
        for (size_t j = 0; j < 4; j++) {
            int v = i + j < data ? b64_value((unsigned char)src[i + j]) : 0;
            if (v < 0)
                return 0;
            x = x << 6 | (uint32_t)v;
        }
        size_t out = i + 4 <= data ? 3 : 3 - pad;
        dst[w++] = (char)(x >> 16);
        if (out > 1) dst[w++] = (char)(x >> 8);
        if (out > 2) dst[w++] = (char)x;
    }
    return w;
}
