/*
 * resp_command.c - the command table of the Redis protocol, its name index,
 * and the COMMAND command (COUNT LIST INFO DOCS) that clients and
 * redis-cli read it through.
 *
 * The table is the single source of truth: the dispatcher takes each
 * command's handler, arity, flags and key positions from it, COMMAND INFO
 * shows the same, and COMMAND DOCS turns each entry's argument syntax into
 * Redis's documentation replies (redis-cli 7 asks for them when its
 * interactive mode starts and builds `help` and its hints from them).
 *
 * Argument syntax (the `args` field), close to how Redis prints it:
 *
 *   key            an argument named "key", type key (other names: integer
 *                  for numeric names, pattern, unix-time-*, else string;
 *                  "name:type" says the type explicitly)
 *   NX             a pure token;  EX seconds  a token with a value
 *   [ ... ]        optional;  ( ... ) a group;  a|b  one of them;  x...  repeats
 *   [name=...]     names the block or choice (Redis: "condition", "expiration")
 */
#include <string.h>

#include "glob.h"
#include "resp_internal.h"

/* ---- the table ----------------------------------------------------------- */

#define W RS_F_WRITE
#define R RS_F_READONLY
#define M RS_F_DENYOOM
#define F RS_F_FAST
#define N RS_F_NOAUTH
#define L RS_F_LOADING

#define EXP_ARGS "[condition=NX|XX|GT|LT]"
#define TTL_ARGS "EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds"

static const struct rs_cmd client_subs[] = {
    {"client|getname", rs_client_getname, 2, L | F, 0, 0, 0, "connection", "2.6.9",
     "Returns the name of the connection", "O(1)", "", NULL},
    {"client|help", rs_help, 2, L | F, 0, 0, 0, "connection", "5.0.0",
     "Returns helpful text about the different subcommands", "O(1)", "", NULL},
    {"client|id", rs_client_id, 2, L | F, 0, 0, 0, "connection", "5.0.0",
     "Returns the unique client ID of the connection", "O(1)", "", NULL},
    {"client|info", rs_client_info, 2, L | F, 0, 0, 0, "connection", "6.2.0",
     "Returns information about the connection", "O(1)", "", NULL},
    {"client|list", rs_client_list, -2, L, 0, 0, 0, "connection", "2.4.0",
     "Lists open connections", "O(N) where N is the number of client connections",
     "[TYPE client-type] [ID client-id...]", NULL},
    {"client|setinfo", rs_client_setinfo, 4, L | F, 0, 0, 0, "connection", "7.2.0",
     "Sets information specific to the client or connection", "O(1)",
     "(attr=LIB-NAME libname|LIB-VER libver)", NULL},
    {"client|setname", rs_client_setname, 3, L | F, 0, 0, 0, "connection", "2.6.9",
     "Sets the connection name", "O(1)", "connection-name", NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct rs_cmd command_subs[] = {
    {"command|count", rs_command_count, 2, L, 0, 0, 0, "server", "2.8.13",
     "Returns a count of commands", "O(1)", "", NULL},
    {"command|docs", rs_command_docs, -2, L, 0, 0, 0, "server", "7.0.0",
     "Returns documentary information about one, multiple or all commands",
     "O(N) where N is the number of commands to look up", "[command-name...]", NULL},
    {"command|help", rs_help, 2, L, 0, 0, 0, "server", "5.0.0",
     "Returns helpful text about the different subcommands", "O(1)", "", NULL},
    {"command|info", rs_command_info, -2, L, 0, 0, 0, "server", "2.8.13",
     "Returns information about one, multiple or all commands",
     "O(N) where N is the number of commands to look up", "[command-name...]", NULL},
    {"command|list", rs_command_list, -2, L, 0, 0, 0, "server", "7.0.0",
     "Returns a list of command names", "O(N) where N is the total number of commands",
     "[FILTERBY (filterby=MODULE module-name|ACLCAT category|PATTERN pattern)]", NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct rs_cmd config_subs[] = {
    {"config|get", rs_config_get, -3, L, 0, 0, 0, "server", "2.0.0",
     "Returns the effective values of configuration parameters",
     "O(N) when N is the number of configuration parameters provided", "parameter...", NULL},
    {"config|help", rs_help, 2, L, 0, 0, 0, "server", "5.0.0",
     "Returns helpful text about the different subcommands", "O(1)", "", NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL},
};

const struct rs_cmd rs_commands[] = {
    /* strings */
    {"get", rs_get, 2, R | F, 1, 1, 1, "string", "1.0.0", "Returns the string value of a key",
     "O(1)", "key", NULL},
    {"set", rs_set_cmd, -3, W | M, 1, 1, 1, "string", "1.0.0",
     "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist",
     "O(1)", "key value [condition=NX|XX] [GET] [expiration=" TTL_ARGS "|KEEPTTL]", NULL},
    {"setnx", rs_setnx, 3, W | M | F, 1, 1, 1, "string", "1.0.0",
     "Set the string value of a key only when the key doesn't exist", "O(1)", "key value", NULL},
    {"setex", rs_setex, 4, W | M, 1, 1, 1, "string", "2.0.0",
     "Sets the string value and expiration time of a key", "O(1)", "key seconds value", NULL},
    {"psetex", rs_psetex, 4, W | M, 1, 1, 1, "string", "2.6.0",
     "Sets both string value and expiration time in milliseconds of a key", "O(1)",
     "key milliseconds value", NULL},
    {"getset", rs_getset, 3, W | M | F, 1, 1, 1, "string", "1.0.0",
     "Returns the previous string value of a key after setting it to a new value", "O(1)",
     "key value", NULL},
    {"getdel", rs_getdel, 2, W | F, 1, 1, 1, "string", "6.2.0",
     "Returns the string value of a key after deleting the key", "O(1)", "key", NULL},
    {"getex", rs_getex, -2, W | F, 1, 1, 1, "string", "6.2.0",
     "Returns the string value of a key after setting its expiration time", "O(1)",
     "key [expiration=" TTL_ARGS "|PERSIST]", NULL},
    {"mget", rs_mget, -2, R | F, 1, -1, 1, "string", "1.0.0",
     "Atomically returns the string values of one or more keys",
     "O(N) where N is the number of keys to retrieve", "key...", NULL},
    {"mset", rs_mset, -3, W | M, 1, -1, 2, "string", "1.0.1",
     "Atomically creates or modifies the string values of one or more keys",
     "O(N) where N is the number of keys to set", "(data=key value)...", NULL},
    {"msetnx", rs_msetnx, -3, W | M, 1, -1, 2, "string", "1.0.1",
     "Atomically modifies the string values of one or more keys only when all keys don't exist",
     "O(N) where N is the number of keys to set", "(data=key value)...", NULL},
    {"incr", rs_incr, 2, W | M | F, 1, 1, 1, "string", "1.0.0",
     "Increments the integer value of a key by one", "O(1)", "key", NULL},
    {"decr", rs_decr, 2, W | M | F, 1, 1, 1, "string", "1.0.0",
     "Decrements the integer value of a key by one", "O(1)", "key", NULL},
    {"incrby", rs_incrby, 3, W | M | F, 1, 1, 1, "string", "1.0.0",
     "Increments the integer value of a key by a number", "O(1)", "key increment", NULL},
    {"decrby", rs_decrby, 3, W | M | F, 1, 1, 1, "string", "1.0.0",
     "Decrements a number from the integer value of a key", "O(1)", "key decrement", NULL},
    {"incrbyfloat", rs_incrbyfloat, 3, W | M | F, 1, 1, 1, "string", "2.6.0",
     "Increment the floating point value of a key by a number", "O(1)",
     "key increment:double", NULL},
    {"append", rs_append, 3, W | M | F, 1, 1, 1, "string", "2.0.0",
     "Appends a string to the value of a key. Creates the key if it doesn't exist", "O(1)",
     "key value", NULL},
    {"strlen", rs_strlen, 2, R | F, 1, 1, 1, "string", "2.2.0",
     "Returns the length of a string value", "O(1)", "key", NULL},
    {"getrange", rs_getrange, 4, R, 1, 1, 1, "string", "2.4.0",
     "Returns a substring of the string stored at a key",
     "O(N) where N is the length of the returned string", "key start end", NULL},
    {"substr", rs_getrange, 4, R, 1, 1, 1, "string", "1.0.0",
     "Returns a substring from a string value",
     "O(N) where N is the length of the returned string", "key start end", NULL},
    {"setrange", rs_setrange, 4, W | M, 1, 1, 1, "string", "2.2.0",
     "Overwrites a part of a string value with another by an offset. Creates the key if it "
     "doesn't exist", "O(1)", "key offset value", NULL},
    /* keys */
    {"del", rs_del, -2, W, 1, -1, 1, "generic", "1.0.0", "Deletes one or more keys",
     "O(N) where N is the number of keys that will be removed", "key...", NULL},
    {"unlink", rs_del, -2, W | F, 1, -1, 1, "generic", "4.0.0",
     "Deletes one or more keys (as DEL: Vitamin frees memory at once)",
     "O(1) for each key removed", "key...", NULL},
    {"exists", rs_exists, -2, R | F, 1, -1, 1, "generic", "3.0.3",
     "Determines whether one or more keys exist", "O(N) where N is the number of keys to check",
     "key...", NULL},
    {"type", rs_type, 2, R | F, 1, 1, 1, "generic", "1.0.0",
     "Determines the type of value stored at a key", "O(1)", "key", NULL},
    {"expire", rs_expire, -3, W | F, 1, 1, 1, "generic", "1.0.0",
     "Sets the expiration time of a key in seconds", "O(1)", "key seconds " EXP_ARGS, NULL},
    {"pexpire", rs_pexpire, -3, W | F, 1, 1, 1, "generic", "2.6.0",
     "Sets the expiration time of a key in milliseconds", "O(1)",
     "key milliseconds " EXP_ARGS, NULL},
    {"expireat", rs_expireat, -3, W | F, 1, 1, 1, "generic", "1.2.0",
     "Sets the expiration time of a key to a Unix timestamp", "O(1)",
     "key unix-time-seconds " EXP_ARGS, NULL},
    {"pexpireat", rs_pexpireat, -3, W | F, 1, 1, 1, "generic", "2.6.0",
     "Sets the expiration time of a key to a Unix milliseconds timestamp", "O(1)",
     "key unix-time-milliseconds " EXP_ARGS, NULL},
    {"ttl", rs_ttl, 2, R | F, 1, 1, 1, "generic", "1.0.0",
     "Returns the expiration time in seconds of a key", "O(1)", "key", NULL},
    {"pttl", rs_pttl, 2, R | F, 1, 1, 1, "generic", "2.6.0",
     "Returns the expiration time in milliseconds of a key", "O(1)", "key", NULL},
    {"expiretime", rs_expiretime, 2, R | F, 1, 1, 1, "generic", "7.0.0",
     "Returns the expiration time of a key as a Unix timestamp", "O(1)", "key", NULL},
    {"pexpiretime", rs_pexpiretime, 2, R | F, 1, 1, 1, "generic", "7.0.0",
     "Returns the expiration time of a key as a Unix milliseconds timestamp", "O(1)", "key", NULL},
    {"persist", rs_persist, 2, W | F, 1, 1, 1, "generic", "2.2.0",
     "Removes the expiration time of a key", "O(1)", "key", NULL},
    {"scan", rs_scan, -2, R, 0, 0, 0, "generic", "2.8.0", "Iterates over the key names",
     "O(1) for every call. O(N) for a complete iteration",
     "cursor [MATCH pattern] [COUNT count] [TYPE type]", NULL},
    {"keys", rs_keys, 2, R, 0, 0, 0, "generic", "1.0.0",
     "Returns all key names that match a pattern", "O(N) with N being the number of keys",
     "pattern", NULL},
    {"randomkey", rs_randomkey, 1, R, 0, 0, 0, "generic", "1.0.0",
     "Returns a random key name", "O(1)", "", NULL},
    /* connection */
    {"ping", rs_ping, -1, F, 0, 0, 0, "connection", "1.0.0", "Returns the server's liveliness response",
     "O(1)", "[message]", NULL},
    {"echo", rs_echo, 2, F, 0, 0, 0, "connection", "1.0.0", "Returns the given string", "O(1)",
     "message", NULL},
    {"quit", rs_quit, -1, N | L | F, 0, 0, 0, "connection", "1.0.0", "Closes the connection",
     "O(1)", "", NULL},
    {"hello", rs_hello, -1, N | L | F, 0, 0, 0, "connection", "6.0.0", "Handshakes with the server",
     "O(1)", "[arguments=protover [AUTH username password] [SETNAME clientname]]", NULL},
    {"auth", rs_auth, -2, N | L | F, 0, 0, 0, "connection", "1.0.0", "Authenticates the connection",
     "O(N) where N is the number of passwords defined for the user", "[username] password", NULL},
    {"select", rs_select, 2, L | F, 0, 0, 0, "connection", "1.0.0",
     "Changes the selected database (Vitamin has database 0 only)", "O(1)", "index", NULL},
    {"reset", rs_reset, 1, N | L | F, 0, 0, 0, "connection", "6.2.0", "Resets the connection",
     "O(1)", "", NULL},
    {"client", NULL, -2, 0, 0, 0, 0, "connection", "2.4.0",
     "A container for client connection commands", "Depends on subcommand.", "", client_subs},
    /* server */
    {"command", rs_command, -1, L, 0, 0, 0, "server", "2.8.13",
     "Returns detailed information about all commands", "O(N) where N is the total number of commands",
     "", command_subs},
    {"config", NULL, -2, 0, 0, 0, 0, "server", "2.0.0",
     "A container for server configuration commands", "Depends on subcommand.", "", config_subs},
    {"info", rs_info, -1, L, 0, 0, 0, "server", "1.0.0",
     "Returns information and statistics about the server", "O(1)", "[section...]", NULL},
    {"dbsize", rs_dbsize, 1, R | F, 0, 0, 0, "server", "1.0.0", "Returns the number of keys in the database",
     "O(1)", "", NULL},
    {"flushall", rs_flushall, -1, W, 0, 0, 0, "server", "1.0.0", "Removes all keys from all databases",
     "O(N) where N is the total number of keys in all databases", "[flush-type=ASYNC|SYNC]", NULL},
    {"flushdb", rs_flushall, -1, W, 0, 0, 0, "server", "1.0.0",
     "Remove all keys from the current database",
     "O(N) where N is the number of keys in the selected database", "[flush-type=ASYNC|SYNC]", NULL},
    {"time", rs_time, 1, L | F, 0, 0, 0, "server", "2.6.0", "Returns the server time", "O(1)", "", NULL},
};
const size_t rs_ncommands = sizeof rs_commands / sizeof rs_commands[0];

/* ---- lookup --------------------------------------------------------------- */

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

void rs_index_build(struct resp_serve *r)
{
    for (size_t i = 0; i < rs_ncommands; i++) {
        const char *name = rs_commands[i].name;
        uint32_t h = name_hash(name, strlen(name)) & (RS_INDEX_SLOTS - 1);
        while (r->index[h]) h = (h + 1) & (RS_INDEX_SLOTS - 1);
        r->index[h] = (uint16_t)(i + 1);
    }
}

const struct rs_cmd *rs_lookup(const struct resp_serve *r, const char *name, size_t len)
{
    char low[RS_NAME_MAX];
    if (len == 0 || len > RS_NAME_MAX) return NULL;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        low[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    for (uint32_t h = name_hash(low, len) & (RS_INDEX_SLOTS - 1); r->index[h];
         h = (h + 1) & (RS_INDEX_SLOTS - 1)) {
        const struct rs_cmd *cmd = &rs_commands[r->index[h] - 1];
        if (strlen(cmd->name) == len && memcmp(cmd->name, low, len) == 0) return cmd;
    }
    return NULL;
}

const struct rs_cmd *rs_lookup_sub(const struct rs_cmd *cmd, const char *name, size_t len)
{
    for (const struct rs_cmd *s = cmd->subs; s && s->name; s++) {
        const char *sub = strchr(s->name, '|') + 1;
        if (strlen(sub) == len && strncasecmp(sub, name, len) == 0) return s;
    }
    return NULL;
}

/* "get" or "client|list" (any case); NULL if unknown. */
static const struct rs_cmd *find_full(const struct resp_serve *r, const char *name, size_t len)
{
    const char *bar = memchr(name, '|', len);
    const struct rs_cmd *cmd = rs_lookup(r, name, bar ? (size_t)(bar - name) : len);
    if (!cmd || !bar) return cmd;
    return cmd->subs ? rs_lookup_sub(cmd, bar + 1, len - (size_t)(bar - name) - 1) : NULL;
}

static size_t nsubs(const struct rs_cmd *cmd)
{
    size_t n = 0;
    while (cmd->subs && cmd->subs[n].name) n++;
    return n;
}

/* ---- COMMAND, COUNT, LIST, INFO ------------------------------------------ */

static void info_one(struct rs_call *c, const struct rs_cmd *cmd)
{
    static const struct {
        unsigned flag;
        const char *name;
    } names[] = {{RS_F_WRITE, "write"},   {RS_F_READONLY, "readonly"}, {RS_F_DENYOOM, "denyoom"},
                 {RS_F_ADMIN, "admin"},   {RS_F_NOAUTH, "no_auth"},    {RS_F_LOADING, "loading"},
                 {RS_F_LOADING, "stale"}, {RS_F_FAST, "fast"}};
    size_t nflags = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) nflags += (cmd->flags & names[i].flag) != 0;
    rs_array(c, 10);
    rs_bulk_str(c, cmd->name);
    rs_int(c, cmd->arity);
    rs_set(c, nflags);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (cmd->flags & names[i].flag) rs_simple(c, names[i].name);
    rs_int(c, cmd->first_key);
    rs_int(c, cmd->last_key);
    rs_int(c, cmd->key_step);
    const char *cats[4];
    size_t ncats = 0;
    if (cmd->flags & RS_F_WRITE) cats[ncats++] = "@write";
    if (cmd->flags & RS_F_READONLY) cats[ncats++] = "@read";
    cats[ncats++] = !strcmp(cmd->group, "string") ? "@string"
                    : !strcmp(cmd->group, "generic") ? "@keyspace"
                    : !strcmp(cmd->group, "connection") ? "@connection" : "@admin";
    cats[ncats++] = (cmd->flags & RS_F_FAST) ? "@fast" : "@slow";
    rs_set(c, ncats);
    for (size_t i = 0; i < ncats; i++) rs_simple(c, cats[i]);
    rs_set(c, 0); /* tips */
    rs_set(c, 0); /* key specs: first/last/step say it all here */
    rs_set(c, nsubs(cmd));
    for (size_t i = 0; i < nsubs(cmd); i++) info_one(c, &cmd->subs[i]);
}

void rs_command(struct rs_call *c)
{
    rs_array(c, rs_ncommands);
    for (size_t i = 0; i < rs_ncommands; i++) info_one(c, &rs_commands[i]);
}

void rs_command_count(struct rs_call *c) { rs_int(c, (long long)rs_ncommands); }

void rs_command_info(struct rs_call *c)
{
    if (c->argc == 2) return rs_command(c);
    rs_array(c, c->argc - 2);
    for (size_t j = 2; j < c->argc; j++) {
        const struct rs_cmd *cmd = find_full(c->r, c->argv[j].ptr, c->argv[j].len);
        if (cmd) info_one(c, cmd);
        else rs_null(c);
    }
}

/* COMMAND LIST [FILTERBY MODULE m | ACLCAT cat | PATTERN p]: names with
 * subcommands; no modules; ACLCAT filters by the group's category. */
static bool list_match(const struct rs_call *c, const char *name, const struct rs_cmd *cmd)
{
    if (c->argc == 2) return true;
    const struct resp_arg *v = &c->argv[4];
    if (rs_arg_is(c, 3, "PATTERN")) return glob_match(v->ptr, v->len, name, strlen(name), true);
    if (rs_arg_is(c, 3, "ACLCAT"))
        return (v->len == 6 && !strncasecmp(v->ptr, "string", 6) && !strcmp(cmd->group, "string")) ||
               (v->len == 8 && !strncasecmp(v->ptr, "keyspace", 8) && !strcmp(cmd->group, "generic"));
    return false;
}

void rs_command_list(struct rs_call *c)
{
    if (c->argc != 2 && !(c->argc == 5 && rs_arg_is(c, 2, "FILTERBY") &&
                          (rs_arg_is(c, 3, "MODULE") || rs_arg_is(c, 3, "ACLCAT") ||
                           rs_arg_is(c, 3, "PATTERN"))))
        return rs_error(c, "ERR syntax error");
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) rs_array(c, n);
        for (size_t i = 0; i < rs_ncommands; i++) {
            const struct rs_cmd *cmd = &rs_commands[i];
            for (size_t k = 0; k <= nsubs(cmd); k++) {
                const struct rs_cmd *e = k == 0 ? cmd : &cmd->subs[k - 1];
                if (!list_match(c, e->name, e)) continue;
                if (pass == 0) n++;
                else rs_bulk_str(c, e->name);
            }
        }
    }
}

/* ---- COMMAND DOCS ---------------------------------------------------------- */

enum dtype { D_KEY, D_STRING, D_INTEGER, D_DOUBLE, D_PATTERN, D_UNIX_TIME, D_TOKEN, D_ONEOF, D_BLOCK };
static const char *const dtype_names[] = {"key",       "string",     "integer", "double", "pattern",
                                          "unix-time", "pure-token", "oneof",   "block"};

/* One argument of the syntax tree. */
struct dnode {
    const char *name;  /* into the syntax text; lowered when shown */
    size_t name_len;
    const char *token; /* NULL: no token */
    size_t token_len;
    enum dtype type;
    bool optional, multiple;
    int first, next;   /* first child, next sibling: indices, -1 none */
};

#define DNODES 48

struct dparse {
    const char *p;
    struct dnode n[DNODES];
    int len;
};

static int new_node(struct dparse *d)
{
    if (d->len == DNODES) return -1;
    d->n[d->len] = (struct dnode){.first = -1, .next = -1};
    return d->len++;
}

static bool is_upper(char ch) { return ch >= 'A' && ch <= 'Z'; }
static bool word_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || is_upper(ch) || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '_';
}

static size_t word_len(const char *p)
{
    size_t n = 0;
    while (word_char(p[n])) n++;
    return n;
}

/* The type a value argument's name implies ("name:type" overrides). */
static enum dtype type_of(struct dparse *d, struct dnode *x)
{
    static const char *const ints[] = {"seconds", "milliseconds", "offset", "start", "end", "count",
                                       "increment", "decrement", "index", "protover", "client-id", "cursor"};
    if (*d->p == ':') {
        size_t n = word_len(++d->p);
        for (int t = D_KEY; t <= D_UNIX_TIME; t++)
            if (strlen(dtype_names[t]) == n && !memcmp(dtype_names[t], d->p, n)) {
                d->p += n;
                return (enum dtype)t;
            }
        d->p += n;
    }
    if (x->name_len == 3 && !memcmp(x->name, "key", 3)) return D_KEY;
    if (x->name_len == 7 && !memcmp(x->name, "pattern", 7)) return D_PATTERN;
    if (x->name_len > 9 && !memcmp(x->name, "unix-time", 9)) return D_UNIX_TIME;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (strlen(ints[i]) == x->name_len && !memcmp(ints[i], x->name, x->name_len)) return D_INTEGER;
    return D_STRING;
}

static int parse_seq(struct dparse *d);

/* [..] ( .. ) or a word, then an optional "...". */
static int parse_item(struct dparse *d)
{
    int me;
    if (*d->p == '[' || *d->p == '(') {
        bool optional = *d->p++ == '[';
        const char *label = NULL;
        size_t label_len = word_len(d->p);
        if (label_len && d->p[label_len] == '=') {
            label = d->p;
            d->p += label_len + 1;
        }
        int alts[8], nalt = 0;
        do {
            if (nalt && *d->p == '|') d->p++;
            int a = parse_seq(d);
            if (a < 0 || nalt == 8) return -1;
            if (d->n[a].next >= 0) { /* several arguments: a block */
                int b = new_node(d);
                if (b < 0) return -1;
                d->n[b].type = D_BLOCK;
                d->n[b].name = d->n[a].name;
                d->n[b].name_len = d->n[a].name_len;
                d->n[b].first = a;
                a = b;
            }
            alts[nalt++] = a;
        } while (*d->p == '|');
        if (*d->p != ']' && *d->p != ')') return -1;
        d->p++;
        if (nalt == 1) {
            me = alts[0];
        } else {
            if ((me = new_node(d)) < 0) return -1;
            d->n[me].type = D_ONEOF;
            d->n[me].first = alts[0];
            for (int i = 1; i < nalt; i++) d->n[alts[i - 1]].next = alts[i];
        }
        if (label) {
            d->n[me].name = label;
            d->n[me].name_len = label_len;
        }
        d->n[me].optional = optional;
    } else {
        size_t n = word_len(d->p);
        if (n == 0 || (me = new_node(d)) < 0) return -1;
        struct dnode *x = &d->n[me];
        x->name = d->p;
        x->name_len = n;
        d->p += n;
        if (is_upper(x->name[0])) { /* a token, alone or with its value */
            x->token = x->name;
            x->token_len = n;
            x->type = D_TOKEN;
            if (d->p[0] == ' ' && d->p[1] >= 'a' && d->p[1] <= 'z') {
                x->name = ++d->p;
                x->name_len = word_len(d->p);
                d->p += x->name_len;
                x->type = type_of(d, x);
            }
        } else {
            x->type = type_of(d, x);
        }
    }
    if (!strncmp(d->p, "...", 3)) {
        d->n[me].multiple = true;
        d->p += 3;
    }
    return me;
}

/* Items up to ']', ')', '|' or the end; returns the first (linked by next). */
static int parse_seq(struct dparse *d)
{
    int first = -1, last = -1;
    for (;;) {
        while (*d->p == ' ') d->p++;
        if (!*d->p || *d->p == ']' || *d->p == ')' || *d->p == '|') return first;
        int x = parse_item(d);
        if (x < 0) return -1;
        if (last >= 0) d->n[last].next = x;
        else first = x;
        last = x;
    }
}

static void docs_args(struct rs_call *c, const struct dparse *d, int first);

static void docs_arg(struct rs_call *c, const struct dparse *d, int i)
{
    const struct dnode *x = &d->n[i];
    bool flags = x->optional || x->multiple;
    rs_map(c, 2 + (x->type == D_KEY) + (x->token != NULL) + flags + (x->first >= 0));
    char name[64];
    size_t nl = x->name_len < sizeof name ? x->name_len : sizeof name;
    for (size_t k = 0; k < nl; k++)
        name[k] = is_upper(x->name[k]) ? (char)(x->name[k] + 32) : x->name[k];
    rs_bulk_str(c, "name");
    rs_bulk(c, name, nl);
    rs_bulk_str(c, "type");
    rs_bulk_str(c, dtype_names[x->type]);
    if (x->type == D_KEY) {
        rs_bulk_str(c, "key_spec_index");
        rs_int(c, 0);
    }
    if (x->token) {
        rs_bulk_str(c, "token");
        rs_bulk(c, x->token, x->token_len);
    }
    if (flags) {
        rs_bulk_str(c, "flags");
        rs_set(c, (size_t)x->optional + x->multiple);
        if (x->optional) rs_simple(c, "optional");
        if (x->multiple) rs_simple(c, "multiple");
    }
    if (x->first >= 0) {
        rs_bulk_str(c, "arguments");
        docs_args(c, d, x->first);
    }
}

static void docs_args(struct rs_call *c, const struct dparse *d, int first)
{
    size_t n = 0;
    for (int k = first; k >= 0; k = d->n[k].next) n++;
    rs_array(c, n);
    for (int k = first; k >= 0; k = d->n[k].next) docs_arg(c, d, k);
}

static void docs_one(struct rs_call *c, const struct rs_cmd *cmd)
{
    struct dparse d = {.p = cmd->args, .len = 0};
    int args = parse_seq(&d);
    if (*d.p) args = -1; /* a syntax this parser does not know: no arguments */
    size_t subs = nsubs(cmd);
    rs_map(c, 4 + (args >= 0) + (subs > 0));
    rs_bulk_str(c, "summary");
    rs_bulk_str(c, cmd->summary);
    rs_bulk_str(c, "since");
    rs_bulk_str(c, cmd->since);
    rs_bulk_str(c, "group");
    rs_bulk_str(c, cmd->group);
    rs_bulk_str(c, "complexity");
    rs_bulk_str(c, cmd->complexity);
    if (args >= 0) {
        rs_bulk_str(c, "arguments");
        docs_args(c, &d, args);
    }
    if (subs) {
        rs_bulk_str(c, "subcommands");
        rs_map(c, subs);
        for (size_t i = 0; i < subs; i++) {
            rs_bulk_str(c, cmd->subs[i].name);
            docs_one(c, &cmd->subs[i]);
        }
    }
}

void rs_command_docs(struct rs_call *c)
{
    size_t n = 0;
    for (size_t j = 2; j < c->argc; j++) n += find_full(c->r, c->argv[j].ptr, c->argv[j].len) != NULL;
    if (c->argc == 2) n = rs_ncommands;
    rs_map(c, n);
    for (size_t i = 0; c->argc == 2 && i < rs_ncommands; i++) {
        rs_bulk_str(c, rs_commands[i].name);
        docs_one(c, &rs_commands[i]);
    }
    for (size_t j = 2; j < c->argc; j++) {
        const struct rs_cmd *cmd = find_full(c->r, c->argv[j].ptr, c->argv[j].len);
        if (!cmd) continue;
        rs_bulk_str(c, cmd->name);
        docs_one(c, cmd);
    }
}
