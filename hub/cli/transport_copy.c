/* `lienthong transport copy|list`: moving a hub from one transport to another (embedded ->
 * kafka when a site outgrows one machine, kafka -> embedded back) with its topics (records with
 * keys, headers, partitions and timestamps), its consumer groups' committed offsets and its
 * sources' cursors (the records of lienthong.cursors), through the transports' copy operations.
 *
 * - Each record keeps its partition and timestamp. Offsets may differ on the other side (Kafka's
 *   transaction markers take offsets, retention leaves gaps), so committed offsets are
 *   translated: "the group has read the first i records of the partition" holds on both sides.
 * - Verified: every partition's records are read back from the destination and compared with
 *   the source by count and digest (SHA-256 over each record's SHA-256 of timestamp, key,
 *   value and headers in order).
 * - Safe to run again: a destination partition that holds records is refused, unless --resume
 *   (its records must be the source's first ones, record by record; the rest is copied) or
 *   --force (append after them).
 * The cursor topic is compacted (the latest record per key), so it is copied and compared as
 * such. The hub must be stopped on both sides while copying. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/cmd.h"
#include "hub/core/config.h"
#include "hub/core/log.h"
#include "hub/core/registry.h"
#include "hub/transport/transport.h"

static const struct hub_cmd cmd;

#define FLUSH_EVERY 5000 /* records per commit on the destination (bounds the memory held) */

struct side {
  const char *path;
  struct hub_config *cfg;
  const struct hub_transport_ops *ops;
  struct hub_transport *t;
};

struct i64v {
  int64_t *v;
  size_t n, cap;
};

static int i64v_push(struct i64v *a, int64_t x) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 1024;
    int64_t *v = realloc(a->v, cap * sizeof *v);
    if (!v) return -1;
    a->v = v;
    a->cap = cap;
  }
  a->v[a->n++] = x;
  return 0;
}

/* One partition's copy: where it started, what went over, how it compares. */
struct part {
  int32_t id;
  struct i64v src_offs, dst_offs; /* offsets of the copied records, in order, on each side */
  int64_t dst_high;               /* the destination's next offset after the copy */
  unsigned char src_digest[32], dst_digest[32];
  uint64_t bytes;
  int ok;
};

struct topic {
  char *name;
  int partitions;
  struct part *parts;
  uint64_t records;
  int ok;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- digests ---------------------------------------------------------------------------- */

static void put_u64(EVP_MD_CTX *c, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
  EVP_DigestUpdate(c, b, 8);
}

/* SHA-256 of a record: timestamp, key (an empty key counts as none: the embedded transport
 * stores both alike), value, headers in order, each length-prefixed. */
static void record_hash(const struct hub_msg *m, unsigned char out[32]) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  EVP_DigestInit_ex(c, EVP_sha256(), NULL);
  put_u64(c, (uint64_t)m->timestamp_ms);
  int has_key = m->key && m->key_len;
  put_u64(c, has_key ? m->key_len : UINT64_MAX);
  if (has_key) EVP_DigestUpdate(c, m->key, m->key_len);
  put_u64(c, m->value_len);
  EVP_DigestUpdate(c, m->value, m->value_len);
  put_u64(c, m->n_headers);
  for (size_t i = 0; i < m->n_headers; i++) {
    size_t nl = strlen(m->headers[i].name);
    put_u64(c, nl);
    EVP_DigestUpdate(c, m->headers[i].name, nl);
    put_u64(c, m->headers[i].value_len);
    EVP_DigestUpdate(c, m->headers[i].value, m->headers[i].value_len);
  }
  EVP_DigestFinal_ex(c, out, NULL);
  EVP_MD_CTX_free(c);
}

static void hex12(const unsigned char d[32], char out[13]) {
  for (int i = 0; i < 6; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ---- reading a partition ---------------------------------------------------------------- */

struct reader {
  EVP_MD_CTX *digest;  /* over the records' hashes */
  struct i64v *offs;   /* each record's offset */
  unsigned char *hashes; /* each record's hash, when kept (resume) */
  size_t n, cap_hashes;
  int keep_hashes;
  /* copying: */
  struct side *dst;
  const char *topic;
  const unsigned char *expect; /* resume: the destination's first records' hashes */
  size_t n_expect, produced;
  uint64_t bytes;
  hub_err_t err;
  char why[512];
  struct hub_msg **held; /* compacted topic: every record, then the latest per key is kept */
  size_t n_held;
  int hold;
};

static hub_err_t flush(struct reader *r) {
  hub_err_t rc = r->dst->ops->commit(r->dst->t);
  if (rc != HUB_OK) snprintf(r->why, sizeof r->why, "writing %s: %s", r->topic, hub_err2str(rc));
  return rc;
}

/* Takes one record in order: hashes it, compares it (resume) or writes it. */
static int take(struct reader *r, const struct hub_msg *m) {
  unsigned char h[32];
  record_hash(m, h);
  EVP_DigestUpdate(r->digest, h, 32);
  if (r->offs && i64v_push(r->offs, m->offset) < 0) goto nomem;
  if (r->keep_hashes) {
    if (r->n == r->cap_hashes) {
      size_t cap = r->cap_hashes ? r->cap_hashes * 2 : 1024;
      unsigned char *nh = realloc(r->hashes, cap * 32);
      if (!nh) goto nomem;
      r->hashes = nh;
      r->cap_hashes = cap;
    }
    memcpy(r->hashes + 32 * r->n, h, 32);
  }
  r->bytes += m->value_len + m->key_len;
  size_t i = r->n++;
  if (!r->dst) return 0;
  if (i < r->n_expect) {
    if (memcmp(h, r->expect + 32 * i, 32)) {
      r->err = HUB_ERR_CONFIG;
      snprintf(r->why, sizeof r->why,
               "%s[%d]: the destination's record %zu differs from the source's (offset %lld): it is not a copy of "
               "this source, --resume refused (--force appends after it)",
               r->topic, (int)m->partition, i, (long long)m->offset);
      return 1;
    }
    return 0;
  }
  if ((r->err = r->dst->ops->produce_exact(r->dst->t, r->topic, m)) != HUB_OK) {
    snprintf(r->why, sizeof r->why, "writing %s[%d]: %s", r->topic, (int)m->partition, hub_err2str(r->err));
    return 1;
  }
  if (++r->produced % FLUSH_EVERY == 0 && (r->err = flush(r)) != HUB_OK) return 1;
  return 0;
nomem:
  r->err = HUB_ERR_NOMEM;
  snprintf(r->why, sizeof r->why, "out of memory");
  return 1;
}

static int on_record(void *ctx, const struct hub_msg *m) {
  struct reader *r = ctx;
  if (!r->hold) return take(r, m);
  struct hub_msg **nh = realloc(r->held, (r->n_held + 1) * sizeof *nh);
  struct hub_msg *d = nh ? hub_msg_dup(m) : NULL;
  if (nh) r->held = nh;
  if (!d) {
    r->err = HUB_ERR_NOMEM;
    snprintf(r->why, sizeof r->why, "out of memory");
    return 1;
  }
  d->partition = m->partition, d->offset = m->offset, d->timestamp_ms = m->timestamp_ms;
  r->held[r->n_held++] = d;
  return 0;
}

static int same_key(const struct hub_msg *a, const struct hub_msg *b) {
  size_t al = a->key ? a->key_len : 0, bl = b->key ? b->key_len : 0;
  return al == bl && (!al || !memcmp(a->key, b->key, al));
}

/* A compacted topic's view: for each key its latest record, in offset order. */
static void take_held(struct reader *r) {
  for (size_t i = 0; i < r->n_held; i++) {
    int later = 0;
    for (size_t j = i + 1; !later && j < r->n_held; j++) later = same_key(r->held[i], r->held[j]);
    if (!later && !r->err && take(r, r->held[i])) break;
  }
  for (size_t i = 0; i < r->n_held; i++) hub_msg_destroy(r->held[i]);
  free(r->held);
  r->held = NULL;
  r->n_held = 0;
}

/* Reads [from, to) of a partition into r. */
static hub_err_t read_part(struct side *s, const char *topic, int32_t p, int64_t from, int64_t to, struct reader *r,
                           char *errbuf, size_t n) {
  r->hold = !strcmp(topic, HUB_TOPIC_CURSORS);
  hub_err_t rc = s->ops->read_range(s->t, topic, p, from, to, on_record, r, errbuf, n);
  if (r->hold && rc == HUB_OK) take_held(r);
  if (rc == HUB_OK && r->err) {
    snprintf(errbuf, n, "%s", r->why);
    rc = r->err;
  }
  return rc;
}

/* ---- the command ------------------------------------------------------------------------ */

struct opts {
  const char **topics;
  size_t n_topics;
  int resume, force, offsets, dry_run;
};

static int side_open(struct side *s, const char *what, char *errbuf, size_t n) {
  if (hub_config_load(s->path, &s->cfg, errbuf, n) != HUB_OK) {
    fprintf(stderr, "%s\n", errbuf);
    return HUB_EXIT_USAGE;
  }
  s->ops = hub_transport_get(s->cfg->hub.transport);
  if (!s->ops || !s->ops->list_topics || !s->ops->read_range || !s->ops->produce_exact || !s->ops->set_offsets) {
    fprintf(stderr, "lienthong transport: %s %s: transport '%s' cannot be copied from or to\n", what, s->path,
            s->cfg->hub.transport);
    return HUB_EXIT_USAGE;
  }
  struct hub_transport_opts o = {"lienthong-copy", NULL, NULL, NULL, s->cfg->base_dir};
  if (s->ops->open(s->cfg->transport_cfg, &o, &s->t, errbuf, n) != HUB_OK) {
    fprintf(stderr, "lienthong transport: %s (%s): %s\n", what, s->path, errbuf);
    return HUB_EXIT_FAIL;
  }
  return HUB_EXIT_OK;
}

static void side_close(struct side *s) {
  if (s->t) s->ops->close(s->t);
  hub_config_destroy(s->cfg);
}

static int wanted(const struct opts *o, const char *topic) {
  if (!o->n_topics) return 1;
  for (size_t i = 0; i < o->n_topics; i++)
    if (!strcmp(o->topics[i], topic)) return 1;
  return 0;
}

/* A committed offset of the source, to be translated. */
struct goff {
  char *group, *topic;
  int32_t part;
  int64_t next;
};

struct goffs {
  struct goff *v;
  size_t n;
};

static int on_offset(void *ctx, const char *group, const char *topic, int32_t part, int64_t next) {
  struct goffs *g = ctx;
  struct goff *nv = realloc(g->v, (g->n + 1) * sizeof *nv);
  if (!nv) return 1;
  g->v = nv;
  nv[g->n] = (struct goff){strdup(group), strdup(topic), part, next};
  if (!nv[g->n].group || !nv[g->n].topic) {
    free(nv[g->n].group);
    free(nv[g->n].topic);
    return 1;
  }
  g->n++;
  return 0;
}

static int goff_cmp(const void *a, const void *b) {
  const struct goff *x = a, *y = b;
  int c = strcmp(x->group, y->group);
  if (!c) c = strcmp(x->topic, y->topic);
  return c ? c : (x->part > y->part) - (x->part < y->part);
}

/* Records of the copied partition before source offset `next` -> the destination's offset. */
static int64_t translate(const struct part *p, int64_t next) {
  size_t lo = 0, hi = p->src_offs.n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (p->src_offs.v[mid] < next)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < p->dst_offs.n ? p->dst_offs.v[lo] : p->dst_high;
}

static struct part *find_part(struct topic *tp, size_t nt, const char *topic, int32_t part) {
  for (size_t i = 0; i < nt; i++)
    if (!strcmp(tp[i].name, topic)) return part >= 0 && part < tp[i].partitions ? &tp[i].parts[part] : NULL;
  return NULL;
}

/* Copies one partition: returns 0, or an exit code after saying why. */
static int copy_part(struct side *src, struct side *dst, const struct opts *o, struct topic *tp, struct part *p,
                     char *errbuf, size_t n) {
  int64_t slo, shi, dlo, dhi;
  hub_err_t rc;
  if ((rc = src->ops->watermarks(src->t, tp->name, p->id, &slo, &shi, errbuf, n)) != HUB_OK ||
      (rc = dst->ops->watermarks(dst->t, tp->name, p->id, &dlo, &dhi, errbuf, n)) != HUB_OK)
    goto fail;
  /* What the destination holds already: with --resume it must be the source's beginning. */
  struct reader have = {.digest = EVP_MD_CTX_new(), .offs = &p->dst_offs, .keep_hashes = 1};
  EVP_DigestInit_ex(have.digest, EVP_sha256(), NULL);
  int64_t dst_start = dhi;
  if (dhi > dlo && o->resume) {
    dst_start = dlo;
    rc = read_part(dst, tp->name, p->id, dlo, dhi, &have, errbuf, n);
    if (rc != HUB_OK) {
      EVP_MD_CTX_free(have.digest);
      free(have.hashes);
      goto fail;
    }
  } else {
    p->dst_offs.n = 0;
  }
  struct reader r = {.digest = EVP_MD_CTX_new(), .offs = &p->src_offs, .dst = dst, .topic = tp->name,
                     .expect = have.hashes, .n_expect = have.n};
  EVP_DigestInit_ex(r.digest, EVP_sha256(), NULL);
  double t0 = now_s();
  rc = read_part(src, tp->name, p->id, slo, shi, &r, errbuf, n);
  if (rc == HUB_OK && r.n < have.n) {
    rc = hub_errf(errbuf, n, HUB_ERR_CONFIG,
                  "%s[%d]: the destination holds %zu records, the source only %zu: not a copy of this source, "
                  "--resume refused",
                  tp->name, (int)p->id, have.n, r.n);
  }
  if (rc == HUB_OK && (rc = dst->ops->commit(dst->t)) != HUB_OK)
    snprintf(errbuf, n, "writing %s[%d]: %s", tp->name, (int)p->id, hub_err2str(rc));
  EVP_DigestFinal_ex(r.digest, p->src_digest, NULL);
  EVP_MD_CTX_free(r.digest);
  EVP_MD_CTX_free(have.digest);
  free(have.hashes);
  p->bytes = r.bytes;
  tp->records += r.n;
  if (rc != HUB_OK) goto fail;
  /* Read back what is there now and compare. */
  if ((rc = dst->ops->watermarks(dst->t, tp->name, p->id, &dlo, &p->dst_high, errbuf, n)) != HUB_OK) goto fail;
  p->dst_offs.n = 0;
  struct reader back = {.digest = EVP_MD_CTX_new(), .offs = &p->dst_offs};
  EVP_DigestInit_ex(back.digest, EVP_sha256(), NULL);
  rc = read_part(dst, tp->name, p->id, dst_start, p->dst_high, &back, errbuf, n);
  EVP_DigestFinal_ex(back.digest, p->dst_digest, NULL);
  EVP_MD_CTX_free(back.digest);
  if (rc != HUB_OK) goto fail;
  p->ok = back.n == r.n && !memcmp(p->src_digest, p->dst_digest, 32);
  double dt = now_s() - t0;
  char sd[13], dd[13];
  hex12(p->src_digest, sd);
  hex12(p->dst_digest, dd);
  fprintf(stderr, "copy: %s[%d]: %zu record(s)%s, %.1f MB in %.2f s; read back %zu, digest %s %s %s\n", tp->name,
          (int)p->id, r.n, r.produced < r.n ? " (the first ones were there: resumed)" : "", (double)r.bytes / 1e6,
          dt, back.n, sd, p->ok ? "==" : "!=", dd);
  return HUB_EXIT_OK;
fail:
  fprintf(stderr, "lienthong transport copy: %s\n", errbuf);
  return rc == HUB_ERR_CONFIG ? HUB_EXIT_USAGE : HUB_EXIT_FAIL;
}

/* Refuses before writing anything when a destination partition holds records (without
 * --resume or --force) or a topic has another partition count there. */
static int precheck(struct side *src, struct side *dst, const struct opts *o, struct topic *tp, size_t nt,
                    char *errbuf, size_t n) {
  struct hub_topic_desc *d = NULL;
  size_t nd = 0;
  if (dst->ops->list_topics(dst->t, &d, &nd, errbuf, n) != HUB_OK) {
    fprintf(stderr, "lienthong transport copy: %s: %s\n", dst->path, errbuf);
    return HUB_EXIT_FAIL;
  }
  int rc = HUB_EXIT_OK;
  for (size_t i = 0; i < nt && rc == HUB_EXIT_OK; i++) {
    const struct hub_topic_desc *there = NULL;
    for (size_t k = 0; k < nd; k++)
      if (!strcmp(d[k].name, tp[i].name)) there = &d[k];
    int64_t records = 0, slo, shi;
    for (int p = 0; p < tp[i].partitions; p++)
      if (src->ops->watermarks(src->t, tp[i].name, p, &slo, &shi, errbuf, n) == HUB_OK) records += shi - slo;
    fprintf(stderr, "copy: %s: %d partition(s), up to %lld record(s)%s\n", tp[i].name, tp[i].partitions,
            (long long)records, there ? ", exists at the destination" : "");
    if (!there) continue;
    if (there->partitions != tp[i].partitions) {
      fprintf(stderr,
              "lienthong transport copy: topic '%s' has %d partition(s) in %s but %d in %s: records would land in "
              "other partitions (per-key order); delete it there or give it %d\n",
              tp[i].name, tp[i].partitions, src->path, there->partitions, dst->path, tp[i].partitions);
      rc = HUB_EXIT_USAGE;
      break;
    }
    for (int p = 0; p < tp[i].partitions && !o->resume && !o->force; p++) {
      int64_t lo, hi;
      if (dst->ops->watermarks(dst->t, tp[i].name, p, &lo, &hi, errbuf, n) != HUB_OK) {
        fprintf(stderr, "lienthong transport copy: %s\n", errbuf);
        rc = HUB_EXIT_FAIL;
        break;
      }
      if (hi > lo) {
        fprintf(stderr,
                "lienthong transport copy: topic '%s' partition %d in %s is not empty (%lld record(s)): nothing was "
                "copied. --resume finishes an interrupted copy (checking what is there), --force appends\n",
                tp[i].name, p, dst->path, (long long)(hi - lo));
        rc = HUB_EXIT_USAGE;
        break;
      }
    }
  }
  hub_topic_descs_free(d, nd);
  return rc;
}

/* Sets the destination's committed offsets from the source's, translated. */
static int copy_offsets(struct side *src, struct side *dst, const struct opts *o, struct topic *tp, size_t nt,
                        size_t *n_set, size_t *n_groups, char *errbuf, size_t n) {
  struct goffs g = {0};
  int rc = HUB_EXIT_OK;
  if (src->ops->list_offsets(src->t, on_offset, &g, errbuf, n) != HUB_OK) {
    fprintf(stderr, "lienthong transport copy: offsets of %s: %s\n", src->path, errbuf);
    rc = HUB_EXIT_FAIL;
    goto out;
  }
  if (g.n) qsort(g.v, g.n, sizeof *g.v, goff_cmp);
  int32_t *parts = calloc(g.n + 1, sizeof *parts);
  int64_t *next = calloc(g.n + 1, sizeof *next);
  for (size_t i = 0; parts && next && i < g.n && rc == HUB_EXIT_OK;) {
    size_t j = i, k = 0;
    for (; j < g.n && !strcmp(g.v[j].group, g.v[i].group) && !strcmp(g.v[j].topic, g.v[i].topic); j++) {
      const struct part *p = find_part(tp, nt, g.v[j].topic, g.v[j].part);
      if (!p) continue; /* a topic not copied */
      parts[k] = g.v[j].part;
      next[k++] = translate(p, g.v[j].next);
      fprintf(stderr, "copy: group %s on %s[%d]: offset %lld -> %lld\n", g.v[j].group, g.v[j].topic,
              (int)g.v[j].part, (long long)g.v[j].next, (long long)next[k - 1]);
    }
    if (k && !o->dry_run) {
      if (dst->ops->set_offsets(dst->t, g.v[i].group, g.v[i].topic, parts, next, k, errbuf, n) != HUB_OK) {
        fprintf(stderr, "lienthong transport copy: %s: %s\n", dst->path, errbuf);
        rc = HUB_EXIT_FAIL;
      }
      *n_set += k;
      if (i == 0 || strcmp(g.v[i].group, g.v[i - 1].group)) ++*n_groups;
    }
    i = j;
  }
  if (!parts || !next) rc = HUB_EXIT_FAIL;
  free(parts);
  free(next);
out:
  for (size_t i = 0; i < g.n; i++) {
    free(g.v[i].group);
    free(g.v[i].topic);
  }
  free(g.v);
  return rc;
}

static int copy_main(int argc, char **argv) {
  struct opts o = {.offsets = 1};
  struct side src = {0}, dst = {0};
  struct topic *tp = NULL;
  size_t nt = 0;
  struct hub_topic_desc *d = NULL;
  size_t nd = 0;
  char errbuf[2048];
  int rc = HUB_EXIT_USAGE;
  o.topics = calloc((size_t)argc, sizeof *o.topics);
  if (!o.topics) return HUB_EXIT_FAIL;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--topic") && i + 1 < argc)
      o.topics[o.n_topics++] = argv[++i];
    else if (!strcmp(a, "--resume"))
      o.resume = 1;
    else if (!strcmp(a, "--force"))
      o.force = 1;
    else if (!strcmp(a, "--no-offsets"))
      o.offsets = 0;
    else if (!strcmp(a, "--dry-run"))
      o.dry_run = 1;
    else if (a[0] == '-') {
      rc = hub_cmd_usage_error(&cmd, "unknown option '%s'", a);
      goto out;
    } else if (!src.path)
      src.path = a;
    else if (!dst.path)
      dst.path = a;
    else {
      rc = hub_cmd_usage_error(&cmd, "one FROM and one TO configuration, not '%s' too", a);
      goto out;
    }
  }
  if (!src.path || !dst.path) {
    rc = hub_cmd_usage_error(&cmd, "expected: transport copy FROM_CONFIG TO_CONFIG");
    goto out;
  }
  if (o.resume && o.force) {
    rc = hub_cmd_usage_error(&cmd, "--resume and --force exclude each other");
    goto out;
  }
  if ((rc = side_open(&src, "from", errbuf, sizeof errbuf)) != HUB_EXIT_OK ||
      (rc = side_open(&dst, "to", errbuf, sizeof errbuf)) != HUB_EXIT_OK)
    goto out;
  rc = HUB_EXIT_FAIL;
  if (src.ops->list_topics(src.t, &d, &nd, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "lienthong transport copy: %s: %s\n", src.path, errbuf);
    goto out;
  }
  if (!(tp = calloc(nd + 1, sizeof *tp))) goto out;
  for (size_t i = 0; i < nd; i++) {
    if (!wanted(&o, d[i].name)) continue;
    tp[nt].name = d[i].name;
    d[i].name = NULL;
    tp[nt].partitions = d[i].partitions;
    if (!(tp[nt].parts = calloc((size_t)d[i].partitions + 1, sizeof *tp[nt].parts))) goto out;
    for (int p = 0; p < d[i].partitions; p++) tp[nt].parts[p].id = p;
    nt++;
  }
  for (size_t i = 0; i < o.n_topics; i++)
    if (!find_part(tp, nt, o.topics[i], 0)) {
      fprintf(stderr, "lienthong transport copy: no topic '%s' in %s\n", o.topics[i], src.path);
      rc = HUB_EXIT_USAGE;
      goto out;
    }
  fprintf(stderr, "copy: from %s (%s) to %s (%s): %zu topic(s)\n", src.path, src.cfg->hub.transport, dst.path,
          dst.cfg->hub.transport, nt);
  if ((rc = precheck(&src, &dst, &o, tp, nt, errbuf, sizeof errbuf)) != HUB_EXIT_OK) goto out;
  if (o.dry_run) {
    printf("dry run: %zu topic(s) would be copied from %s to %s; nothing was written\n", nt, src.path, dst.path);
    rc = HUB_EXIT_OK;
    goto out;
  }
  double t0 = now_s();
  uint64_t total = 0, bytes = 0, cursors = 0;
  int all_ok = 1;
  for (size_t i = 0; i < nt; i++) {
    if (dst.ops->create_topic(dst.t, tp[i].name, tp[i].partitions, errbuf, sizeof errbuf) != HUB_OK) {
      fprintf(stderr, "lienthong transport copy: %s: %s\n", dst.path, errbuf);
      rc = HUB_EXIT_FAIL;
      goto out;
    }
    tp[i].ok = 1;
    for (int p = 0; p < tp[i].partitions; p++) {
      if ((rc = copy_part(&src, &dst, &o, &tp[i], &tp[i].parts[p], errbuf, sizeof errbuf)) != HUB_EXIT_OK) goto out;
      tp[i].ok = tp[i].ok && tp[i].parts[p].ok;
      bytes += tp[i].parts[p].bytes;
    }
    total += tp[i].records;
    if (!strcmp(tp[i].name, HUB_TOPIC_CURSORS)) cursors = tp[i].records;
    all_ok = all_ok && tp[i].ok;
  }
  size_t n_off = 0, n_groups = 0;
  rc = HUB_EXIT_OK;
  if (o.offsets && all_ok) rc = copy_offsets(&src, &dst, &o, tp, nt, &n_off, &n_groups, errbuf, sizeof errbuf);
  double dt = now_s() - t0;
  printf("%-40s %5s %10s  %-12s %s\n", "topic", "parts", "records", "digest", "check");
  for (size_t i = 0; i < nt; i++) {
    /* The topic's digest: over its partitions' digests (source side, and the destination's). */
    unsigned char sd[32], dd[32];
    EVP_MD_CTX *a = EVP_MD_CTX_new(), *b = EVP_MD_CTX_new();
    EVP_DigestInit_ex(a, EVP_sha256(), NULL);
    EVP_DigestInit_ex(b, EVP_sha256(), NULL);
    for (int p = 0; p < tp[i].partitions; p++) {
      EVP_DigestUpdate(a, tp[i].parts[p].src_digest, 32);
      EVP_DigestUpdate(b, tp[i].parts[p].dst_digest, 32);
    }
    EVP_DigestFinal_ex(a, sd, NULL);
    EVP_DigestFinal_ex(b, dd, NULL);
    EVP_MD_CTX_free(a);
    EVP_MD_CTX_free(b);
    char hs[13], hd[13];
    hex12(sd, hs);
    hex12(dd, hd);
    printf("%-40s %5d %10llu  %-12s %s\n", tp[i].name, tp[i].partitions, (unsigned long long)tp[i].records, hs,
           tp[i].ok ? "same on both sides" : "MISMATCH");
    if (!tp[i].ok) printf("%-40s %5s %10s  %-12s (destination)\n", "", "", "", hd);
  }
  printf("copied %llu record(s) (%.1f MB) in %zu topic(s) in %.1f s (%.0f records/s), %llu source cursor(s), %zu "
         "committed offset(s) of %zu group(s): %s\n",
         (unsigned long long)total, (double)bytes / 1e6, nt, dt, dt > 0 ? (double)total / dt : 0.0,
         (unsigned long long)cursors, n_off, n_groups,
         all_ok && rc == HUB_EXIT_OK ? "verified" : "NOT verified (see above)");
  if (!all_ok) rc = HUB_EXIT_FAIL;
  if (all_ok && !o.offsets) printf("committed offsets were not copied (--no-offsets)\n");
out:
  for (size_t i = 0; tp && i < nt; i++) {
    for (int p = 0; p < tp[i].partitions; p++) {
      free(tp[i].parts[p].src_offs.v);
      free(tp[i].parts[p].dst_offs.v);
    }
    free(tp[i].parts);
    free(tp[i].name);
  }
  free(tp);
  hub_topic_descs_free(d, nd);
  side_close(&src);
  side_close(&dst);
  free(o.topics);
  return rc;
}

/* `transport list CONFIG`: what copy would see. */
static int list_main(int argc, char **argv) {
  struct side s = {0};
  char errbuf[2048];
  int rc = HUB_EXIT_USAGE;
  struct hub_topic_desc *d = NULL;
  size_t nd = 0;
  if (argc != 3 || argv[2][0] == '-') return hub_cmd_usage_error(&cmd, "expected: transport list CONFIG");
  s.path = argv[2];
  if ((rc = side_open(&s, "config", errbuf, sizeof errbuf)) != HUB_EXIT_OK) goto out;
  rc = HUB_EXIT_FAIL;
  if (s.ops->list_topics(s.t, &d, &nd, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "lienthong transport list: %s\n", errbuf);
    goto out;
  }
  printf("topic\tpartition\tlow\thigh\n");
  for (size_t i = 0; i < nd; i++)
    for (int p = 0; p < d[i].partitions; p++) {
      int64_t lo, hi;
      if (s.ops->watermarks(s.t, d[i].name, p, &lo, &hi, errbuf, sizeof errbuf) != HUB_OK) {
        fprintf(stderr, "lienthong transport list: %s\n", errbuf);
        goto out;
      }
      printf("%s\t%d\t%lld\t%lld\n", d[i].name, p, (long long)lo, (long long)hi);
    }
  struct goffs g = {0};
  if (s.ops->list_offsets(s.t, on_offset, &g, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "lienthong transport list: %s\n", errbuf);
    goto out;
  }
  if (g.n) qsort(g.v, g.n, sizeof *g.v, goff_cmp);
  printf("group\ttopic\tpartition\tcommitted\n");
  for (size_t i = 0; i < g.n; i++) {
    printf("%s\t%s\t%d\t%lld\n", g.v[i].group, g.v[i].topic, (int)g.v[i].part, (long long)g.v[i].next);
    free(g.v[i].group);
    free(g.v[i].topic);
  }
  free(g.v);
  rc = HUB_EXIT_OK;
out:
  hub_topic_descs_free(d, nd);
  side_close(&s);
  return rc;
}

static int transport_main(int argc, char **argv) {
  if (argc < 2) return hub_cmd_usage_error(&cmd, "expected an action: copy or list");
  if (!strcmp(argv[1], "copy")) return copy_main(argc, argv);
  if (!strcmp(argv[1], "list")) return list_main(argc, argv);
  return hub_cmd_usage_error(&cmd, "unknown action '%s' (copy or list)", argv[1]);
}

static const struct hub_cmd cmd = {
    .name = "transport",
    .summary = "copy topics, offsets and cursors between transports (embedded <-> kafka)",
    .usage =
        "Usage: lienthong transport copy FROM_CONFIG TO_CONFIG [--topic NAME]... [--resume | --force]\n"
        "                                [--no-offsets] [--dry-run]\n"
        "       lienthong transport list CONFIG\n\n"
        "copy  moves a hub from the transport of FROM_CONFIG (hub.transport and its section) to the one of\n"
        "      TO_CONFIG, e.g. from `embedded` to a Kafka cluster when the site outgrows one machine, or back.\n"
        "      Stop the hub first. Copied:\n"
        "        - every topic (or each --topic), with its partition count; each record keeps its key,\n"
        "          headers, partition and timestamp (offsets may differ: Kafka's transaction markers\n"
        "          take offsets);\n"
        "        - the consumer groups' committed offsets, translated so that each group resumes at the\n"
        "          same record (not with --no-offsets);\n"
        "        - the sources' cursors (topic lienthong.cursors, the latest per source).\n"
        "      Records keep their timestamps, so the destination's retention by time applies to them (Kafka:\n"
        "      retention.ms, 7 days unless the topic says otherwise): raise it first to keep older records.\n"
        "      Verified: each partition is read back from TO and compared with FROM by record count and\n"
        "      digest (SHA-256 over every record's timestamp, key, value and headers); a table per topic\n"
        "      and a summary go to stdout, progress to stderr.\n"
        "      A TO partition that holds records is refused before anything is written, unless:\n"
        "        --resume  its records must be FROM's first ones, record by record (an interrupted copy):\n"
        "                  the rest is copied; a finished copy is checked again and nothing is written\n"
        "        --force   append after what is there\n"
        "      --dry-run   lists what would be copied and checks the destination, writes nothing\n"
        "list  each topic's partitions with their low and high offsets, and the committed offsets of each\n"
        "      consumer group, as tab-separated lines\n\n"
        "Exit codes: 0 copied and verified, 1 a transport failed or a digest differs, 2 usage or\n"
        "configuration error (including a non-empty destination).",
    .main = transport_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_transport, cmd);
