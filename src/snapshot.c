/*
 * snapshot.c - saving and loading the store (see snapshot.h).
 *
 * A save is a job: a walk of the store with store_scan(), each item turned
 * into a record (record_of_item) and added to a chunk (snap_codec.h); a
 * full chunk is encoded into a piece of bytes and delivered to a sink, the
 * open FILE.tmp with a running XXH3 of what it was given. At the end the
 * sink writes the trailer, fsyncs, renames and fsyncs the folder.
 *
 *   synchronous save:  walk -> chunk -> piece -> sink             (caller)
 *   background save:   walk -> chunk -> piece -> queue | writer -> sink
 *                      (loop, <= SNAPSHOT_STEP_MS a turn)  (writer thread)
 *
 * Threads. The writer thread runs at nice WRITER_NICE, below the loop;
 * the loop takes the lock only to hand over a chunk (1 MiB) or to end or
 * cancel a save. The sink belongs to the writer thread from the start of a
 * background save until the thread reports the end (busy false), and to
 * the loop thread otherwise. The queue, its byte count and the flags are
 * under mu; the thread wakes the loop with an ev_async when a save ended.
 * Cancelling (a synchronous save or destroy while a background save runs)
 * raises abort and waits for busy to drop: the thread then drops the queue
 * and removes FILE.tmp.
 */
#include "snapshot.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "hlc.h"
#include "log.h"
#include "record.h"
#include "repl_codec.h"
#include "snap_codec.h"
#include "store.h"

#define SLICE 256            /* items per store_scan call */
#define RETRY_S 0.002        /* the writer is behind: look again after this */
#define SYNC_SLICE 65536
#define WRITER_NICE 10       /* the writer thread's nice value */

/* Bytes for the writer, in file order. */
struct piece {
    struct piece *next;
    struct snap_buf buf;
};

/* The file being written. */
struct sink {
    int fd;
    XXH3_state_t *hash;
    uint64_t bytes;
    int err;          /* first errno; 0 = fine so far */
    const char *what; /* the call that failed */
};

/* The save in progress (loop thread). */
struct job {
    bool active;
    bool background;
    uint64_t cursor;    /* store_scan position; 0 again at the end */
    bool begun;         /* the walk has started (cursor 0 is also the end) */
    struct snap_chunk chunk;
    uint64_t chunks;    /* chunks delivered */
    uint64_t records, items, tombs;
    int64_t now_ms;     /* of the current slice */
    int64_t written_ms; /* when it began */
    double started;     /* ev_time() when it began */
    double slice_max;   /* longest turn spent on it, s */
    int err;            /* encoder failure (ENOMEM) */
};

struct snapshot {
    struct snapshot_config cfg;
    struct ev_loop *loop;
    struct store *store;
    char path[PATH_MAX];
    char tmp[PATH_MAX + 8];
    char dir[PATH_MAX];
    struct job job;
    struct sink sink;
    ev_timer periodic;
    ev_timer step;
    bool failing;       /* the last save failed: later failures log at debug */
    /* writer thread */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct piece *head, *tail;
    atomic_size_t queued; /* bytes in the queue (written under mu; the
                             loop reads it without the lock each slice) */
    bool busy;          /* the thread owns the sink (a background save) */
    bool finish;        /* the walk is over: commit after the queue */
    bool abort;         /* drop everything, remove FILE.tmp */
    bool stop;          /* thread exit */
    bool done;          /* a background save ended; result in the sink */
    uint64_t final_records;
    ev_async async;
    struct snapshot_stats st;
};

/* ---- the sink: FILE.tmp ---------------------------------------------- */

static void sink_fail(struct sink *k, const char *what)
{
    if (k->err) return;
    k->err = errno ? errno : EIO;
    k->what = what;
}

static int sink_open(struct sink *k, const char *tmp)
{
    *k = (struct sink){.fd = -1};
    k->hash = XXH3_createState();
    if (!k->hash || XXH3_64bits_reset(k->hash) != XXH_OK) {
        errno = ENOMEM;
        sink_fail(k, "XXH3_createState");
        return -1;
    }
    k->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (k->fd < 0) {
        sink_fail(k, "open");
        return -1;
    }
    return 0;
}

static void sink_write(struct sink *k, const char *p, size_t n)
{
    if (k->err) return;
    XXH3_64bits_update(k->hash, p, n);
    k->bytes += n;
    while (n > 0) {
        ssize_t w = write(k->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            sink_fail(k, "write");
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void sink_close(struct sink *k)
{
    if (k->fd >= 0 && close(k->fd) != 0) sink_fail(k, "close");
    k->fd = -1;
    XXH3_freeState(k->hash);
    k->hash = NULL;
}

static void sink_abort(struct sink *k, const char *tmp)
{
    sink_close(k);
    unlink(tmp);
}

/* The end, fsync, rename over path, fsync of the folder. On any error
 * FILE.tmp is removed and k->err says why. */
static void sink_commit(struct sink *k, uint64_t records, const char *tmp, const char *path,
                        const char *dir)
{
    struct snap_buf end = {0};
    if (snap_encode_end(&end, records) < 0) sink_fail(k, "malloc");
    sink_write(k, end.data, end.len);
    end.len = 0;
    if (!k->err && snap_encode_sum(&end, XXH3_64bits_digest(k->hash)) < 0) sink_fail(k, "malloc");
    sink_write(k, end.data, end.len); /* hashed too, after the digest: harmless */
    snap_buf_free(&end);
    if (!k->err && fsync(k->fd) != 0) sink_fail(k, "fsync");
    sink_close(k);
    if (!k->err && rename(tmp, path) != 0) sink_fail(k, "rename");
    if (k->err) {
        unlink(tmp);
        return;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) sink_fail(k, "fsync of the folder");
    if (dfd >= 0) close(dfd);
}

/* ---- the writer thread ------------------------------------------------ */

static void drop_queue(struct snapshot *sn)
{
    struct piece *p;
    while ((p = sn->head) != NULL) {
        sn->head = p->next;
        snap_buf_free(&p->buf);
        free(p);
    }
    sn->tail = NULL;
    atomic_store(&sn->queued, 0);
}

static void *writer_main(void *arg)
{
    struct snapshot *sn = arg;
    /* Lower priority than the loop (Linux nice is per thread): when both
     * want one core, clients are served first; the save just takes longer. */
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), WRITER_NICE);
    pthread_mutex_lock(&sn->mu);
    for (;;) {
        while (!sn->stop && !sn->abort && !sn->head && !sn->finish)
            pthread_cond_wait(&sn->cv, &sn->mu);
        if (sn->abort || sn->stop) {
            drop_queue(sn);
            if (sn->busy) {
                pthread_mutex_unlock(&sn->mu);
                sink_abort(&sn->sink, sn->tmp);
                pthread_mutex_lock(&sn->mu);
                sn->busy = false;
            }
            sn->abort = sn->finish = false;
            pthread_cond_broadcast(&sn->cv);
            if (sn->stop) break;
            continue;
        }
        if (sn->head) {
            struct piece *p = sn->head;
            sn->head = p->next;
            if (!sn->head) sn->tail = NULL;
            pthread_mutex_unlock(&sn->mu);
            sink_write(&sn->sink, p->buf.data, p->buf.len);
            pthread_mutex_lock(&sn->mu);
            atomic_fetch_sub(&sn->queued, p->buf.len);
            snap_buf_free(&p->buf);
            free(p);
            continue;
        }
        sn->finish = false; /* the queue is empty: commit */
        uint64_t records = sn->final_records;
        pthread_mutex_unlock(&sn->mu);
        sink_commit(&sn->sink, records, sn->tmp, sn->path, sn->dir);
        pthread_mutex_lock(&sn->mu);
        sn->busy = false;
        sn->done = true;
        pthread_cond_broadcast(&sn->cv);
        ev_async_send(sn->loop, &sn->async);
    }
    pthread_mutex_unlock(&sn->mu);
    return NULL;
}

static bool writer_start(struct snapshot *sn)
{
    if (sn->thread_started) return true;
    if (pthread_create(&sn->thread, NULL, writer_main, sn) != 0) return false;
    sn->thread_started = true;
    return true;
}

/* ---- a save: walking and encoding (loop thread) ----------------------- */

/* Hand over the bytes in b (b is left empty). */
static void deliver(struct snapshot *sn, struct snap_buf *b)
{
    if (!sn->job.background) {
        sink_write(&sn->sink, b->data, b->len);
        b->len = 0;
        return;
    }
    struct piece *p = malloc(sizeof *p);
    if (!p) {
        sn->job.err = ENOMEM;
        return;
    }
    p->next = NULL;
    p->buf = *b;
    *b = (struct snap_buf){0};
    pthread_mutex_lock(&sn->mu);
    if (sn->tail) sn->tail->next = p;
    else sn->head = p;
    sn->tail = p;
    atomic_fetch_add(&sn->queued, p->buf.len);
    pthread_cond_signal(&sn->cv);
    pthread_mutex_unlock(&sn->mu);
}

static void emit_chunk(struct snapshot *sn)
{
    struct job *j = &sn->job;
    if (j->err || snap_chunk_records(&j->chunk) == 0) return;
    struct snap_buf b = {0};
    if (snap_chunk_encode(&j->chunk, &b) < 0) {
        j->err = errno;
        snap_buf_free(&b);
        return;
    }
    j->chunks++;
    j->chunk.batch.len = 0; /* empty until the next begin */
    deliver(sn, &b);
    snap_buf_free(&b);
}

static void add_record(struct snapshot *sn, const struct rc_record *rec, int64_t collect_ms)
{
    struct job *j = &sn->job;
    if (j->err) return;
    if (snap_chunk_records(&j->chunk) == 0 &&
        snap_chunk_begin(&j->chunk, sn->cfg.node_id, strlen(sn->cfg.node_id), j->chunks + 1) < 0) {
        j->err = errno;
        return;
    }
    if (snap_chunk_add(&j->chunk, rec, collect_ms) < 0) {
        j->err = errno;
        return;
    }
    j->records++;
    if (rec->op == RC_OP_SET) j->items++;
    else if (rec->op != RC_OP_FLUSH) j->tombs++;
    if (j->chunk.batch.len >= SNAPSHOT_CHUNK_BYTES) emit_chunk(sn);
}

static void visit(void *arg, const struct item *it)
{
    struct snapshot *sn = arg;
    struct job *j = &sn->job;
    /* items below a flush watermark not yet swept are written too: the
     * file's FLUSH records come first, so the load refuses them */
    struct rc_record rec;
    record_of_item(it, j->now_ms, &rec);
    int64_t collect_ms = 0;
    if (rec.op != RC_OP_SET) {
        if (sn->cfg.tombstone_ttl_ms <= 0) return; /* expired; no tombstones here */
        collect_ms = (it->flags & ITEM_F_TOMBSTONE) ? it->expire_ms
                                                    : j->now_ms + sn->cfg.tombstone_ttl_ms;
    }
    add_record(sn, &rec, collect_ms);
}

/* Open FILE.tmp, write the header, encode the watermark. Returns 0 or -1
 * (sink.err says why). A foreground job; snapshot_save_start() makes it a
 * background one after this, handing the sink to the writer thread. */
static int job_begin(struct snapshot *sn, int64_t now_ms)
{
    struct job *j = &sn->job;
    struct snap_chunk keep = j->chunk;
    *j = (struct job){.active = true, .chunk = keep,
                      .now_ms = now_ms, .written_ms = now_ms, .started = ev_time()};
    j->chunk.batch.len = 0;
    if (sink_open(&sn->sink, sn->tmp) < 0) {
        sink_abort(&sn->sink, sn->tmp);
        j->active = false;
        return -1;
    }
    struct snap_buf b = {0};
    if (snap_encode_header(&b, sn->cfg.node_id, strlen(sn->cfg.node_id), now_ms) < 0)
        j->err = errno;
    else
        deliver(sn, &b);
    snap_buf_free(&b);
    uint64_t fv[2];
    uint32_t fo[2];
    size_t nf = store_flush_stamps(sn->store, fv, fo);
    for (size_t i = 0; i < nf; i++) { /* in effect, then pending */
        struct rc_record rec = {.op = RC_OP_FLUSH, .version = fv[i], .origin_tag = fo[i],
                                .exp_version = fv[i], .exp_origin_tag = fo[i]};
        add_record(sn, &rec, 0);
    }
    return 0;
}

/* Walk up to max items; returns true when the walk is over. */
static bool job_walk(struct snapshot *sn, size_t max)
{
    struct job *j = &sn->job;
    if (j->begun && j->cursor == 0) return true;
    j->begun = true;
    store_scan(sn->store, &j->cursor, max, visit, sn);
    return j->cursor == 0 || j->err;
}

/* A failed save: counted; a warn line for the first of a series of
 * background failures (then debug until one works), always for a
 * foreground save. */
static void log_fail(struct snapshot *sn, bool background, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_fail(struct snapshot *sn, bool background, const char *fmt, ...)
{
    char msg[PATH_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sn->st.failures++;
    if (sn->failing && background) log_debug("%s", msg);
    else log_warn("%s", msg);
    sn->failing = true;
}

/* A save ended (sink committed or failed): counters and one log line. */
static void job_end(struct snapshot *sn, int err, const char *what)
{
    struct job *j = &sn->job;
    j->active = false;
    if (err) {
        log_fail(sn, j->background, "snapshot: cannot save to %s: %s: %s (the previous file "
                 "is kept)", sn->path, what, strerror(err));
        return;
    }
    double ms = (ev_time() - j->started) * 1000.0;
    struct snapshot_stats *st = &sn->st;
    st->saves++;
    st->saved_items = j->items;
    st->saved_tombstones = j->tombs;
    st->save_bytes = sn->sink.bytes;
    st->save_ms = (uint64_t)ms;
    st->save_slice_max_us = (uint64_t)(j->slice_max * 1e6);
    st->last_save_time = (uint64_t)(j->written_ms / 1000);
    if (sn->failing) log_info("snapshot: saving to %s works again", sn->path);
    sn->failing = false;
    log_at(j->background ? LOG_DEBUG : LOG_INFO,
           "snapshot: saved %" PRIu64 " items and %" PRIu64 " tombstones to %s "
           "(%" PRIu64 " bytes) in %.0f ms", j->items, j->tombs, sn->path, sn->sink.bytes, ms);
}

/* Collect a background save's end, if the thread reported one. */
static void collect(struct snapshot *sn)
{
    pthread_mutex_lock(&sn->mu);
    bool done = sn->done;
    sn->done = false;
    pthread_mutex_unlock(&sn->mu);
    if (!done || !sn->job.active) return;
    sn->st.saving = 0;
    job_end(sn, sn->sink.err, sn->sink.what);
}

/* Abandon a background save under way (FILE.tmp removed). */
static void cancel(struct snapshot *sn)
{
    ev_timer_stop(sn->loop, &sn->step);
    if (!sn->thread_started) return;
    pthread_mutex_lock(&sn->mu);
    if (sn->busy) {
        sn->abort = true;
        pthread_cond_broadcast(&sn->cv);
        while (sn->busy) pthread_cond_wait(&sn->cv, &sn->mu);
    }
    pthread_mutex_unlock(&sn->mu);
    collect(sn); /* it may have finished before the abort */
    if (sn->job.active) {
        sn->job.active = false;
        sn->st.saving = 0;
        log_info("snapshot: background save to %s abandoned", sn->path);
    }
}

/* ---- background saves (loop thread) ----------------------------------- */

static void on_step(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct snapshot *sn = w->data;
    struct job *j = &sn->job;
    double start = ev_time();
    bool over = false, full = false;
    for (;;) {
        if ((full = atomic_load(&sn->queued) >= SNAPSHOT_QUEUE_BYTES)) break;
        j->now_ms = (int64_t)(ev_now(loop) * 1000.0);
        if ((over = job_walk(sn, SLICE))) break;
        if ((ev_time() - start) * 1000.0 >= SNAPSHOT_STEP_MS) break;
    }
    if (over) emit_chunk(sn);
    double spent = ev_time() - start;
    if (spent > j->slice_max) j->slice_max = spent;
    if (!over) {
        ev_timer_set(w, full ? RETRY_S : 0.0, 0.0);
        ev_timer_start(loop, w);
        return;
    }
    pthread_mutex_lock(&sn->mu);
    if (j->err) { /* the encoder failed: the thread drops it all */
        sn->abort = true;
        while (sn->busy) {
            pthread_cond_broadcast(&sn->cv);
            pthread_cond_wait(&sn->cv, &sn->mu);
        }
        pthread_mutex_unlock(&sn->mu);
        sn->st.saving = 0;
        job_end(sn, j->err, "encoding");
        return;
    }
    sn->final_records = j->records;
    sn->finish = true;
    pthread_cond_signal(&sn->cv);
    pthread_mutex_unlock(&sn->mu);
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents)
{
    collect(w->data);
}

bool snapshot_save_start(struct snapshot *sn)
{
    if (sn->job.active) return false;
    if (!writer_start(sn)) {
        errno = EAGAIN;
        log_fail(sn, true, "snapshot: cannot start the writer thread for %s", sn->path);
        return false;
    }
    int64_t now_ms = (int64_t)(ev_now(sn->loop) * 1000.0);
    if (job_begin(sn, now_ms) < 0) {
        log_fail(sn, true, "snapshot: cannot save to %s: %s: %s", sn->path, sn->sink.what,
                 strerror(sn->sink.err));
        return false;
    }
    sn->job.background = true;
    pthread_mutex_lock(&sn->mu);
    sn->busy = true;
    sn->done = sn->finish = sn->abort = false;
    pthread_mutex_unlock(&sn->mu);
    sn->st.saving = 1;
    ev_timer_set(&sn->step, 0.0, 0.0);
    ev_timer_start(sn->loop, &sn->step);
    return true;
}

static void on_periodic(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct snapshot *sn = w->data;
    if (sn->job.active) log_debug("snapshot: previous save still running; skipping this one");
    else snapshot_save_start(sn);
}

/* ---- synchronous save -------------------------------------------------- */

int snapshot_save(struct snapshot *sn, int64_t now_ms)
{
    cancel(sn);
    if (job_begin(sn, now_ms) < 0) {
        log_fail(sn, false, "snapshot: cannot save to %s: %s: %s (the previous file is kept)",
                 sn->path, sn->sink.what, strerror(sn->sink.err));
        return -1;
    }
    while (!job_walk(sn, SYNC_SLICE) && !sn->sink.err) {}
    emit_chunk(sn);
    if (sn->job.err) {
        sink_abort(&sn->sink, sn->tmp);
        job_end(sn, sn->job.err, "encoding");
        return -1;
    }
    sink_commit(&sn->sink, sn->job.records, sn->tmp, sn->path, sn->dir);
    job_end(sn, sn->sink.err, sn->sink.what);
    return sn->sink.err ? -1 : 0;
}

/* ---- loading ----------------------------------------------------------- */

/* Read all of path into *data (malloc'ed). Returns 0, or -1 with errno
 * and *what set. */
static int read_file(const char *path, char **data, size_t *len, const char **what)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return *what = "open", -1;
    struct stat stb;
    if (fstat(fd, &stb) != 0) {
        *what = "fstat";
        goto fail;
    }
    if (!S_ISREG(stb.st_mode)) {
        errno = EINVAL;
        *what = "not a regular file";
        goto fail;
    }
    size_t cap = (size_t)stb.st_size, n = 0;
    char *buf = malloc(cap ? cap : 1);
    if (!buf) {
        *what = "malloc";
        goto fail;
    }
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            free(buf);
            *what = "read";
            goto fail;
        }
        if (r == 0) break; /* shrank meanwhile: snap_parse will say so */
        n += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* Apply every record of a file snap_parse accepted. */
static void apply(struct snapshot *sn, const char *data, size_t len, struct hlc *hlc,
                  int64_t now_ms)
{
    struct snapshot_stats *st = &sn->st;
    struct snap_reader r;
    struct rc_record rec;
    int64_t collect_ms;
    snap_reader_init(&r, data, len);
    while (snap_next(&r, &rec, &collect_ms)) {
        if (rec.op == RC_OP_FLUSH) {
            store_flush(sn->store, rec.version, rec.origin_tag, now_ms);
            continue;
        }
        if (hlc) {
            hlc_observe(hlc, rec.version);
            hlc_observe(hlc, rec.exp_version);
        }
        bool tomb = rec.op != RC_OP_SET;
        if (tomb ? sn->cfg.tombstone_ttl_ms <= 0 || collect_ms <= now_ms
                 : rec.expire_ms != 0 && rec.expire_ms <= now_ms) {
            st->load_dropped++;
            continue;
        }
        struct store_write w;
        record_to_write(&rec, &w);
        switch (store_write(sn->store, &w, now_ms)) {
        case STORE_OK:
            if (tomb) st->loaded_tombstones++;
            else st->loaded_items++;
            break;
        case STORE_NOMEM:
        case STORE_TOO_LARGE:
            st->load_refused++;
            break;
        default:
            st->load_dropped++;
            break;
        }
    }
}

bool snapshot_load(struct snapshot *sn, struct hlc *hlc, int64_t now_ms)
{
    double t0 = ev_time();
    char *data;
    size_t len;
    const char *what = "";
    if (read_file(sn->path, &data, &len, &what) != 0) {
        if (errno == ENOENT) {
            log_info("snapshot: no file at %s yet: starting empty", sn->path);
        } else {
            sn->st.failures++;
            log_warn("snapshot: cannot read %s (%s: %s): starting empty", sn->path, what,
                     strerror(errno));
        }
        return false;
    }
    struct snap_info info;
    enum snap_status ps = snap_parse(data, len, &info);
    if (ps != SNAP_OK) {
        sn->st.failures++;
        char version[48] = "";
        if (ps == SNAP_ERR_VERSION)
            snprintf(version, sizeof version, " %u (this build reads %u)", info.version,
                     SNAP_VERSION);
        log_warn("snapshot: ignoring %s, starting empty: %s: %s%s (at byte %zu of %zu)",
                 sn->path, snap_status_name(ps), info.detail, version, info.at, len);
        free(data);
        return false;
    }
    char node[RC_MAX_ID_LEN + 1]; /* info points into data */
    for (size_t i = 0; i < info.node_id_len; i++) { /* printable only, for the log */
        unsigned char ch = (unsigned char)info.node_id[i];
        node[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    node[info.node_id_len] = '\0';
    apply(sn, data, len, hlc, now_ms);
    free(data);
    struct snapshot_stats *st = &sn->st;
    st->load_ms = (uint64_t)((ev_time() - t0) * 1000.0);
    int64_t age_s = (now_ms - info.written_ms) / 1000;
    log_info("snapshot: loaded %" PRIu64 " items and %" PRIu64 " tombstones from %s "
             "(written by node %s %" PRId64 " s ago) in %" PRIu64 " ms; %" PRIu64
             " dropped (expired or older)", st->loaded_items, st->loaded_tombstones, sn->path,
             node, age_s, st->load_ms, st->load_dropped);
    if (st->load_refused)
        log_warn("snapshot: %" PRIu64 " items of %s did not fit in --memory", st->load_refused,
                 sn->path);
    if (sn->cfg.tombstone_ttl_ms > 0 && age_s * 1000 > sn->cfg.tombstone_ttl_ms)
        log_warn("snapshot: %s is %" PRId64 " s old, older than --tombstone_ttl: a key deleted "
                 "in the pool meanwhile may come back from it", sn->path, age_s);
    return true;
}

/* ---- lifetime ---------------------------------------------------------- */

struct snapshot *snapshot_create(struct ev_loop *loop, const struct snapshot_config *cfg,
                                 struct store *store)
{
    if (!cfg->path || !*cfg->path || strlen(cfg->path) >= PATH_MAX) {
        errno = EINVAL;
        return NULL;
    }
    struct snapshot *sn = calloc(1, sizeof *sn);
    if (!sn) return NULL;
    sn->cfg = *cfg;
    sn->loop = loop;
    sn->store = store;
    sn->sink.fd = -1;
    snprintf(sn->path, sizeof sn->path, "%s", cfg->path);
    snprintf(sn->tmp, sizeof sn->tmp, "%s.tmp", cfg->path);
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", cfg->path);
    snprintf(sn->dir, sizeof sn->dir, "%s", dirname(copy));
    sn->cfg.path = sn->path;
    atomic_init(&sn->queued, 0);
    pthread_mutex_init(&sn->mu, NULL);
    pthread_cond_init(&sn->cv, NULL);
    ev_async_init(&sn->async, on_async);
    sn->async.data = sn;
    ev_async_start(loop, &sn->async);
    ev_init(&sn->step, on_step);
    sn->step.data = sn;
    ev_set_priority(&sn->step, EV_MINPRI); /* after the clients of the same turn */
    ev_init(&sn->periodic, on_periodic);
    sn->periodic.data = sn;
    if (cfg->interval_s > 0) {
        ev_timer_set(&sn->periodic, cfg->interval_s, cfg->interval_s);
        ev_timer_start(loop, &sn->periodic);
    }
    return sn;
}

void snapshot_destroy(struct snapshot *sn)
{
    if (!sn) return;
    cancel(sn);
    if (sn->thread_started) {
        pthread_mutex_lock(&sn->mu);
        sn->stop = true;
        pthread_cond_broadcast(&sn->cv);
        pthread_mutex_unlock(&sn->mu);
        pthread_join(sn->thread, NULL);
    }
    ev_timer_stop(sn->loop, &sn->periodic);
    ev_timer_stop(sn->loop, &sn->step);
    ev_async_stop(sn->loop, &sn->async);
    snap_chunk_free(&sn->job.chunk);
    pthread_mutex_destroy(&sn->mu);
    pthread_cond_destroy(&sn->cv);
    free(sn);
}

void snapshot_get_stats(const struct snapshot *sn, struct snapshot_stats *out)
{
    if (!sn) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = sn->st;
}
