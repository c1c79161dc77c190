/*
 * log.h - leveled logging to stderr.
 *
 * Owns: the process-wide log level. Policy (docs/operations.md):
 *   error - the server cannot do what it was asked (bind failed, ENOMEM)
 *   warn  - a state change an operator should see, logged once per change
 *           (broker link lost, outbox overflow), never once per retry
 *   info  - lifecycle: listening, broker link up, shutdown summary
 *   debug - per-connection events; a client's mistake is never above debug
 */
#ifndef VITAMIN_LOG_H
#define VITAMIN_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_level_current;

void log_set_level(enum log_level level);
/* Parse "error|warn|info|debug". Returns 0, or -1 if unknown. */
int log_parse_level(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);
void log_write(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                     \
    do {                                                                     \
        if ((lvl) <= log_level_current) log_write((lvl), __VA_ARGS__);       \
    } while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
