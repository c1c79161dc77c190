/*
 * record.c - records <-> store writes (see record.h).
 */
#include "record.h"

#include <stdbool.h>
#include <stddef.h>

#include "repl_codec.h"
#include "store.h"

void record_of_item(const struct item *it, int64_t now_ms, struct rc_record *rec)
{
    bool tomb = it->flags & ITEM_F_TOMBSTONE;
    bool expired = tomb ? (it->flags & ITEM_F_EXPIRED) != 0
                        : it->expire_ms && it->expire_ms <= now_ms;
    bool value = !tomb && !expired;
    *rec = (struct rc_record){
        .op = value ? RC_OP_SET : expired ? RC_OP_EXPIRED : RC_OP_DEL,
        .key = item_key(it),
        .key_len = it->key_len,
        .value = value ? item_value(it) : NULL,
        .value_len = value ? it->value_len : 0,
        .client_flags = value ? item_client_flags(it) : 0,
        .expire_ms = store_item_expiry(it),
        .version = it->version,
        .origin_tag = it->origin,
        .exp_version = item_exp_version(it),
        .exp_origin_tag = item_exp_origin(it),
    };
}

void record_to_write(const struct rc_record *rec, struct store_write *w)
{
    bool tomb = rec->op == RC_OP_DEL || rec->op == RC_OP_EXPIRED;
    *w = (struct store_write){
        .key = rec->key,
        .key_len = rec->key_len,
        .has_value = true,
        .tomb = tomb,
        .expired = rec->op == RC_OP_EXPIRED,
        .value = rec->value,
        .value_len = rec->value_len,
        .client_flags = rec->client_flags,
        .version = rec->version,
        .origin = rec->origin_tag,
        .has_expiry = true,
        .expire_ms = rec->expire_ms,
        .exp_version = rec->exp_version,
        .exp_origin = rec->exp_origin_tag,
    };
}
