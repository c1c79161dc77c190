/*
 * mc_proto.h - memcached text protocol (classic and meta): request parser.
 *
 * Owns: the grammar of one memcached request (its line and, for storage
 * commands, its data block) and the exact error line memcached answers to
 * each malformed one. Pure functions over caller-provided bytes: no I/O, no
 * allocation, no global state; the input is never written. The reply side
 * is mc_reply.h.
 *
 * The caller hands mc_parse() the unparsed bytes of a connection, which may
 * hold a partial request, several requests or garbage, and gets back:
 *
 *   MC_NEED_MORE  nothing decided; call again once the buffer holds at least
 *                 req->need bytes (exact for a data block, len + 1 for a
 *                 line). *consumed = 0.
 *   MC_OK         one request in *req; its *consumed bytes (line and data
 *                 block) are done. Pointers in *req point into buf (or into
 *                 req->key_buf for a base64 key) and stay valid while those
 *                 bytes do.
 *   MC_ERROR      send req->err_line if it is not NULL; then, if req->unlink,
 *                 delete req->key as memcached does; drop *consumed bytes and
 *                 then the next req->swallow bytes as they arrive, without
 *                 parsing them (a refused data block); if req->close, close
 *                 the connection after the line is sent.
 *
 *       buf: |set k 0 0 5\r\n|hello\r\n|get k\r\n|ge
 *            '---- consumed (MC_OK) ----'  next call starts here
 *
 * On MC_ERROR, cmd, key and noreply are set as far as the parser got (for
 * counters and for unlink). The serve layer is then one short loop:
 *
 *     while ((st = mc_parse(p, n, &lim, &req, &used)) != MC_NEED_MORE) {
 *         if (st == MC_OK)
 *             execute(&req);        // switch (req.cmd), reply with mc_reply.h
 *         else if (req.err_line)    // unless noreply silenced it
 *             reply_bytes(q, req.err_line, req.err_len);
 *         if (st == MC_ERROR && req.unlink) delete req.key;
 *         if (st == MC_ERROR && req.close) { close after the write; break; }
 *         p += used; n -= used;  // n is 0 when a block is being swallowed:
 *         swallow = st == MC_ERROR ? req.swallow : 0; // drop it as it arrives
 *     }
 *
 * execute() skips its reply when req.noreply is set (classic "noreply"), or
 * when meta quiet mode hides it (mc_meta_quiet_skips()). Times are passed as
 * the client wrote them (exptime: 0 never, < 0 already expired, up to 30
 * days relative, else absolute unix time).
 *
 * What the parser decides exactly as memcached 1.6 (checked against the real
 * memcached 1.6.18 binary, see tests/unit/test_mc_proto.c):
 *  - Lines end in '\n'; one '\r' before it is dropped when the line has
 *    another byte. Tokens are separated by ' ' only (a tab is part of a
 *    token). Command names are lowercase and case-sensitive. Unknown
 *    command, or the wrong number of tokens: "ERROR".
 *  - Numbers are read like memcached's safe_strto*(): optional leading
 *    whitespace, an optional sign, decimal digits, then the token must end
 *    or go on with a whitespace byte (whatever follows it is ignored:
 *    "5\tx" is 5). A '-' is accepted only before a zero for unsigned values.
 *  - Classic "noreply" is the last token; it also silences the CLIENT_ERROR
 *    and SERVER_ERROR lines of that request (err_line is then NULL), but not
 *    "ERROR" for a wrong token count. Meta commands never silence errors.
 *  - Storage: key > 250 bytes or a bad number -> "CLIENT_ERROR bad command
 *    line format" and the data block is NOT swallowed (memcached parses it
 *    as the next command line). A data block over lim->max_value_len ->
 *    "SERVER_ERROR object too large for cache" and bytes + 2 are swallowed,
 *    with unlink set for set (not add/replace/append/prepend/cas) and for ms
 *    in every mode, as memcached unlinks the old item. If the 2 bytes after
 *    the data are not "\r\n": "CLIENT_ERROR bad data chunk", exactly
 *    bytes + 2 are consumed and parsing resumes right after them (so the
 *    rest of a too-long data line is read as a command, as memcached does).
 *  - Multiget: every key is checked before anything is executed; one bad
 *    key fails the whole request with "CLIENT_ERROR bad command line format"
 *    (memcached drops the partial VALUEs too).
 *  - Long lines: a buffer of more than MC_LINE_MAX bytes without '\n' is
 *    closed silently unless it starts (after at most 100 spaces) with
 *    "get " or "gets "; a line whose '\n' is present is served whatever its
 *    length up to MC_READ_MAX bytes with its '\n' (memcached serves it when
 *    it arrives in one read, and its read buffer holds no more). So, as in
 *    memcached, how a long line arrives decides between serving and closing.
 *    get/gets lines may be longer, up to lim->max_get_line (our limit;
 *    memcached has none): past it, "CLIENT_ERROR line too long" and close.
 *  - Meta flags: one table for all meta commands, as memcached's: a known
 *    flag that a command does not use is accepted and ignored. Errors, in
 *    memcached's order and words: "CLIENT_ERROR duplicate flag" (also for a
 *    flag byte >= 0x7f), "CLIENT_ERROR invalid flag", then the last bad
 *    numeric token's message; md and ma say "CLIENT_ERROR invalid or
 *    duplicate flag" for all of these. More than 17 flags (16 for ms):
 *    "CLIENT_ERROR options flags are too long" (mg) / "... flags too long".
 *    An O token over 32 bytes (with its 'O'): "CLIENT_ERROR opaque token too
 *    long". A flag token is its first byte; a flag without argument ignores
 *    the rest of its token ("vx" is v).
 *  - ms errors found after the datalen token swallow the data block, except
 *    a bad key and too many flags, which memcached reports before.
 *  - A request starting with byte 0x80 (binary protocol magic): close.
 *
 * Where we deliberately differ from memcached 1.6.18, and why:
 *  - Keys with control bytes (< 0x20, 0x7f) are refused with "CLIENT_ERROR
 *    bad command line format" (memcached stores them); protocol.txt and the
 *    SPEC forbid them, and they would corrupt our replies. A NUL byte is an
 *    ordinary (invalid) byte for us; memcached ends the line there.
 *  - Numbers that memcached silently truncates are refused: client flags
 *    over 2^32 - 1 and verbosity levels over 2^32 - 1 (memcached keeps the
 *    low 32 bits), data lengths outside 0..2^31 - 3 (memcached keeps the low
 *    32 bits of a 64-bit number, so "4294967297" reads 1 byte).
 *    exptime/T/N/R are 64-bit signed and are NOT truncated (memcached wraps
 *    2147483648 to a negative, already expired, time): the serve layer gets
 *    the number the client wrote.
 *  - Base64 keys (b) use strict standard base64 (padding required, '='
 *    only at the end); memcached's decoder also accepts some malformed text
 *    such as "YW=j". Both refuse "YQ" and "====".
 *  - Flags and modes of newer memcached that 1.6.18 lacks are accepted:
 *    E (new CAS) on every meta command, x on md, lowercase ms modes
 *    (e a p r s), ma modes i and d. ms with s returns the size.
 *  - An O token that is too long is refused before anything is executed
 *    (memcached's ma applies the delta first, then reports it).
 *  - Byte 0x80 closes the connection anywhere (memcached speaks binary
 *    protocol when it is the first byte of a connection, and answers ERROR
 *    later; we have no binary protocol). Unimplemented memcached commands
 *    (me, bget, shutdown, slabs, lru, lru_crawler, watch, cache_memlimit,
 *    extstore) answer "ERROR".
 *  - The value limit is on the data length alone (memcached's depends on
 *    the item header, key and slab sizes too).
 */
#ifndef VITAMIN_MC_PROTO_H
#define VITAMIN_MC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_KEY_MAX        250u               /* bytes (memcached's KEY_MAX_LENGTH) */
#define MC_BINARY_KEY_MAX ((MC_KEY_MAX / 4) * 3) /* bytes of a decoded base64 key */
#define MC_LINE_MAX       2048u              /* bytes buffered without '\n' before a close */
#define MC_READ_MAX       16384u             /* longest non-get line, '\n' included */
#define MC_OPAQUE_MAX     31u                /* bytes of an O token after its 'O' */
#define MC_META_FLAGS_MAX 17u                /* flags of mg/md/ma (ms: one less) */
#define MC_DATA_MAX       2147483645u        /* largest data length memcached accepts */

#define MC_DEFAULT_MAX_VALUE    (1024u * 1024u)
#define MC_DEFAULT_MAX_GET_LINE (1024u * 1024u)

enum mc_status { MC_NEED_MORE, MC_OK, MC_ERROR };

enum mc_cmd {
    MC_CMD_NONE = 0,
    /* classic storage: op, key, client_flags, exptime, data, [cas], noreply */
    MC_CMD_SET, MC_CMD_ADD, MC_CMD_REPLACE, MC_CMD_APPEND, MC_CMD_PREPEND,
    MC_CMD_CAS,
    /* classic retrieval: keys via mc_args_next(); gat/gats: exptime */
    MC_CMD_GET, MC_CMD_GETS, MC_CMD_GAT, MC_CMD_GATS,
    MC_CMD_DELETE,    /* key, noreply ("delete <key> 0" accepted) */
    MC_CMD_INCR,      /* op, key, delta, noreply */
    MC_CMD_DECR,      /* op, key, delta, noreply */
    MC_CMD_TOUCH,     /* key, exptime, noreply */
    MC_CMD_FLUSH_ALL, /* exptime = delay (0: now), noreply */
    MC_CMD_VERSION,
    MC_CMD_VERBOSITY, /* level, noreply */
    MC_CMD_STATS,     /* arguments via mc_args_next() (none: general stats) */
    MC_CMD_QUIT,      /* close, no reply */
    /* meta: key, mflags and the values of the flags present */
    MC_CMD_MN, MC_CMD_MG, MC_CMD_MS, MC_CMD_MD, MC_CMD_MA,
};

/* The command's word on the wire ("get", "mg"...); NULL for MC_CMD_NONE. */
const char *mc_cmd_name(enum mc_cmd cmd);

/* What a storage or arithmetic request does, classic or meta alike. */
enum mc_op {
    MC_OP_NONE = 0,
    MC_OP_SET,     /* store */
    MC_OP_ADD,     /* store only if absent */
    MC_OP_REPLACE, /* store only if present */
    MC_OP_APPEND,  /* add data after the existing value */
    MC_OP_PREPEND, /* add data before the existing value */
    MC_OP_CAS,     /* store only if present with cas == req->cas */
    MC_OP_INCR,    /* add delta (wraps at 2^64) */
    MC_OP_DECR,    /* subtract delta (stops at 0) */
};

/* Each error maps to one line (mc_error_line()). */
enum mc_error {
    MC_ERR_NONE = 0,
    MC_ERR_UNKNOWN,        /* ERROR */
    MC_ERR_FORMAT,         /* CLIENT_ERROR bad command line format */
    MC_ERR_DELETE_USAGE,   /* CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply] */
    MC_ERR_EXPTIME,        /* CLIENT_ERROR invalid exptime argument */
    MC_ERR_DELTA_ARG,      /* CLIENT_ERROR invalid numeric delta argument */
    MC_ERR_BAD_CHUNK,      /* CLIENT_ERROR bad data chunk */
    MC_ERR_TOO_LARGE,      /* SERVER_ERROR object too large for cache */
    MC_ERR_LINE_TOO_LONG,  /* CLIENT_ERROR line too long (ours), then close */
    MC_ERR_CLOSE,          /* no line: close (junk without '\n', binary magic) */
    MC_ERR_INVALID_FLAG,   /* CLIENT_ERROR invalid flag */
    MC_ERR_DUP_FLAG,       /* CLIENT_ERROR duplicate flag */
    MC_ERR_BAD_FLAG,       /* CLIENT_ERROR invalid or duplicate flag (md, ma) */
    MC_ERR_BAD_TOKEN,      /* CLIENT_ERROR bad token in command line format */
    MC_ERR_DECODE_KEY,     /* CLIENT_ERROR error decoding key */
    MC_ERR_M_LENGTH,       /* CLIENT_ERROR incorrect length for M token */
    MC_ERR_MS_MODE,        /* CLIENT_ERROR invalid mode for ms M token */
    MC_ERR_MA_MODE,        /* CLIENT_ERROR invalid mode for ma M token */
    MC_ERR_INITIAL,        /* CLIENT_ERROR invalid numeric initial value */
    MC_ERR_DELTA_VALUE,    /* CLIENT_ERROR invalid numeric delta value */
    MC_ERR_OPAQUE_LONG,    /* CLIENT_ERROR opaque token too long */
    MC_ERR_MG_FLAGS_LONG,  /* CLIENT_ERROR options flags are too long */
    MC_ERR_FLAGS_LONG,     /* CLIENT_ERROR options flags too long */
    /* mc_parse_auth() only */
    MC_ERR_UNAUTH,         /* CLIENT_ERROR unauthenticated */
    MC_ERR_AUTH_END,       /* CLIENT_ERROR bad command line termination */
    MC_ERR_AUTH_FORMAT,    /* CLIENT_ERROR bad authentication token format */
};
#define MC_ERR_COUNT (MC_ERR_AUTH_FORMAT + 1)

/* Bit of meta flag letter c ('A'..'Z', 'a'..'z') in mc_request.mflags. */
#define MC_MF(c) \
    ((c) >= 'a' ? UINT64_C(1) << (32 + (c) - 'a') : UINT64_C(1) << ((c) - 'A'))

/*
 * Meta flags (all accepted by every meta command; the ones each command
 * acts on, as protocol.txt):
 *   mg: b c f h k l O q s t v  E(new cas) N(vivify ttl) R(recache ttl) T(ttl)
 *   ms: b c k O q s  C(cas) E F(client flags) I T M(mode: E A P R S)
 *   md: b k O q x  C E I T
 *   ma: b c k O q t v  C E N J(initial) D(delta) T M(mode: I + i D - d)
 * Also accepted and ignored: u P L.
 */
struct mc_limits {
    size_t max_value_len; /* larger data: SERVER_ERROR object too large for cache */
    size_t max_get_line;  /* get/gets line bytes, '\n' included; 0: default;
                             raised to MC_READ_MAX, capped at 4 GiB - 1 */
};

/* One parsed request; which fields are set depends on cmd (see mc_cmd). */
struct mc_request {
    enum mc_cmd cmd;
    enum mc_op op;           /* storage / arithmetic commands, classic or meta */
    bool noreply;            /* classic noreply, or meta q */
    bool has_cas;            /* compare cas: classic cas; meta C (ignored by add) */
    uint8_t key_len;         /* 1..MC_KEY_MAX */
    uint8_t opaque_len;      /* O: bytes after the 'O' */
    uint8_t nflags;          /* meta: letters in order[] */
    char order[MC_META_FLAGS_MAX]; /* meta: flag letters in request order */
    uint64_t mflags;         /* meta: MC_MF() bits of the flags present */
    const char *key;         /* into buf, or key_buf when base64 (flag b) */
    const char *data;        /* storage: the data block (into buf) */
    uint32_t data_len;       /* storage: bytes of data ("\r\n" excluded) */
    uint32_t client_flags;   /* storage: flags; ms: F (0 when absent) */
    uint32_t args_len;       /* bytes at args */
    const char *args;        /* get/gets/gat/gats: the keys; stats: arguments */
    const char *opaque;      /* O: the token after its 'O' (into buf) */
    int64_t exptime;         /* storage/touch/gat: exptime; flush_all: delay;
                                meta: T (new TTL) */
    int64_t vivify_ttl;      /* meta N */
    int64_t recache_ttl;     /* meta R */
    uint64_t cas;            /* classic cas unique; meta C */
    uint64_t new_cas;        /* meta E */
    uint64_t delta;          /* incr/decr; ma D (default 1); verbosity: level */
    uint64_t initial;        /* ma J (default 0) */
    /* MC_NEED_MORE */
    size_t need;             /* buffer length after which to call again */
    /* MC_ERROR */
    enum mc_error err;
    const char *err_line;    /* line to send ("\r\n" included), or NULL */
    uint8_t err_len;
    bool close;              /* close the connection (after err_line) */
    bool unlink;             /* delete key, as memcached does (too large set/ms) */
    size_t swallow;          /* bytes after *consumed to drop as they arrive */
    char key_buf[MC_BINARY_KEY_MAX]; /* decoded base64 key */
};

/*
 * Parse one request from buf[0..len). lim == NULL means
 * MC_DEFAULT_MAX_VALUE and MC_DEFAULT_MAX_GET_LINE. Returns MC_NEED_MORE,
 * MC_OK or MC_ERROR as described at the top; *consumed <= len always.
 */
enum mc_status mc_parse(const char *buf, size_t len, const struct mc_limits *lim,
                        struct mc_request *req, size_t *consumed);

/*
 * Before a connection has authenticated (--password), memcached -Y's
 * exchange takes the place of mc_parse(): the client must send
 *
 *     set <key> <flags> <exptime> <bytes>[ anything]\r\n<user> <password>\r\n
 *
 * (key, flags and exptime are not looked at, nor noreply). Returns
 * MC_NEED_MORE (req->need as mc_parse), MC_OK with req->cmd MC_CMD_SET and
 * req->args the data block, whose first two tokens (mc_args_next()) are the
 * user and the password (the serve layer answers STORED and switches to
 * mc_parse(), or MC_W_AUTH_FAILED), or MC_ERROR with, as memcached 1.6.18:
 *   "CLIENT_ERROR unauthenticated"                 any other line (only the
 *                                                  line is consumed)
 *   "CLIENT_ERROR bad command line termination"    no "\r\n" after the data
 *                                                  (bytes + 2 consumed)
 *   "CLIENT_ERROR bad authentication token format" fewer than two tokens
 *   close, no line                                 over MC_LINE_MAX bytes
 *                                                  without '\n'
 * Differences: <bytes> over lim->max_value_len is "unauthenticated" here
 * (memcached waits for them, and wraps near 2^32); a line with its '\n' is
 * read up to MC_READ_MAX bytes, as mc_parse().
 */
enum mc_status mc_parse_auth(const char *buf, size_t len, const struct mc_limits *lim,
                             struct mc_request *req, size_t *consumed);

/* The line of an error ("\r\n" included) and its length; NULL for
 * MC_ERR_NONE and MC_ERR_CLOSE (no line) or an unknown value. */
const char *mc_error_line(enum mc_error err, size_t *len);

/* Does the request carry meta flag c (a letter, as MC_MF())? */
static inline bool mc_has(const struct mc_request *req, char c)
{
    return (req->mflags & MC_MF(c)) != 0;
}

/*
 * Tokens of req->args (multiget keys, stats arguments): set *pos = 0, then
 * each call stores the next token and returns true, or returns false at the
 * end. Keys were validated by mc_parse().
 */
bool mc_args_next(const struct mc_request *req, size_t *pos, const char **tok,
                  size_t *tok_len);

/* Strict standard base64 decode of src into dst (at least src_len / 4 * 3
 * bytes). Returns the decoded length, or 0 if src is not valid base64 or
 * decodes to nothing. */
size_t mc_base64_decode(const char *src, size_t src_len, char *dst);

#endif
