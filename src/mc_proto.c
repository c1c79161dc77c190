/*
 * mc_proto.c - memcached text protocol request parser: framing, numbers,
 * data blocks, classic commands (grammar, limits and the differences from
 * memcached are in mc_proto.h; meta commands are in mc_meta.c).
 *
 * Owns only code and const tables: mc_parse() reads buf[0..len) and writes
 * nothing but *req and *consumed; no allocation, no I/O, no mutable state.
 *
 * One call, one request:
 *
 *   find_line()       where the line ends, or why we must wait or close
 *   tokenize()        split the line on ' ' (at most TOKENS_MAX tokens)
 *   parse_<cmd>()     arity, noreply, key, numbers: the first problem met,
 *   mcp_parse_meta()  in memcached's order, decides the error
 *   mcp_take_data()   storage: wait for "<data>\r\n", or mcp_refuse_data()
 *                     to swallow a block we will not store
 *
 * Invariants: every read is guarded by the length it is inside of (the line
 * is never NUL-terminated); *consumed <= len; on MC_NEED_MORE req->need >
 * len and *consumed == 0; the request is reset first, so on error only the
 * error fields (and key/cmd once known) mean anything.
 */
#include "mc_proto.h"
#include "mc_internal.h"

#include <stddef.h>
#include <string.h>

/* memcached looks at most this many leading spaces for "get "/"gets ". */
#define GET_PREFIX_SPACES 100

/* ---- Error lines ------------------------------------------------------- */

#define LINE(s) {s "\r\n", sizeof(s "\r\n") - 1}

static const struct {
    const char *s;
    uint8_t len;
} err_lines[MC_ERR_COUNT] = {
    [MC_ERR_NONE] = {NULL, 0},
    [MC_ERR_UNKNOWN] = LINE("ERROR"),
    [MC_ERR_FORMAT] = LINE("CLIENT_ERROR bad command line format"),
    [MC_ERR_DELETE_USAGE] =
        LINE("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"),
    [MC_ERR_EXPTIME] = LINE("CLIENT_ERROR invalid exptime argument"),
    [MC_ERR_DELTA_ARG] = LINE("CLIENT_ERROR invalid numeric delta argument"),
    [MC_ERR_BAD_CHUNK] = LINE("CLIENT_ERROR bad data chunk"),
    [MC_ERR_TOO_LARGE] = LINE("SERVER_ERROR object too large for cache"),
    [MC_ERR_LINE_TOO_LONG] = LINE("CLIENT_ERROR line too long"),
    [MC_ERR_CLOSE] = {NULL, 0},
    [MC_ERR_INVALID_FLAG] = LINE("CLIENT_ERROR invalid flag"),
    [MC_ERR_DUP_FLAG] = LINE("CLIENT_ERROR duplicate flag"),
    [MC_ERR_BAD_FLAG] = LINE("CLIENT_ERROR invalid or duplicate flag"),
    [MC_ERR_BAD_TOKEN] = LINE("CLIENT_ERROR bad token in command line format"),
    [MC_ERR_DECODE_KEY] = LINE("CLIENT_ERROR error decoding key"),
    [MC_ERR_M_LENGTH] = LINE("CLIENT_ERROR incorrect length for M token"),
    [MC_ERR_MS_MODE] = LINE("CLIENT_ERROR invalid mode for ms M token"),
    [MC_ERR_MA_MODE] = LINE("CLIENT_ERROR invalid mode for ma M token"),
    [MC_ERR_INITIAL] = LINE("CLIENT_ERROR invalid numeric initial value"),
    [MC_ERR_DELTA_VALUE] = LINE("CLIENT_ERROR invalid numeric delta value"),
    [MC_ERR_OPAQUE_LONG] = LINE("CLIENT_ERROR opaque token too long"),
    [MC_ERR_MG_FLAGS_LONG] = LINE("CLIENT_ERROR options flags are too long"),
    [MC_ERR_FLAGS_LONG] = LINE("CLIENT_ERROR options flags too long"),
    [MC_ERR_UNAUTH] = LINE("CLIENT_ERROR unauthenticated"),
    [MC_ERR_AUTH_END] = LINE("CLIENT_ERROR bad command line termination"),
    [MC_ERR_AUTH_FORMAT] = LINE("CLIENT_ERROR bad authentication token format"),
};

const char *mc_error_line(enum mc_error err, size_t *len)
{
    if ((unsigned)err >= MC_ERR_COUNT || err_lines[err].s == NULL) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = err_lines[err].len;
    return err_lines[err].s;
}

/* Record error err; silent (classic noreply) keeps the line unsent. */
enum mc_status mcp_fail(struct mc_request *req, enum mc_error err, bool silent)
{
    size_t n;
    req->err = err;
    req->err_line = silent ? NULL : mc_error_line(err, &n);
    req->err_len = req->err_line ? (uint8_t)n : 0;
    req->close = err == MC_ERR_CLOSE || err == MC_ERR_LINE_TOO_LONG;
    return MC_ERROR;
}

/* ---- Tokens and numbers ------------------------------------------------ */

/* isspace() in the C locale; ' ' and '\n' never occur inside a token. */
static bool is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool tok_is(const struct tok *t, const char *s, size_t n)
{
    return t->len == n && memcmp(t->p, s, n) == 0;
}

static bool is_noreply(const struct tok *t) { return tok_is(t, "noreply", 7); }

/* Where the token starting at p[from] ends: the next ' ', or n. */
static size_t token_end(const char *p, size_t from, size_t n)
{
    const char *sp = memchr(p + from, ' ', n - from);
    return sp ? (size_t)(sp - p) : n;
}

/* Split line->p[0..line->len) on ' '; stops after TOKENS_MAX tokens. */
static void tokenize(struct line *l)
{
    size_t i = 0;
    l->n = 0;
    while (l->n < TOKENS_MAX) {
        while (i < l->len && l->p[i] == ' ')
            i++;
        if (i >= l->len)
            break;
        size_t s = i;
        i = token_end(l->p, i, l->len);
        l->t[l->n++] = (struct tok){l->p + s, i - s};
    }
}

/*
 * A number as strtoull()/strtoll() read it in memcached's safe_strto*():
 * leading whitespace, an optional sign, at least one digit, and then the
 * token ends or goes on with whitespace. Sets the sign and the magnitude;
 * false if malformed or above 2^64 - 1.
 */
static bool read_number(const char *s, size_t n, bool *neg, uint64_t *mag)
{
    size_t i = 0;
    uint64_t v = 0;

    while (i < n && is_space(s[i]))
        i++;
    *neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        *neg = s[i] == '-';
        i++;
    }
    size_t first = i;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false; /* ERANGE */
        v = v * 10 + d;
    }
    if (i == first || (i < n && !is_space(s[i])))
        return false;
    *mag = v;
    return true;
}

/* Unsigned 64-bit; a '-' only before zero ("-0"). */
bool mcp_read_u64(const char *s, size_t n, uint64_t *out)
{
    bool neg;
    uint64_t v;
    if (!read_number(s, n, &neg, &v) || (neg && v != 0))
        return false;
    *out = v;
    return true;
}

/* Unsigned 32-bit (memcached truncates larger ones; we refuse them). */
bool mcp_read_u32(const char *s, size_t n, uint32_t *out)
{
    uint64_t v;
    if (!mcp_read_u64(s, n, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Signed 64-bit, the range of strtol() on a 64-bit system. */
bool mcp_read_i64(const char *s, size_t n, int64_t *out)
{
    bool neg;
    uint64_t v;
    if (!read_number(s, n, &neg, &v))
        return false;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > INT64_MAX)
            return false;
        *out = (int64_t)v;
    }
    return true;
}

/* A key as the SPEC allows it: 1..250 bytes, no control byte (no space
 * either, but a token has none). */
static bool key_ok(const char *p, size_t n)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = ones << 7;
    size_t i = 0;

    if (n == 0 || n > MC_KEY_MAX)
        return false;
    for (; i + 8 <= n; i += 8) { /* 8 bytes at a time: any < 0x20 or 0x7f? */
        uint64_t w, d;
        memcpy(&w, p + i, 8);
        d = w ^ (0x7f * ones);
        if ((((w - 0x20 * ones) & ~w) | ((d - ones) & ~d)) & highs)
            return false;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

bool mcp_set_key(struct mc_request *req, const struct tok *t)
{
    if (!key_ok(t->p, t->len))
        return false;
    req->key = t->p;
    req->key_len = (uint8_t)t->len;
    return true;
}

/* ---- Data blocks ------------------------------------------------------- */

/* The data block of vlen bytes after the line: wait for it, then check its
 * "\r\n". silent: classic noreply (the bad chunk line is not sent). */
enum mc_status mcp_take_data(const char *buf, size_t len, const struct line *l,
                                uint32_t vlen, bool silent,
                                struct mc_request *req, size_t *consumed)
{
    size_t total = l->end + (size_t)vlen + 2;

    if (len < total) {
        req->need = total;
        return MC_NEED_MORE;
    }
    *consumed = total;
    if (buf[total - 2] != '\r' || buf[total - 1] != '\n')
        return mcp_fail(req, MC_ERR_BAD_CHUNK, silent);
    req->data = buf + l->end;
    req->data_len = vlen;
    return MC_OK;
}

/* Refuse a request and its data block of vlen bytes: consume what of the
 * block is here, swallow the rest as it arrives. */
enum mc_status mcp_refuse_data(size_t len, const struct line *l, uint32_t vlen,
                                  enum mc_error err, bool silent,
                                  struct mc_request *req, size_t *consumed)
{
    size_t block = (size_t)vlen + 2;
    size_t here = len - l->end;
    size_t take = here < block ? here : block;

    *consumed = l->end + take;
    req->swallow = block - take;
    return mcp_fail(req, err, silent);
}

/* ---- Classic commands -------------------------------------------------- */

static enum mc_op storage_op(enum mc_cmd cmd)
{
    switch (cmd) {
    case MC_CMD_ADD: return MC_OP_ADD;
    case MC_CMD_REPLACE: return MC_OP_REPLACE;
    case MC_CMD_APPEND: return MC_OP_APPEND;
    case MC_CMD_PREPEND: return MC_OP_PREPEND;
    case MC_CMD_CAS: return MC_OP_CAS;
    default: return MC_OP_SET;
    }
}

/* <cmd> <key> <flags> <exptime> <bytes> [cas] [noreply]\r\n<data>\r\n */
static enum mc_status parse_storage(const char *buf, size_t len, const struct line *l,
                                    size_t max_value, struct mc_request *req,
                                    size_t *consumed)
{
    const bool is_cas = req->cmd == MC_CMD_CAS;
    const size_t base = is_cas ? 6 : 5;
    int64_t vlen;

    if (l->n != base && l->n != base + 1)
        return mcp_fail(req, MC_ERR_UNKNOWN, false);
    const bool nr = req->noreply = is_noreply(&l->t[l->n - 1]);
    req->op = storage_op(req->cmd);
    if (!mcp_set_key(req, &l->t[1]))
        return mcp_fail(req, MC_ERR_FORMAT, nr);
    if (!TOK_U32(&l->t[2], &req->client_flags) || !TOK_I64(&l->t[3], &req->exptime) ||
        !TOK_I64(&l->t[4], &vlen))
        return mcp_fail(req, MC_ERR_FORMAT, nr);
    if (is_cas) {
        if (!TOK_U64(&l->t[5], &req->cas))
            return mcp_fail(req, MC_ERR_FORMAT, nr);
        req->has_cas = true;
    }
    if (vlen < 0 || vlen > (int64_t)MC_DATA_MAX)
        return mcp_fail(req, MC_ERR_FORMAT, nr);
    if ((uint64_t)vlen > max_value) {
        req->unlink = req->cmd == MC_CMD_SET;
        return mcp_refuse_data(len, l, (uint32_t)vlen, MC_ERR_TOO_LARGE, nr, req, consumed);
    }
    return mcp_take_data(buf, len, l, (uint32_t)vlen, nr, req, consumed);
}

/* req->args: the rest of the line from the first token after t (if any). */
static void set_args(const struct line *l, const struct tok *t, struct mc_request *req)
{
    const char *from = t->p + t->len, *end = l->p + l->len;
    while (from < end && *from == ' ')
        from++;
    req->args = from;
    req->args_len = (uint32_t)(end - from);
}

/* get|gets <key>+ ; gat|gats <exptime> <key>* */
static enum mc_status parse_retrieval(const struct line *l, struct mc_request *req)
{
    size_t skip = 1; /* tokens before the keys */

    if (l->n < 2)
        return mcp_fail(req, MC_ERR_UNKNOWN, false);
    if (req->cmd == MC_CMD_GAT || req->cmd == MC_CMD_GATS) {
        if (!TOK_I64(&l->t[1], &req->exptime))
            return mcp_fail(req, MC_ERR_EXPTIME, false);
        skip = 2;
    }
    set_args(l, &l->t[skip - 1], req);

    if (l->n < TOKENS_MAX) { /* every key is a token of the line already */
        for (size_t i = skip; i < l->n; i++)
            if (!key_ok(l->t[i].p, l->t[i].len))
                return mcp_fail(req, MC_ERR_FORMAT, false);
        return MC_OK;
    }
    size_t pos = 0, klen;
    const char *k;
    while (mc_args_next(req, &pos, &k, &klen))
        if (!key_ok(k, klen))
            return mcp_fail(req, MC_ERR_FORMAT, false);
    return MC_OK;
}

/* incr|decr <key> <delta> [noreply] */
static enum mc_status parse_arith(const struct line *l, struct mc_request *req)
{
    if (l->n != 3 && l->n != 4)
        return mcp_fail(req, MC_ERR_UNKNOWN, false);
    const bool nr = req->noreply = is_noreply(&l->t[l->n - 1]);
    req->op = req->cmd == MC_CMD_INCR ? MC_OP_INCR : MC_OP_DECR;
    if (!mcp_set_key(req, &l->t[1]))
        return mcp_fail(req, MC_ERR_FORMAT, nr);
    if (!TOK_U64(&l->t[2], &req->delta))
        return mcp_fail(req, MC_ERR_DELTA_ARG, nr);
    return MC_OK;
}

/* touch <key> <exptime> [noreply] */
static enum mc_status parse_touch(const struct line *l, struct mc_request *req)
{
    if (l->n != 3 && l->n != 4)
        return mcp_fail(req, MC_ERR_UNKNOWN, false);
    const bool nr = req->noreply = is_noreply(&l->t[l->n - 1]);
    if (!mcp_set_key(req, &l->t[1]))
        return mcp_fail(req, MC_ERR_FORMAT, nr);
    if (!TOK_I64(&l->t[2], &req->exptime))
        return mcp_fail(req, MC_ERR_EXPTIME, nr);
    return MC_OK;
}

/* delete <key> [0] [noreply] */
static enum mc_status parse_delete(const struct line *l, struct mc_request *req)
{
    if (l->n < 2 || l->n > 4)
        return mcp_fail(req, MC_ERR_UNKNOWN, false);
    bool nr = false;
    if (l->n > 2) {
        bool zero = tok_is(&l->t[2], "0", 1);
        nr = req->noreply = is_noreply(&l->t[l->n - 1]);
        bool valid = (l->n == 3 && (zero || nr)) || (l->n == 4 && zero && nr);
        if (!valid)
            return mcp_fail(req, MC_ERR_DELETE_USAGE, nr);
    }
    if (!mcp_set_key(req, &l->t[1]))
        return mcp_fail(req, MC_ERR_FORMAT, nr);
    return MC_OK;
}

/* flush_all [delay] [noreply] */
static enum mc_status parse_flush_all(const struct line *l, struct mc_request *req)
{
    if (l->n > 3)
        return mcp_fail(req, MC_ERR_UNKNOWN, false);
    const bool nr = req->noreply = is_noreply(&l->t[l->n - 1]);
    if (l->n != (nr ? 2u : 1u) && !TOK_I64(&l->t[1], &req->exptime))
        return mcp_fail(req, MC_ERR_EXPTIME, nr);
    return MC_OK;
}

/* verbosity <level> [noreply] */
static enum mc_status parse_verbosity(const struct line *l, struct mc_request *req)
{
    uint32_t level;
    if (l->n != 2 && l->n != 3)
        return mcp_fail(req, MC_ERR_UNKNOWN, false);
    const bool nr = req->noreply = is_noreply(&l->t[l->n - 1]);
    if (!TOK_U32(&l->t[1], &level))
        return mcp_fail(req, MC_ERR_FORMAT, nr);
    req->delta = level;
    return MC_OK;
}

/* stats [args...] */
static enum mc_status parse_stats(const struct line *l, struct mc_request *req)
{
    set_args(l, &l->t[0], req);
    return MC_OK;
}

/* ---- Dispatch ---------------------------------------------------------- */

static const struct {
    char name[10];
    uint8_t len;
    enum mc_cmd cmd;
} commands[] = {
    {"get", 3, MC_CMD_GET},           {"set", 3, MC_CMD_SET},
    {"mg", 2, MC_CMD_MG},             {"ms", 2, MC_CMD_MS},
    {"md", 2, MC_CMD_MD},             {"ma", 2, MC_CMD_MA},
    {"mn", 2, MC_CMD_MN},             {"gets", 4, MC_CMD_GETS},
    {"delete", 6, MC_CMD_DELETE},     {"incr", 4, MC_CMD_INCR},
    {"decr", 4, MC_CMD_DECR},         {"add", 3, MC_CMD_ADD},
    {"replace", 7, MC_CMD_REPLACE},   {"append", 6, MC_CMD_APPEND},
    {"prepend", 7, MC_CMD_PREPEND},   {"cas", 3, MC_CMD_CAS},
    {"touch", 5, MC_CMD_TOUCH},       {"gat", 3, MC_CMD_GAT},
    {"gats", 4, MC_CMD_GATS},         {"flush_all", 9, MC_CMD_FLUSH_ALL},
    {"version", 7, MC_CMD_VERSION},   {"verbosity", 9, MC_CMD_VERBOSITY},
    {"stats", 5, MC_CMD_STATS},       {"quit", 4, MC_CMD_QUIT},
};

const char *mc_cmd_name(enum mc_cmd cmd)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].cmd == cmd) return commands[i].name;
    return NULL;
}

static enum mc_cmd lookup(const struct tok *t)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (tok_is(t, commands[i].name, commands[i].len))
            return commands[i].cmd;
    return MC_CMD_NONE;
}

/* Does buf start, after at most 100 spaces, with "get " or "gets "? Only
 * such lines may be longer than MC_LINE_MAX before their '\n' arrives. */
static bool multiget_prefix(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && i <= GET_PREFIX_SPACES && buf[i] == ' ')
        i++;
    if (i > GET_PREFIX_SPACES)
        return false;
    const char *p = buf + i;
    size_t n = len - i;
    return (n >= 4 && memcmp(p, "get ", 4) == 0) || (n >= 5 && memcmp(p, "gets ", 5) == 0);
}

/*
 * Where the line at the start of buf ends: its '\n', or NULL with either
 * req->need set (wait) or the error recorded (close). A line counts its
 * '\n'; get/gets lines may reach max_get bytes, others MC_READ_MAX.
 */
static const char *find_line(const char *buf, size_t len, size_t max_get,
                             struct mc_request *req)
{
    const bool get = multiget_prefix(buf, len);
    const size_t limit = get ? max_get : MC_READ_MAX;
    const char *nl = memchr(buf, '\n', len < limit ? len : limit);

    if (nl != NULL)
        return nl;
    if (len >= limit)
        mcp_fail(req, get ? MC_ERR_LINE_TOO_LONG : MC_ERR_CLOSE, false);
    else if (len > MC_LINE_MAX && !get)
        mcp_fail(req, MC_ERR_CLOSE, false); /* memcached: junk, not a multiget */
    else
        req->need = len + 1;
    return NULL;
}

/* The line ending at nl ('\n'), split into tokens. */
static void split_line(const char *buf, const char *nl, struct line *l)
{
    l->p = buf;
    l->len = (size_t)(nl - buf);
    l->end = l->len + 1;
    if (l->len > 1 && buf[l->len - 1] == '\r')
        l->len--;
    tokenize(l);
}

static enum mc_status dispatch(const char *buf, size_t len, const struct line *l,
                               size_t max_value, struct mc_request *req,
                               size_t *consumed)
{
    if (l->n == 0)
        return mcp_fail(req, MC_ERR_UNKNOWN, false);
    req->cmd = lookup(&l->t[0]);
    switch (req->cmd) {
    case MC_CMD_SET: case MC_CMD_ADD: case MC_CMD_REPLACE: case MC_CMD_APPEND:
    case MC_CMD_PREPEND: case MC_CMD_CAS:
        return parse_storage(buf, len, l, max_value, req, consumed);
    case MC_CMD_GET: case MC_CMD_GETS: case MC_CMD_GAT: case MC_CMD_GATS:
        return parse_retrieval(l, req);
    case MC_CMD_INCR: case MC_CMD_DECR: return parse_arith(l, req);
    case MC_CMD_TOUCH: return parse_touch(l, req);
    case MC_CMD_DELETE: return parse_delete(l, req);
    case MC_CMD_FLUSH_ALL: return parse_flush_all(l, req);
    case MC_CMD_VERBOSITY: return parse_verbosity(l, req);
    case MC_CMD_STATS: return parse_stats(l, req);
    case MC_CMD_VERSION: case MC_CMD_QUIT: case MC_CMD_MN: return MC_OK;
    case MC_CMD_MG: case MC_CMD_MS: case MC_CMD_MD: case MC_CMD_MA:
        return mcp_parse_meta(buf, len, l, max_value, req, consumed);
    case MC_CMD_NONE: break;
    }
    return mcp_fail(req, MC_ERR_UNKNOWN, false);
}

enum mc_status mc_parse(const char *buf, size_t len, const struct mc_limits *lim,
                        struct mc_request *req, size_t *consumed)
{
    size_t max_value = lim ? lim->max_value_len : MC_DEFAULT_MAX_VALUE;
    size_t max_get = lim && lim->max_get_line ? lim->max_get_line : MC_DEFAULT_MAX_GET_LINE;

    if (max_get < MC_READ_MAX)
        max_get = MC_READ_MAX; /* memcached always serves that much */
    if (max_get > UINT32_MAX)
        max_get = UINT32_MAX;  /* req->args_len is 32-bit */
    memset(req, 0, offsetof(struct mc_request, key_buf));
    *consumed = 0;
    if (len == 0) {
        req->need = 1;
        return MC_NEED_MORE;
    }
    if ((unsigned char)buf[0] == 0x80)
        return mcp_fail(req, MC_ERR_CLOSE, false); /* binary protocol magic */

    const char *nl = find_line(buf, len, max_get, req);
    if (nl == NULL)
        return req->need ? MC_NEED_MORE : MC_ERROR;

    struct line l;
    split_line(buf, nl, &l);
    *consumed = l.end; /* storage commands move it past their data */
    enum mc_status st = dispatch(buf, len, &l, max_value, req, consumed);
    if (st == MC_NEED_MORE) {
        size_t need = req->need;
        memset(req, 0, offsetof(struct mc_request, key_buf));
        req->need = need;
        *consumed = 0;
    }
    return st;
}

/* ---- Authentication (memcached -Y) ------------------------------------ */

enum mc_status mc_parse_auth(const char *buf, size_t len, const struct mc_limits *lim,
                             struct mc_request *req, size_t *consumed)
{
    size_t max_value = lim ? lim->max_value_len : MC_DEFAULT_MAX_VALUE;
    uint32_t vlen;

    memset(req, 0, offsetof(struct mc_request, key_buf));
    *consumed = 0;
    if (len < 2) { /* memcached waits for two bytes before looking */
        req->need = 2;
        return MC_NEED_MORE;
    }
    const char *nl = memchr(buf, '\n', len < MC_READ_MAX ? len : MC_READ_MAX);
    if (nl == NULL) {
        if (len > MC_LINE_MAX)
            return mcp_fail(req, MC_ERR_CLOSE, false);
        req->need = len + 1;
        return MC_NEED_MORE;
    }
    struct line l;
    split_line(buf, nl, &l);
    *consumed = l.end;
    if (l.n < 5 || !tok_is(&l.t[0], "set", 3) || !TOK_U32(&l.t[4], &vlen) ||
        vlen > max_value)
        return mcp_fail(req, MC_ERR_UNAUTH, false);

    req->cmd = MC_CMD_SET;
    enum mc_status st = mcp_take_data(buf, len, &l, vlen, false, req, consumed);
    if (st == MC_NEED_MORE) {
        size_t need = req->need;
        memset(req, 0, offsetof(struct mc_request, key_buf));
        req->need = need;
        *consumed = 0;
        return st;
    }
    if (st == MC_ERROR) /* memcached's words for a bad data chunk here */
        return mcp_fail(req, MC_ERR_AUTH_END, false);
    req->args = req->data;
    req->args_len = req->data_len;
    size_t pos = 0, n;
    const char *t;
    if (!mc_args_next(req, &pos, &t, &n) || !mc_args_next(req, &pos, &t, &n))
        return mcp_fail(req, MC_ERR_AUTH_FORMAT, false);
    return MC_OK;
}

/* ---- Helpers ----------------------------------------------------------- */

bool mc_args_next(const struct mc_request *req, size_t *pos, const char **tok,
                  size_t *tok_len)
{
    const char *a = req->args;
    size_t n = req->args_len, i = *pos;

    while (i < n && a[i] == ' ')
        i++;
    if (i >= n) {
        *pos = n;
        return false;
    }
    size_t s = i;
    i = token_end(a, i, n);
    *tok = a + s;
    *tok_len = i - s;
    *pos = i;
    return true;
}
