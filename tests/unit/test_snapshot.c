/*
 * test_snapshot.c - the snapshot file format (snap_codec.c) and warm
 * restart (snapshot.c).
 *
 * Format: a file encoded here parses back to the same records and
 * tombstone times; every prefix of a small file, every single-bit flip,
 * a foreign magic, another version, zero bytes, appended bytes and content
 * that is wrong under a right checksum are all refused whole.
 * Store: a store with live items (binary values, client flags, expiries,
 * expiry stamps of their own), delete and expiry tombstones and a flush
 * watermark is saved (in the foreground, and in the background on a libev
 * loop with its writer thread) and loaded into a fresh store register for
 * register; items expired meanwhile are dropped; a bad, empty or missing
 * file leaves the store empty; a failed save keeps the previous file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ev.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "hlc.h"
#include "log.h"
#include "record.h"
#include "repl_codec.h"
#include "snap_codec.h"
#include "snapshot.h"
#include "store.h"
#include "store_util.h"

#define NOW INT64_C(1700000000000)
#define TOMB_TTL 60000
#define BIG (1u << 30)
#define NODE "node-a"

static uint64_t ver(int64_t ms, unsigned logical)
{
    return (uint64_t)ms << HLC_LOGICAL_BITS | logical;
}

/* ---- files --------------------------------------------------------------- */

static char tmpdir[64];

static int setup_dir(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vitamin-test-snapshot-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* ---- a small file built with the encoder ---------------------------------- */

struct rec_spec {
    struct rc_record r;
    int64_t collect_ms;
};

static const struct rec_spec small_recs[] = {
    {{.op = RC_OP_FLUSH, .version = 77, .origin_tag = 5, .exp_version = 77, .exp_origin_tag = 5}, 0},
    {{.op = RC_OP_SET, .key = "k1", .key_len = 2, .value = "v\0x", .value_len = 3,
      .client_flags = 42, .expire_ms = NOW + 5000, .version = 100, .origin_tag = 1,
      .exp_version = 101, .exp_origin_tag = 2}, 0},
    {{.op = RC_OP_DEL, .key = "gone", .key_len = 4, .version = 102, .origin_tag = 3,
      .exp_version = 102, .exp_origin_tag = 3}, NOW + 60000},
    {{.op = RC_OP_EXPIRED, .key = "old", .key_len = 3, .expire_ms = NOW - 1,
      .version = 90, .origin_tag = 1, .exp_version = 91, .exp_origin_tag = 1}, NOW + 30000},
    {{.op = RC_OP_SET, .key = "k2", .key_len = 2, .value = "", .value_len = 0,
      .version = 103, .origin_tag = 1, .exp_version = 103, .exp_origin_tag = 1}, 0},
};
#define NSMALL (sizeof small_recs / sizeof small_recs[0])

/* Encode recs in chunks of per_chunk records. */
static struct snap_buf encode(const struct rec_spec *recs, size_t n, size_t per_chunk)
{
    struct snap_buf out = {0};
    struct snap_chunk c = {0};
    assert_int_equal(snap_encode_header(&out, NODE, strlen(NODE), NOW), 0);
    uint64_t seq = 0;
    for (size_t i = 0; i < n; i++) {
        if (snap_chunk_records(&c) == 0) assert_int_equal(snap_chunk_begin(&c, NODE, strlen(NODE), ++seq), 0);
        assert_int_equal(snap_chunk_add(&c, &recs[i].r, recs[i].collect_ms), 0);
        if (snap_chunk_records(&c) == per_chunk || i + 1 == n) {
            size_t before = out.len;
            assert_int_equal(snap_chunk_encode(&c, &out), 0);
            assert_int_equal(out.len - before, snap_chunk_size(&c));
            c.batch.len = 0;
        }
    }
    assert_int_equal(snap_encode_end(&out, n), 0);
    assert_int_equal(snap_encode_sum(&out, XXH3_64bits(out.data, out.len)), 0);
    snap_chunk_free(&c);
    return out;
}

/* Put a right checksum on bytes that may be wrong otherwise. */
static void reseal(char *data, size_t len)
{
    uint64_t h = XXH3_64bits(data, len - 8);
    for (int i = 0; i < 8; i++) data[len - 8 + i] = (char)(unsigned char)(h >> (8 * i));
}

static void test_codec_round_trip(void **state)
{
    for (size_t per = 1; per <= NSMALL; per++) {
        struct snap_buf b = encode(small_recs, NSMALL, per);
        struct snap_info info;
        assert_int_equal(snap_parse(b.data, b.len, &info), SNAP_OK);
        assert_int_equal(info.version, SNAP_VERSION);
        assert_int_equal(info.written_ms, NOW);
        assert_int_equal(info.node_id_len, strlen(NODE));
        assert_memory_equal(info.node_id, NODE, strlen(NODE));
        assert_int_equal(info.records, NSMALL);
        assert_int_equal(info.tombstones, 2);
        assert_int_equal(info.chunks, (NSMALL + per - 1) / per);
        assert_true(info.has_flush);

        struct snap_reader r;
        struct rc_record rec;
        int64_t collect;
        size_t i = 0;
        snap_reader_init(&r, b.data, b.len);
        while (snap_next(&r, &rec, &collect)) {
            const struct rc_record *w = &small_recs[i].r;
            assert_int_equal(rec.op, w->op);
            assert_int_equal(rec.key_len, w->key_len);
            if (w->key_len) assert_memory_equal(rec.key, w->key, w->key_len);
            assert_int_equal(rec.value_len, w->value_len);
            if (w->value_len) assert_memory_equal(rec.value, w->value, w->value_len);
            assert_int_equal(rec.client_flags, w->client_flags);
            assert_int_equal(rec.expire_ms, w->expire_ms);
            assert_int_equal(rec.version, w->version);
            assert_int_equal(rec.origin_tag, w->origin_tag);
            assert_int_equal(rec.exp_version, w->exp_version);
            assert_int_equal(rec.exp_origin_tag, w->exp_origin_tag);
            assert_int_equal(collect, small_recs[i].collect_ms);
            i++;
        }
        assert_int_equal(i, NSMALL);
        snap_buf_free(&b);
    }
}

static void test_empty_store_file(void **state)
{
    struct snap_buf b = encode(NULL, 0, 1);
    struct snap_info info;
    assert_int_equal(snap_parse(b.data, b.len, &info), SNAP_OK);
    assert_int_equal(info.records, 0);
    assert_int_equal(info.chunks, 0);
    struct snap_reader r;
    struct rc_record rec;
    int64_t collect;
    snap_reader_init(&r, b.data, b.len);
    assert_false(snap_next(&r, &rec, &collect));
    snap_buf_free(&b);
}

static void test_every_truncation_refused(void **state)
{
    struct snap_buf b = encode(small_recs, NSMALL, 2);
    struct snap_info info;
    assert_int_equal(snap_parse(b.data, 0, &info), SNAP_ERR_EMPTY);
    for (size_t n = 1; n < b.len; n++) {
        char *copy = malloc(n); /* exactly n bytes: ASan sees any overread */
        memcpy(copy, b.data, n);
        enum snap_status st = snap_parse(copy, n, &info);
        if (st != SNAP_ERR_TRUNCATED) fail_msg("prefix of %zu bytes: %s", n, snap_status_name(st));
        assert_non_null(info.detail);
        free(copy);
    }
    snap_buf_free(&b);
}

static void test_every_bit_flip_refused(void **state)
{
    struct snap_buf b = encode(small_recs, NSMALL, 2);
    struct snap_info info;
    unsigned checksum = 0;
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b.data[i] ^= (char)(1 << bit);
            enum snap_status st = snap_parse(b.data, b.len, &info);
            if (st == SNAP_OK) fail_msg("flip of bit %d of byte %zu accepted", bit, i);
            checksum += st == SNAP_ERR_CHECKSUM;
            b.data[i] ^= (char)(1 << bit);
        }
    }
    assert_true(checksum > b.len * 8 / 2); /* mostly caught by the checksum */
    assert_int_equal(snap_parse(b.data, b.len, &info), SNAP_OK);
    snap_buf_free(&b);
}

static void test_foreign_files_refused(void **state)
{
    struct snap_info info;
    const char *text = "Hello, this is not a snapshot\n";
    assert_int_equal(snap_parse(text, strlen(text), &info), SNAP_ERR_MAGIC);
    assert_int_equal(snap_parse("V", 1, &info), SNAP_ERR_TRUNCATED); /* a prefix of ours */
    assert_int_equal(snap_parse("X", 1, &info), SNAP_ERR_MAGIC);
    assert_int_equal(snap_parse("", 0, &info), SNAP_ERR_EMPTY);
    assert_int_equal(snap_parse(NULL, 5, &info), SNAP_ERR_EMPTY);

    /* a replication batch is not a snapshot */
    struct rc_buf rb = {0};
    struct rc_header h = {.kind = RC_KIND_WRITES, .origin = NODE, .origin_len = strlen(NODE)};
    assert_int_equal(rc_begin(&rb, &h), 0);
    assert_int_equal(snap_parse(rb.data, rb.len, &info), SNAP_ERR_MAGIC);
    rc_buf_free(&rb);

    struct snap_buf b = encode(small_recs, NSMALL, 2);
    b.data[8] = 2; /* version 2, even with a right checksum */
    reseal(b.data, b.len);
    assert_int_equal(snap_parse(b.data, b.len, &info), SNAP_ERR_VERSION);
    assert_int_equal(info.version, 2);
    b.data[8] = 1;
    reseal(b.data, b.len);
    assert_int_equal(snap_parse(b.data, b.len, &info), SNAP_OK);

    char *longer = malloc(b.len + 1);
    memcpy(longer, b.data, b.len);
    longer[b.len] = 0;
    assert_int_equal(snap_parse(longer, b.len + 1, &info), SNAP_ERR_TRAILING);
    free(longer);
    snap_buf_free(&b);
}

/* Content a careless writer could produce, with a right checksum. */
static void test_wrong_content_refused(void **state)
{
    struct snap_info info;
    struct snap_buf b = encode(small_recs, NSMALL, 5);
    size_t hdr = SNAP_HEADER_FIXED + strlen(NODE);
    size_t batch = hdr + 4;                 /* the only chunk's batch */
    size_t origin = batch + 8;
    size_t seq = origin + strlen(NODE) + 8; /* after the incarnation */

    struct {
        size_t at;
        char value;
    } bad[] = {
        {batch + 5, RC_KIND_SYNC_DATA}, /* not WRITES */
        {seq, 2},                       /* chunk 1 numbered 2 */
        {origin, 'X'},                  /* another node's batch */
        {batch + 4, 1},                 /* a version-1 batch: decodes otherwise */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char keep = b.data[bad[i].at];
        b.data[bad[i].at] = bad[i].value;
        reseal(b.data, b.len);
        enum snap_status st = snap_parse(b.data, b.len, &info);
        if (st != SNAP_ERR_CORRUPT) fail_msg("case %zu: %s", i, snap_status_name(st));
        b.data[bad[i].at] = keep;
    }
    reseal(b.data, b.len);
    assert_int_equal(snap_parse(b.data, b.len, &info), SNAP_OK);
    snap_buf_free(&b);

    /* an EXPIRE record; a FLUSH record that is not first; T not matching */
    struct rec_spec expire[] = {small_recs[1]};
    expire[0].r.op = RC_OP_EXPIRE;
    struct snap_chunk c = {0};
    assert_int_equal(snap_chunk_begin(&c, NODE, strlen(NODE), 1), 0);
    assert_int_equal(snap_chunk_add(&c, &expire[0].r, 0), -1);
    assert_int_equal(errno, EINVAL);
    snap_chunk_free(&c);

    struct rec_spec late_flush[] = {small_recs[1], small_recs[0]};
    b = encode(late_flush, 2, 2);
    assert_int_equal(snap_parse(b.data, b.len, &info), SNAP_ERR_CORRUPT);
    snap_buf_free(&b);

    /* one collection time fewer than the batch's tombstones */
    b = encode(small_recs, NSMALL, 5);
    uint32_t len = (uint32_t)(unsigned char)b.data[hdr] | (uint32_t)(unsigned char)b.data[hdr + 1] << 8 |
                   (uint32_t)(unsigned char)b.data[hdr + 2] << 16;
    size_t tfield = batch + len;
    assert_int_equal(b.data[tfield], 2);
    b.data[tfield] = 1;
    size_t cut = tfield + 4 + 8; /* drop the second time */
    memmove(b.data + cut, b.data + cut + 8, b.len - cut - 8);
    b.len -= 8;
    reseal(b.data, b.len);
    assert_int_equal(snap_parse(b.data, b.len, &info), SNAP_ERR_CORRUPT);
    snap_buf_free(&b);

    /* a record total that is not the chunks' */
    b = encode(small_recs, NSMALL, 2);
    b.data[b.len - 16] ^= 1;
    reseal(b.data, b.len);
    assert_int_equal(snap_parse(b.data, b.len, &info), SNAP_ERR_CORRUPT);
    snap_buf_free(&b);
}

/* ---- stores --------------------------------------------------------------- */

#define NLIVE 300
#define BIGVAL (600u << 10) /* a few of these span several chunks */

static void key_of(char *key, size_t cap, const char *prefix, int i, size_t *len)
{
    *len = (size_t)snprintf(key, cap, "%s%d", prefix, i);
}

/*
 * Live items with binary values, client flags and three kinds of expiry
 * (none, in an hour, in 10 s), some with an expiry stamp of their own;
 * delete tombstones; expiry tombstones; three large values; extra plain
 * items; a delayed flush watermark if flush_at_ms.
 */
static struct store *filled_store(int64_t now, size_t extra, int64_t flush_at_ms)
{
    struct store *s = mk(BIG, STORE_EVICT_NONE, TOMB_TTL);
    char key[32], val[64];
    size_t kl;
    for (int i = 0; i < NLIVE; i++) {
        key_of(key, sizeof key, "live", i, &kl);
        size_t vl = (size_t)(i % 50);
        for (size_t j = 0; j < vl; j++) val[j] = (char)(i * 31 + (int)j);
        int64_t exp = i % 3 == 0 ? 0 : i % 3 == 1 ? now + 3600000 : now + 10000;
        struct store_write w = {
            .key = key, .key_len = kl, .has_value = true, .value = val, .value_len = vl,
            .client_flags = (uint32_t)i * 2654435761u, .version = ver(now - 5000 + i, (unsigned)i % 7),
            .origin = 1 + (uint32_t)i % 3, .has_expiry = true, .expire_ms = exp,
            .exp_version = ver(now - 5000 + i, (unsigned)i % 7), .exp_origin = 1 + (uint32_t)i % 3,
        };
        assert_int_equal(store_write(s, &w, now), STORE_OK);
        if (i % 10 == 0) /* an expiry of its own, newer than the value */
            assert_int_equal(store_expire(s, key, kl, now + 7200000, ver(now - 100, (unsigned)i), 9, now),
                             STORE_OK);
    }
    for (int i = 0; i < 50; i++) {
        key_of(key, sizeof key, "del", i, &kl);
        assert_int_equal(store_set(s, key, kl, "doomed", 6, 0, ver(now - 4000, (unsigned)i), 2, now), STORE_OK);
        assert_int_equal(store_del(s, key, kl, ver(now - 3000, (unsigned)i), 3, now), STORE_OK);
    }
    for (int i = 0; i < 20; i++) { /* arrives expired: an expiry's tombstone */
        key_of(key, sizeof key, "exp", i, &kl);
        assert_int_equal(store_set(s, key, kl, "late", 4, now - 1, ver(now - 6000, (unsigned)i), 4, now),
                         STORE_OK);
    }
    char *big = malloc(BIGVAL);
    assert_non_null(big);
    for (int i = 0; i < 3; i++) {
        memset(big, 'a' + i, BIGVAL);
        key_of(key, sizeof key, "big", i, &kl);
        assert_int_equal(store_set(s, key, kl, big, BIGVAL, 0, ver(now - 2000, (unsigned)i), 1, now), STORE_OK);
    }
    free(big);
    for (size_t i = 0; i < extra; i++) {
        key_of(key, sizeof key, "x", (int)i, &kl);
        assert_int_equal(store_set(s, key, kl, "0123456789abcdef0123456789abcdef", 32, 0,
                                   ver(now - 1000, (unsigned)(i & 0xffff)), 1, now), STORE_OK);
    }
    if (flush_at_ms) assert_true(store_flush(s, ver(flush_at_ms, 0), 7, now));
    struct store_stats st = stats(s);
    assert_int_equal(st.tombstones, 70);
    return s;
}

/* Everything a snapshot must carry about one key. */
struct regs_of_key {
    char key[32];
    size_t key_len;
    uint8_t flags; /* ITEM_F_TOMBSTONE | ITEM_F_EXPIRED */
    uint64_t version, exp_version, value_hash;
    uint32_t origin, exp_origin, client_flags, value_len;
    int64_t expiry;
};

struct key_list {
    struct regs_of_key *a;
    size_t n, cap;
};

static void list_visit(void *arg, const struct item *it)
{
    struct key_list *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->a = realloc(l->a, l->cap * sizeof *l->a);
        assert_non_null(l->a);
    }
    struct regs_of_key *k = &l->a[l->n++];
    memset(k, 0, sizeof *k);
    assert_true(it->key_len < sizeof k->key);
    memcpy(k->key, item_key(it), it->key_len);
    k->key_len = it->key_len;
    k->flags = it->flags & (ITEM_F_TOMBSTONE | ITEM_F_EXPIRED);
    k->version = it->version;
    k->origin = it->origin;
    k->exp_version = item_exp_version(it);
    k->exp_origin = item_exp_origin(it);
    k->client_flags = item_client_flags(it);
    k->value_len = it->value_len;
    k->value_hash = XXH3_64bits(item_value(it), it->value_len);
    k->expiry = store_item_expiry(it);
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct regs_of_key *)a)->key, ((const struct regs_of_key *)b)->key);
}

static struct key_list keys_of(struct store *s)
{
    struct key_list l = {0};
    uint64_t cursor = 0;
    do {
        store_scan(s, &cursor, 1000, list_visit, &l);
    } while (cursor);
    qsort(l.a, l.n, sizeof *l.a, by_key);
    return l;
}

/* Same keys with the same registers; absent: keys of a that b must not have. */
static void assert_same(struct store *a, struct store *b, bool (*absent)(const struct regs_of_key *))
{
    struct key_list la = keys_of(a), lb = keys_of(b);
    size_t j = 0;
    for (size_t i = 0; i < la.n; i++) {
        const struct regs_of_key *x = &la.a[i];
        if (absent && absent(x)) continue;
        if (j >= lb.n) fail_msg("%s missing after the load", x->key);
        const struct regs_of_key *y = &lb.a[j++];
        if (strcmp(x->key, y->key) != 0) fail_msg("%s missing after the load (found %s)", x->key, y->key);
        assert_int_equal(x->flags, y->flags);
        assert_int_equal(x->version, y->version);
        assert_int_equal(x->origin, y->origin);
        assert_int_equal(x->exp_version, y->exp_version);
        assert_int_equal(x->exp_origin, y->exp_origin);
        assert_int_equal(x->client_flags, y->client_flags);
        assert_int_equal(x->value_len, y->value_len);
        assert_int_equal(x->value_hash, y->value_hash);
        assert_int_equal(x->expiry, y->expiry);
    }
    assert_int_equal(j, lb.n);
    free(la.a);
    free(lb.a);
}

static struct snapshot *mk_snap(struct ev_loop *loop, struct store *s, const char *file,
                                int64_t tomb_ttl)
{
    static char path[128];
    path_of(path, sizeof path, file);
    struct snapshot_config cfg = {.path = path, .node_id = NODE, .tombstone_ttl_ms = tomb_ttl};
    struct snapshot *sn = snapshot_create(loop, &cfg, s);
    assert_non_null(sn);
    return sn;
}

static struct snapshot_stats snap_stats(const struct snapshot *sn)
{
    struct snapshot_stats st;
    snapshot_get_stats(sn, &st);
    return st;
}

static void test_store_round_trip(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct store *a = filled_store(NOW, 0, NOW + 100000); /* a delayed flush */
    struct snapshot *sa = mk_snap(loop, a, "round.snap", TOMB_TTL);
    assert_int_equal(snapshot_save(sa, NOW), 0);
    struct store_stats sta = stats(a);
    struct snapshot_stats ss = snap_stats(sa);
    assert_int_equal(ss.saves, 1);
    assert_int_equal(ss.failures, 0);
    assert_int_equal(ss.saved_items, sta.curr_items);
    assert_int_equal(ss.saved_tombstones, sta.tombstones);
    assert_true(ss.save_bytes > 3 * BIGVAL);
    assert_int_equal(ss.last_save_time, NOW / 1000);

    struct store *b = mk(BIG, STORE_EVICT_NONE, TOMB_TTL);
    struct snapshot *sb = mk_snap(loop, b, "round.snap", TOMB_TTL);
    struct hlc clock = {0};
    assert_true(snapshot_load(sb, &clock, NOW));
    assert_same(a, b, NULL);
    struct store_stats stb = stats(b);
    assert_int_equal(stb.curr_items, sta.curr_items);
    assert_int_equal(stb.tombstones, sta.tombstones);
    assert_int_equal(stb.items_digest, sta.items_digest);
    check_digest(b);
    uint64_t fa[2], fb[2];
    uint32_t oa[2], ob[2];
    size_t na = store_flush_stamps(a, fa, oa);
    assert_int_equal(store_flush_stamps(b, fb, ob), na);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(fa[i], fb[i]);
        assert_int_equal(oa[i], ob[i]);
    }
    struct key_list la = keys_of(a);
    uint64_t newest = 0;
    for (size_t i = 0; i < la.n; i++) {
        if (la.a[i].version > newest) newest = la.a[i].version;
        if (la.a[i].exp_version > newest) newest = la.a[i].exp_version;
    }
    free(la.a);
    assert_int_equal(clock.last, newest); /* local writes stay newer */
    ss = snap_stats(sb);
    assert_int_equal(ss.loaded_items, sta.curr_items);
    assert_int_equal(ss.loaded_tombstones, sta.tombstones);
    assert_int_equal(ss.load_dropped, 0);
    assert_int_equal(ss.load_refused, 0);

    /* and the loaded store saves again */
    assert_int_equal(snapshot_save(sb, NOW), 0);
    snapshot_destroy(sa);
    snapshot_destroy(sb);
    store_destroy(a);
    store_destroy(b);
    ev_loop_destroy(loop);
}

static int64_t load_at;
static bool expired_by_load(const struct regs_of_key *k)
{
    if (k->flags & ITEM_F_TOMBSTONE) return NOW + TOMB_TTL <= load_at;
    return k->expiry != 0 && k->expiry <= load_at;
}

/* Loaded later: what expired meanwhile is dropped, the rest is intact. */
static void test_expired_meanwhile_dropped(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct store *a = filled_store(NOW, 0, 0);
    struct snapshot *sa = mk_snap(loop, a, "later.snap", TOMB_TTL);
    assert_int_equal(snapshot_save(sa, NOW), 0);
    const int64_t later[] = {NOW + 20000, NOW + TOMB_TTL + 1};
    for (size_t i = 0; i < 2; i++) {
        load_at = later[i];
        struct store *b = mk(BIG, STORE_EVICT_NONE, TOMB_TTL);
        struct snapshot *sb = mk_snap(loop, b, "later.snap", TOMB_TTL);
        assert_true(snapshot_load(sb, NULL, load_at));
        assert_same(a, b, expired_by_load);
        struct snapshot_stats ss = snap_stats(sb);
        assert_true(ss.load_dropped > 0);
        assert_int_equal(ss.loaded_items + ss.loaded_tombstones + ss.load_dropped,
                         stats(a).curr_items + stats(a).tombstones);
        if (i == 1) assert_int_equal(stats(b).tombstones, 0);
        snapshot_destroy(sb);
        store_destroy(b);
    }
    snapshot_destroy(sa);
    store_destroy(a);
    ev_loop_destroy(loop);
}

static bool below_watermark(const struct regs_of_key *k)
{
    uint64_t w = ver(NOW - 2000, 0);
    return k->version < w || (k->flags & ITEM_F_TOMBSTONE); /* by version alone (store.h) */
}

/* A flush in effect: what it killed does not come back; the watermark does. */
static void test_flush_in_effect(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct store *a = filled_store(NOW, 0, NOW - 2000);
    struct snapshot *sa = mk_snap(loop, a, "flushed.snap", TOMB_TTL);
    assert_int_equal(snapshot_save(sa, NOW), 0);
    struct snapshot_stats ss = snap_stats(sa);
    /* items below the watermark not swept yet may be in the file: the load
     * applies the watermark first and refuses them */
    assert_true(ss.saved_items >= 2);
    struct store *b = mk(BIG, STORE_EVICT_NONE, TOMB_TTL);
    struct snapshot *sb = mk_snap(loop, b, "flushed.snap", TOMB_TTL);
    assert_true(snapshot_load(sb, NULL, NOW));
    assert_same(a, b, below_watermark);
    uint64_t fb[2];
    uint32_t ob[2];
    assert_int_equal(store_flush_stamps(b, fb, ob), 1);
    assert_int_equal(fb[0], ver(NOW - 2000, 0));
    assert_int_equal(ob[0], 7);
    /* a write older than the watermark stays refused after the restart */
    assert_int_equal(store_set(b, "live1", 5, "x", 1, 0, ver(NOW - 2500, 0), 1, NOW), STORE_STALE);
    snapshot_destroy(sa);
    snapshot_destroy(sb);
    store_destroy(a);
    store_destroy(b);
    ev_loop_destroy(loop);
}

/* Standalone stores keep no tombstones: none saved, none loaded. */
static void test_standalone_store(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct store *a = mk(BIG, STORE_EVICT_NONE, 0);
    assert_int_equal(store_set(a, "k", 1, "v", 1, NOW + 5, 1, 1, NOW), STORE_OK);
    assert_int_equal(store_set(a, "j", 1, "w", 1, 0, 2, 1, NOW), STORE_OK);
    struct snapshot *sa = mk_snap(loop, a, "alone.snap", 0);
    assert_int_equal(snapshot_save(sa, NOW + 10), 0); /* k expired, not yet collected */
    assert_int_equal(snap_stats(sa).saved_items, 1);
    assert_int_equal(snap_stats(sa).saved_tombstones, 0);
    struct store *b = mk(BIG, STORE_EVICT_NONE, 0);
    struct snapshot *sb = mk_snap(loop, b, "alone.snap", 0);
    assert_true(snapshot_load(sb, NULL, NOW + 10));
    assert_int_equal(stats(b).curr_items, 1);
    assert_non_null(store_find(b, "j", 1, NOW + 10));
    snapshot_destroy(sa);
    snapshot_destroy(sb);
    store_destroy(a);
    store_destroy(b);
    ev_loop_destroy(loop);
}

static int64_t loop_ms(struct ev_loop *loop)
{
    ev_now_update(loop);
    return (int64_t)(ev_now(loop) * 1000.0);
}

/* In the background, through the writer thread, over several chunks and
 * more than the queue holds at once. */
static void test_background_save(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int64_t now = loop_ms(loop);
    struct store *a = filled_store(now, 200000, 0);
    struct snapshot *sa = mk_snap(loop, a, "bg.snap", TOMB_TTL);
    assert_true(snapshot_save_start(sa));
    assert_int_equal(snap_stats(sa).saving, 1);
    assert_false(snapshot_save_start(sa)); /* one at a time */
    while (snap_stats(sa).saves == 0 && snap_stats(sa).failures == 0) ev_run(loop, EVRUN_ONCE);
    struct snapshot_stats ss = snap_stats(sa);
    assert_int_equal(ss.failures, 0);
    assert_int_equal(ss.saving, 0);
    assert_int_equal(ss.saved_items, stats(a).curr_items);
    assert_true(ss.save_slice_max_us > 0);
    char tmp[160];
    path_of(tmp, sizeof tmp, "bg.snap.tmp");
    assert_int_equal(access(tmp, F_OK), -1);

    struct store *b = mk(BIG, STORE_EVICT_NONE, TOMB_TTL);
    struct snapshot *sb = mk_snap(loop, b, "bg.snap", TOMB_TTL);
    assert_true(snapshot_load(sb, NULL, now));
    assert_same(a, b, NULL);

    /* a foreground save abandons a background one under way */
    assert_true(snapshot_save_start(sa));
    ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(snapshot_save(sa, now), 0);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(snap_stats(sa).saving, 0);
    store_destroy(b);
    snapshot_destroy(sb);
    b = mk(BIG, STORE_EVICT_NONE, TOMB_TTL);
    sb = mk_snap(loop, b, "bg.snap", TOMB_TTL);
    assert_true(snapshot_load(sb, NULL, now));
    assert_same(a, b, NULL);

    /* destroy during a background save removes FILE.tmp */
    assert_true(snapshot_save_start(sa));
    ev_run(loop, EVRUN_NOWAIT);
    snapshot_destroy(sa);
    assert_int_equal(access(tmp, F_OK), -1);
    snapshot_destroy(sb);
    store_destroy(a);
    store_destroy(b);
    ev_loop_destroy(loop);
}

/* A missing file is normal; a bad one is refused whole and counted. */
static void test_bad_files_start_empty(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct store *a = filled_store(NOW, 0, 0);
    struct snapshot *sa = mk_snap(loop, a, "good.snap", TOMB_TTL);
    assert_int_equal(snapshot_save(sa, NOW), 0);
    char good[160], bad[160];
    path_of(good, sizeof good, "good.snap");
    path_of(bad, sizeof bad, "bad.snap");
    size_t len;
    char *data = slurp(good, &len);

    struct {
        const char *what;
        size_t len;
        size_t flip; /* byte to flip, or SIZE_MAX */
    } cases[] = {
        {"missing", 0, SIZE_MAX}, {"empty", 0, SIZE_MAX}, {"half", len / 2, SIZE_MAX},
        {"one byte short", len - 1, SIZE_MAX}, {"bit flip", len, len / 3},
        {"folder", 0, SIZE_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unlink(bad);
        rmdir(bad);
        if (strcmp(cases[i].what, "folder") == 0) {
            assert_int_equal(mkdir(bad, 0700), 0);
        } else if (strcmp(cases[i].what, "missing") != 0) {
            if (cases[i].flip != SIZE_MAX) data[cases[i].flip] ^= 0x10;
            spit(bad, data, cases[i].len);
            if (cases[i].flip != SIZE_MAX) data[cases[i].flip] ^= 0x10;
        }
        struct store *b = mk(BIG, STORE_EVICT_NONE, TOMB_TTL);
        struct snapshot *sb = mk_snap(loop, b, "bad.snap", TOMB_TTL);
        struct hlc clock = {0};
        assert_false(snapshot_load(sb, &clock, NOW));
        struct store_stats st = stats(b);
        if (st.curr_items || st.tombstones || clock.last)
            fail_msg("%s: something was applied", cases[i].what);
        assert_int_equal(snap_stats(sb).failures, i == 0 ? 0 : 1);
        assert_int_equal(snap_stats(sb).loaded_items, 0);
        snapshot_destroy(sb);
        store_destroy(b);
    }
    rmdir(bad);
    free(data);
    snapshot_destroy(sa);
    store_destroy(a);
    ev_loop_destroy(loop);
}

/* A save that cannot write keeps the previous file and says so. */
static void test_failed_save_keeps_file(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct store *a = filled_store(NOW, 0, 0);
    struct snapshot *sa = mk_snap(loop, a, "keep.snap", TOMB_TTL);
    assert_int_equal(snapshot_save(sa, NOW), 0);
    char path[160], tmp[160];
    path_of(path, sizeof path, "keep.snap");
    path_of(tmp, sizeof tmp, "keep.snap.tmp");
    size_t len1, len2;
    char *before = slurp(path, &len1);

    assert_int_equal(store_set(a, "new", 3, "v", 1, 0, ver(NOW, 1), 1, NOW), STORE_OK);
    assert_int_equal(mkdir(tmp, 0700), 0); /* FILE.tmp cannot be opened */
    assert_int_equal(snapshot_save(sa, NOW), -1);
    assert_false(snapshot_save_start(sa));
    assert_int_equal(snap_stats(sa).failures, 2);
    assert_int_equal(snap_stats(sa).saves, 1);
    char *after = slurp(path, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(before, after, len1);
    assert_int_equal(rmdir(tmp), 0);
    assert_int_equal(snapshot_save(sa, NOW), 0); /* works again */

    /* no folder at all */
    struct snapshot_config cfg = {.path = "/nonexistent-vitamin-dir/x.snap", .node_id = NODE};
    struct snapshot *sx = snapshot_create(loop, &cfg, a);
    assert_int_equal(snapshot_save(sx, NOW), -1);
    assert_int_equal(snap_stats(sx).failures, 1);
    snapshot_destroy(sx);

    free(before);
    free(after);
    snapshot_destroy(sa);
    store_destroy(a);
    ev_loop_destroy(loop);
}

static void test_null_stats(void **state)
{
    struct snapshot_stats st;
    memset(&st, 0xff, sizeof st);
    snapshot_get_stats(NULL, &st);
    assert_int_equal(st.saves + st.failures + st.loaded_items + st.save_ms, 0);
}

int main(void)
{
    log_set_level(LOG_DEBUG); /* every log call formats its arguments: ASan checks them too */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_empty_store_file),
        cmocka_unit_test(test_every_truncation_refused),
        cmocka_unit_test(test_every_bit_flip_refused),
        cmocka_unit_test(test_foreign_files_refused),
        cmocka_unit_test(test_wrong_content_refused),
        cmocka_unit_test(test_store_round_trip),
        cmocka_unit_test(test_expired_meanwhile_dropped),
        cmocka_unit_test(test_flush_in_effect),
        cmocka_unit_test(test_standalone_store),
        cmocka_unit_test(test_background_save),
        cmocka_unit_test(test_bad_files_start_empty),
        cmocka_unit_test(test_failed_save_keeps_file),
        cmocka_unit_test(test_null_stats),
    };
    return cmocka_run_group_tests_name("snapshot", tests, setup_dir, teardown_dir);
}
