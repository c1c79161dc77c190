/*
 * wire_check.c - the C codec (src/repl_codec.c) as a filter, so that
 * tests/e2e/test_wire_format.py can hold the Python codec (vitamin_wire.py)
 * against it: same bytes out of both encoders, same verdict from both
 * decoders. Built by that test against build/libvitamin.a; not part of the
 * server.
 *
 *   wire_check golden   print, one hex line each, the batches of
 *                       docs/replication.md's worked examples 4 and 5,
 *                       built with rc_begin/rc_append (and rc_sum_put,
 *                       rc_hash_put): DIGESTS, RANGES, ROOT, SUMMARY, WANTS
 *   wire_check decode   for each hex line on stdin, print the status name
 *                       rc_decode() gives it; for "ok", then the header and
 *                       every record, space-separated (ids, keys and values
 *                       in hex, "-" when empty)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_codec.h"

static void put_hex(const char *p, size_t n)
{
    if (n == 0) fputs("-", stdout);
    for (size_t i = 0; i < n; i++) printf("%02x", (unsigned char)p[i]);
}

static void print_buf(const struct rc_buf *b)
{
    put_hex(b->data, b->len);
    putchar('\n');
}

static struct rc_record node(char key[RC_NODE_KEY_LEN], unsigned level, uint32_t index,
                             const char *value, size_t value_len)
{
    key[0] = (char)level;
    for (int i = 0; i < 4; i++) key[1 + i] = (char)(index >> (8 * i));
    struct rc_record r = {.op = RC_OP_NODE, .key = key, .key_len = RC_NODE_KEY_LEN,
                          .value = value, .value_len = value_len};
    return r;
}

static int golden(void)
{
    struct rc_buf b = {0};
    char key[RC_NODE_KEY_LEN], key2[RC_NODE_KEY_LEN];

    /* n1 answers n2's incremental request (session 0x010203, n1's last
     * WRITES batch 41): the root's 16 children, child k = k * 0x11..11 */
    unsigned char children[16 * 8];
    for (unsigned k = 0; k < 16; k++)
        for (unsigned i = 0; i < 8; i++) children[k * 8 + i] = (unsigned char)(k * 0x11);
    struct rc_header h = {.kind = RC_KIND_DIGESTS, .origin = "n1", .origin_len = 2,
                          .incarnation = 0x0102030405060708ull, .seq = 1, .aux = 0x010203,
                          .base = 41, .target = "n2", .target_len = 2};
    struct rc_record r = node(key, 0, 0, (const char *)children, sizeof children);
    if (rc_begin(&b, &h) || rc_append(&b, &r)) return 1;
    print_buf(&b);

    /* n2 asks n1 for the children of level-1 nodes 3 and 12 */
    h = (struct rc_header){.kind = RC_KIND_RANGES, .origin = "n2", .origin_len = 2,
                           .incarnation = 0x1122334455667788ull, .aux = 0x010203,
                           .target = "n1", .target_len = 2};
    struct rc_record r1 = node(key, 1, 3, NULL, 0), r2 = node(key2, 1, 12, NULL, 0);
    if (rc_begin(&b, &h) || rc_append(&b, &r1) || rc_append(&b, &r2)) return 1;
    print_buf(&b);

    /* n1, idle, publishes its root digest 0x0123456789abcdef */
    const unsigned char root[8] = {0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01};
    h = (struct rc_header){.kind = RC_KIND_ROOT, .origin = "n1", .origin_len = 2,
                           .incarnation = 0x0102030405060708ull, .aux = 1};
    r = node(key, 0, 0, (const char *)root, sizeof root);
    if (rc_begin(&b, &h) || rc_append(&b, &r)) return 1;
    print_buf(&b);

    /* n2 sends n1 its key summaries of "user:1" and "k", the last ones */
    const uint64_t t0 = 1700000000000ull << 16, h_user1 = 0x3b577afd7fed9501ull,
                   h_k = 0xa921e3704fda881dull;
    const uint32_t tag = 0x0a0b0c0d;
    char sums[2 * RC_SUM_SIZE], hash[RC_HASH_SIZE];
    struct rc_sum s1 = {h_user1, t0 | 1, tag, t0 | 1, tag}, s2 = {h_k, t0 | 2, tag, t0 | 2, tag};
    rc_sum_put(sums, &s1);
    rc_sum_put(sums + RC_SUM_SIZE, &s2);
    h = (struct rc_header){.kind = RC_KIND_SUMMARY, .origin = "n2", .origin_len = 2,
                           .incarnation = 0x1122334455667788ull, .seq = 1, .aux = 0x010203,
                           .base = 1, .target = "n1", .target_len = 2};
    r = (struct rc_record){.op = RC_OP_SUMS, .value = sums, .value_len = sizeof sums};
    if (rc_begin(&b, &h) || rc_append(&b, &r)) return 1;
    print_buf(&b);

    /* n1 asks n2 back for "user:1" (message #5 of its answer) */
    rc_hash_put(hash, h_user1);
    h = (struct rc_header){.kind = RC_KIND_WANTS, .origin = "n1", .origin_len = 2,
                           .incarnation = 0x0102030405060708ull, .seq = 5, .aux = 0x010203,
                           .base = 41, .target = "n2", .target_len = 2};
    r = (struct rc_record){.op = RC_OP_HASHES, .value = hash, .value_len = sizeof hash};
    if (rc_begin(&b, &h) || rc_append(&b, &r)) return 1;
    print_buf(&b);
    rc_buf_free(&b);
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int decode(void)
{
    size_t cap = 1 << 16;
    char *line = malloc(cap);
    if (!line) return 1;
    for (;;) {
        size_t n = 0;
        int c;
        while ((c = getchar()) != EOF && c != '\n') {
            if (n + 1 >= cap) {
                char *nl = realloc(line, cap *= 2);
                if (!nl) return 1;
                line = nl;
            }
            line[n++] = (char)c;
        }
        if (c == EOF && n == 0) break;
        /* unhex in place; an exact-size heap copy, so ASan sees overreads */
        size_t len = 0;
        for (size_t i = 0; i + 1 < n; i += 2) {
            int hi = hexval(line[i]), lo = hexval(line[i + 1]);
            if (hi < 0 || lo < 0) return 2;
            line[len++] = (char)(hi << 4 | lo);
        }
        char *body = malloc(len ? len : 1);
        if (!body) return 1;
        memcpy(body, line, len);
        struct rc_header h;
        struct rc_reader rd;
        enum rc_status st = rc_decode(body, len, &h, &rd);
        fputs(rc_status_name(st), stdout);
        if (st == RC_OK) {
            printf(" %u %u ", h.version, (unsigned)h.kind);
            put_hex(h.origin, h.origin_len);
            printf(" %llu %llu %llu %llu %llu ", (unsigned long long)h.incarnation,
                   (unsigned long long)h.seq, (unsigned long long)h.aux,
                   (unsigned long long)h.base, (unsigned long long)h.total);
            put_hex(h.target, h.target_len);
            printf(" %u", h.count);
            struct rc_record r;
            while (rc_next(&rd, &r)) {
                printf(" %u ", (unsigned)r.op);
                put_hex(r.key, r.key_len);
                putchar(' ');
                put_hex(r.value, r.value_len);
                printf(" %u %lld %llu %u %llu %u", r.client_flags, (long long)r.expire_ms,
                       (unsigned long long)r.version, r.origin_tag,
                       (unsigned long long)r.exp_version, r.exp_origin_tag);
            }
        }
        putchar('\n');
        free(body);
        if (c == EOF) break;
    }
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "golden") == 0) return golden();
    if (argc == 2 && strcmp(argv[1], "decode") == 0) return decode();
    fprintf(stderr, "usage: wire_check golden | decode < hex lines\n");
    return 2;
}
