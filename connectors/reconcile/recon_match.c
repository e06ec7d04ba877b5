/* The reconciliation matcher (recon_match.h). Per stream: a chained hash of keys to slots, and
 * three min-heaps by time (pending platform items, pending bank items, remembered matches) whose
 * entries carry a sequence number, so an entry whose slot has moved on is skipped when popped. */
#include "recon_match.h"

#include <stdlib.h>
#include <string.h>

const char *const recon_outcome_names[RECON__COUNT] = {"matched", "missing-in-bank", "missing-in-platform",
                                                       "amount-mismatch", "duplicate"};

struct slot {
  char *key;
  struct recon_item *pend[2];
  uint64_t pend_seq[2];
  int64_t done_at;
  uint64_t done_seq; /* 0: no match remembered */
  int refs;          /* heap entries pointing here */
  struct slot *next;
};

struct hentry {
  int64_t t;
  uint64_t seq;
  struct slot *slot;
};

struct heap {
  struct hentry *v;
  size_t n, cap;
};

struct stream {
  char *agency, *account;
  struct slot **buckets;
  size_t nb, n_slots;
  struct heap pend[2], done;
  int64_t wm[2];
  struct stream *next;
};

struct recon {
  int64_t window, remember;
  struct stream *streams;
  uint64_t seq;
  size_t pending, peak;
};

void recon_item_destroy(struct recon_item *it) {
  if (!it) return;
  free(it->key);
  free(it->agency);
  free(it->account);
  free(it->ref);
  free(it);
}

static int heap_push(struct heap *h, int64_t t, uint64_t seq, struct slot *s) {
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    struct hentry *v = realloc(h->v, cap * sizeof *v);
    if (!v) return -1;
    h->v = v;
    h->cap = cap;
  }
  size_t i = h->n++;
  while (i && h->v[(i - 1) / 2].t > t) {
    h->v[i] = h->v[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h->v[i] = (struct hentry){t, seq, s};
  s->refs++;
  return 0;
}

static struct hentry heap_pop(struct heap *h) {
  struct hentry top = h->v[0], last = h->v[--h->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && h->v[c + 1].t < h->v[c].t) c++;
    if (h->v[c].t >= last.t) break;
    h->v[i] = h->v[c];
    i = c;
  }
  if (h->n) h->v[i] = last;
  return top;
}

static uint64_t hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static int grow(struct stream *st) {
  size_t nb = st->nb ? st->nb * 2 : 1024;
  struct slot **b = calloc(nb, sizeof *b);
  if (!b) return -1;
  for (size_t i = 0; i < st->nb; i++)
    for (struct slot *s = st->buckets[i], *nx; s; s = nx) {
      nx = s->next;
      size_t k = hash(s->key) & (nb - 1);
      s->next = b[k];
      b[k] = s;
    }
  free(st->buckets);
  st->buckets = b;
  st->nb = nb;
  return 0;
}

static struct slot *slot_get(struct stream *st, const char *key) {
  if (st->n_slots >= st->nb && grow(st) != 0) return NULL;
  size_t k = hash(key) & (st->nb - 1);
  for (struct slot *s = st->buckets[k]; s; s = s->next)
    if (!strcmp(s->key, key)) return s;
  struct slot *s = calloc(1, sizeof *s);
  if (!s || !(s->key = strdup(key))) {
    free(s);
    return NULL;
  }
  s->next = st->buckets[k];
  st->buckets[k] = s;
  st->n_slots++;
  return s;
}

/* Frees a slot nothing refers to any more. */
static void slot_release(struct stream *st, struct slot *s) {
  if (s->refs || s->pend[0] || s->pend[1] || s->done_seq) return;
  struct slot **pp = &st->buckets[hash(s->key) & (st->nb - 1)];
  while (*pp != s)
    pp = &(*pp)->next;
  *pp = s->next;
  st->n_slots--;
  free(s->key);
  free(s);
}

static int same(const char *a, const char *b) {
  return (!a && !b) || (a && b && !strcmp(a, b));
}

static struct stream *stream_get(struct recon *r, const char *agency, const char *account) {
  struct stream **pp = &r->streams;
  for (; *pp; pp = &(*pp)->next)
    if (same((*pp)->agency, agency) && same((*pp)->account, account)) {
      struct stream *s = *pp; /* to the front: feeds come in runs of one stream */
      *pp = s->next;
      s->next = r->streams;
      r->streams = s;
      return s;
    }
  struct stream *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  if ((agency && !(s->agency = strdup(agency))) || (account && !(s->account = strdup(account)))) {
    free(s->agency);
    free(s);
    return NULL;
  }
  s->wm[0] = s->wm[1] = INT64_MIN;
  s->next = r->streams;
  r->streams = s;
  return s;
}

static void emit(recon_emit_cb cb, void *ctx, enum recon_outcome o, const struct recon_item *a,
                 const struct recon_item *b) {
  const struct recon_item *p = a && a->side == RECON_PLATFORM ? a : b && b->side == RECON_PLATFORM ? b : NULL;
  const struct recon_item *k = a && a->side == RECON_BANK ? a : b && b->side == RECON_BANK ? b : NULL;
  if (cb) cb(ctx, o, p, k);
}

/* Pending items the other side's watermark has passed by more than the window: missing. Then
 * matches both watermarks have passed are forgotten. */
static void expire(struct recon *r, struct stream *st, recon_emit_cb cb, void *ctx, int all) {
  for (int s = 0; s < 2; s++) {
    struct heap *h = &st->pend[s];
    while (h->n && (all || (st->wm[1 - s] != INT64_MIN && h->v[0].t + r->window < st->wm[1 - s]))) {
      struct hentry e = heap_pop(h);
      struct slot *sl = e.slot;
      sl->refs--;
      if (sl->pend[s] && sl->pend_seq[s] == e.seq) {
        emit(cb, ctx, s == RECON_PLATFORM ? RECON_MISSING_IN_BANK : RECON_MISSING_IN_PLATFORM, sl->pend[s], NULL);
        recon_item_destroy(sl->pend[s]);
        sl->pend[s] = NULL;
        r->pending--;
      }
      slot_release(st, sl);
    }
  }
  int64_t m = st->wm[0] < st->wm[1] ? st->wm[0] : st->wm[1];
  while (st->done.n && (all || (m != INT64_MIN && st->done.v[0].t + r->remember < m))) {
    struct hentry e = heap_pop(&st->done);
    struct slot *sl = e.slot;
    sl->refs--;
    if (sl->done_seq == e.seq) sl->done_seq = 0;
    slot_release(st, sl);
  }
}

struct recon *recon_new(int64_t window_s, int64_t remember_s) {
  struct recon *r = calloc(1, sizeof *r);
  if (r) {
    r->window = window_s;
    r->remember = remember_s > window_s ? remember_s : window_s;
  }
  return r;
}

static void stream_free(struct stream *st) {
  for (size_t i = 0; i < st->nb; i++)
    for (struct slot *s = st->buckets[i], *nx; s; s = nx) {
      nx = s->next;
      recon_item_destroy(s->pend[0]);
      recon_item_destroy(s->pend[1]);
      free(s->key);
      free(s);
    }
  free(st->buckets);
  free(st->pend[0].v);
  free(st->pend[1].v);
  free(st->done.v);
  free(st->agency);
  free(st->account);
  free(st);
}

void recon_destroy(struct recon *r) {
  if (!r) return;
  for (struct stream *s = r->streams, *nx; s; s = nx) {
    nx = s->next;
    stream_free(s);
  }
  free(r);
}

int recon_feed(struct recon *r, struct recon_item *it, recon_emit_cb cb, void *ctx) {
  struct stream *st = stream_get(r, it->agency, it->account);
  if (!st) {
    recon_item_destroy(it);
    return -1;
  }
  int s = it->side ? 1 : 0;
  if (it->t > st->wm[s]) st->wm[s] = it->t;
  expire(r, st, cb, ctx, 0);
  struct slot *sl = slot_get(st, it->key);
  if (!sl) {
    recon_item_destroy(it);
    return -1;
  }
  if (sl->pend[s] || sl->done_seq) { /* this side has it already, or it was matched */
    emit(cb, ctx, RECON_DUPLICATE, it, NULL);
    recon_item_destroy(it);
    slot_release(st, sl);
    return 0;
  }
  struct recon_item *o = sl->pend[1 - s];
  int64_t dt = o ? (o->t > it->t ? o->t - it->t : it->t - o->t) : 0;
  if (o && dt <= r->window) {
    emit(cb, ctx, o->amount == it->amount ? RECON_MATCHED : RECON_AMOUNT_MISMATCH, o, it);
    sl->done_at = o->t > it->t ? o->t : it->t;
    sl->done_seq = ++r->seq;
    sl->pend[1 - s] = NULL;
    r->pending--;
    recon_item_destroy(o);
    recon_item_destroy(it);
    return heap_push(&st->done, sl->done_at, sl->done_seq, sl);
  }
  sl->pend[s] = it;
  sl->pend_seq[s] = ++r->seq;
  if (++r->pending > r->peak) r->peak = r->pending;
  if (heap_push(&st->pend[s], it->t, sl->pend_seq[s], sl) != 0) {
    sl->pend[s] = NULL;
    r->pending--;
    recon_item_destroy(it);
    slot_release(st, sl);
    return -1;
  }
  expire(r, st, cb, ctx, 0); /* an item already past the other side's watermark is missing now */
  return 0;
}

int recon_advance(struct recon *r, const char *agency, const char *account, int side, int64_t t, recon_emit_cb cb,
                  void *ctx) {
  int s = side ? 1 : 0;
  for (struct stream *st = r->streams; st; st = st->next) {
    if ((agency && !same(st->agency, agency)) || (account && !same(st->account, account))) continue;
    if (t > st->wm[s]) st->wm[s] = t;
    expire(r, st, cb, ctx, 0);
  }
  return 0;
}

void recon_flush(struct recon *r, recon_emit_cb cb, void *ctx) {
  for (struct stream *st = r->streams; st; st = st->next)
    expire(r, st, cb, ctx, 1);
}

size_t recon_pending(const struct recon *r) {
  return r->pending;
}
size_t recon_pending_peak(const struct recon *r) {
  return r->peak;
}
