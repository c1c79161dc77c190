/*
 * resp.h - Redis protocol (RESP2/RESP3) request parser.
 *
 * Owns: the grammar of one Redis request at the start of a byte buffer, and
 * the exact "-ERR Protocol error: ..." line for each way it can be wrong.
 * Pure: no I/O, no allocation, no global state. The caller owns the buffer
 * and the argv array; the parser owns only a small resumable state.
 *
 * Two request forms, told apart by the first byte (as Redis does):
 *
 *   '*'  multibulk:  *<count>\r\n  then count times  $<len>\r\n<len bytes>\r\n
 *   else inline:     one line up to '\n' (a '\r' before it is dropped), split
 *                    on blanks, with Redis's inline quoting:
 *                      "..."  escapes \n \r \t \b \a \xHH (two hex digits, either
 *                             case); '\' before any other byte is that byte;
 *                      '...'  only \' is an escape, everything else is raw;
 *                      a closing quote must be followed by a blank or the end
 *                      of the line, else "unbalanced quotes"; quotes may start
 *                      in the middle of a token (a"b c" is one token: ab c).
 *                    Blanks between tokens: ' ' \t \r \v \f. A token ends at
 *                    ' ' \t \r (not \v \f, exactly as Redis).
 *
 * Both forms may yield argc == 0 (an empty line, "*0\r\n", "*-1\r\n"): the
 * request is consumed and gets no reply.
 *
 * Calling convention (one call per attempt, buf always starts at the first
 * byte of the current request):
 *
 *     struct resp_parser p;                 resp_parser_init(&p, argv, cap);
 *     p.noauth = password set && !authenticated;   (re-set before each call)
 *     st = resp_parse(&p, buf, len, &limits);
 *       RESP_OK         p.argc args in p.argv[i].ptr/.len (inside buf), the
 *                       request took p.consumed bytes; the next call starts
 *                       at buf + p.consumed.
 *       RESP_NEED_MORE  read more, call again with the same first byte
 *                       (the bytes may have moved: only offsets are kept).
 *       RESP_ARGV_FULL  grow p.argv to at least resp_argv_want(&p) entries
 *                       (keeping the first p.argc), set p.argv_cap, call again.
 *       RESP_ERR_*      send resp_error_line(), then close the connection:
 *                       Redis closes after every protocol error, and so must
 *                       we (the stream position is lost). Requests before the
 *                       bad one in the same read are served and answered
 *                       first, as Redis does. The state is sticky.
 *
 * Cost: the state remembers how far the current request was parsed (the
 * offset, the count, the pending bulk length, how far a line was already
 * searched for its end), so a large array that arrives in many small reads
 * is parsed once in total: O(bytes), not O(bytes x reads). While a large
 * bulk is pending each call is O(1); resp_parser_want() tells how many bytes
 * the request needs, so the caller can size its buffer in one step. Inline
 * lines are split only once complete (at most RESP_INLINE_MAX bytes), plus
 * one more time after an RESP_ARGV_FULL.
 *
 * Writes to buf: none for multibulk requests. An inline token with quotes is
 * unescaped IN PLACE, inside its own bytes (every output byte consumes at
 * least one input byte, so the write cursor never passes the read cursor);
 * tokens without quotes are left untouched. This happens only once the line
 * is complete and known to be valid and to fit argv, so a RESP_NEED_MORE,
 * RESP_ARGV_FULL or error never leaves the buffer modified.
 *
 * Limits and error lines (verified byte for byte against redis-server 7.0.15;
 * every protocol error closes the connection after the reply):
 *
 *   status                          reply after "-ERR Protocol error: "
 *   RESP_ERR_MULTIBULK_LEN          invalid multibulk length
 *       count not a strict integer (num_parse_i64() in resp_reply.h: no '+',
 *       no leading zero, no "-0", no blanks) or count > limits->max_args.
 *       A count <= 0 is an empty request, as in Redis.
 *   RESP_ERR_UNAUTH_MULTIBULK_LEN   unauthenticated multibulk length
 *       p.noauth and count > 10 (checked after the line above).
 *   RESP_ERR_MBULK_COUNT_TOO_BIG    too big mbulk count string
 *       no '\r' within the first RESP_INLINE_MAX + 1 bytes of the request.
 *   RESP_ERR_EXPECTED_DOLLAR        expected '$', got 'X'
 *       an argument header line not starting with '$'. X is the raw byte,
 *       except '\r' and '\n' which Redis prints as ' '.
 *   RESP_ERR_BULK_LEN               invalid bulk length
 *       length not a strict integer, negative, or > limits->max_bulk_len
 *       (Redis's proto-max-bulk-len).
 *   RESP_ERR_UNAUTH_BULK_LEN        unauthenticated bulk length
 *       p.noauth and length > 16384 (checked after the line above).
 *   RESP_ERR_BULK_COUNT_TOO_BIG     too big bulk count string
 *       no '\r' within RESP_INLINE_MAX + 1 bytes of an argument header.
 *   RESP_ERR_INLINE_TOO_BIG         too big inline request
 *       more than RESP_INLINE_MAX bytes before the '\n' of an inline line.
 *   RESP_ERR_UNBALANCED_QUOTES      unbalanced quotes in request
 *
 *   A header line is complete when its '\r' is followed by one more byte;
 *   that byte is skipped unchecked, and so are the two bytes after a bulk's
 *   data (Redis does the same: "*1\r\n$4\r\nPINGxy" is a valid PING).
 *
 * Where this differs from redis-server 7.0 (on purpose):
 *  - max_args is the caller's (default RESP_MAX_ARGS_DEFAULT = 1024*1024, the
 *    Redis 6 limit); Redis 7.0 allows counts up to INT_MAX. Our argv grows
 *    only as arguments actually arrive, like Redis's.
 *  - Redis searches line ends with strchr() on a NUL-terminated buffer, so a
 *    NUL byte before the '\r'/'\n' makes it wait for more input forever (then
 *    "too big ..." after 64 KiB). We are binary-safe: NUL is an ordinary byte
 *    (in a header it makes the number invalid; in an inline token it is kept;
 *    "expected '$', got '\0'" prints the raw NUL).
 *  - The 64 KiB limits depend, in Redis, on how the bytes were split into
 *    reads (a 70000-byte inline line is served if it arrives in one read, and
 *    an over-long count line may be reported as "invalid multibulk length").
 *    Here the verdict depends only on the bytes: a line end beyond the limit
 *    is the "too big" error however the input was cut.
 *  - The inline argument count is not limited by max_args (Redis does not
 *    limit it either; the 64 KiB line bounds it to 32768).
 */
#ifndef VITAMIN_RESP_H
#define VITAMIN_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RESP_INLINE_MAX          (64u * 1024u)        /* Redis PROTO_INLINE_MAX_SIZE */
#define RESP_MAX_ARGS_DEFAULT    (1024u * 1024u)      /* multibulk count limit */
#define RESP_MAX_BULK_DEFAULT    (512u * 1024u * 1024u) /* Redis proto-max-bulk-len */
#define RESP_UNAUTH_MAX_ARGS     10u                  /* before AUTH */
#define RESP_UNAUTH_MAX_BULK     16384u               /* before AUTH */
#define RESP_ERROR_LINE_MAX      64u /* resp_error_line() never needs more */

enum resp_status {
    RESP_OK = 0,                   /* a whole request: p->argc, p->argv, p->consumed */
    RESP_NEED_MORE,                /* incomplete: call again with more bytes */
    RESP_ARGV_FULL,                /* grow p->argv to resp_argv_want(p), call again */
    RESP_ERR_MULTIBULK_LEN,        /* errors: reply resp_error_line(), then close */
    RESP_ERR_UNAUTH_MULTIBULK_LEN,
    RESP_ERR_MBULK_COUNT_TOO_BIG,
    RESP_ERR_EXPECTED_DOLLAR,
    RESP_ERR_BULK_LEN,
    RESP_ERR_UNAUTH_BULK_LEN,
    RESP_ERR_BULK_COUNT_TOO_BIG,
    RESP_ERR_INLINE_TOO_BIG,
    RESP_ERR_UNBALANCED_QUOTES,
};

struct resp_limits {
    size_t max_bulk_len; /* larger bulk: RESP_ERR_BULK_LEN (proto-max-bulk-len) */
    size_t max_args;     /* larger multibulk count: RESP_ERR_MULTIBULK_LEN; also
                            the most entries RESP_ARGV_FULL will ask for */
};

/* One argument. After RESP_OK, ptr points into the parsed buffer. While a
 * request is incomplete the parser keeps the argument's offset in the same
 * slot (the buffer may move between calls), hence the union: read ptr only
 * after RESP_OK. */
struct resp_arg {
    union {
        const char *ptr; /* RESP_OK: first byte of the argument */
        size_t off;      /* private, while incomplete: offset from the request start */
    };
    size_t len;          /* bytes */
};

/* Parser state. The public fields are the caller's to set (argv, argv_cap,
 * noauth) or to read after RESP_OK (argc, consumed); the rest is private. */
struct resp_parser {
    struct resp_arg *argv; /* caller-owned array of argv_cap entries */
    size_t argv_cap;
    bool noauth;           /* apply Redis's unauthenticated limits (10 args,
                              16 KiB bulks): set while the client must AUTH */
    size_t argc;           /* RESP_OK: arguments in argv */
    size_t consumed;       /* RESP_OK: bytes of the request, from buf */

    /* private: where the current request stands */
    uint8_t kind;          /* RESP_KIND_*: not started, inline, multibulk */
    uint8_t err;           /* sticky error status, 0 if none */
    unsigned char bad;     /* RESP_ERR_EXPECTED_DOLLAR: the byte found */
    bool in_bulk;          /* multibulk: a header was read, bulk_len is valid */
    size_t pos;            /* bytes of the request parsed and settled */
    size_t scan;           /* bytes from pos already searched for a line end */
    size_t nargs;          /* multibulk: the count from "*<count>" */
    size_t bulk_len;       /* in_bulk: length of the pending bulk */
    size_t want_argv;      /* RESP_ARGV_FULL: entries wanted */
};

/* Start a connection's parser (or restart it after an error). */
void resp_parser_init(struct resp_parser *p, struct resp_arg *argv, size_t argv_cap);

/* Forget the current partial request (argv and noauth are kept). */
void resp_parser_reset(struct resp_parser *p);

/*
 * Parse one request at buf[0..len). buf is written only to unescape quoted
 * inline tokens, inside the request's own line (see the top comment).
 * Returns RESP_OK, RESP_NEED_MORE, RESP_ARGV_FULL or a RESP_ERR_* status.
 */
enum resp_status resp_parse(struct resp_parser *p, char *buf, size_t len,
                            const struct resp_limits *limits);

/* After RESP_ARGV_FULL: the number of argv entries to grow to (more than
 * argv_cap, at most the request's argument count). */
size_t resp_argv_want(const struct resp_parser *p);

/* After RESP_NEED_MORE: the smallest buffer length (from the request start)
 * that lets the parser progress, or 0 if unknown (waiting for a line end). */
size_t resp_parser_want(const struct resp_parser *p);

/*
 * Write the reply for an error status: "-ERR Protocol error: ...\r\n" (p is
 * needed for RESP_ERR_EXPECTED_DOLLAR). At most cap bytes; a cut line keeps
 * its "\r\n" ending. Returns the length. cap >= RESP_ERROR_LINE_MAX always
 * suffices. A non-error status gets a generic protocol error line.
 */
size_t resp_error_line(char *dst, size_t cap, enum resp_status st,
                       const struct resp_parser *p);

/* Short name of a status for logs ("invalid bulk length", "need more"...). */
const char *resp_status_str(enum resp_status st);

#endif
