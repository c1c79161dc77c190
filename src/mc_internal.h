/*
 * mc_internal.h - what the two halves of the memcached request parser
 * share: mc_proto.c (framing, classic commands, authentication) and
 * mc_meta.c (meta commands, base64 keys). Only these two files include it.
 *
 * Everything here reads a line that mc_proto.c found and split; nothing
 * is NUL-terminated, every length is explicit.
 */
#ifndef VITAMIN_MC_INTERNAL_H
#define VITAMIN_MC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mc_proto.h"

/* memcached splits at most 23 tokens; every arity it checks is below that. */
#define TOKENS_MAX 24

struct tok {
    const char *p;
    size_t len;
};

/* The request line being parsed. */
struct line {
    const char *p;      /* == buf */
    size_t len;         /* bytes before '\n', one trailing '\r' dropped */
    size_t end;         /* bytes up to and including '\n' */
    size_t n;           /* tokens found, at most TOKENS_MAX */
    struct tok t[TOKENS_MAX];
};

/* Record error err in req (silent: classic noreply, no line is sent);
 * returns MC_ERROR. */
enum mc_status mcp_fail(struct mc_request *req, enum mc_error err, bool silent);

/* Numbers as memcached's safe_strto*() read them (see mc_proto.h); false
 * if malformed or out of range. */
bool mcp_read_u64(const char *s, size_t n, uint64_t *out);
bool mcp_read_u32(const char *s, size_t n, uint32_t *out);
bool mcp_read_i64(const char *s, size_t n, int64_t *out);

#define TOK_U64(t, out) mcp_read_u64((t)->p, (t)->len, (out))
#define TOK_U32(t, out) mcp_read_u32((t)->p, (t)->len, (out))
#define TOK_I64(t, out) mcp_read_i64((t)->p, (t)->len, (out))

/* Take token t as the key if it is one (1..250 bytes, no control byte). */
bool mcp_set_key(struct mc_request *req, const struct tok *t);

/* The data block of vlen bytes after line l: wait for it and check its
 * "\r\n" (MC_NEED_MORE, MC_OK, or bad data chunk, silent if asked). */
enum mc_status mcp_take_data(const char *buf, size_t len, const struct line *l,
                             uint32_t vlen, bool silent, struct mc_request *req,
                             size_t *consumed);

/* Refuse the request with err and swallow its data block of vlen bytes. */
enum mc_status mcp_refuse_data(size_t len, const struct line *l, uint32_t vlen,
                               enum mc_error err, bool silent,
                               struct mc_request *req, size_t *consumed);

/* mg md ma ms (req->cmd is set): the rest of the request. */
enum mc_status mcp_parse_meta(const char *buf, size_t len, const struct line *l,
                              size_t max_value, struct mc_request *req, size_t *consumed);

#endif
