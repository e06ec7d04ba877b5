/* Templates, per-recipient rate limit, the sent-notice journal and result records for the
 * notify sinks (notify_common.h). */
#include "notify_common.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mappings/shape/json.h"

/* ---- templates ---------------------------------------------------------------------------- */

struct tpl_part {
  char *text; /* literal text, or the dotted path of a placeholder */
  int field;
};
struct notify_tpl {
  struct tpl_part *parts;
  size_t n;
};

void notify_tpl_destroy(struct notify_tpl *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n; i++)
    free(t->parts[i].text);
  free(t->parts);
  free(t);
}

static int tpl_add(struct notify_tpl *t, const char *s, size_t len, int field) {
  struct tpl_part *v = realloc(t->parts, (t->n + 1) * sizeof *v);
  if (!v) return -1;
  t->parts = v;
  if (!(v[t->n].text = strndup(s, len))) return -1;
  v[t->n++].field = field;
  return 0;
}

hub_err_t notify_tpl_new(const char *text, const char *what, struct notify_tpl **out, char *errbuf,
                         size_t errbuf_size) {
  struct notify_tpl *t = calloc(1, sizeof *t);
  *out = NULL;
  if (!t) return HUB_ERR_NOMEM;
  const char *p = text;
  while (*p) {
    const char *open = strstr(p, "{{");
    if (!open) {
      if (tpl_add(t, p, strlen(p), 0)) goto oom;
      break;
    }
    if (open > p && tpl_add(t, p, (size_t)(open - p), 0)) goto oom;
    const char *close = strstr(open + 2, "}}");
    if (!close) {
      snprintf(errbuf, errbuf_size, "%s: '{{' at character %d has no closing '}}'", what, (int)(open - text) + 1);
      notify_tpl_destroy(t);
      return HUB_ERR_CONFIG;
    }
    const char *a = open + 2, *b = close;
    while (a < b && *a == ' ')
      a++;
    while (b > a && b[-1] == ' ')
      b--;
    if (a == b || memchr(a, '{', (size_t)(b - a)) || memchr(a, ' ', (size_t)(b - a))) {
      snprintf(errbuf, errbuf_size, "%s: placeholder '%.*s' at character %d is not a field path like {{a.b}}", what,
               (int)(close + 2 - open), open, (int)(open - text) + 1);
      notify_tpl_destroy(t);
      return HUB_ERR_CONFIG;
    }
    if (tpl_add(t, a, (size_t)(b - a), 1)) goto oom;
    p = close + 2;
  }
  *out = t;
  return HUB_OK;
oom:
  notify_tpl_destroy(t);
  return HUB_ERR_NOMEM;
}

static json_t *field_get(json_t *doc, const char *path) {
  json_t *v = doc;
  const char *p = path;
  while (v && *p) {
    size_t n = strcspn(p, ".");
    char name[256];
    if (n >= sizeof name) return NULL;
    memcpy(name, p, n);
    name[n] = 0;
    if (json_is_array(v)) {
      char *end;
      long i = strtol(name, &end, 10);
      v = *end || i < 0 ? NULL : json_array_get(v, (size_t)i);
    } else {
      v = json_object_get(v, name);
    }
    p += n;
    if (*p == '.') p++;
  }
  return v;
}

char *notify_tpl_render(const struct notify_tpl *t, json_t *doc, char *errbuf, size_t errbuf_size) {
  struct lt_buf b = {0};
  errbuf[0] = 0;
  for (size_t i = 0; i < t->n; i++) {
    if (!t->parts[i].field) {
      lt_buf_str(&b, t->parts[i].text);
      continue;
    }
    json_t *v = field_get(doc, t->parts[i].text);
    if (json_is_string(v)) {
      lt_buf_put(&b, json_string_value(v), json_string_length(v));
    } else if (json_is_number(v) || json_is_boolean(v)) {
      char *s = json_dumps(v, JSON_ENCODE_ANY);
      if (s)
        lt_buf_str(&b, s);
      else
        b.oom = 1;
      free(s);
    } else {
      snprintf(errbuf, errbuf_size, "template field {{%s}} %s in the record", t->parts[i].text,
               !v                ? "is missing"
               : json_is_null(v) ? "is null"
                                 : "is an object or array, not text");
      free(b.s);
      return NULL;
    }
  }
  if (b.oom) {
    free(b.s);
    return NULL;
  }
  return b.s ? b.s : strdup("");
}

/* ---- per-recipient rate limit ------------------------------------------------------------- */

struct bucket {
  char digest[65];
  double tokens;
  int64_t at_ms; /* when tokens was computed */
};
struct notify_limit {
  pthread_mutex_t mu;
  double count;
  int64_t per_ms;
  struct bucket *b;
  size_t n, max;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct notify_limit *notify_limit_new(int64_t count, int64_t per_ms, size_t max) {
  struct notify_limit *l = calloc(1, sizeof *l);
  if (!l || !(l->b = calloc(max ? max : 1, sizeof *l->b))) {
    free(l);
    return NULL;
  }
  pthread_mutex_init(&l->mu, NULL);
  l->count = (double)count;
  l->per_ms = per_ms;
  l->max = max ? max : 1;
  return l;
}

void notify_limit_destroy(struct notify_limit *l) {
  if (!l) return;
  pthread_mutex_destroy(&l->mu);
  free(l->b);
  free(l);
}

static void refill(struct notify_limit *l, struct bucket *b, int64_t now) {
  b->tokens += (double)(now - b->at_ms) * l->count / (double)l->per_ms;
  if (b->tokens > l->count) b->tokens = l->count;
  b->at_ms = now;
}

int64_t notify_limit_take(struct notify_limit *l, const char *recipient) {
  char d[65];
  hub_sha256_hex(recipient, strlen(recipient), d);
  int64_t now = now_ms(), wait = 0;
  pthread_mutex_lock(&l->mu);
  struct bucket *b = NULL;
  for (size_t i = 0; i < l->n; i++)
    if (!strcmp(l->b[i].digest, d)) b = &l->b[i];
  if (!b) {
    if (l->n < l->max) {
      b = &l->b[l->n++];
    } else { /* forget the recipient closest to a full bucket: it has least to remember */
      size_t best = 0;
      for (size_t i = 0; i < l->n; i++) {
        refill(l, &l->b[i], now);
        if (l->b[i].tokens > l->b[best].tokens) best = i;
      }
      b = &l->b[best];
    }
    memcpy(b->digest, d, sizeof d);
    b->tokens = l->count;
    b->at_ms = now;
  }
  refill(l, b, now);
  if (b->tokens >= 1.0)
    b->tokens -= 1.0;
  else
    wait = (int64_t)((1.0 - b->tokens) * (double)l->per_ms / l->count) + 1;
  pthread_mutex_unlock(&l->mu);
  return wait;
}

/* ---- journal ------------------------------------------------------------------------------ */

#define ID_MAX 64
struct notify_journal {
  char *path;
  FILE *f;
  char (*ids)[ID_MAX]; /* in the order written */
  size_t n, max;
  size_t *slot; /* hash table of indexes + 1 into ids; 0 empty */
  size_t cap;
};

static size_t hash_id(const char *s) {
  size_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static void index_rebuild(struct notify_journal *j) {
  memset(j->slot, 0, j->cap * sizeof *j->slot);
  for (size_t i = 0; i < j->n; i++) {
    size_t h = hash_id(j->ids[i]) & (j->cap - 1);
    while (j->slot[h])
      h = (h + 1) & (j->cap - 1);
    j->slot[h] = i + 1;
  }
}

int notify_journal_has(struct notify_journal *j, const char *id) {
  if (!j || !id) return 0;
  size_t h = hash_id(id) & (j->cap - 1);
  for (; j->slot[h]; h = (h + 1) & (j->cap - 1))
    if (!strcmp(j->ids[j->slot[h] - 1], id)) return 1;
  return 0;
}

/* Keeps the newer half, rewritten to a new file that replaces the old one atomically. */
static hub_err_t compact(struct notify_journal *j) {
  size_t keep = j->max / 2, drop = j->n - keep;
  memmove(j->ids, j->ids + drop, keep * sizeof *j->ids);
  j->n = keep;
  index_rebuild(j);
  size_t plen = strlen(j->path) + 8;
  char *tmp = malloc(plen);
  if (!tmp) return HUB_ERR_NOMEM;
  snprintf(tmp, plen, "%s.tmp", j->path);
  FILE *f = fopen(tmp, "w");
  hub_err_t rc = HUB_ERR_IO;
  if (f) {
    for (size_t i = 0; i < j->n; i++)
      fprintf(f, "%s\n", j->ids[i]);
    if (fflush(f) == 0 && fsync(fileno(f)) == 0 && fclose(f) == 0 && rename(tmp, j->path) == 0) {
      if (j->f) fclose(j->f);
      j->f = fopen(j->path, "a");
      rc = j->f ? HUB_OK : HUB_ERR_IO;
    } else {
      unlink(tmp);
    }
  }
  free(tmp);
  return rc;
}

hub_err_t notify_journal_add(struct notify_journal *j, const char *id) {
  if (!j || !id || strlen(id) >= ID_MAX) return HUB_OK;
  if (j->n >= j->max) {
    hub_err_t rc = compact(j);
    if (rc != HUB_OK) return rc;
  }
  snprintf(j->ids[j->n], ID_MAX, "%s", id);
  size_t h = hash_id(id) & (j->cap - 1);
  while (j->slot[h])
    h = (h + 1) & (j->cap - 1);
  j->slot[h] = ++j->n;
  /* Flushed to the kernel at once: a SIGKILL of the hub cannot lose it. */
  if (fprintf(j->f, "%s\n", id) < 0 || fflush(j->f) != 0) return HUB_ERR_IO;
  return HUB_OK;
}

void notify_journal_close(struct notify_journal *j) {
  if (!j) return;
  if (j->f) fclose(j->f);
  free(j->ids);
  free(j->slot);
  free(j->path);
  free(j);
}

hub_err_t notify_journal_open(const char *path, size_t max, struct notify_journal **out, char *errbuf,
                              size_t errbuf_size) {
  struct notify_journal *j = calloc(1, sizeof *j);
  *out = NULL;
  if (!j) return HUB_ERR_NOMEM;
  j->max = max < 2 ? 2 : max;
  j->cap = 1;
  while (j->cap < 2 * j->max)
    j->cap <<= 1;
  if (!(j->path = strdup(path)) || !(j->ids = calloc(j->max, sizeof *j->ids)) ||
      !(j->slot = calloc(j->cap, sizeof *j->slot))) {
    notify_journal_close(j);
    return HUB_ERR_NOMEM;
  }
  FILE *f = fopen(path, "r");
  if (f) {
    char line[256];
    while (fgets(line, sizeof line, f)) {
      size_t n = strcspn(line, "\r\n");
      if (!n || n >= ID_MAX || line[n] != '\n') continue; /* a line cut short by a crash */
      line[n] = 0;
      if (j->n >= j->max) { /* keep the newest */
        memmove(j->ids, j->ids + 1, (j->max - 1) * sizeof *j->ids);
        j->n--;
      }
      snprintf(j->ids[j->n++], ID_MAX, "%s", line);
    }
    fclose(f);
    index_rebuild(j);
  }
  if (!(j->f = fopen(path, "a"))) {
    snprintf(errbuf, errbuf_size, "journal: cannot open %s: %s", path, strerror(errno));
    notify_journal_close(j);
    return HUB_ERR_IO;
  }
  *out = j;
  return HUB_OK;
}

/* ---- result records ----------------------------------------------------------------------- */

struct hub_msg *notify_result_new(const char *channel, const char *to, const char *outcome, const char *id,
                                  json_t *extra_take) {
  json_t *j = json_pack("{s:s,s:s,s:s}", "channel", channel, "to", to, "outcome", outcome);
  struct hub_msg *m = NULL;
  char *text = NULL;
  if (j && id) json_object_set_new(j, "id", json_string(id));
  if (j && extra_take) json_object_update(j, extra_take);
  json_decref(extra_take);
  if (!j || !(text = json_dumps(j, JSON_COMPACT))) goto out;
  if ((m = hub_msg_new(NULL, 0, text, strlen(text))) &&
      (hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/json") != HUB_OK ||
       hub_msg_header_set_str(m, HUB_H_TYPE, "notify.result") != HUB_OK)) {
    hub_msg_destroy(m);
    m = NULL;
  }
out:
  free(text);
  json_decref(j);
  return m;
}
