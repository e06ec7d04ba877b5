/* JSON-lines logging with per-thread context. One fprintf per line keeps lines whole
 * when several threads log at once. */
#include "hub/core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum hub_log_level min_level = HUB_LOG_INFO;
static int level_from_env_done;
static FILE *stream;
static _Thread_local const char *ctx_kind;
static _Thread_local const char *ctx_name;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int hub_log_level_parse(const char *s) {
  for (int i = 0; s && i < 4; i++)
    if (strcasecmp(s, level_names[i]) == 0) return i;
  if (s && strcasecmp(s, "warning") == 0) return HUB_LOG_WARN;
  return -1;
}

static void level_from_env(void) {
  if (level_from_env_done) return;
  level_from_env_done = 1;
  int l = hub_log_level_parse(getenv("LT_LOG_LEVEL"));
  if (l >= 0) min_level = (enum hub_log_level)l;
}

void hub_log_set_level(enum hub_log_level level) {
  level_from_env_done = 1;
  min_level = level;
}

enum hub_log_level hub_log_get_level(void) {
  level_from_env();
  return min_level;
}

void hub_log_set_stream(FILE *f) { stream = f; }

void hub_log_set_context(const char *kind, const char *name) {
  ctx_kind = kind;
  ctx_name = name;
}

size_t hub_json_escape(char *out, size_t cap, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (cap == 0) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char buf[7];
    size_t n = 0;
    if (c == '"' || c == '\\') {
      buf[n++] = '\\';
      buf[n++] = (char)c;
    } else if (c == '\n') {
      buf[n++] = '\\';
      buf[n++] = 'n';
    } else if (c == '\r') {
      buf[n++] = '\\';
      buf[n++] = 'r';
    } else if (c == '\t') {
      buf[n++] = '\\';
      buf[n++] = 't';
    } else if (c < 0x20 || c == 0x7f) {
      memcpy(buf, "\\u00", 4);
      buf[4] = hex[c >> 4];
      buf[5] = hex[c & 15];
      n = 6;
    } else {
      buf[n++] = (char)c;
    }
    if (o + n >= cap) break;
    memcpy(out + o, buf, n);
    o += n;
  }
  out[o] = '\0';
  return o;
}

void hub_log(enum hub_log_level level, const char *component, const char *fmt, ...) {
  level_from_env();
  if (level < min_level) return;
  char msg[2048], emsg[4096], ectx[256], line[4608];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t mlen = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
  hub_json_escape(emsg, sizeof emsg, msg, mlen);

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

  ectx[0] = '\0';
  if (ctx_kind && ctx_name) {
    char ename[200];
    hub_json_escape(ename, sizeof ename, ctx_name, strlen(ctx_name));
    snprintf(ectx, sizeof ectx, ",\"%s\":\"%s\"", ctx_kind, ename);
  }
  snprintf(line, sizeof line, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\"%s,\"msg\":\"%s\"}\n",
           when, ts.tv_nsec / 1000000, level_names[level], component ? component : "hub", ectx, emsg);
  FILE *f = stream ? stream : stderr;
  fputs(line, f);
  fflush(f);
}
