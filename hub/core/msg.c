/* hub_msg: a record with owned key, value and headers. */
#include "hub/core/msg.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned char *dup_bytes(const void *p, size_t len) {
  unsigned char *b = malloc(len + 1);
  if (!b) return NULL;
  if (len) memcpy(b, p, len);
  b[len] = '\0';
  return b;
}

struct hub_msg *hub_msg_new(const void *key, size_t key_len, const void *value, size_t value_len) {
  struct hub_msg *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->partition = -1;
  m->offset = -1;
  if ((key && hub_msg_set_key(m, key, key_len) != HUB_OK) || hub_msg_set_value(m, value, value_len) != HUB_OK) {
    hub_msg_destroy(m);
    return NULL;
  }
  return m;
}

struct hub_msg *hub_msg_dup(const struct hub_msg *src) {
  struct hub_msg *m = hub_msg_new(src->key, src->key_len, src->value, src->value_len);
  if (!m) return NULL;
  m->partition = src->partition;
  m->offset = src->offset;
  m->timestamp_ms = src->timestamp_ms;
  if (src->topic && hub_msg_set_topic(m, src->topic) != HUB_OK) goto fail;
  for (size_t i = 0; i < src->n_headers; i++)
    if (hub_msg_header_add(m, src->headers[i].name, src->headers[i].value, src->headers[i].value_len) != HUB_OK)
      goto fail;
  return m;
fail:
  hub_msg_destroy(m);
  return NULL;
}

struct hub_msg *hub_msg_dup_borrow(const struct hub_msg *src) {
  struct hub_msg *m = hub_msg_new(NULL, 0, NULL, 0);
  if (!m) return NULL;
  m->partition = src->partition;
  m->offset = src->offset;
  m->timestamp_ms = src->timestamp_ms;
  if ((src->key && hub_msg_set_key(m, src->key, src->key_len) != HUB_OK) ||
      (src->topic && hub_msg_set_topic(m, src->topic) != HUB_OK))
    goto fail;
  for (size_t i = 0; i < src->n_headers; i++)
    if (hub_msg_header_add(m, src->headers[i].name, src->headers[i].value, src->headers[i].value_len) != HUB_OK)
      goto fail;
  free(m->value);
  m->value = src->value;
  m->value_len = src->value_len;
  m->value_borrowed = 1;
  return m;
fail:
  hub_msg_destroy(m);
  return NULL;
}

void hub_msg_destroy(struct hub_msg *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n_headers; i++) {
    free(m->headers[i].name);
    free(m->headers[i].value);
  }
  free(m->headers);
  free(m->key);
  if (!m->value_borrowed) free(m->value);
  free(m->topic);
  free(m);
}

hub_err_t hub_msg_set_value_take(struct hub_msg *m, unsigned char *value, size_t len) {
  if (!value) return HUB_ERR_INVALID_ARG;
  value[len] = '\0';
  if (!m->value_borrowed) free(m->value);
  m->value = value;
  m->value_len = len;
  m->value_borrowed = 0;
  return HUB_OK;
}

hub_err_t hub_msg_set_value(struct hub_msg *m, const void *value, size_t len) {
  unsigned char *b = dup_bytes(value, len);
  if (!b) return HUB_ERR_NOMEM;
  return hub_msg_set_value_take(m, b, len);
}

hub_err_t hub_msg_set_key(struct hub_msg *m, const void *key, size_t len) {
  unsigned char *b = NULL;
  if (key && !(b = dup_bytes(key, len))) return HUB_ERR_NOMEM;
  free(m->key);
  m->key = b;
  m->key_len = key ? len : 0;
  return HUB_OK;
}

hub_err_t hub_msg_set_topic(struct hub_msg *m, const char *topic) {
  char *t = NULL;
  if (topic && !(t = strdup(topic))) return HUB_ERR_NOMEM;
  free(m->topic);
  m->topic = t;
  return HUB_OK;
}

const struct hub_header *hub_msg_header_get(const struct hub_msg *m, const char *name) {
  for (size_t i = 0; i < m->n_headers; i++)
    if (strcmp(m->headers[i].name, name) == 0) return &m->headers[i];
  return NULL;
}

const char *hub_msg_header_get_str(const struct hub_msg *m, const char *name) {
  const struct hub_header *h = hub_msg_header_get(m, name);
  return h ? (const char *)h->value : NULL;
}

hub_err_t hub_msg_header_add(struct hub_msg *m, const char *name, const void *value, size_t len) {
  if (m->n_headers == m->cap_headers) {
    size_t cap = m->cap_headers ? m->cap_headers * 2 : 8;
    struct hub_header *h = realloc(m->headers, cap * sizeof *h);
    if (!h) return HUB_ERR_NOMEM;
    m->headers = h;
    m->cap_headers = cap;
  }
  char *n = strdup(name);
  unsigned char *v = dup_bytes(value, len);
  if (!n || !v) {
    free(n);
    free(v);
    return HUB_ERR_NOMEM;
  }
  m->headers[m->n_headers++] = (struct hub_header){n, v, len};
  return HUB_OK;
}

size_t hub_msg_header_del(struct hub_msg *m, const char *name) {
  size_t out = 0, removed = 0;
  for (size_t i = 0; i < m->n_headers; i++) {
    if (strcmp(m->headers[i].name, name) == 0) {
      free(m->headers[i].name);
      free(m->headers[i].value);
      removed++;
    } else {
      m->headers[out++] = m->headers[i];
    }
  }
  m->n_headers = out;
  return removed;
}

hub_err_t hub_msg_header_set(struct hub_msg *m, const char *name, const void *value, size_t len) {
  hub_msg_header_del(m, name);
  return hub_msg_header_add(m, name, value, len);
}

hub_err_t hub_msg_header_set_str(struct hub_msg *m, const char *name, const char *value) {
  return hub_msg_header_set(m, name, value, strlen(value));
}

/* Random bytes for ids come from a per-thread pool filled by one RAND_bytes call per 4 KiB:
 * one call per record cost about 0.8 us (OpenSSL's per-call lookups and fork check). A forked
 * child must not reuse its parent's pool, so the pool of the forking thread is dropped there. */
static _Thread_local unsigned char rand_pool[4096];
static _Thread_local size_t rand_pool_pos = sizeof rand_pool;
static pthread_once_t rand_pool_once = PTHREAD_ONCE_INIT;
static void rand_pool_drop(void) {
  rand_pool_pos = sizeof rand_pool;
}
static void rand_pool_init(void) {
  pthread_atfork(NULL, NULL, rand_pool_drop);
}

static void random_bytes(unsigned char *b, size_t n) {
  pthread_once(&rand_pool_once, rand_pool_init);
  if (rand_pool_pos + n > sizeof rand_pool) {
    if (RAND_bytes(rand_pool, sizeof rand_pool) != 1) {
      /* RAND_bytes does not fail on a seeded Linux system; keep ids unique enough anyway. */
      for (size_t i = 0; i < sizeof rand_pool; i++)
        rand_pool[i] = (unsigned char)(rand() & 0xff);
    }
    rand_pool_pos = 0;
  }
  memcpy(b, rand_pool + rand_pool_pos, n);
  memset(rand_pool + rand_pool_pos, 0, n); /* used bytes do not stay in memory */
  rand_pool_pos += n;
}

static void uuid_format(const unsigned char b[16], char out[37]) {
  static const char hex[] = "0123456789abcdef";
  int o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = '\0';
}

void hub_uuid7(char out[37]) {
  unsigned char b[16];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  random_bytes(b + 6, 10);
  for (int i = 0; i < 6; i++)
    b[i] = (unsigned char)(ms >> (40 - 8 * i));
  b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
  b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
  uuid_format(b, out);
}

void hub_uuid_from_bytes(const void *data, size_t len, char out[37]) {
  unsigned char md[32];
  unsigned int mdlen = 0;
  EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
  md[6] = (unsigned char)(0x80 | (md[6] & 0x0f)); /* version 8: custom (RFC 9562) */
  md[8] = (unsigned char)(0x80 | (md[8] & 0x3f));
  uuid_format(md, out);
}

void hub_uuid_from_origin(const char *topic, int32_t partition, int64_t offset, char out[37]) {
  char origin[512];
  int n = snprintf(origin, sizeof origin, "%s/%d/%lld", topic ? topic : "", (int)partition, (long long)offset);
  hub_uuid_from_bytes(origin, n < 0 ? 0 : (size_t)n >= sizeof origin ? sizeof origin - 1 : (size_t)n, out);
}

void hub_sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[32];
  unsigned int mdlen = 0;
  static const char hex[] = "0123456789abcdef";
  EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
  for (unsigned i = 0; i < 32; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
}

static int is_lower_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

static int all_zero(const char *s, size_t n) {
  while (n && *s == '0')
    s++, n--;
  return n == 0;
}

static int traceparent_valid(const char *t) {
  size_t n = strlen(t);
  if (n < 55 || t[2] != '-' || t[35] != '-' || t[52] != '-' || !is_lower_hex(t, 2) || !strncmp(t, "ff", 2)) return 0;
  if ((!strncmp(t, "00", 2) && n != 55) || (n > 55 && t[55] != '-')) return 0;
  return is_lower_hex(t + 3, 32) && !all_zero(t + 3, 32) && is_lower_hex(t + 36, 16) && !all_zero(t + 36, 16) &&
         is_lower_hex(t + 53, 2);
}

const char *hub_traceparent_or_new(const char *given, char buf[56]) {
  if (given && traceparent_valid(given)) return given;
  static const char hex[] = "0123456789abcdef";
  unsigned char b[24];
  random_bytes(b, sizeof b);
  b[0] |= 1, b[16] |= 1; /* never all zero */
  memcpy(buf, "00-", 3);
  for (int i = 0; i < 24; i++) {
    char *o = buf + 3 + 2 * i + (i >= 16);
    o[0] = hex[b[i] >> 4], o[1] = hex[b[i] & 15];
  }
  buf[35] = '-';
  memcpy(buf + 52, "-01", 4);
  return buf;
}
