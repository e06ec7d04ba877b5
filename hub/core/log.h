/* The hub's one logger: JSON lines on stderr (or a file), with the thread's context
 * (route or connector name) in every line. Library diagnostics (librdkafka, libxml2,
 * xmlsec) are routed here by their glue code. */
#ifndef HUB_LOG_H
#define HUB_LOG_H

#include <stdio.h>

enum hub_log_level { HUB_LOG_DEBUG = 0, HUB_LOG_INFO, HUB_LOG_WARN, HUB_LOG_ERROR };

/* Lines below `level` are dropped. Default INFO; LT_LOG_LEVEL=debug|info|warn|error sets it. */
void hub_log_set_level(enum hub_log_level level);
enum hub_log_level hub_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int hub_log_level_parse(const char *s);
/* Where lines go (default stderr). Not owned. */
void hub_log_set_stream(FILE *f);

/* Per-thread context written into each line: kind is "route" or "connector". Borrowed: the
 * strings must live while the context is set. NULL clears. */
void hub_log_set_context(const char *kind, const char *name);

/* {"ts":"...","level":"info","component":COMPONENT,"route":"...","msg":"..."} */
void hub_log(enum hub_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append `s` (len bytes) to `out` as the inside of a JSON string; returns bytes written
 * (truncates to keep within `cap`, always NUL-terminates when cap > 0). */
size_t hub_json_escape(char *out, size_t cap, const char *s, size_t len);

#endif
