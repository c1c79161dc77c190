/*
 * fuzz_mc_proto.c - libFuzzer target for the memcached text protocol
 * (src/mc_proto.c and src/mc_meta.c parser, src/mc_reply.c encoder).
 *
 * One input = the bytes a client sent on one connection (any number of
 * requests, partial or garbage), parsed from an exactly-sized heap copy so
 * ASan sees any access past the end, under two limits: the defaults and a
 * 16-byte value limit.
 *
 * Properties checked (any violation aborts, which libFuzzer reports):
 *  1. mc_parse() never writes its input, never consumes more than it was
 *     given, and every result is consistent: NEED_MORE consumes nothing and
 *     asks for more than it has; an error carries its own line (or none
 *     when silenced by noreply, or when closing), swallows only past the end
 *     of what it was given, closes only for CLOSE/LINE_TOO_LONG.
 *  2. An OK request never breaks a limit: key of 1..250 bytes (a non-base64
 *     key without control bytes or spaces), data inside the input followed
 *     by "\r\n" and no longer than the value limit, multiget keys all valid,
 *     opaque <= 31 bytes, at most 17 meta flags, each once, in order[].
 *  3. Every prefix decides nothing (and then asks for at most the bytes the
 *     whole input decided on) or decides exactly the same; the one exception
 *     is memcached's: more than MC_LINE_MAX bytes without '\n' (not a get)
 *     close the connection, even if the '\n' would have come next.
 *  4. The connection transcript (its first 16 decisions, swallowed blocks
 *     included) is the same whether the input arrives whole or cut in two
 *     at two points, up to such a close.
 *  5. An OK request written back canonically parses to the same request:
 *     numbers, keys (base64 ones re-encoded), flags, modes and data agree.
 *  6. The value limit is exact: a stored value of n bytes is refused with
 *     "object too large" under limit n - 1 and accepted under limit n.
 *  7. Replies encode within MC_REPLY_LINE_MAX into exact heap buffers, as
 *     one line (no '\n' before its "\r\n"): VALUE headers for every
 *     multiget key, meta replies with every code for every meta request,
 *     k and O echoed in request order.
 *  8. mc_base64_decode() on arbitrary bytes stays in bounds, and what it
 *     decodes re-encodes to text that decodes to the same bytes.
 *  9. mc_parse_auth() (memcached -Y's exchange) on the same bytes: in
 *     bounds, only its own errors, an OK always carries a data block ending
 *     in "\r\n" with at least two tokens, and prefixes decide nothing or
 *     the same.
 *
 * Built by `make fuzz` / `make fuzz-smoke` with clang
 * -fsanitize=fuzzer,address,undefined straight from the three sources.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_proto.h"
#include "mc_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_mc_proto: property failed at %s:%d: %s\n",  \
                    __FILE__, __LINE__, #cond);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)

static const struct mc_limits limits[2] = {
    {.max_value_len = MC_DEFAULT_MAX_VALUE, .max_get_line = 0},
    {.max_value_len = 16, .max_get_line = 0},
};

/* An exactly sized heap copy (malloc(0) is avoided: it may return NULL). */
static char *dup_exact(const void *src, size_t n)
{
    char *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    if (n) memcpy(p, src, n);
    return p;
}

static bool valid_text_key(const char *k, size_t n)
{
    if (n == 0 || n > MC_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c <= 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static bool is_meta(enum mc_cmd c)
{
    return c == MC_CMD_MG || c == MC_CMD_MS || c == MC_CMD_MD || c == MC_CMD_MA;
}

static bool is_storage(enum mc_cmd c)
{
    return c >= MC_CMD_SET && c <= MC_CMD_CAS;
}

/* Properties 1 and 2 for one result of mc_parse(buf, len). */
static void check_result(const char *buf, size_t len, const struct mc_limits *lim,
                         enum mc_status st, const struct mc_request *r, size_t used)
{
    CHECK(used <= len);
    if (st == MC_NEED_MORE) {
        CHECK(used == 0 && r->need > len);
        return;
    }
    if (st == MC_ERROR) {
        size_t n;
        const char *line = mc_error_line(r->err, &n);
        CHECK(r->err > MC_ERR_NONE && r->err < MC_ERR_COUNT);
        CHECK(r->close == (r->err == MC_ERR_CLOSE || r->err == MC_ERR_LINE_TOO_LONG));
        if (r->err_line == NULL)
            CHECK(r->err == MC_ERR_CLOSE || (r->noreply && !is_meta(r->cmd)));
        else
            CHECK(r->err_line == line && r->err_len == n);
        if (r->close) CHECK(used == 0 && r->swallow == 0);
        else CHECK(used > 0);
        if (r->swallow) CHECK(used == len);
        if (r->unlink) CHECK(r->err == MC_ERR_TOO_LARGE && r->key_len > 0);
        if (r->err == MC_ERR_TOO_LARGE) CHECK(is_storage(r->cmd) || r->cmd == MC_CMD_MS);
        return;
    }
    CHECK(st == MC_OK);
    CHECK(used > 0 && r->cmd != MC_CMD_NONE);
    CHECK(r->err == MC_ERR_NONE && r->err_line == NULL && !r->close && r->swallow == 0);
    CHECK(memchr(buf, '\n', used) != NULL);
    if (r->key_len || r->key) {
        CHECK(r->key_len >= 1 && r->key_len <= MC_KEY_MAX);
        if (r->key == r->key_buf) {
            CHECK(mc_has(r, 'b') && r->key_len <= MC_BINARY_KEY_MAX);
        } else {
            CHECK(r->key >= buf && r->key + r->key_len <= buf + used);
            CHECK(valid_text_key(r->key, r->key_len));
        }
    }
    if (is_storage(r->cmd) || r->cmd == MC_CMD_MS) {
        CHECK(r->data != NULL && r->key_len > 0);
        CHECK(r->data >= buf && r->data + r->data_len + 2 == buf + used);
        CHECK(memcmp(r->data + r->data_len, "\r\n", 2) == 0);
        CHECK(r->data_len <= lim->max_value_len);
        CHECK(r->op >= MC_OP_SET && r->op <= MC_OP_CAS);
    } else {
        CHECK(r->data == NULL);
    }
    if (r->args) {
        CHECK(r->args >= buf && r->args + r->args_len <= buf + used);
        size_t pos = 0, kl, count = 0;
        const char *k;
        while (mc_args_next(r, &pos, &k, &kl)) {
            CHECK(k >= r->args && k + kl <= r->args + r->args_len && kl > 0);
            if (r->cmd != MC_CMD_STATS) CHECK(valid_text_key(k, kl));
            count++;
        }
        CHECK(pos == r->args_len);
        if (r->cmd == MC_CMD_GET || r->cmd == MC_CMD_GETS) CHECK(count >= 1);
    }
    if (r->opaque) {
        CHECK(mc_has(r, 'O') && r->opaque_len <= MC_OPAQUE_MAX);
        CHECK(r->opaque >= buf && r->opaque + r->opaque_len <= buf + used);
    }
    CHECK(r->nflags <= MC_META_FLAGS_MAX);
    CHECK((size_t)__builtin_popcountll(r->mflags) == r->nflags);
    for (size_t i = 0; i < r->nflags; i++)
        CHECK(mc_has(r, r->order[i]));
    if (!is_meta(r->cmd)) CHECK(r->nflags == 0);
    if (r->cmd == MC_CMD_MS) CHECK(r->nflags <= MC_META_FLAGS_MAX - 1);
}

/* ---- Fingerprints: everything a decision says, for comparisons --------- */

struct print {
    char s[1024];
    size_t n;
};

static void fp_put(struct print *p, const void *d, size_t n)
{
    if (n > sizeof p->s - p->n) n = sizeof p->s - p->n;
    if (n) memcpy(p->s + p->n, d, n);
    p->n += n;
}

static void fp_u64(struct print *p, uint64_t v) { fp_put(p, &v, sizeof v); }

/* The decision of one mc_parse(): span = consumed + swallow. Pointers are
 * compared by what they point at, so copies of the input compare equal. */
static void fingerprint(struct print *p, enum mc_status st, const struct mc_request *r,
                        size_t used, bool with_span)
{
    p->n = 0;
    fp_u64(p, st);
    if (st == MC_NEED_MORE) return;
    fp_u64(p, r->cmd);
    if (st == MC_ERROR) {
        fp_u64(p, r->err);
        fp_u64(p, r->err_line != NULL);
        fp_u64(p, r->close);
        fp_u64(p, r->unlink);
        if (r->unlink) fp_put(p, r->key, r->key_len);
        if (with_span && !r->close) fp_u64(p, used + r->swallow);
        return;
    }
    if (with_span) fp_u64(p, used);
    fp_u64(p, r->op);
    fp_u64(p, r->noreply);
    fp_u64(p, r->has_cas);
    fp_u64(p, r->key_len);
    fp_put(p, r->key, r->key_len);
    fp_u64(p, r->data != NULL);
    fp_u64(p, r->data_len);
    if (r->data) fp_put(p, r->data, r->data_len);
    fp_u64(p, r->client_flags);
    fp_u64(p, (uint64_t)r->exptime);
    fp_u64(p, (uint64_t)r->vivify_ttl);
    fp_u64(p, (uint64_t)r->recache_ttl);
    fp_u64(p, r->cas);
    fp_u64(p, r->new_cas);
    fp_u64(p, r->delta);
    fp_u64(p, r->initial);
    fp_u64(p, r->mflags);
    fp_put(p, r->order, r->nflags);
    fp_u64(p, r->opaque != NULL);
    fp_put(p, r->opaque, r->opaque_len);
    if (r->args) { /* the tokens, not the spacing */
        size_t pos = 0, kl;
        const char *k;
        while (mc_args_next(r, &pos, &k, &kl)) {
            fp_u64(p, kl);
            fp_put(p, k, kl);
        }
    }
}

static bool same_print(const struct print *a, const struct print *b)
{
    return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
}

/* ---- Property 3: prefixes ---------------------------------------------- */

static void check_prefix(const uint8_t *data, size_t k, const struct mc_limits *lim,
                         enum mc_status full_st, const struct print *full, size_t full_end)
{
    char *buf = dup_exact(data, k);
    struct mc_request r;
    size_t used;
    enum mc_status st = mc_parse(buf, k, lim, &r, &used);
    check_result(buf, k, lim, st, &r, used);
    if (st == MC_NEED_MORE) {
        if (full_st != MC_NEED_MORE) CHECK(r.need <= full_end);
    } else if (!(st == MC_ERROR && r.err == MC_ERR_CLOSE && k > MC_LINE_MAX)) {
        struct print p;
        fingerprint(&p, st, &r, used, true);
        CHECK(same_print(&p, full));
    }
    free(buf);
}

/* ---- Property 4: transcripts ------------------------------------------- */

#define TRANSCRIPT_MAX 16

struct transcript {
    struct print d[TRANSCRIPT_MAX];
    bool long_close[TRANSCRIPT_MAX]; /* closed a long line without '\n' */
    size_t n;
};

/* Feed data[0..size) in two chunks cut at split (0: whole), recording the
 * first TRANSCRIPT_MAX decisions. */
static void run_transcript(const uint8_t *data, size_t size, size_t split,
                           const struct mc_limits *lim, struct transcript *t)
{
    size_t have = split ? split : size, off = 0, swallow = 0;
    t->n = 0;
    for (;;) {
        for (;;) {
            if (swallow) {
                size_t take = have - off < swallow ? have - off : swallow;
                off += take;
                swallow -= take;
                if (swallow) break;
            }
            if (off == have || t->n == TRANSCRIPT_MAX) break;
            char *buf = dup_exact(data + off, have - off);
            struct mc_request r;
            size_t used;
            enum mc_status st = mc_parse(buf, have - off, lim, &r, &used);
            check_result(buf, have - off, lim, st, &r, used);
            if (st != MC_NEED_MORE) {
                t->long_close[t->n] = st == MC_ERROR && r.err == MC_ERR_CLOSE &&
                                      have - off > MC_LINE_MAX;
                fingerprint(&t->d[t->n++], st, &r, used, true);
            }
            free(buf);
            if (st == MC_NEED_MORE) break;
            if (st == MC_ERROR && r.close) return;
            off += used;
            swallow = st == MC_ERROR ? r.swallow : 0;
        }
        if (have == size || t->n == TRANSCRIPT_MAX) return;
        have = size;
    }
}

static void check_transcripts(const uint8_t *data, size_t size, const struct mc_limits *lim)
{
    static struct transcript whole, cut;
    run_transcript(data, size, 0, lim, &whole);
    const size_t splits[2] = {size / 2, size > 0 ? (data[0] * 131u + size) % size : 0};
    for (size_t i = 0; i < 2; i++) {
        if (splits[i] == 0) continue;
        run_transcript(data, size, splits[i], lim, &cut);
        size_t n = whole.n < cut.n ? whole.n : cut.n, j = 0;
        for (; j < n && same_print(&whole.d[j], &cut.d[j]); j++)
            ;
        if (j < n) /* only a long line closed early may differ, and it ends it */
            CHECK(cut.long_close[j] && j + 1 == cut.n);
        else if (whole.n < TRANSCRIPT_MAX && cut.n < TRANSCRIPT_MAX)
            CHECK(whole.n == cut.n);
    }
}

/* ---- Property 5: canonical re-serialisation ---------------------------- */

struct out {
    char *p;
    size_t n, cap;
};

static void o_put(struct out *o, const void *s, size_t n)
{
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2 + 64;
        o->p = realloc(o->p, o->cap);
        CHECK(o->p != NULL);
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void o_str(struct out *o, const char *s) { o_put(o, s, strlen(s)); }

static void o_fmt(struct out *o, const char *fmt, unsigned long long v, bool neg)
{
    char tmp[48];
    int n = neg ? snprintf(tmp, sizeof tmp, fmt, (long long)v)
                : snprintf(tmp, sizeof tmp, fmt, v);
    o_put(o, tmp, (size_t)n);
}

static const char *const names[] = {
    [MC_CMD_SET] = "set",     [MC_CMD_ADD] = "add",         [MC_CMD_REPLACE] = "replace",
    [MC_CMD_APPEND] = "append", [MC_CMD_PREPEND] = "prepend", [MC_CMD_CAS] = "cas",
    [MC_CMD_GET] = "get",     [MC_CMD_GETS] = "gets",       [MC_CMD_GAT] = "gat",
    [MC_CMD_GATS] = "gats",   [MC_CMD_DELETE] = "delete",   [MC_CMD_INCR] = "incr",
    [MC_CMD_DECR] = "decr",   [MC_CMD_TOUCH] = "touch",     [MC_CMD_FLUSH_ALL] = "flush_all",
    [MC_CMD_VERSION] = "version", [MC_CMD_VERBOSITY] = "verbosity", [MC_CMD_STATS] = "stats",
    [MC_CMD_QUIT] = "quit",   [MC_CMD_MN] = "mn",           [MC_CMD_MG] = "mg",
    [MC_CMD_MS] = "ms",       [MC_CMD_MD] = "md",           [MC_CMD_MA] = "ma",
};

static void o_key(struct out *o, const struct mc_request *r)
{
    o_str(o, " ");
    if (r->key == r->key_buf) {
        char enc[MC_KEY_MAX + 4];
        o_put(o, enc, mc_base64_encode(r->key, r->key_len, enc));
    } else {
        o_put(o, r->key, r->key_len);
    }
}

static char mode_char(const struct mc_request *r)
{
    switch (r->op) {
    case MC_OP_ADD: return 'E';
    case MC_OP_APPEND: return 'A';
    case MC_OP_PREPEND: return 'P';
    case MC_OP_REPLACE: return 'R';
    case MC_OP_DECR: return 'D';
    case MC_OP_INCR: return 'I';
    default: return 'S';
    }
}

static void o_meta_flags(struct out *o, const struct mc_request *r)
{
    for (size_t i = 0; i < r->nflags; i++) {
        char c = r->order[i];
        char head[3] = {' ', c, '\0'};
        o_str(o, head);
        switch (c) {
        case 'T': o_fmt(o, "%lld", (unsigned long long)r->exptime, true); break;
        case 'N': o_fmt(o, "%lld", (unsigned long long)r->vivify_ttl, true); break;
        case 'R': o_fmt(o, "%lld", (unsigned long long)r->recache_ttl, true); break;
        case 'C': o_fmt(o, "%llu", r->cas, false); break;
        case 'E': o_fmt(o, "%llu", r->new_cas, false); break;
        case 'F': o_fmt(o, "%llu", r->client_flags, false); break;
        case 'J': o_fmt(o, "%llu", r->initial, false); break;
        case 'D': o_fmt(o, "%llu", r->delta, false); break;
        case 'O': o_put(o, r->opaque, r->opaque_len); break;
        case 'M': {
            char m = mode_char(r);
            o_put(o, &m, 1);
            break;
        }
        default: break;
        }
    }
}

/* Write r canonically; false for requests with no canonical form. */
static bool canonical(const struct mc_request *r, struct out *o)
{
    o_str(o, names[r->cmd]);
    switch (r->cmd) {
    case MC_CMD_SET: case MC_CMD_ADD: case MC_CMD_REPLACE: case MC_CMD_APPEND:
    case MC_CMD_PREPEND: case MC_CMD_CAS:
        o_key(o, r);
        o_fmt(o, " %llu", r->client_flags, false);
        o_fmt(o, " %lld", (unsigned long long)r->exptime, true);
        o_fmt(o, " %llu", r->data_len, false);
        if (r->cmd == MC_CMD_CAS) o_fmt(o, " %llu", r->cas, false);
        if (r->noreply) o_str(o, " noreply");
        o_str(o, "\r\n");
        o_put(o, r->data, r->data_len);
        o_str(o, "\r\n");
        return true;
    case MC_CMD_GAT: case MC_CMD_GATS:
        o_fmt(o, " %lld", (unsigned long long)r->exptime, true);
        /* fall through */
    case MC_CMD_GET: case MC_CMD_GETS: case MC_CMD_STATS:
        if (r->args_len) {
            o_str(o, " ");
            o_put(o, r->args, r->args_len);
        }
        o_str(o, "\r\n");
        return true;
    case MC_CMD_DELETE:
        o_key(o, r);
        o_str(o, r->noreply ? " noreply\r\n" : "\r\n");
        return true;
    case MC_CMD_INCR: case MC_CMD_DECR:
        o_key(o, r);
        o_fmt(o, " %llu", r->delta, false);
        o_str(o, r->noreply ? " noreply\r\n" : "\r\n");
        return true;
    case MC_CMD_TOUCH:
        o_key(o, r);
        o_fmt(o, " %lld", (unsigned long long)r->exptime, true);
        o_str(o, r->noreply ? " noreply\r\n" : "\r\n");
        return true;
    case MC_CMD_FLUSH_ALL:
        o_fmt(o, " %lld", (unsigned long long)r->exptime, true);
        o_str(o, r->noreply ? " noreply\r\n" : "\r\n");
        return true;
    case MC_CMD_VERBOSITY:
        o_fmt(o, " %llu", r->delta, false);
        o_str(o, r->noreply ? " noreply\r\n" : "\r\n");
        return true;
    case MC_CMD_VERSION: case MC_CMD_QUIT: case MC_CMD_MN:
        o_str(o, "\r\n");
        return true;
    case MC_CMD_MG: case MC_CMD_MD: case MC_CMD_MA: case MC_CMD_MS:
        o_key(o, r);
        if (r->cmd == MC_CMD_MS) o_fmt(o, " %llu", r->data_len, false);
        o_meta_flags(o, r);
        o_str(o, "\r\n");
        if (r->cmd == MC_CMD_MS) {
            o_put(o, r->data, r->data_len);
            o_str(o, "\r\n");
        }
        return true;
    default:
        return false;
    }
}

static void check_reparse(const struct mc_request *r, const struct mc_limits *lim)
{
    struct out o = {0};
    if (!canonical(r, &o)) {
        free(o.p);
        return;
    }
    /* mg/md ignore their M byte: the canonical form writes 'S' for it */
    char *buf = dup_exact(o.p, o.n);
    struct mc_request again;
    size_t used;
    enum mc_status st = mc_parse(buf, o.n, lim, &again, &used);
    CHECK(st == MC_OK);
    CHECK(used == o.n);
    struct print a, b;
    fingerprint(&a, MC_OK, r, 0, false);
    fingerprint(&b, MC_OK, &again, 0, false);
    CHECK(same_print(&a, &b));
    free(buf);
    free(o.p);
}

/* Property 6 for a stored value of r->data_len bytes parsed from buf. */
static void check_value_limit(const char *buf, size_t len, const struct mc_request *r)
{
    struct mc_request again;
    size_t used;
    struct mc_limits at = {.max_value_len = r->data_len};
    CHECK(mc_parse(buf, len, &at, &again, &used) == MC_OK);
    if (r->data_len == 0) return;
    struct mc_limits below = {.max_value_len = r->data_len - 1};
    CHECK(mc_parse(buf, len, &below, &again, &used) == MC_ERROR);
    CHECK(again.err == MC_ERR_TOO_LARGE);
    CHECK(again.unlink == (r->cmd == MC_CMD_SET || r->cmd == MC_CMD_MS));
}

/* ---- Property 7: replies ----------------------------------------------- */

/* One reply line. An opaque token is echoed verbatim, as memcached does, so
 * it may put a bare '\r' in the line, but never a '\n'. */
static void check_line(const char *s, size_t n)
{
    CHECK(n >= 4 && n <= MC_REPLY_LINE_MAX);
    CHECK(memcmp(s + n - 2, "\r\n", 2) == 0);
    CHECK(memchr(s, '\n', n - 1) == NULL);
}

static void check_replies(const struct mc_request *r, const uint8_t *data, size_t size)
{
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < size && i < 16; i++)
        seed = (seed ^ data[i]) * 0x100000001b3u;
    char *dst = dup_exact("", MC_REPLY_LINE_MAX);

    if (r->args && r->cmd != MC_CMD_STATS) {
        size_t pos = 0, kl;
        const char *k;
        while (mc_args_next(r, &pos, &k, &kl)) {
            size_t n = mc_value_header(dst, k, kl, (uint32_t)seed, (size_t)seed, seed,
                                       (seed & 1) != 0);
            check_line(dst, n);
            CHECK(memcmp(dst, "VALUE ", 6) == 0 && memcmp(dst + 6, k, kl) == 0);
            CHECK(dst[6 + kl] == ' ');
        }
    }
    if (is_meta(r->cmd)) {
        const struct mc_meta_item it = {
            .size = (size_t)seed, .cas = seed * 3, .flags = (uint32_t)(seed >> 7),
            .ttl = (int64_t)(seed * 5), .idle = (uint32_t)(seed >> 3), .fetched = seed & 2,
            .win_sent = seed & 4, .stale = seed & 8, .win = seed & 16,
        };
        for (int code = MC_META_VA; code <= MC_META_EX; code++) {
            for (int with_item = 0; with_item < 2; with_item++) {
                size_t n = mc_meta_reply(dst, r, (enum mc_meta_code)code,
                                         with_item ? &it : NULL);
                check_line(dst, n);
                /* the flags echoed appear in request order */
                size_t at = 2;
                for (size_t i = 0; i < r->nflags; i++) {
                    char c = r->order[i];
                    if (c != 'k' && c != 'O') continue;
                    char pat[2] = {' ', c};
                    const char *hit = memmem(dst + at, n - at, pat, 2);
                    CHECK(hit != NULL);
                    at = (size_t)(hit - dst) + 2;
                }
            }
        }
    }
    free(dst);
}

/* ---- Property 8: base64 ------------------------------------------------ */

static void check_base64(const uint8_t *data, size_t size)
{
    size_t n = size < 4 * 64 ? size : 4 * 64;
    char *src = dup_exact(data, n);
    char *dec = dup_exact("", n / 4 * 3);
    size_t dl = mc_base64_decode(src, n, dec);
    if (dl > 0) {
        CHECK(n % 4 == 0 && dl <= n / 4 * 3 && dl + 2 >= n / 4 * 3);
        char *enc = dup_exact("", (dl + 2) / 3 * 4);
        size_t el = mc_base64_encode(dec, dl, enc);
        CHECK(el == n);
        char *dec2 = dup_exact("", dl);
        CHECK(mc_base64_decode(enc, el, dec2) == dl);
        CHECK(memcmp(dec, dec2, dl) == 0);
        free(dec2);
        free(enc);
    }
    free(dec);
    free(src);
}

/* ---- Property 9: authentication exchange ------------------------------- */

static void auth_once(const uint8_t *data, size_t size, struct mc_request *r, size_t *used,
                      enum mc_status *st)
{
    char *buf = dup_exact(data, size);
    *st = mc_parse_auth(buf, size, &limits[1], r, used);
    CHECK(size == 0 || memcmp(buf, data, size) == 0);
    CHECK(*used <= size);
    if (*st == MC_NEED_MORE) {
        CHECK(*used == 0 && r->need > size);
    } else if (*st == MC_ERROR) {
        CHECK(r->err == MC_ERR_UNAUTH || r->err == MC_ERR_AUTH_END ||
              r->err == MC_ERR_AUTH_FORMAT || r->err == MC_ERR_CLOSE);
        CHECK((r->err_line == NULL) == (r->err == MC_ERR_CLOSE));
        CHECK(r->close == (r->err == MC_ERR_CLOSE) && r->swallow == 0);
    } else {
        CHECK(r->cmd == MC_CMD_SET && r->data != NULL && r->data_len <= limits[1].max_value_len);
        CHECK(r->data >= buf && r->data + r->data_len + 2 == buf + *used);
        CHECK(memcmp(r->data + r->data_len, "\r\n", 2) == 0);
        size_t pos = 0, n, count = 0;
        const char *t;
        while (mc_args_next(r, &pos, &t, &n))
            count++;
        CHECK(count >= 2);
    }
    free(buf);
}

static void check_auth(const uint8_t *data, size_t size)
{
    struct mc_request full, r;
    size_t fused, used;
    enum mc_status fst, st;
    auth_once(data, size, &full, &fused, &fst);
    size_t step = size <= 48 ? 1 : size / 8;
    for (size_t k = 0; k < size; k += step) {
        auth_once(data, k, &r, &used, &st);
        if (st == MC_NEED_MORE || (st == MC_ERROR && r.err == MC_ERR_CLOSE && k > MC_LINE_MAX))
            continue;
        CHECK(st == fst && r.err == full.err && used == fused);
    }
}

/* ---- Driver ------------------------------------------------------------ */

static void check_one(const uint8_t *data, size_t size, const struct mc_limits *lim)
{
    char *buf = dup_exact(data, size);
    struct mc_request r;
    size_t used;
    memset(&r, 0xa5, sizeof r);
    enum mc_status st = mc_parse(buf, size, lim, &r, &used);
    check_result(buf, size, lim, st, &r, used);
    CHECK(size == 0 || memcmp(buf, data, size) == 0);

    /* prefixes: all of a short input; else 16 spread out, plus the bytes
     * around the first '\n' and around the end of what was decided */
    struct print full;
    fingerprint(&full, st, &r, used, true);
    size_t end = st == MC_NEED_MORE ? size : used + r.swallow;
    size_t bound = end > size ? end : size;
    if (size <= 48) {
        for (size_t k = 0; k < size; k++)
            check_prefix(data, k, lim, st, &full, bound);
    } else {
        for (size_t k = 0; k < size; k += size / 16)
            check_prefix(data, k, lim, st, &full, bound);
        const uint8_t *nl = memchr(data, '\n', size);
        size_t marks[2] = {nl ? (size_t)(nl - data) : size, used};
        for (size_t m = 0; m < 2; m++)
            for (size_t d = 0; d < 3; d++)
                if (marks[m] >= d && marks[m] - d < size)
                    check_prefix(data, marks[m] - d, lim, st, &full, bound);
    }

    if (st == MC_OK) {
        check_reparse(&r, lim);
        if (r.data) check_value_limit(buf, size, &r);
        check_replies(&r, data, size);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < 2; i++)
        check_one(data, size, &limits[i]);
    check_transcripts(data, size, &limits[size & 1]);
    check_base64(data, size);
    check_auth(data, size);
    return 0;
}
