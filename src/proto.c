/*
 * proto.c - Vitamin text protocol v1: the request-line parser and the
 * reply-value encoder (grammar in proto.h, behaviour in SPEC.md section 2).
 *
 * Owns only code and const tables: every function works on bytes the caller
 * hands in, with no allocation, no I/O and no mutable state.
 *
 * Parser invariants:
 *  - Only line[0..len) is read, len excluding one trailing '\r'; every read
 *    is guarded by pos < len, so a line cut at any byte is safe to parse.
 *  - One pass, left to right, one token at a time; the first problem met is
 *    the one reported. An argument's type is judged from its first byte
 *    (quote or not), then the token is read whole (syntax), then its value
 *    is checked (key/value length, TTL range).
 *  - Strings are unescaped in place. The write cursor never passes the read
 *    cursor, so a string's bytes land at the start of its own quoted span:
 *
 *        before:  get("a\x41b")        key = "aAb", key_len = 3
 *        after:   get("aAb41b")            ^^^ then stale bytes
 *
 *  - On error the line may already be partly unescaped; only the status and
 *    req->detail mean anything then.
 *
 * Encoder: a 256-entry table gives each byte's encoded width (1 raw, 2 for
 * \\ \r \n \t, 4 for \xHH), so the common case is one tight scan that finds
 * nothing to escape.
 */
#include "proto.h"

#include <string.h>

/* ---- Parser ------------------------------------------------------------ */

/* What an argument position holds. */
enum arg_kind {
    ARG_KEY,      /* string, 1..PROTO_MAX_KEY_LEN bytes -> req->key */
    ARG_VALUE,    /* string, 0..limits->max_value_len bytes -> req->value */
    ARG_PASSWORD, /* string, any length -> req->key */
    ARG_TTL,      /* uint, 0..PROTO_MAX_TTL -> req->ttl */
};

#define CMD_MAX_ARGS 3

struct cmd_def {
    char name[8];                      /* lowercase */
    uint8_t name_len;                  /* bytes of name used */
    enum proto_cmd cmd;                /* what the request becomes */
    uint8_t min_args;                  /* fewer is "wrong number of arguments" */
    uint8_t max_args;                  /* more is "wrong number of arguments" */
    enum arg_kind args[CMD_MAX_ARGS];  /* kind of positions 0..max_args-1 */
};

static const struct cmd_def cmd_defs[] = {
    {"set", 3, PROTO_CMD_SET, 2, 3, {ARG_KEY, ARG_VALUE, ARG_TTL}},
    {"get", 3, PROTO_CMD_GET, 1, 1, {ARG_KEY}},
    {"del", 3, PROTO_CMD_DEL, 1, 1, {ARG_KEY}},
    {"ttl", 3, PROTO_CMD_TTL, 1, 1, {ARG_KEY}},
    {"expire", 6, PROTO_CMD_EXPIRE, 2, 2, {ARG_KEY, ARG_TTL}},
    {"ping", 4, PROTO_CMD_PING, 0, 0, {ARG_KEY}},
    {"stats", 5, PROTO_CMD_STATS, 0, 0, {ARG_KEY}},
    {"quit", 4, PROTO_CMD_QUIT, 0, 0, {ARG_KEY}},
    {"auth", 4, PROTO_CMD_AUTH, 1, 1, {ARG_PASSWORD}},
};

/* Syntax error details (static text, shown after "Syntax error: "). */
static const char D_MISSING_PAREN[] = "missing ')'";
static const char D_ARITY[] = "wrong number of arguments";
static const char D_NEED_STRING[] = "expected a quoted string";
static const char D_UNTERMINATED[] = "unterminated string";
static const char D_BAD_ESCAPE[] = "bad escape sequence in string";
static const char D_NEED_SEP[] = "expected ',' or ')' after argument";
static const char D_ARG_BEFORE[] = "expected an argument before ','";
static const char D_ARG_AFTER[] = "expected an argument after ','";
static const char D_TRAILING[] = "trailing garbage after ')'";

/* Cursor over one line. Invariant: pos <= len. */
struct parser {
    char *buf;  /* the line, unescaped in place */
    size_t len; /* bytes of the line, trailing '\r' dropped */
    size_t pos; /* next byte to read */
};

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool at_end(const struct parser *p) { return p->pos >= p->len; }

/* The next byte, or NUL at the end (callers that care test at_end first). */
static char peek(const struct parser *p)
{
    return p->pos < p->len ? p->buf[p->pos] : '\0';
}

static void skip_blanks(struct parser *p)
{
    while (p->pos < p->len && is_blank(p->buf[p->pos]))
        p->pos++;
}

/* True if the line holds only blanks and CRs (or nothing). */
static bool line_is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_blank(s[i]) && s[i] != '\r')
            return false;
    return true;
}

/* Look up a command name made of ASCII letters; NULL if unknown. Names are
 * at most 8 bytes and stored zero-padded, so each comparison is one 64-bit
 * compare of the lowercased, zero-padded input. */
static const struct cmd_def *cmd_lookup(const char *name, size_t len)
{
    char lower[sizeof cmd_defs[0].name] = {0};

    if (len == 0 || len > sizeof lower)
        return NULL;
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)(name[i] | 0x20); /* letters only: ASCII lowercase */
    uint64_t want;
    memcpy(&want, lower, sizeof want);
    for (size_t i = 0; i < sizeof cmd_defs / sizeof cmd_defs[0]; i++) {
        uint64_t have;
        memcpy(&have, cmd_defs[i].name, sizeof have);
        if (have == want)
            return &cmd_defs[i];
    }
    return NULL;
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decode one escape: s points just past the backslash, avail (>= 1) bytes
 * are readable there. Returns the byte (0..255) and sets *used to the bytes
 * consumed after the backslash, or returns -1 if the escape is invalid.
 */
static int escape_byte(const char *s, size_t avail, size_t *used)
{
    *used = 1;
    switch (s[0]) {
    case '\\': return '\\';
    case '"': return '"';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case '0': return 0;
    case 'x': {
        if (avail < 3)
            return -1;
        int hi = hex_digit((unsigned char)s[1]);
        int lo = hex_digit((unsigned char)s[2]);
        if (hi < 0 || lo < 0)
            return -1;
        *used = 3;
        return hi << 4 | lo;
    }
    default: return -1;
    }
}

/*
 * Read a quoted string starting at the '"' under the cursor, unescaping it
 * in place. Returns PROTO_OK with *out and *out_len set and the cursor past the
 * closing quote, or PROTO_ERR_SYNTAX with *detail set.
 */
/* Does any byte of the word x equal c? (exact "has zero byte" trick) */
static inline bool word_has_byte(uint64_t x, unsigned char c)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    uint64_t y = x ^ (ones * c);
    return ((y - ones) & ~y & (ones * 0x80)) != 0;
}

/* Index of the first '"' or '\\' in buf[i, len), or len: 8 bytes a step. */
static size_t plain_run(const char *buf, size_t i, size_t len)
{
    while (len - i >= 8) {
        uint64_t x;
        memcpy(&x, buf + i, 8);
        if (word_has_byte(x, '"') || word_has_byte(x, '\\')) break;
        i += 8;
    }
    while (i < len && buf[i] != '"' && buf[i] != '\\')
        i++;
    return i;
}

static enum proto_status parse_string(struct parser *p, const char **out,
                                      size_t *out_len, const char **detail)
{
    char *buf = p->buf;
    const size_t start = p->pos + 1;
    size_t r = start, w = start; /* read and write positions; w <= r */

    while (r < p->len) {
        size_t end = plain_run(buf, r, p->len);
        if (w != r) memmove(buf + w, buf + r, end - r); /* only after an escape */
        w += end - r;
        r = end;
        if (r >= p->len) break;
        if (buf[r] == '"') {
            *out = buf + start;
            *out_len = w - start;
            p->pos = r + 1;
            return PROTO_OK;
        }
        if (r + 1 >= p->len)
            break; /* backslash ends the line: the string never closes */
        size_t used;
        int b = escape_byte(buf + r + 1, p->len - (r + 1), &used);
        if (b < 0) {
            *detail = D_BAD_ESCAPE;
            return PROTO_ERR_SYNTAX;
        }
        buf[w++] = (char)b;
        r += 1 + used;
    }
    *detail = D_UNTERMINATED;
    return PROTO_ERR_SYNTAX;
}

/*
 * Read a TTL token under the cursor (non-blank, not ',' or ')'). The token
 * runs to the next blank, ',', ')' or the end of the line; it must be all
 * digits. Returns PROTO_OK, PROTO_ERR_TTL_NOT_INT or PROTO_ERR_TTL_RANGE.
 */
static enum proto_status parse_ttl(struct parser *p, uint32_t *out)
{
    uint64_t v = 0; /* saturates just above PROTO_MAX_TTL: cannot overflow */
    bool digits = true;

    if (peek(p) == '"')
        return PROTO_ERR_TTL_NOT_INT;
    while (p->pos < p->len) {
        char c = p->buf[p->pos];
        if (is_blank(c) || c == ',' || c == ')')
            break;
        if (c < '0' || c > '9')
            digits = false;
        else if (v <= PROTO_MAX_TTL)
            v = v * 10 + (uint64_t)(c - '0');
        p->pos++;
    }
    if (!digits)
        return PROTO_ERR_TTL_NOT_INT;
    if (v > PROTO_MAX_TTL)
        return PROTO_ERR_TTL_RANGE;
    *out = (uint32_t)v;
    return PROTO_OK;
}

/* Read argument number idx of def (cursor on its first byte) into req. */
static enum proto_status parse_arg(struct parser *p, const struct cmd_def *def,
                                   unsigned idx, const struct proto_limits *limits,
                                   struct proto_request *req)
{
    if (idx >= def->max_args) {
        req->detail = D_ARITY;
        return PROTO_ERR_SYNTAX;
    }
    enum arg_kind kind = def->args[idx];
    if (kind == ARG_TTL) {
        enum proto_status st = parse_ttl(p, &req->ttl);
        req->has_ttl = st == PROTO_OK;
        return st;
    }
    if (peek(p) != '"') {
        req->detail = D_NEED_STRING;
        return PROTO_ERR_SYNTAX;
    }

    const char *s;
    size_t n;
    enum proto_status st = parse_string(p, &s, &n, &req->detail);
    if (st != PROTO_OK)
        return st;
    switch (kind) {
    case ARG_KEY:
        if (n == 0 || n > PROTO_MAX_KEY_LEN)
            return PROTO_ERR_KEY_TOO_LONG;
        /* fall through */
    case ARG_PASSWORD:
        req->key = s;
        req->key_len = n;
        break;
    case ARG_VALUE:
        if (limits != NULL && n > limits->max_value_len)
            return PROTO_ERR_VALUE_TOO_LARGE;
        req->value = s;
        req->value_len = n;
        break;
    case ARG_TTL:
        break; /* handled above */
    }
    return PROTO_OK;
}

static enum proto_status syntax_error(struct proto_request *req, const char *detail)
{
    req->detail = detail;
    return PROTO_ERR_SYNTAX;
}

enum proto_status proto_parse_line(char *line, size_t len,
                                   const struct proto_limits *limits,
                                   struct proto_request *req)
{
    *req = (struct proto_request){.cmd = PROTO_CMD_NONE};

    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (line_is_blank(line, len))
        return PROTO_OK;

    struct parser p = {.buf = line, .len = len, .pos = 0};

    /* name blanks '(' */
    skip_blanks(&p);
    size_t name_start = p.pos;
    while (!at_end(&p) && is_alpha(p.buf[p.pos]))
        p.pos++;
    const struct cmd_def *def = cmd_lookup(line + name_start, p.pos - name_start);
    skip_blanks(&p);
    if (def == NULL || at_end(&p) || peek(&p) != '(')
        return PROTO_ERR_UNKNOWN_COMMAND;
    p.pos++;
    req->cmd = def->cmd;

    /* [arg (',' arg)*] ')' -- cursor is always past blanks at loop tops */
    unsigned nargs = 0;
    skip_blanks(&p);
    if (at_end(&p))
        return syntax_error(req, D_MISSING_PAREN);
    if (peek(&p) == ',')
        return syntax_error(req, D_ARG_BEFORE);
    if (peek(&p) != ')') {
        for (;;) {
            enum proto_status st = parse_arg(&p, def, nargs, limits, req);
            if (st != PROTO_OK)
                return st;
            nargs++;
            skip_blanks(&p);
            if (at_end(&p))
                return syntax_error(req, D_MISSING_PAREN);
            if (peek(&p) == ')')
                break;
            if (peek(&p) != ',')
                return syntax_error(req, D_NEED_SEP);
            p.pos++;
            skip_blanks(&p);
            if (at_end(&p) || peek(&p) == ',' || peek(&p) == ')')
                return syntax_error(req, D_ARG_AFTER);
        }
    }
    p.pos++; /* ')' */
    if (nargs < def->min_args)
        return syntax_error(req, D_ARITY);

    skip_blanks(&p);
    if (!at_end(&p))
        return syntax_error(req, D_TRAILING);
    return PROTO_OK;
}

/* ---- Error lines ------------------------------------------------------- */

/* Copy src into dst[*n..cap), as much as fits; returns false if cut short. */
static bool append(char *dst, size_t cap, size_t *n, const char *src)
{
    size_t len = strlen(src);
    size_t room = cap - *n;
    size_t take = len < room ? len : room;

    memcpy(dst + *n, src, take);
    *n += take;
    return take == len;
}

/*
 * An out-of-range status (PROTO_OK included) is a caller bug; it still gets
 * an "Error: " line so the client is never left without a reply. A line that
 * does not fit is cut to cap bytes, the last of them replaced by '\n'.
 */
size_t proto_error_line(char *dst, size_t cap, enum proto_status status,
                        const char *detail)
{
    const char *head;
    const char *tail = NULL;

    switch (status) {
    case PROTO_ERR_UNKNOWN_COMMAND: head = "Error: Unrecognized command"; break;
    case PROTO_ERR_SYNTAX:
        head = "Error: Syntax error: ";
        tail = detail != NULL ? detail : "malformed request";
        break;
    case PROTO_ERR_TTL_NOT_INT: head = "Error: TTL is not an integer"; break;
    case PROTO_ERR_TTL_RANGE: head = "Error: TTL out of range (0..315360000)"; break;
    case PROTO_ERR_KEY_TOO_LONG: head = "Error: Key too long"; break;
    case PROTO_ERR_VALUE_TOO_LARGE: head = "Error: Value too large"; break;
    case PROTO_OK:
    default: head = "Error: Internal error"; break;
    }

    if (cap == 0)
        return 0;
    size_t n = 0;
    bool whole = append(dst, cap, &n, head);
    if (whole && tail != NULL)
        whole = append(dst, cap, &n, tail);
    if (whole)
        whole = append(dst, cap, &n, "\n");
    if (!whole)
        dst[cap - 1] = '\n'; /* n == cap here */
    return n;
}

/* ---- Reply value encoding ---------------------------------------------- */

/* Encoded width of each byte: 1 raw, 2 for \\ \r \n \t, 4 for \xHH. */
static const uint8_t enc_width[256] = {
    4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 4, 4, 2, 4, 4, /* 0x00 \t \n \r */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0x10 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, /* 0x50 '\\' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, /* 0x70 DEL */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x80-0xff raw */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static const char ERROR_PREFIX[] = "Error: ";
#define ERROR_PREFIX_LEN (sizeof ERROR_PREFIX - 1)

static bool has_error_prefix(const char *v, size_t len)
{
    return len >= ERROR_PREFIX_LEN && memcmp(v, ERROR_PREFIX, ERROR_PREFIX_LEN) == 0;
}

/*
 * Does any byte of the 8 in x need escaping (< 0x20, 0x7f or '\\')? The
 * classic "has less than" / "has zero byte" word tricks: exact for the
 * question "any byte?", so a word that says no can be skipped whole.
 */
static inline bool word_needs_escape(uint64_t x)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t highs = UINT64_C(0x8080808080808080);
    uint64_t below_space = (x - ones * 0x20) & ~x;
    uint64_t del = x ^ (ones * 0x7f);
    uint64_t backslash = x ^ (ones * 0x5c);
    del = (del - ones) & ~del;
    backslash = (backslash - ones) & ~backslash;
    return ((below_space | del | backslash) & highs) != 0;
}

/* Length of the run of bytes from v[i] on that go raw: 8 bytes a step
 * while no byte of the word needs escaping, then byte by byte. */
static size_t raw_run(const unsigned char *v, size_t i, size_t len)
{
    size_t j = i;
    while (len - j >= 8) {
        uint64_t x;
        memcpy(&x, v + j, 8);
        if (word_needs_escape(x)) break;
        j += 8;
    }
    while (j < len && enc_width[v[j]] == 1)
        j++;
    return j - i;
}

size_t proto_value_encoded_len(const char *value, size_t len)
{
    const unsigned char *v = (const unsigned char *)value;
    size_t n = len;

    if (has_error_prefix(value, len))
        n += 3; /* 'E' -> \x45 */
    for (size_t i = raw_run(v, 0, len); i < len; i++)
        n += enc_width[v[i]] - 1u;
    return n;
}

/* Write the escape for byte c (enc_width[c] > 1) at dst; returns its size. */
static size_t put_escape(char *dst, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";

    dst[0] = '\\';
    switch (c) {
    case '\\': dst[1] = '\\'; return 2;
    case '\r': dst[1] = 'r'; return 2;
    case '\n': dst[1] = 'n'; return 2;
    case '\t': dst[1] = 't'; return 2;
    default:
        dst[1] = 'x';
        dst[2] = hex[c >> 4];
        dst[3] = hex[c & 0xf];
        return 4;
    }
}

size_t proto_value_encode(char *dst, const char *value, size_t len)
{
    const unsigned char *v = (const unsigned char *)value;
    size_t i = 0, w = 0;

    if (has_error_prefix(value, len)) {
        memcpy(dst, "\\x45", 4); /* 'E' */
        w = 4;
        i = 1;
    }
    while (i < len) {
        size_t run = raw_run(v, i, len);
        memcpy(dst + w, value + i, run);
        w += run;
        i += run;
        if (i < len)
            w += put_escape(dst + w, v[i++]);
    }
    return w;
}

/*
 * Accepts the escapes the parser accepts (\\ \" \n \r \t \0 \xHH, hex in
 * either case); any other byte is taken raw. On invalid input buf may be
 * partly rewritten.
 */
size_t proto_value_decode(char *buf, size_t len)
{
    size_t r = 0, w = 0;

    while (r < len) {
        if (buf[r] != '\\') {
            buf[w++] = buf[r++];
            continue;
        }
        if (r + 1 >= len)
            return (size_t)-1;
        size_t used;
        int b = escape_byte(buf + r + 1, len - (r + 1), &used);
        if (b < 0)
            return (size_t)-1;
        buf[w++] = (char)b;
        r += 1 + used;
    }
    return w;
}
