/*
 * snapshot.h - warm restart: the store saved to a file and loaded back
 * (--snapshot FILE, --snapshot_interval SECONDS). The file format is
 * snap_codec.h's; docs/operations.md ("Warm restart") is the operator's view.
 *
 * Owns: the save in progress (a walk of the store, encoded in chunks), the
 * writer thread of background saves, the periodic timer, the snapshot
 * counters. Loop thread only, except the writer thread, which touches
 * nothing but its queue of encoded chunks and the file.
 *
 * What is saved. Every linked item of the store becomes one record through
 * record_of_item() (record.h): a live item a SET (value, client flags,
 * absolute expiry, both stamps), a delete's tombstone a DEL, an expiry's
 * tombstone an EXPIRED, each tombstone with the time the store collects it;
 * the flush watermark, if any, a FLUSH record. Left out: items below a
 * flush watermark in effect, and items expired but not yet collected when
 * the store keeps no tombstones (standalone).
 *
 * Atomic replacement. The file is written to FILE.tmp in the same folder,
 * fsync'ed, renamed over FILE, then the folder is fsync'ed: whoever opens
 * FILE sees the previous file or the new one, whole. A failed save removes
 * FILE.tmp and keeps the previous FILE.
 *
 *   snapshot_save()        on the caller's thread, start to end (shutdown:
 *                          main.c calls it after the outbox is published).
 *   snapshot_save_start()  in the background (also every interval): each
 *                          loop turn encodes the store for at most
 *                          SNAPSHOT_STEP_MS, at the loop's lowest priority
 *                          like the expiry cycle, and queues 1 MiB chunks
 *                          to the writer thread, which writes, hashes and
 *                          fsyncs; the loop never waits for the disk, and
 *                          pauses the walk while SNAPSHOT_QUEUE_BYTES are
 *                          queued. Writes made during the walk may or may
 *                          not be in the file (a fuzzy snapshot, spread
 *                          over the save): on load, records merge by LWW,
 *                          and a replicated node then catches up from the
 *                          pool.
 *
 * Loading (snapshot_load, at start, before the node serves or joins
 * replication). The whole file is read and validated by snap_parse()
 * before anything is applied, so a bad file changes nothing: one warn line
 * names the file and the problem and the node starts empty (the file is
 * replaced at the next save). A missing file is normal (one info line).
 * Records go through record_to_write() and store_write(), the watermark
 * through store_flush(); a SET whose expiry passed and a tombstone whose
 * collection time passed are dropped. A loaded tombstone is kept for the
 * store's tombstone_ttl from the load (longer than needed, never shorter).
 * Every stamp read is folded into the HLC, so local writes after a restart
 * stay newer than the loaded data even if the clock went back.
 */
#ifndef VITAMIN_SNAPSHOT_H
#define VITAMIN_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

struct ev_loop;
struct store;
struct hlc;
struct snapshot;

#define SNAPSHOT_STEP_MS 1.0              /* loop time per turn of a background save */
#define SNAPSHOT_CHUNK_BYTES (1u << 20)   /* a batch is closed past this size */
#define SNAPSHOT_QUEUE_BYTES (16u << 20)  /* encoded, not yet written: walk pauses */

struct snapshot_config {
    const char *path;         /* FILE; FILE.tmp is used while writing */
    const char *node_id;      /* written in the header */
    uint32_t interval_s;      /* background save every interval; 0 = none */
    int64_t tombstone_ttl_ms; /* the store's (0: it keeps no tombstones) */
};

struct snapshot_stats {
    uint64_t saves;              /* files written and renamed into place */
    uint64_t failures;           /* failed saves + files that could not be loaded */
    uint64_t saving;             /* 1 while a background save runs */
    uint64_t saved_items;        /* last save: live items */
    uint64_t saved_tombstones;   /* last save: tombstones */
    uint64_t save_bytes;         /* last save: file size */
    uint64_t save_ms;            /* last save: from start to renamed */
    uint64_t save_slice_max_us;  /* last background save: longest loop turn spent on it */
    uint64_t last_save_time;     /* unix s when the last good save began; 0 = none */
    uint64_t loaded_items;       /* live items applied at start */
    uint64_t loaded_tombstones;  /* tombstones applied at start */
    uint64_t load_dropped;       /* records skipped: expired, collected, older */
    uint64_t load_refused;       /* records the store refused (memory cap) */
    uint64_t load_ms;            /* reading, validating and applying the file */
};

/* Returns NULL on ENOMEM. Starts the periodic timer when interval_s > 0. */
struct snapshot *snapshot_create(struct ev_loop *loop, const struct snapshot_config *cfg,
                                 struct store *store);
/* Abandons a background save (FILE.tmp removed) and stops the thread. */
void snapshot_destroy(struct snapshot *sn);

/*
 * Load FILE into the store (normally empty) at now_ms, folding stamps into
 * hlc (may be NULL). Returns true if a file was loaded, false if there was
 * none or it was refused (then nothing was applied; logged, counted).
 */
bool snapshot_load(struct snapshot *sn, struct hlc *hlc, int64_t now_ms);

/*
 * Save now, on this thread, to the end; a background save under way is
 * abandoned first. Returns 0, or -1 (logged, counted; FILE unchanged).
 */
int snapshot_save(struct snapshot *sn, int64_t now_ms);

/* Start a background save; false if one is under way or FILE.tmp cannot
 * be created (logged, counted). Its end is seen by the loop. */
bool snapshot_save_start(struct snapshot *sn);

/* The counters; all zero when sn is NULL (no --snapshot). */
void snapshot_get_stats(const struct snapshot *sn, struct snapshot_stats *out);

#endif
