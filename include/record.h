/*
 * record.h - the one bridge between replication records (repl_codec.h) and
 * the store (store.h), used by everything that moves items as records:
 * replication, state transfer and snapshots.
 *
 * Owns: the mapping, both ways. A live item is a SET record; a delete's
 * tombstone a DEL; an expiry's tombstone (or an item found expired, not yet
 * collected) an EXPIRED record. Records carry both registers' stamps, so
 * applying one through store_write merges exactly as docs/replication.md
 * ("Merge rules") says.
 */
#ifndef VITAMIN_RECORD_H
#define VITAMIN_RECORD_H

#include <stdint.h>

struct item;
struct rc_record;
struct store_write;

/* The record that carries item it as of now_ms (pointers into the item). */
void record_of_item(const struct item *it, int64_t now_ms, struct rc_record *rec);

/* The store write that applies rec (pointers into the record). rec must not
 * be a FLUSH record (that is store_flush). */
void record_to_write(const struct rc_record *rec, struct store_write *w);

#endif
