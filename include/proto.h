/*
 * proto.h - Vitamin text protocol v1: request parser and reply encoder.
 *
 * Owns: the grammar of one request line and the byte encoding of reply
 * values. Pure functions over caller-provided bytes: no I/O, no allocation,
 * no global state, so they can be unit-tested with every split point and
 * fuzzed.
 *
 * Framing (finding the '\n') is the connection's job; the parser is handed
 * one complete line without its '\n'. A trailing '\r' is dropped by the
 * parser. Strings are unescaped IN PLACE: an escape sequence is never shorter
 * than the byte it stands for, so the unescaped bytes always fit where the
 * escaped ones were; the line must therefore be writable, and key/value in
 * the parsed request point into it.
 *
 * Grammar (blanks = ' ' and '\t', allowed around every token):
 *   line    := blanks name blanks '(' blanks [arg (blanks ',' blanks arg)*] blanks ')' blanks
 *   name    := [A-Za-z]+                  (matched case-insensitively)
 *   arg     := string | uint
 *   string  := '"' (any byte but '"' and '\\' | escape)* '"'
 *   escape  := '\\' ('\\' | '"' | 'n' | 'r' | 't' | '0' | 'x' hex hex)
 *   uint    := [0-9]+
 */
#ifndef VITAMIN_PROTO_H
#define VITAMIN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAX_KEY_LEN 1024u       /* bytes, after unescaping */
#define PROTO_MAX_TTL     315360000u  /* seconds (10 years) */

enum proto_cmd {
    PROTO_CMD_NONE = 0, /* blank line: not a request, gets no reply */
    PROTO_CMD_SET,      /* set("k","v"[,ttl]) */
    PROTO_CMD_GET,      /* get("k") */
    PROTO_CMD_DEL,      /* del("k") */
    PROTO_CMD_TTL,      /* ttl("k") */
    PROTO_CMD_EXPIRE,   /* expire("k",ttl) */
    PROTO_CMD_PING,     /* ping() */
    PROTO_CMD_STATS,    /* stats() */
    PROTO_CMD_QUIT,     /* quit() */
    PROTO_CMD_AUTH,     /* auth("password") */
};

/* Result of proto_parse_line(). Every value but PROTO_OK maps to exactly one
 * "Error: ..." reply line through proto_error_line(). */
enum proto_status {
    PROTO_OK = 0,
    PROTO_ERR_UNKNOWN_COMMAND, /* Error: Unrecognized command */
    PROTO_ERR_SYNTAX,          /* Error: Syntax error: <detail> */
    PROTO_ERR_TTL_NOT_INT,     /* Error: TTL is not an integer */
    PROTO_ERR_TTL_RANGE,       /* Error: TTL out of range (0..315360000) */
    PROTO_ERR_KEY_TOO_LONG,    /* Error: Key too long (also the empty key) */
    PROTO_ERR_VALUE_TOO_LARGE, /* Error: Value too large */
};

struct proto_limits {
    size_t max_value_len; /* bytes after unescaping (--max_value_size) */
};

/* One parsed request. Strings point into the parsed line (unescaped). */
struct proto_request {
    enum proto_cmd cmd;
    const char *key;    /* first string argument (key, or password for auth) */
    size_t key_len;
    const char *value;  /* set: second string argument */
    size_t value_len;
    uint32_t ttl;       /* seconds; valid when has_ttl */
    bool has_ttl;       /* set with 3 args, expire */
    const char *detail; /* PROTO_ERR_SYNTAX: static text naming the problem */
};

/*
 * Parse one request line (without '\n'; a trailing '\r' is ignored).
 * Unescapes string arguments in place inside line[0..len).
 * Returns PROTO_OK with req filled (req->cmd == PROTO_CMD_NONE for a blank
 * line), or an error status; on PROTO_ERR_SYNTAX req->detail is set.
 */
enum proto_status proto_parse_line(char *line, size_t len,
                                   const struct proto_limits *limits,
                                   struct proto_request *req);

/*
 * Write the full error line for status (including the trailing '\n') into
 * dst, at most cap bytes. Returns the length written. detail is used for
 * PROTO_ERR_SYNTAX (may be NULL). cap >= 128 is always enough.
 */
size_t proto_error_line(char *dst, size_t cap, enum proto_status status,
                        const char *detail);

/*
 * Reply encoding of a value: bytes < 0x20, 0x7f and '\\' are escaped
 * (\\ \r \n \t \xHH, lowercase hex); everything else goes raw; a value that
 * starts with "Error: " has its first byte sent as \x45.
 * proto_value_encoded_len() returns the encoded length; it equals len
 * exactly when the value can be sent as it is.
 */
size_t proto_value_encoded_len(const char *value, size_t len);

/* Encode value into dst (which holds proto_value_encoded_len() bytes).
 * Returns the number of bytes written. No '\n' is appended. */
size_t proto_value_encode(char *dst, const char *value, size_t len);

/*
 * Decode an encoded reply value (the inverse of proto_value_encode, used by
 * tests and tools): in place, returns the decoded length, or (size_t)-1 if
 * the text is not a valid encoding.
 */
size_t proto_value_decode(char *buf, size_t len);

#endif
