/* The `memory` transport against the contract of transport.h, as the kafka transport keeps it:
 * read_committed transactions that carry the consumer offsets, abort and rewind, per-key
 * partition order, fencing by transactional id, consumer groups and their rebalances, pause and
 * resume, injected commit failures, scan, blocking poll, and many threads at once. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "memtest.h"
#include "hub/core/log.h"
#include "hub/core/stop.h"
#include "hub/transport/memory/memory.h"
#include "hub/transport/transport.h"


static struct hub_transport *open_h(const char *group, const char *txn, int partitions) {
  struct hub_memory_cfg cfg = {partitions};
  struct hub_transport_opts o = {"test", group, NULL, txn};
  struct hub_transport *t = NULL;
  char e[256] = "";
  hub_err_t rc = T->open(&cfg, &o, &t, e, sizeof e);
  if (rc != HUB_OK || !t) fprintf(stderr, "open: %s: %s\n", hub_err2name(rc), e);
  return t;
}

/* A consumer in `group` reading `topic` (created with `partitions` if new). */
static struct hub_transport *consumer(const char *group, const char *txn, const char *topic, int partitions) {
  struct hub_transport *t = open_h(group, txn, partitions);
  char e[256];
  const char *topics[] = {topic};
  if (t && (T->ensure_topics(t, topics, 1, e, sizeof e) != HUB_OK || T->subscribe(t, topic) != HUB_OK)) {
    T->close(t);
    t = NULL;
  }
  return t;
}

static struct hub_msg *rec(const char *key, const char *value) {
  return hub_msg_new(key, key ? strlen(key) : 0, value, strlen(value));
}

/* Writes n records "PREFIX-i" (header h = the same) with `key` (NULL: none) in one transaction. */
static int put(const char *topic, const char *key, const char *prefix, int n) {
  struct hub_transport *p = open_h(NULL, "test.put", 4);
  int ok = p && T->begin(p) == HUB_OK;
  for (int i = 0; ok && i < n; i++) {
    char v[64];
    snprintf(v, sizeof v, "%s-%d", prefix, i);
    struct hub_msg *m = rec(key, v);
    ok = m && hub_msg_header_set_str(m, "h", v) == HUB_OK && T->produce(p, topic, m) == HUB_OK;
    hub_msg_destroy(m);
  }
  ok = ok && T->commit(p) == HUB_OK;
  T->close(p);
  return ok;
}





/* Polls until `max` records came or a poll waited `wait_ms` in vain; ABORTED ends it too
 * (*aborted is set). Records go into c (when given). */
static int drain(struct hub_transport *t, struct coll *c, int max, int wait_ms, int *aborted) {
  int n = 0;
  if (aborted) *aborted = 0;
  while (n < max) {
    struct hub_msg *m = NULL;
    hub_err_t rc = T->poll(t, wait_ms, &m);
    if (rc == HUB_ERR_ABORTED && aborted) *aborted = 1;
    if (rc != HUB_OK || !m) break;
    n++;
    if (c) on_scan(c, m);
    hub_msg_destroy(m);
  }
  return n;
}



static void reset(void) { CHECK(hub_memory_reset() == HUB_OK); }

/* The plugin, its options and the answers that do not depend on records. */
static void test_plugin(void) {
  CHECK(T != NULL);
  const struct hub_cfg_map *map = T->info.config_map;
  CHECK(map && map->entries[0].name && !strcmp(map->entries[0].name, "partitions"));
  for (const struct hub_cfg_entry *e = map->entries; e->name; e++) CHECK(e->desc && strlen(e->desc) > 20);
  struct hub_memory_cfg cfg = {0};
  char e[256] = "";
  CHECK(hub_cfg_map_apply(map, NULL, NULL, &cfg, e, sizeof e) == HUB_OK && cfg.partitions == 4);
  hub_cfg_map_release(map, &cfg);
  cfg.partitions = 0;
  struct hub_transport_opts o = {"test", NULL, NULL, NULL};
  struct hub_transport *t = NULL;
  CHECK(T->open(&cfg, &o, &t, e, sizeof e) == HUB_ERR_CONFIG && !t);
  CHECK_CONTAINS(e, "partitions");
  cfg.partitions = 1025;
  CHECK(T->open(&cfg, &o, &t, e, sizeof e) == HUB_ERR_CONFIG && !t);
  CHECK(T->open(NULL, &o, &t, e, sizeof e) == HUB_OK && t); /* NULL: the defaults */
  CHECK(T->connected(t) == 1);
  CHECK(T->fetched(t) == 0);
  CHECK(T->lag(t) == -1); /* no consumer */
  CHECK(T->assigned(t) == 0);
  CHECK(T->subscribe(t, "x") == HUB_ERR_INVALID_ARG); /* no group */
  struct hub_msg *m = NULL;
  CHECK(T->poll(t, 0, &m) == HUB_ERR_INVALID_ARG && !m); /* no consumer */
  const char *bad[] = {"no spaces"};
  CHECK(T->ensure_topics(t, bad, 1, e, sizeof e) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(e, "no spaces");
  CHECK(hub_memory_reset() == HUB_ERR_INVALID_ARG); /* a handle is open */
  T->close(t);
  reset();
}

/* Records of a transaction are invisible until commit, and arrive whole: key, value, headers,
 * topic, partition, offset, timestamp. A transactional handle produces only inside begin. */
static void test_visible_after_commit(void) {
  struct hub_transport *c = consumer("g.vis", NULL, "vis", 4);
  struct hub_transport *p = open_h(NULL, "vis.p", 4);
  struct hub_msg *in = rec("key-1", "payload");
  hub_msg_header_set_str(in, "lt.type", "dossier.submitted");
  hub_msg_header_add(in, "bin", "a\0b", 3);
  CHECK(T->produce(p, "vis", in) == HUB_ERR_ABORTED); /* no transaction open */
  CHECK(T->begin(p) == HUB_OK);
  CHECK(T->produce(p, "vis", in) == HUB_OK);
  CHECK(T->produce(p, "vis", in) == HUB_OK);
  struct hub_msg *m = NULL;
  CHECK(T->poll(c, 50, &m) == HUB_OK && m == NULL);
  CHECK(count("vis") == 0);
  CHECK(T->commit(p) == HUB_OK);
  CHECK(count("vis") == 2);
  double t0 = now_ms();
  CHECK(T->poll(c, 1000, &m) == HUB_OK && m != NULL);
  CHECK(now_ms() - t0 < 500);
  if (m) {
    CHECK(m->key_len == 5 && !memcmp(m->key, "key-1", 5));
    CHECK(m->value_len == 7 && !strcmp((const char *)m->value, "payload"));
    CHECK_STR(hub_msg_header_get_str(m, "lt.type"), "dossier.submitted");
    const struct hub_header *h = hub_msg_header_get(m, "bin");
    CHECK(h && h->value_len == 3 && !memcmp(h->value, "a\0b", 3));
    CHECK_STR(m->topic, "vis");
    CHECK(m->partition >= 0 && m->partition < 4);
    CHECK(m->offset == 0);
    CHECK(m->timestamp_ms > 1600000000000LL);
    CHECK(m->attempt == 0);
  }
  struct hub_msg *m2 = NULL;
  CHECK(T->poll(c, 100, &m2) == HUB_OK && m2 && m2->offset == 1 && m && m2->partition == m->partition);
  hub_msg_destroy(m);
  hub_msg_destroy(m2);
  /* A keyless record stays keyless. */
  struct hub_msg *nk = rec(NULL, "nokey");
  CHECK(T->begin(p) == HUB_OK && T->produce(p, "vis", nk) == HUB_OK && T->commit(p) == HUB_OK);
  CHECK(T->poll(c, 1000, &m) == HUB_OK && m && m->key == NULL && m->key_len == 0);
  hub_msg_destroy(m);
  hub_msg_destroy(nk);
  hub_msg_destroy(in);
  T->close(p);
  T->close(c);
  reset();
}

/* A plain producer (no transactional id) delivers at commit, and at close; abort does not
 * recall what it queued (as with Kafka, the records are already on their way). */
static void test_plain_producer(void) {
  struct hub_transport *p = open_h(NULL, NULL, 4);
  struct hub_msg *m = rec("k", "v");
  CHECK(T->begin(p) == HUB_OK);
  CHECK(T->produce(p, "plain", m) == HUB_OK && T->produce(p, "plain", m) == HUB_OK);
  CHECK(count("plain") == 0);
  CHECK(T->commit(p) == HUB_OK);
  CHECK(count("plain") == 2);
  CHECK(T->produce(p, "plain", m) == HUB_OK);
  CHECK(T->abort(p) == HUB_OK);
  CHECK(T->commit(p) == HUB_OK);
  CHECK(count("plain") == 3);
  CHECK(T->produce(p, "plain", m) == HUB_OK);
  T->close(p);
  CHECK(count("plain") == 4);
  hub_msg_destroy(m);
  reset();
}

/* Abort drops the transaction's records and rewinds the consumer to the committed offsets. */
static void test_abort_rewinds(void) {
  CHECK(put("ab.in", "k", "r", 5));
  struct hub_transport *c = consumer("g.ab", "ab.c", "ab.in", 4);
  struct coll got = {0};
  CHECK(T->begin(c) == HUB_OK);
  CHECK(drain(c, &got, 3, 100, NULL) == 3);
  for (int i = 0; i < got.n; i++) {
    CHECK(T->produce(c, "ab.out", got.v[i]) == HUB_OK);
    T->mark_done(c, got.v[i]);
  }
  CHECK(T->abort(c) == HUB_OK);
  CHECK(count("ab.out") == 0);
  coll_clear(&got);
  /* From the start again (nothing was committed), and this time committed. */
  CHECK(T->begin(c) == HUB_OK);
  CHECK(drain(c, &got, 10, 100, NULL) == 5);
  CHECK(got.n == 5 && got.v[0]->offset == 0 && !strcmp((const char *)got.v[0]->value, "r-0"));
  for (int i = 0; i < got.n; i++) {
    CHECK(T->produce(c, "ab.out", got.v[i]) == HUB_OK);
    T->mark_done(c, got.v[i]);
  }
  CHECK(T->commit(c) == HUB_OK);
  CHECK(count("ab.out") == 5);
  /* An abort after the commit rewinds to the committed offsets: nothing comes again. */
  CHECK(T->begin(c) == HUB_OK && T->abort(c) == HUB_OK);
  CHECK(drain(c, NULL, 10, 50, NULL) == 0);
  coll_clear(&got);
  T->close(c);
  reset();
}

/* The offsets marked done are committed with the records: a new member of the group starts
 * after them, another group from the start. */
static void test_offsets_with_records(void) {
  CHECK(put("off.in", "k", "r", 5));
  struct hub_transport *c = consumer("g.off", "off.c", "off.in", 4);
  struct coll got = {0};
  CHECK(T->begin(c) == HUB_OK);
  CHECK(drain(c, &got, 3, 100, NULL) == 3);
  for (int i = 0; i < got.n; i++) {
    CHECK(T->produce(c, "off.out", got.v[i]) == HUB_OK);
    T->mark_done(c, got.v[i]);
  }
  CHECK(T->commit(c) == HUB_OK);
  T->close(c);
  coll_clear(&got);
  c = consumer("g.off", "off.c", "off.in", 4);
  CHECK(drain(c, &got, 10, 100, NULL) == 2);
  CHECK(got.n == 2 && got.v[0]->offset == 3 && !strcmp((const char *)got.v[0]->value, "r-3"));
  coll_clear(&got);
  struct hub_transport *other = consumer("g.off.other", NULL, "off.in", 4);
  CHECK(drain(other, &got, 10, 100, NULL) == 5);
  CHECK(got.n == 5 && got.v[0]->offset == 0);
  coll_clear(&got);
  /* A commit whose transaction failed leaves the offsets where they were. */
  hub_memory_fail_commits("off.c", 1);
  CHECK(T->abort(c) == HUB_OK); /* back to the committed offsets: 3 */
  CHECK(T->begin(c) == HUB_OK);
  CHECK(put("off.in", "k", "s", 1));
  CHECK(drain(c, &got, 10, 100, NULL) == 3);
  for (int i = 0; i < got.n; i++) T->mark_done(c, got.v[i]);
  CHECK(T->commit(c) == HUB_ERR_ABORTED);
  T->close(c);
  coll_clear(&got);
  c = consumer("g.off", "off.c", "off.in", 4);
  CHECK(drain(c, &got, 10, 100, NULL) == 3);
  CHECK(got.n == 3 && got.v[0]->offset == 3);
  coll_clear(&got);
  T->close(c);
  T->close(other);
  reset();
}

/* The same key always goes to the same partition, in order; keyless records take turns. */
static void test_key_order(void) {
  struct hub_transport *p = open_h(NULL, "ko.p", 4);
  CHECK(T->begin(p) == HUB_OK);
  for (int i = 0; i < 200; i++) {
    char k[16], v[32];
    snprintf(k, sizeof k, "k%d", i % 10);
    snprintf(v, sizeof v, "%d", i / 10);
    struct hub_msg *m = rec(k, v);
    CHECK(T->produce(p, "ko", m) == HUB_OK);
    hub_msg_destroy(m);
  }
  CHECK(T->commit(p) == HUB_OK);
  struct hub_transport *c = consumer("g.ko", NULL, "ko", 4);
  struct coll got = {0};
  CHECK(drain(c, &got, 300, 100, NULL) == 200);
  int part[10], next[10], used[4] = {0}, ok = 1;
  for (int k = 0; k < 10; k++) part[k] = -1, next[k] = 0;
  for (int i = 0; i < got.n; i++) {
    int k = got.v[i]->key[1] - '0';
    int seq = (int)strtol((const char *)got.v[i]->value, NULL, 10);
    if (part[k] < 0) part[k] = got.v[i]->partition;
    ok &= part[k] == got.v[i]->partition && seq == next[k];
    next[k] = seq + 1;
    used[got.v[i]->partition] = 1;
  }
  CHECK(ok);
  CHECK(used[0] + used[1] + used[2] + used[3] >= 2); /* ten keys do not all hash alike */
  for (int k = 0; k < 10; k++) CHECK(next[k] == 20);
  coll_clear(&got);
  /* Keyless: round-robin over the partitions. */
  CHECK(put("rr", NULL, "x", 8));
  struct hub_transport *s = open_h(NULL, NULL, 4);
  char e[256];
  CHECK(T->scan(s, "rr", on_scan, &got, e, sizeof e) == HUB_OK && got.n == 8);
  int per[4] = {0};
  for (int i = 0; i < got.n; i++) per[got.v[i]->partition]++;
  CHECK(per[0] == 2 && per[1] == 2 && per[2] == 2 && per[3] == 2);
  coll_clear(&got);
  T->close(s);
  T->close(c);
  T->close(p);
  reset();
}

/* A second open with the same transactional id fences the first: its transaction is dropped
 * and every later begin, produce and commit says FENCED. */
static void test_fencing(void) {
  struct hub_transport *old = open_h(NULL, "fence.x", 4);
  struct hub_msg *m = rec("k", "from-old");
  CHECK(T->begin(old) == HUB_OK && T->produce(old, "fence", m) == HUB_OK);
  struct hub_transport *young = open_h(NULL, "fence.x", 4);
  CHECK(T->commit(old) == HUB_ERR_FENCED);
  CHECK(count("fence") == 0);
  CHECK(T->begin(old) == HUB_ERR_FENCED);
  CHECK(T->produce(old, "fence", m) == HUB_ERR_FENCED);
  CHECK(T->commit(old) == HUB_ERR_FENCED);
  CHECK(T->abort(old) == HUB_ERR_FENCED);
  hub_msg_destroy(m);
  m = rec("k", "from-young");
  CHECK(T->begin(young) == HUB_OK && T->produce(young, "fence", m) == HUB_OK && T->commit(young) == HUB_OK);
  CHECK(count("fence") == 1);
  /* Another transactional id is not affected. */
  struct hub_transport *other = open_h(NULL, "fence.y", 4);
  CHECK(T->begin(other) == HUB_OK && T->produce(other, "fence", m) == HUB_OK && T->commit(other) == HUB_OK);
  CHECK(count("fence") == 2);
  hub_msg_destroy(m);
  T->close(old);
  T->close(young);
  T->close(other);
  reset();
}

/* Processes what poll gives inside one transaction: a copy to `out`, marked done; commits. */
static int process_all(struct hub_transport *t, const char *out, struct coll *got) {
  int aborted = 0;
  if (T->begin(t) != HUB_OK) return -1;
  int start = got->n;
  int n = drain(t, got, 1000, 50, &aborted);
  for (int i = start; i < got->n; i++) {
    if (T->produce(t, out, got->v[i]) != HUB_OK) return -1;
    T->mark_done(t, got->v[i]);
  }
  return !aborted && T->commit(t) == HUB_OK ? n : -1;
}

/* Two members of a group split the partitions; when one closes the other takes them all, from
 * the committed offsets. */
static void test_group_split(void) {
  struct hub_transport *a = consumer("g.gs", "gs.a", "gs", 4);
  struct hub_msg *m = NULL;
  CHECK(T->poll(a, 0, &m) == HUB_OK && !m);
  CHECK(T->assigned(a) == 4);
  struct hub_transport *b = consumer("g.gs", "gs.b", "gs", 4);
  CHECK(T->poll(b, 0, &m) == HUB_OK && !m);
  CHECK(T->poll(a, 0, &m) == HUB_OK && !m); /* no transaction was open: no ABORTED */
  CHECK(T->assigned(a) == 2 && T->assigned(b) == 2);
  for (int k = 0; k < 10; k++) {
    char key[8];
    snprintf(key, sizeof key, "k%d", k);
    CHECK(put("gs", key, key, 4));
  }
  CHECK(T->lag(a) + T->lag(b) == 40);
  struct coll ga = {0}, gb = {0};
  int na = process_all(a, "gs.out", &ga), nb = process_all(b, "gs.out", &gb);
  CHECK(na > 0 && nb > 0 && na + nb == 40);
  CHECK(T->lag(a) == 0 && T->lag(b) == 0);
  int overlap = 0;
  for (int i = 0; i < ga.n; i++)
    for (int j = 0; j < gb.n; j++) overlap += ga.v[i]->partition == gb.v[j]->partition;
  CHECK(overlap == 0);
  CHECK(count("gs.out") == 40);
  T->close(b);
  CHECK(T->poll(a, 0, &m) == HUB_OK && !m); /* everything was committed: nothing comes again */
  CHECK(T->assigned(a) == 4);
  CHECK(put("gs", "k1", "more", 3) && put("gs", "k2", "more", 3) && put("gs", "k3", "more", 2));
  CHECK(process_all(a, "gs.out", &ga) == 8);
  CHECK(count("gs.out") == 48);
  /* A third member beyond the partitions gets none. */
  struct hub_transport *c2 = consumer("g.gs", "gs.c2", "gs", 4), *c3 = consumer("g.gs", "gs.c3", "gs", 4),
                       *c4 = consumer("g.gs", "gs.c4", "gs", 4), *c5 = consumer("g.gs", "gs.c5", "gs", 4);
  struct hub_transport *all[] = {a, c2, c3, c4, c5};
  int total = 0, idle = 0;
  for (int i = 0; i < 5; i++) {
    CHECK(T->poll(all[i], 0, &m) == HUB_OK && !m);
    total += T->assigned(all[i]);
    idle += T->assigned(all[i]) == 0;
  }
  CHECK(total == 4 && idle == 1);
  T->close(c2);
  T->close(c3);
  T->close(c4);
  T->close(c5);
  coll_clear(&ga);
  coll_clear(&gb);
  T->close(a);
  reset();
}

/* A rebalance during an open transaction: the next poll answers ABORTED once, the records
 * produced are gone, and the consumer starts again from the committed offsets. A commit that
 * comes first is refused the same way. */
static void test_rebalance_aborts(void) {
  CHECK(put("rb", "k", "r", 10));
  struct hub_transport *a = consumer("g.rb", "rb.a", "rb", 4);
  struct hub_msg *m = NULL;
  CHECK(T->poll(a, 100, &m) == HUB_OK && m && m->offset == 0);
  CHECK(T->begin(a) == HUB_OK && T->produce(a, "rb.out", m) == HUB_OK);
  T->mark_done(a, m);
  hub_msg_destroy(m);
  struct hub_transport *b = consumer("g.rb", "rb.b", "rb", 4);
  CHECK(T->poll(a, 100, &m) == HUB_ERR_ABORTED && !m);
  CHECK(T->poll(a, 0, &m) == HUB_OK); /* once */
  hub_msg_destroy(m);
  CHECK(T->commit(a) == HUB_OK); /* nothing open any more */
  CHECK(count("rb.out") == 0);
  T->close(b);
  /* A forced rebalance before the commit: the commit is refused and rewinds. */
  CHECK(T->poll(a, 100, &m) == HUB_OK && m && m->offset == 0);
  CHECK(T->begin(a) == HUB_OK && T->produce(a, "rb.out", m) == HUB_OK);
  T->mark_done(a, m);
  hub_msg_destroy(m);
  hub_memory_rebalance("g.rb");
  CHECK(T->commit(a) == HUB_ERR_ABORTED);
  CHECK(count("rb.out") == 0);
  CHECK(T->poll(a, 100, &m) == HUB_OK && m && m->offset == 0); /* rewound, and no second ABORTED */
  /* The same with the poll first, via the hook. */
  CHECK(T->begin(a) == HUB_OK && T->produce(a, "rb.out", m) == HUB_OK);
  T->mark_done(a, m);
  hub_msg_destroy(m);
  hub_memory_rebalance("g.rb");
  CHECK(T->poll(a, 100, &m) == HUB_ERR_ABORTED);
  CHECK(T->poll(a, 100, &m) == HUB_OK && m && m->offset == 0);
  hub_msg_destroy(m);
  /* Without an open transaction a rebalance costs nothing but the rewind. */
  hub_memory_rebalance("g.rb");
  CHECK(T->poll(a, 100, &m) == HUB_OK && m && m->offset == 0);
  hub_msg_destroy(m);
  /* A group whose topic comes later gets its partitions when it is created. */
  struct hub_transport *late = open_h("g.late", NULL, 4);
  CHECK(T->subscribe(late, "late") == HUB_OK);
  CHECK(T->poll(late, 0, &m) == HUB_OK && !m && T->assigned(late) == 0);
  CHECK(put("late", "k", "x", 1));
  CHECK(T->poll(late, 1000, &m) == HUB_OK && m && T->assigned(late) == 4);
  hub_msg_destroy(m);
  T->close(late);
  T->close(a);
  reset();
}

/* pause holds one partition while the others flow; resume continues it in order, from where
 * an abort or a rebalance rewound it. Two partitions; keyless records alternate. */
static void test_pause_resume(void) {
  struct hub_transport *c = consumer("g.pr", "pr.c", "pr", 2);
  CHECK(put("pr", NULL, "v", 10)); /* p0: v-0,2,4,6,8  p1: v-1,3,5,7,9 */
  struct hub_msg *first = NULL;
  CHECK(T->poll(c, 100, &first) == HUB_OK && first && first->offset == 0);
  if (!first) return;
  int pp = first->partition;
  T->pause(c, first);
  struct coll got = {0};
  CHECK(drain(c, &got, 20, 50, NULL) == 5);
  int others = 0;
  for (int i = 0; i < got.n; i++) others += got.v[i]->partition != pp && got.v[i]->offset == i;
  CHECK(others == 5);
  CHECK(T->lag(c) == 4); /* the paused partition is still behind */
  coll_clear(&got);
  T->resume(c, first);
  CHECK(drain(c, &got, 20, 50, NULL) == 4);
  int in_order = 0;
  for (int i = 0; i < got.n; i++) in_order += got.v[i]->partition == pp && got.v[i]->offset == i + 1;
  CHECK(in_order == 4);
  coll_clear(&got);
  /* Pausing after reading ahead goes back to the record after m. */
  struct hub_transport *d = consumer("g.pr2", NULL, "pr", 2);
  CHECK(drain(d, &got, 4, 50, NULL) == 4); /* p0/0, p1/0, p0/1, p1/1 */
  struct hub_msg *p0 = got.v[0]->partition == pp ? got.v[0] : got.v[1];
  T->pause(d, p0);
  T->resume(d, p0);
  struct hub_msg *m = NULL;
  int again = 0;
  for (int i = 0; i < 4 && T->poll(d, 50, &m) == HUB_OK && m; i++) {
    again += m->partition == pp && m->offset == 1;
    hub_msg_destroy(m);
  }
  CHECK(again == 1);
  coll_clear(&got);
  T->close(d);
  /* Abort during a pause rewinds the paused partition too; resume continues from there. */
  struct hub_transport *e = consumer("g.pr3", "pr.e", "pr", 2);
  struct hub_msg *a0 = NULL, *a1 = NULL, *a2 = NULL;
  CHECK(T->begin(e) == HUB_OK);
  CHECK(T->poll(e, 100, &a0) == HUB_OK && a0 && a0->partition == pp && a0->offset == 0);
  if (!a0) return;
  T->mark_done(e, a0);
  CHECK(T->commit(e) == HUB_OK); /* pp committed at 1 */
  CHECK(T->begin(e) == HUB_OK);
  CHECK(T->poll(e, 100, &a1) == HUB_OK && a1 && a1->partition != pp && a1->offset == 0);
  CHECK(T->poll(e, 100, &a2) == HUB_OK && a2 && a2->partition == pp && a2->offset == 1);
  if (!a1 || !a2) return;
  T->pause(e, a2);
  T->mark_done(e, a1);
  T->mark_done(e, a2);
  CHECK(T->abort(e) == HUB_OK);
  CHECK(drain(e, &got, 20, 50, NULL) == 5); /* the other partition, from its start again */
  others = 0;
  for (int i = 0; i < got.n; i++) others += got.v[i]->partition != pp && got.v[i]->offset == i;
  CHECK(others == 5);
  coll_clear(&got);
  T->resume(e, a2);
  CHECK(T->poll(e, 100, &m) == HUB_OK && m && m->partition == pp && m->offset == 1);
  hub_msg_destroy(m);
  /* A pause survives a rebalance that leaves the partition with us; resuming something not
   * paused or not assigned does nothing. */
  T->pause(e, a2);
  hub_memory_rebalance("g.pr3");
  CHECK(drain(e, &got, 20, 50, NULL) == 5);
  others = 0;
  for (int i = 0; i < got.n; i++) others += got.v[i]->partition != pp;
  CHECK(others == 5);
  coll_clear(&got);
  T->resume(e, a1); /* not paused */
  struct hub_msg *foreign = rec("k", "x");
  hub_msg_set_topic(foreign, "elsewhere");
  foreign->partition = pp;
  foreign->offset = 0;
  T->resume(e, foreign);
  CHECK(T->poll(e, 50, &m) == HUB_OK && !m);
  T->resume(e, a2);
  CHECK(T->poll(e, 100, &m) == HUB_OK && m && m->partition == pp && m->offset == 1);
  hub_msg_destroy(m);
  hub_msg_destroy(foreign);
  hub_msg_destroy(first);
  hub_msg_destroy(a0);
  hub_msg_destroy(a1);
  hub_msg_destroy(a2);
  T->close(e);
  T->close(c);
  reset();
}

/* The injected commit failure: ABORTED, nothing written, the consumer rewound; only the
 * transactional id asked for, only as many times as asked. */
static void test_injected_failure(void) {
  CHECK(put("if.in", "k", "r", 2));
  struct hub_transport *c = consumer("g.if", "if.c", "if.in", 4);
  struct hub_transport *bystander = open_h(NULL, "if.other", 4);
  hub_memory_fail_commits("if.c", 2);
  struct coll got = {0};
  for (int round = 0; round < 3; round++) {
    int before = got.n;
    int n = process_all(c, "if.out", &got);
    CHECK(got.n - before == 2 && got.v[before]->offset == 0); /* from the start each time */
    CHECK(round < 2 ? n == -1 : n == 2);
    CHECK(count("if.out") == (round < 2 ? 0 : 2));
    struct hub_msg *m = rec("k", "b");
    CHECK(T->begin(bystander) == HUB_OK && T->produce(bystander, "if.side", m) == HUB_OK &&
          T->commit(bystander) == HUB_OK);
    hub_msg_destroy(m);
  }
  CHECK(count("if.side") == 3);
  /* n = 0 cancels. */
  hub_memory_fail_commits("if.c", 5);
  hub_memory_fail_commits("if.c", 0);
  CHECK(put("if.in", "k", "s", 1));
  CHECK(process_all(c, "if.out", &got) == 1);
  CHECK(count("if.out") == 3);
  coll_clear(&got);
  T->close(bystander);
  T->close(c);
  reset();
}

/* scan: every committed record, partition by partition, in offset order; stops when asked. */
static void test_scan(void) {
  for (int k = 0; k < 6; k++) {
    char key[8];
    snprintf(key, sizeof key, "s%d", k);
    CHECK(put("sc", key, key, 5));
  }
  struct hub_transport *p = open_h(NULL, "sc.p", 4);
  struct hub_msg *m = rec("s0", "uncommitted");
  CHECK(T->begin(p) == HUB_OK && T->produce(p, "sc", m) == HUB_OK); /* left open */
  struct coll got = {0};
  char e[256] = "";
  CHECK(T->scan(p, "sc", on_scan, &got, e, sizeof e) == HUB_OK);
  CHECK(got.n == 30);
  int ordered = 1, uncommitted = 0;
  for (int i = 1; i < got.n; i++)
    ordered &= got.v[i]->partition > got.v[i - 1]->partition ||
               (got.v[i]->partition == got.v[i - 1]->partition && got.v[i]->offset == got.v[i - 1]->offset + 1);
  for (int i = 0; i < got.n; i++) uncommitted += !strcmp((const char *)got.v[i]->value, "uncommitted");
  CHECK(ordered && uncommitted == 0);
  CHECK(got.n && got.v[0]->offset == 0 && got.v[0]->topic && !strcmp(got.v[0]->topic, "sc"));
  coll_clear(&got);
  got.stop_after = 7;
  CHECK(T->scan(p, "sc", on_scan, &got, e, sizeof e) == HUB_OK && got.n == 7);
  coll_clear(&got);
  CHECK(T->scan(p, "nope", on_scan, &got, e, sizeof e) == HUB_ERR_NOT_FOUND && got.n == 0);
  CHECK_CONTAINS(e, "nope");
  CHECK(T->commit(p) == HUB_OK);
  CHECK(count("sc") == 31);
  /* Topics keep the partitions they were created with. */
  struct hub_transport *two = open_h(NULL, "sc.two", 2), *eight = open_h(NULL, "sc.eight", 8);
  const char *topics[] = {"sc2"};
  CHECK(T->ensure_topics(two, topics, 1, e, sizeof e) == HUB_OK);
  CHECK(T->begin(eight) == HUB_OK);
  for (int i = 0; i < 16; i++) {
    char key[8];
    snprintf(key, sizeof key, "%d", i);
    hub_msg_set_key(m, key, strlen(key));
    CHECK(T->produce(eight, "sc2", m) == HUB_OK);
  }
  CHECK(T->commit(eight) == HUB_OK);
  CHECK(T->scan(p, "sc2", on_scan, &got, e, sizeof e) == HUB_OK && got.n == 16);
  int within = 0;
  for (int i = 0; i < got.n; i++) within += got.v[i]->partition < 2;
  CHECK(within == 16);
  coll_clear(&got);
  hub_msg_destroy(m);
  T->close(two);
  T->close(eight);
  T->close(p);
  reset();
}

struct later {
  int ms;
  int stop; /* 1: hub_stop_request; 0: commit a record to "bl" */
};

static void *do_later(void *arg) {
  struct later *l = arg;
  sleep_ms(l->ms);
  if (l->stop)
    hub_stop_request();
  else
    put("bl", "k", "late", 1);
  return NULL;
}

/* poll blocks up to its timeout, and returns early for a commit or a stop request. */
static void test_blocking_poll(void) {
  struct hub_transport *c = consumer("g.bl", NULL, "bl", 4);
  struct hub_msg *m = NULL;
  double t0 = now_ms();
  CHECK(T->poll(c, 150, &m) == HUB_OK && !m);
  double waited = now_ms() - t0;
  CHECK(waited >= 140 && waited < 1000);
  pthread_t th;
  struct later commit_later = {100, 0}, stop_later = {100, 1};
  pthread_create(&th, NULL, do_later, &commit_later);
  t0 = now_ms();
  CHECK(T->poll(c, 5000, &m) == HUB_OK && m);
  waited = now_ms() - t0;
  CHECK(waited >= 50 && waited < 2000);
  pthread_join(th, NULL);
  hub_msg_destroy(m);
  m = NULL;
  pthread_create(&th, NULL, do_later, &stop_later);
  t0 = now_ms();
  CHECK(T->poll(c, 5000, &m) == HUB_OK && !m);
  waited = now_ms() - t0;
  CHECK(waited >= 50 && waited < 2000);
  pthread_join(th, NULL);
  hub_stop_reset();
  /* A negative timeout waits for as long as it takes. */
  pthread_create(&th, NULL, do_later, &commit_later);
  CHECK(T->poll(c, -1, &m) == HUB_OK && m && !strcmp((const char *)m->value, "late-0"));
  pthread_join(th, NULL);
  hub_msg_destroy(m);
  /* A member of a group that has not subscribed yet just waits. */
  struct hub_transport *idle = open_h("g.bl.idle", NULL, 4);
  t0 = now_ms();
  CHECK(T->poll(idle, 60, &m) == HUB_OK && !m && now_ms() - t0 >= 50);
  T->close(idle);
  T->close(c);
  reset();
}

/* Many threads at once: producers (some transactions aborted and redone), consumers in one
 * group copying records in transactions with their offsets, one of them leaving and joining
 * again, and forced rebalances. Every record must reach the output exactly once, in key order. */
#define CP 4   /* producer threads */
#define CK 10  /* keys per producer */
#define CN 500 /* records per producer */
#define CC 3   /* consumer threads */

static atomic_int conc_committed, conc_errors, conc_stop, conc_aborts;

static void *conc_producer(void *arg) {
  int id = (int)(intptr_t)arg, batch = 0;
  char txn[32];
  snprintf(txn, sizeof txn, "conc.p%d", id);
  struct hub_transport *p = open_h(NULL, txn, 4);
  if (!p) {
    atomic_fetch_add(&conc_errors, 1);
    return NULL;
  }
  for (int i = 0; i < CN; i += 10, batch++) {
    for (int redo = batch % 7 == 3 ? 1 : 0; redo >= 0; redo--) {
      if (T->begin(p) != HUB_OK) atomic_fetch_add(&conc_errors, 1);
      for (int j = i; j < i + 10 && j < CN; j++) {
        char k[32], v[64];
        snprintf(k, sizeof k, "p%d.k%d", id, j % CK);
        snprintf(v, sizeof v, "%d %d %d", id, j % CK, j / CK);
        struct hub_msg *m = rec(k, v);
        if (!m || T->produce(p, "conc.in", m) != HUB_OK) atomic_fetch_add(&conc_errors, 1);
        hub_msg_destroy(m);
      }
      if ((redo ? T->abort(p) : T->commit(p)) != HUB_OK) atomic_fetch_add(&conc_errors, 1);
    }
  }
  T->close(p);
  return NULL;
}

static void *conc_consumer(void *arg) {
  int id = (int)(intptr_t)arg, batches = 0;
  char txn[32];
  snprintf(txn, sizeof txn, "conc.c%d", id);
  struct hub_transport *c = consumer("g.conc", txn, "conc.in", 4);
  while (c && !atomic_load(&conc_stop)) {
    struct hub_msg *m = NULL;
    if (id == 0 && ++batches % 25 == 0) { /* leave the group and join again */
      T->close(c);
      if (!(c = consumer("g.conc", txn, "conc.in", 4))) break;
    }
    hub_err_t rc = T->poll(c, 20, &m);
    if (rc == HUB_ERR_ABORTED || !m) continue;
    if (rc != HUB_OK || T->begin(c) != HUB_OK) atomic_fetch_add(&conc_errors, 1);
    int n = 0, lost = 0;
    while (m) {
      if (T->produce(c, "conc.out", m) != HUB_OK) atomic_fetch_add(&conc_errors, 1);
      if (n == 0) sleep_ms(1); /* keeps transactions open long enough for rebalances to hit some */
      T->mark_done(c, m);
      hub_msg_destroy(m);
      m = NULL;
      if (++n == 20) break;
      rc = T->poll(c, 0, &m);
      if (rc == HUB_ERR_ABORTED) lost = 1;
    }
    if (lost) {
      atomic_fetch_add(&conc_aborts, 1);
      continue;
    }
    rc = T->commit(c);
    if (rc == HUB_OK)
      atomic_fetch_add(&conc_committed, n);
    else if (rc == HUB_ERR_ABORTED)
      atomic_fetch_add(&conc_aborts, 1);
    else
      atomic_fetch_add(&conc_errors, 1);
  }
  if (!c) atomic_fetch_add(&conc_errors, 1);
  T->close(c);
  return NULL;
}

static void test_concurrency(void) {
  pthread_t prod[CP], cons[CC];
  atomic_store(&conc_committed, 0);
  atomic_store(&conc_stop, 0);
  for (int i = 0; i < CC; i++) pthread_create(&cons[i], NULL, conc_consumer, (void *)(intptr_t)i);
  for (int i = 0; i < CP; i++) pthread_create(&prod[i], NULL, conc_producer, (void *)(intptr_t)i);
  double t0 = now_ms();
  while (atomic_load(&conc_committed) < CP * CN && now_ms() - t0 < 60000) {
    sleep_ms(5);
    hub_memory_rebalance("g.conc");
  }
  for (int i = 0; i < CP; i++) pthread_join(prod[i], NULL);
  sleep_ms(50); /* a duplicate would need this long to show */
  atomic_store(&conc_stop, 1);
  for (int i = 0; i < CC; i++) pthread_join(cons[i], NULL);
  CHECK(atomic_load(&conc_errors) == 0);
  CHECK(atomic_load(&conc_committed) == CP * CN);
  CHECK(atomic_load(&conc_aborts) > 0); /* the rebalances did hit open transactions */
  CHECK(count("conc.in") == CP * CN);
  struct hub_transport *s = open_h(NULL, NULL, 4);
  struct coll got = {0};
  char e[256];
  CHECK(T->scan(s, "conc.out", on_scan, &got, e, sizeof e) == HUB_OK);
  CHECK(got.n == CP * CN);
  static unsigned char seen[CP * CN];
  int next[CP * CK], part[CP * CK], dup = 0, order = 0, bad = 0;
  memset(seen, 0, sizeof seen);
  for (int i = 0; i < CP * CK; i++) next[i] = 0, part[i] = -1;
  for (int i = 0; i < got.n; i++) {
    int p, k, seq;
    if (sscanf((const char *)got.v[i]->value, "%d %d %d", &p, &k, &seq) != 3 || p < 0 || p >= CP || k < 0 ||
        k >= CK || seq < 0 || seq >= CN / CK) {
      bad++;
      continue;
    }
    int key = p * CK + k;
    dup += seen[key * (CN / CK) + seq]++ > 0;
    if (part[key] < 0) part[key] = got.v[i]->partition;
    order += seq != next[key] || part[key] != got.v[i]->partition;
    next[key] = seq + 1;
  }
  CHECK(bad == 0 && dup == 0 && order == 0);
  coll_clear(&got);
  T->close(s);
  reset();
}

int main(void) {
  hub_log_set_level(HUB_LOG_ERROR);
  hub_stop_reset();
  T = hub_transport_get("memory");
  if (!T) {
    CHECK(T != NULL);
    return check_done();
  }
  test_plugin();
  test_visible_after_commit();
  test_plain_producer();
  test_abort_rewinds();
  test_offsets_with_records();
  test_key_order();
  test_fencing();
  test_group_split();
  test_rebalance_aborts();
  test_pause_resume();
  test_injected_failure();
  test_scan();
  test_blocking_poll();
  test_concurrency();
  return check_done();
}
