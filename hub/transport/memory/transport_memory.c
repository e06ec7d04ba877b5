/* The in-process `memory` transport: a broker living in the process (topics of partitioned,
 * offset-numbered records; consumer groups with their assignment and committed offsets;
 * transactional ids with their epochs) behind one mutex, and handles that use it with Kafka's
 * semantics as routes see them:
 * - consumers read committed records only: a transaction's records reach their partitions, and
 *   the consumer offsets marked done reach the group, in one step at commit;
 * - a consumer group shares a topic's partitions among its members (range assignment in join
 *   order) and rebalances when a member joins or leaves, eagerly as librdkafka's default
 *   assignors do: every member gives up every partition at its next poll, aborting its open
 *   transaction, and starts again from the committed offsets. A commit of offsets by a member
 *   that has not yet taken the new assignment is refused (Kafka's generation check, KIP-447);
 * - a newer handle with the same transactional id fences the older one (init_transactions).
 * Records stay until the process ends or hub_memory_reset(): this is for tests and demos. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/config.h"
#include "hub/core/log.h"
#include "hub/core/registry.h"
#include "hub/core/stop.h"
#include "hub/transport/memory/memory.h"
#include "hub/transport/transport.h"

#define MAX_PARTITIONS 1024
#define DEFAULT_PARTITIONS 4 /* as the map's default below */

#define MCFG(field) offsetof(struct hub_memory_cfg, field)
static const struct hub_cfg_entry memory_entries[] = {
    {"partitions", HUB_CFG_INT, MCFG(partitions), "4", 0,
     "partitions of each topic, fixed when the topic is created (at a route's start or by a first write); "
     "records are spread over them by key, as on Kafka, and a consumer group shares them among its members",
     NULL, NULL, 1, MAX_PARTITIONS},
    {NULL},
};
static const struct hub_cfg_map memory_cfg_map = {"hub.memory", memory_entries};

/* A stop request is a flag set from a signal handler, which cannot signal a condition
 * variable: poll waits in slices this long so that it notices one soon. */
#define STOP_CHECK_MS 20

struct partition {
  struct hub_msg **recs; /* committed records; a record's offset is its index */
  size_t n, cap;
};

struct topic {
  char *name;
  int n_parts;
  struct partition *parts;
  unsigned next_rr; /* partition of the next keyless record */
  struct topic *next;
};

/* A consumer group reading one topic: its members in join order, the member each partition is
 * assigned to, and the committed offsets, which outlive the members. */
struct group {
  char *id;
  char *topic_name;
  struct topic *topic; /* NULL until the topic exists */
  uint64_t generation; /* moves on at every rebalance */
  struct hub_transport **members;
  size_t n_members, cap_members;
  struct hub_transport **owner; /* per partition */
  int64_t *committed;           /* per partition: the next offset to read; -1: nothing committed */
  struct group *next;
};

/* A transactional id: the epoch of its newest handle (older handles are fenced) and the number
 * of commits a test asked to fail. */
struct txn_id {
  char *id;
  uint64_t epoch;
  int fail_commits;
  struct txn_id *next;
};

static struct {
  pthread_once_t once;
  pthread_mutex_t mu;
  pthread_cond_t changed; /* broadcast when records are committed, a group rebalances, a partition resumes */
  struct topic *topics;
  struct group *groups;
  struct txn_id *txns;
  int n_open; /* handles open */
} B = {.once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER};

/* A partition assigned to a handle, as that handle sees it. */
struct assigned {
  int32_t partition;
  int64_t position; /* the offset poll returns next */
  int paused;
};

struct mark {
  int32_t partition;
  int64_t next_offset;
};

struct pending {
  struct topic *topic;
  struct hub_msg *m; /* partition chosen; offset given at commit */
};

struct hub_transport {
  int partitions; /* of the topics this handle creates */
  char *group_id;
  struct txn_id *txn;  /* NULL: a plain producer */
  uint64_t epoch;      /* ours; txn->epoch moves on when a newer handle takes the id */
  struct group *group; /* joined by subscribe */
  uint64_t generation; /* of the group when `as` was taken */
  struct assigned *as; /* ascending partitions; room for every partition of the topic */
  int n_as, cap_as;
  int next_as; /* where poll looks first, so that every partition gets its turn */
  int in_txn;
  struct pending *pending;
  size_t n_pending, cap_pending;
  struct mark *marks;
  size_t n_marks, cap_marks;
};

static void broker_init(void) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC); /* poll's deadline must not follow the wall clock */
  pthread_cond_init(&B.changed, &a);
  pthread_condattr_destroy(&a);
}

static void lock(void) {
  pthread_once(&B.once, broker_init);
  pthread_mutex_lock(&B.mu);
}

static void unlock(void) { pthread_mutex_unlock(&B.mu); }

/* v with room for n + 1 elements of `size` bytes (capacity *cap), or NULL when out of memory
 * (v is then unchanged). */
static void *grow(void *v, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return v;
  size_t c = *cap ? *cap * 2 : 16;
  void *nv = realloc(v, c * size);
  if (nv) *cap = c;
  return nv;
}

static struct timespec deadline_in(int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

static int before(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a: the same key always lands on the same partition, which keeps per-key order. */
static uint32_t key_hash(const unsigned char *k, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 16777619u;
  return h;
}

/* ---- broker state (every function below runs with B.mu held) ---- */

static void topic_free(struct topic *tp) {
  if (!tp) return;
  for (int p = 0; tp->parts && p < tp->n_parts; p++) {
    for (size_t i = 0; i < tp->parts[p].n; i++) hub_msg_destroy(tp->parts[p].recs[i]);
    free(tp->parts[p].recs);
  }
  free(tp->parts);
  free(tp->name);
  free(tp);
}

static void group_free(struct group *g) {
  if (!g) return;
  free(g->id);
  free(g->topic_name);
  free(g->members);
  free(g->owner);
  free(g->committed);
  free(g);
}

static struct topic *topic_get(const char *name) {
  for (struct topic *tp = B.topics; tp; tp = tp->next)
    if (!strcmp(tp->name, name)) return tp;
  return NULL;
}

/* Range assignment over the members in join order; every member takes it at its next poll. */
static void group_rebalance(struct group *g) {
  g->generation++;
  if (g->topic) {
    int n = g->topic->n_parts, m = (int)g->n_members, p = 0;
    for (int i = 0; i < m; i++)
      for (int k = n / m + (i < n % m); k > 0; k--) g->owner[p++] = g->members[i];
    for (; p < n; p++) g->owner[p] = NULL;
  }
  pthread_cond_broadcast(&B.changed);
}

/* The group's topic now exists: its partitions are shared out, as Kafka's metadata refresh
 * does for a subscription to a topic created later. */
static void group_attach_topic(struct group *g, struct topic *tp) {
  struct hub_transport **owner = calloc((size_t)tp->n_parts, sizeof *owner);
  int64_t *committed = malloc((size_t)tp->n_parts * sizeof *committed);
  if (!owner || !committed) {
    free(owner);
    free(committed);
    hub_log(HUB_LOG_ERROR, "memory", "out of memory: group %s gets no partitions of %s", g->id, tp->name);
    return;
  }
  for (int p = 0; p < tp->n_parts; p++) committed[p] = -1;
  g->owner = owner;
  g->committed = committed;
  g->topic = tp;
  group_rebalance(g);
}

/* The topic, created with n_parts partitions if it does not exist yet; NULL when out of memory. */
static struct topic *topic_get_or_create(const char *name, int n_parts) {
  struct topic *tp = topic_get(name);
  if (tp) return tp;
  tp = calloc(1, sizeof *tp);
  if (!tp || !(tp->name = strdup(name)) || !(tp->parts = calloc((size_t)n_parts, sizeof *tp->parts))) {
    topic_free(tp);
    return NULL;
  }
  tp->n_parts = n_parts;
  tp->next = B.topics;
  B.topics = tp;
  for (struct group *g = B.groups; g; g = g->next)
    if (!g->topic && !strcmp(g->topic_name, name)) group_attach_topic(g, tp);
  hub_log(HUB_LOG_DEBUG, "memory", "created topic %s with %d partition(s)", name, n_parts);
  return tp;
}

static struct group *group_get_or_create(const char *id, const char *topic) {
  for (struct group *g = B.groups; g; g = g->next)
    if (!strcmp(g->id, id) && !strcmp(g->topic_name, topic)) return g;
  struct group *g = calloc(1, sizeof *g);
  if (!g || !(g->id = strdup(id)) || !(g->topic_name = strdup(topic))) {
    group_free(g);
    return NULL;
  }
  g->next = B.groups;
  B.groups = g;
  struct topic *tp = topic_get(topic);
  if (tp) group_attach_topic(g, tp);
  return g;
}

static struct txn_id *txn_get_or_create(const char *id) {
  for (struct txn_id *x = B.txns; x; x = x->next)
    if (!strcmp(x->id, id)) return x;
  struct txn_id *x = calloc(1, sizeof *x);
  if (!x || !(x->id = strdup(id))) {
    free(x);
    return NULL;
  }
  x->next = B.txns;
  B.txns = x;
  return x;
}

static int fenced(const struct hub_transport *t) { return t->txn && t->txn->epoch != t->epoch; }

static int64_t committed_offset(const struct group *g, int32_t p) {
  return g && g->committed && g->committed[p] >= 0 ? g->committed[p] : 0;
}

/* Every assigned partition goes back to the group's committed offset. A pause stays: the
 * caller resumes the partition (transport.h). */
static void rewind_consumer(struct hub_transport *t) {
  t->n_marks = 0;
  for (int i = 0; i < t->n_as; i++) t->as[i].position = committed_offset(t->group, t->as[i].partition);
}

static void drop_pending(struct hub_transport *t) {
  for (size_t i = 0; i < t->n_pending; i++) hub_msg_destroy(t->pending[i].m);
  t->n_pending = 0;
}

/* The open transaction is gone: its records are dropped (a plain producer's are already on
 * their way, as with Kafka) and the consumer goes back to the committed offsets. */
static void abort_txn(struct hub_transport *t) {
  if (t->txn) drop_pending(t);
  t->in_txn = 0;
  rewind_consumer(t);
}

/* Takes the group's assignment if a rebalance happened since we last did: positions restart at
 * the committed offsets, a pause survives on a partition that stays with us. Returns 1 if
 * partitions were taken away while a transaction was open: it is aborted, and the caller must
 * drop what it holds and redo from poll. */
static int sync_assignment(struct hub_transport *t) {
  struct group *g = t->group;
  if (!g || t->generation == g->generation) return 0;
  int n_parts = g->topic ? g->topic->n_parts : 0;
  if (t->cap_as < n_parts) {
    struct assigned *na = realloc(t->as, (size_t)n_parts * sizeof *na);
    if (!na) return 0; /* out of memory: keep the old generation (its commits are refused); try again */
    t->as = na;
    t->cap_as = n_parts;
  }
  unsigned char paused[MAX_PARTITIONS] = {0};
  for (int i = 0; i < t->n_as; i++) paused[t->as[i].partition] = (unsigned char)t->as[i].paused;
  int revoked = t->n_as > 0, n = 0;
  for (int p = 0; p < n_parts; p++)
    if (g->owner[p] == t) t->as[n++] = (struct assigned){p, committed_offset(g, p), paused[p]};
  t->n_as = n;
  t->next_as = 0;
  t->generation = g->generation;
  t->n_marks = 0;
  hub_log(HUB_LOG_INFO, "memory", "assigned %d partition(s) of %s", n, g->topic_name);
  if (!revoked || !t->in_txn) return 0;
  drop_pending(t);
  t->in_txn = 0;
  return 1;
}

static void group_leave(struct hub_transport *t) {
  struct group *g = t->group;
  if (!g) return;
  for (size_t i = 0; i < g->n_members; i++)
    if (g->members[i] == t) {
      memmove(&g->members[i], &g->members[i + 1], (g->n_members - i - 1) * sizeof *g->members);
      g->n_members--;
      break;
    }
  t->group = NULL;
  t->generation = 0;
  t->n_as = 0;
  group_rebalance(g);
}

/* Appends the pending records to their partitions, all or none: room is made first. */
static hub_err_t append_pending(struct hub_transport *t) {
  for (size_t i = 0; i < t->n_pending; i++) {
    struct partition *pt = &t->pending[i].topic->parts[t->pending[i].m->partition];
    size_t need = pt->n + t->n_pending;
    if (pt->cap >= need) continue;
    size_t cap = pt->cap * 2 > need ? pt->cap * 2 : need;
    struct hub_msg **r = realloc(pt->recs, cap * sizeof *r);
    if (!r) return HUB_ERR_NOMEM;
    pt->recs = r;
    pt->cap = cap;
  }
  for (size_t i = 0; i < t->n_pending; i++) {
    struct hub_msg *m = t->pending[i].m;
    struct partition *pt = &t->pending[i].topic->parts[m->partition];
    m->offset = (int64_t)pt->n;
    pt->recs[pt->n++] = m;
  }
  if (t->n_pending) pthread_cond_broadcast(&B.changed);
  t->n_pending = 0;
  return HUB_OK;
}

/* The next record of a partition that is assigned, not paused and not read to its end; the
 * partitions take turns. 1: *out is set; 0: nothing to read; -1: out of memory. */
static int next_record(struct hub_transport *t, struct hub_msg **out) {
  struct topic *tp = t->group ? t->group->topic : NULL;
  for (int i = 0; tp && i < t->n_as; i++) {
    int k = (t->next_as + i) % t->n_as;
    struct assigned *a = &t->as[k];
    struct partition *pt = &tp->parts[a->partition];
    if (a->paused || a->position >= (int64_t)pt->n) continue;
    if (!(*out = hub_msg_dup(pt->recs[a->position]))) return -1;
    a->position++;
    t->next_as = (k + 1) % t->n_as;
    return 1;
  }
  return 0;
}

static struct assigned *find_assigned(struct hub_transport *t, const struct hub_msg *m) {
  if (!t->group || !m->topic || strcmp(m->topic, t->group->topic_name)) return NULL;
  for (int i = 0; i < t->n_as; i++)
    if (t->as[i].partition == m->partition) return &t->as[i];
  return NULL;
}

/* ---- the transport ops ---- */

static void m_close(struct hub_transport *t) {
  if (!t) return;
  lock();
  /* As Kafka's close flushes: what a plain producer queued is delivered; a transaction is aborted. */
  if (!t->txn && append_pending(t) != HUB_OK)
    hub_log(HUB_LOG_ERROR, "memory", "out of memory: %zu record(s) queued at close were lost", t->n_pending);
  drop_pending(t);
  group_leave(t);
  B.n_open--;
  unlock();
  free(t->group_id);
  free(t->as);
  free(t->pending);
  free(t->marks);
  free(t);
}

static hub_err_t m_open(const void *cfg, const struct hub_transport_opts *opts, struct hub_transport **out,
                        char *errbuf, size_t errbuf_size) {
  const struct hub_memory_cfg *c = cfg;
  hub_err_t rc = HUB_OK;
  struct hub_transport *t = calloc(1, sizeof *t);
  *out = NULL;
  if (!t) return HUB_ERR_NOMEM;
  int64_t n = c ? c->partitions : DEFAULT_PARTITIONS;
  if (n < 1 || n > MAX_PARTITIONS) {
    rc = hub_errf(errbuf, errbuf_size, HUB_ERR_CONFIG, "hub.memory.partitions: %lld is not in 1..%d", (long long)n,
                  MAX_PARTITIONS);
    goto fail;
  }
  t->partitions = (int)n;
  if (opts->group_id && !(t->group_id = strdup(opts->group_id))) {
    rc = HUB_ERR_NOMEM;
    goto fail;
  }
  lock();
  if (opts->transactional_id) {
    if (!(t->txn = txn_get_or_create(opts->transactional_id))) {
      unlock();
      rc = HUB_ERR_NOMEM;
      goto fail;
    }
    /* As init_transactions: the newest handle of a transactional id fences the older ones. */
    t->epoch = ++t->txn->epoch;
  }
  B.n_open++;
  unlock();
  *out = t;
  return HUB_OK;
fail:
  free(t->group_id);
  free(t);
  return rc;
}

static hub_err_t m_ensure_topics(struct hub_transport *t, const char *const *topics, size_t n, char *errbuf,
                                 size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  lock();
  for (size_t i = 0; i < n && rc == HUB_OK; i++) {
    if (!hub_topic_name_valid(topics[i]))
      rc = hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "'%s' is not a valid topic name", topics[i]);
    else if (!topic_get_or_create(topics[i], t->partitions))
      rc = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory creating topic '%s'", topics[i]);
  }
  unlock();
  return rc;
}

/* Joins the group for `topic`; the assignment comes with the next poll. A handle subscribes
 * once, as a route does; subscribing again leaves the first group, outside a transaction. */
static hub_err_t m_subscribe(struct hub_transport *t, const char *topic) {
  hub_err_t rc = HUB_OK;
  if (!t->group_id || !hub_topic_name_valid(topic)) return HUB_ERR_INVALID_ARG;
  lock();
  if (t->group && !strcmp(t->group->topic_name, topic)) goto out;
  if (t->in_txn) {
    rc = HUB_ERR_INVALID_ARG;
    goto out;
  }
  struct group *g = group_get_or_create(t->group_id, topic);
  struct hub_transport **nm = g ? grow(g->members, &g->cap_members, g->n_members, sizeof *nm) : NULL;
  if (!nm) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  group_leave(t);
  g->members = nm;
  g->members[g->n_members++] = t;
  t->group = g;
  t->generation = 0; /* a group's generation is 1 or more once rebalanced: the next poll takes the assignment */
  group_rebalance(g);
out:
  unlock();
  return rc;
}

/* A negative timeout waits until a record comes or a stop is requested, as librdkafka's does. */
static hub_err_t m_poll(struct hub_transport *t, int timeout_ms, struct hub_msg **out) {
  hub_err_t rc = HUB_OK;
  struct timespec deadline = deadline_in(timeout_ms > 0 ? timeout_ms : 0);
  *out = NULL;
  if (!t->group_id) return HUB_ERR_INVALID_ARG; /* no consumer */
  lock();
  for (;;) {
    if (sync_assignment(t)) {
      rc = HUB_ERR_ABORTED;
      break;
    }
    int got = next_record(t, out);
    if (got < 0) rc = HUB_ERR_NOMEM;
    if (got != 0 || hub_stop_requested()) break;
    struct timespec until = deadline_in(STOP_CHECK_MS), now = deadline_in(0);
    if (timeout_ms >= 0) {
      if (!before(&now, &deadline)) break;
      if (!before(&until, &deadline)) until = deadline;
    }
    pthread_cond_timedwait(&B.changed, &B.mu, &until);
  }
  unlock();
  return rc;
}

static hub_err_t m_begin(struct hub_transport *t) {
  hub_err_t rc = HUB_OK;
  lock();
  if (fenced(t)) {
    abort_txn(t);
    rc = HUB_ERR_FENCED;
  } else if (t->txn) {
    t->in_txn = 1;
  }
  unlock();
  return rc;
}

static hub_err_t m_produce(struct hub_transport *t, const char *topic, const struct hub_msg *m) {
  hub_err_t rc = HUB_OK;
  struct hub_msg *c = NULL;
  if (!hub_topic_name_valid(topic)) {
    hub_log(HUB_LOG_WARN, "memory", "produce: '%s' is not a valid topic name", topic ? topic : "(null)");
    return HUB_ERR_INVALID_ARG;
  }
  if (!(c = hub_msg_dup(m)) || hub_msg_set_topic(c, topic) != HUB_OK) {
    hub_msg_destroy(c);
    return HUB_ERR_NOMEM;
  }
  c->offset = -1;
  c->timestamp_ms = wall_ms(); /* the producer's clock, as librdkafka stamps a record it sends */
  lock();
  if (fenced(t)) {
    abort_txn(t);
    rc = HUB_ERR_FENCED;
    goto out;
  }
  if (t->txn && !t->in_txn) {
    rc = HUB_ERR_ABORTED; /* what the kafka transport returns for a produce outside a transaction */
    goto out;
  }
  struct topic *tp = topic_get_or_create(topic, t->partitions);
  struct pending *np = tp ? grow(t->pending, &t->cap_pending, t->n_pending, sizeof *np) : NULL;
  if (!np) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  t->pending = np;
  c->partition = c->key ? (int32_t)(key_hash(c->key, c->key_len) % (uint32_t)tp->n_parts)
                        : (int32_t)(tp->next_rr++ % (unsigned)tp->n_parts);
  t->pending[t->n_pending++] = (struct pending){tp, c};
  c = NULL;
out:
  unlock();
  hub_msg_destroy(c);
  return rc;
}

/* Stops the partition after m: poll goes on from m's successor when it is resumed. A position
 * already behind that (an abort or a rebalance rewound it) is kept. */
static void m_pause(struct hub_transport *t, const struct hub_msg *m) {
  lock();
  struct assigned *a = find_assigned(t, m);
  if (a) {
    a->paused = 1;
    if (a->position > m->offset + 1) a->position = m->offset + 1;
  }
  unlock();
}

static void m_resume(struct hub_transport *t, const struct hub_msg *m) {
  lock();
  struct assigned *a = find_assigned(t, m);
  if (a && a->paused) {
    a->paused = 0;
    pthread_cond_broadcast(&B.changed);
  }
  unlock();
}

static void m_mark_done(struct hub_transport *t, const struct hub_msg *m) {
  lock();
  for (size_t i = 0; i < t->n_marks; i++) {
    if (t->marks[i].partition == m->partition) {
      if (m->offset + 1 > t->marks[i].next_offset) t->marks[i].next_offset = m->offset + 1;
      goto out;
    }
  }
  struct mark *nm = grow(t->marks, &t->cap_marks, t->n_marks, sizeof *nm);
  if (!nm) goto out; /* the offset is simply not committed: records are read again, never lost */
  t->marks = nm;
  t->marks[t->n_marks++] = (struct mark){m->partition, m->offset + 1};
out:
  unlock();
}

static hub_err_t m_commit(struct hub_transport *t) {
  hub_err_t rc = HUB_OK;
  lock();
  if (!t->txn) {
    /* A plain producer: delivery is all there is (Kafka's commits no offsets either). */
    if ((rc = append_pending(t)) != HUB_OK) {
      hub_log(HUB_LOG_ERROR, "memory", "out of memory: %zu record(s) could not be delivered", t->n_pending);
      drop_pending(t);
      rc = HUB_ERR_TRANSPORT;
    }
    goto out;
  }
  if (fenced(t)) {
    hub_log(HUB_LOG_WARN, "memory", "transactional id %s was taken by a newer handle: transaction dropped", t->txn->id);
    abort_txn(t);
    rc = HUB_ERR_FENCED;
    goto out;
  }
  if (!t->in_txn) goto out;
  if (t->txn->fail_commits > 0) {
    t->txn->fail_commits--;
    hub_log(HUB_LOG_WARN, "memory", "injected commit failure for %s: transaction aborted", t->txn->id);
    abort_txn(t);
    rc = HUB_ERR_ABORTED;
    goto out;
  }
  if (t->n_marks && t->group && t->generation != t->group->generation) {
    /* The offsets belong to partitions a rebalance has handed out since: the group refuses them. */
    hub_log(HUB_LOG_INFO, "memory", "commit after a rebalance of %s: transaction aborted", t->group->id);
    abort_txn(t);
    sync_assignment(t);
    rc = HUB_ERR_ABORTED;
    goto out;
  }
  if (append_pending(t) != HUB_OK) {
    hub_log(HUB_LOG_ERROR, "memory", "out of memory committing %zu record(s): transaction aborted", t->n_pending);
    abort_txn(t);
    rc = HUB_ERR_ABORTED;
    goto out;
  }
  for (size_t i = 0; t->group && t->group->committed && i < t->n_marks; i++)
    if (t->marks[i].partition >= 0 && t->marks[i].partition < t->group->topic->n_parts)
      t->group->committed[t->marks[i].partition] = t->marks[i].next_offset;
  t->n_marks = 0;
  t->in_txn = 0;
out:
  unlock();
  return rc;
}

static hub_err_t m_abort(struct hub_transport *t) {
  lock();
  hub_err_t rc = fenced(t) ? HUB_ERR_FENCED : HUB_OK;
  abort_txn(t);
  unlock();
  return rc;
}

static int m_assigned(struct hub_transport *t) {
  lock();
  int n = t->n_as;
  unlock();
  return n;
}

static int64_t m_fetched(struct hub_transport *t) {
  (void)t;
  return 0; /* poll reads the partitions directly: nothing is fetched ahead */
}

static int64_t m_lag(struct hub_transport *t) {
  int64_t lag = 0;
  lock();
  struct topic *tp = t->group ? t->group->topic : NULL;
  if (!t->group) lag = -1;
  for (int i = 0; tp && i < t->n_as; i++) {
    int64_t end = (int64_t)tp->parts[t->as[i].partition].n;
    if (end > t->as[i].position) lag += end - t->as[i].position;
  }
  unlock();
  return lag;
}

static int m_connected(struct hub_transport *t) {
  (void)t;
  return 1; /* the broker is in the process */
}

/* Every committed record, partition by partition, up to the ends seen at the start. The
 * callback runs without the lock, so it may use the transport. */
static hub_err_t m_scan(struct hub_transport *t, const char *topic, hub_scan_cb cb, void *ctx, char *errbuf,
                        size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  size_t *ends = NULL;
  (void)t;
  lock();
  struct topic *tp = topic_get(topic);
  if (!tp) {
    unlock();
    return hub_errf(errbuf, errbuf_size, HUB_ERR_NOT_FOUND, "topic '%s' does not exist", topic);
  }
  int n_parts = tp->n_parts;
  if ((ends = malloc((size_t)n_parts * sizeof *ends)))
    for (int p = 0; p < n_parts; p++) ends[p] = tp->parts[p].n;
  unlock();
  if (!ends) return hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory scanning '%s'", topic);
  for (int p = 0; p < n_parts; p++)
    for (size_t off = 0; off < ends[p]; off++) {
      if (hub_stop_requested()) goto out;
      lock();
      struct hub_msg *m = hub_msg_dup(tp->parts[p].recs[off]);
      unlock();
      if (!m) {
        rc = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory scanning '%s'", topic);
        goto out;
      }
      int stop = cb(ctx, m);
      hub_msg_destroy(m);
      if (stop) goto out;
    }
out:
  free(ends);
  return rc;
}

/* ---- test hooks (memory.h) ---- */

hub_err_t hub_memory_reset(void) {
  lock();
  if (B.n_open) {
    unlock();
    return HUB_ERR_INVALID_ARG;
  }
  while (B.topics) {
    struct topic *tp = B.topics;
    B.topics = tp->next;
    topic_free(tp);
  }
  while (B.groups) {
    struct group *g = B.groups;
    B.groups = g->next;
    group_free(g);
  }
  while (B.txns) {
    struct txn_id *x = B.txns;
    B.txns = x->next;
    free(x->id);
    free(x);
  }
  unlock();
  return HUB_OK;
}

void hub_memory_fail_commits(const char *txn_id, int n) {
  if (!txn_id) return;
  lock();
  struct txn_id *x = txn_get_or_create(txn_id);
  if (x) x->fail_commits = n > 0 ? n : 0;
  unlock();
}

void hub_memory_rebalance(const char *group_id) {
  lock();
  for (struct group *g = B.groups; g; g = g->next)
    if (!strcmp(g->id, group_id)) group_rebalance(g);
  unlock();
}

static const struct hub_transport_ops memory_ops = {
    .info = {.name = "memory",
             .summary = "in-process topics with Kafka's semantics: transactions with the consumer offsets, consumer "
                        "groups, read_committed; for tests and demos, nothing outlives the process",
             .config_map = &memory_cfg_map,
             .config_size = sizeof(struct hub_memory_cfg)},
    .open = m_open,
    .close = m_close,
    .ensure_topics = m_ensure_topics,
    .subscribe = m_subscribe,
    .poll = m_poll,
    .begin = m_begin,
    .produce = m_produce,
    .pause = m_pause,
    .resume = m_resume,
    .mark_done = m_mark_done,
    .commit = m_commit,
    .abort = m_abort,
    .assigned = m_assigned,
    .fetched = m_fetched,
    .lag = m_lag,
    .connected = m_connected,
    .scan = m_scan,
};
HUB_TRANSPORT_PLUGIN(hub_plugin_transport_memory, memory_ops);
