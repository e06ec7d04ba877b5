/* The Kafka transport on librdkafka: a read_committed consumer in a consumer group and a
 * transactional, idempotent (acks=all) producer that commits the consumer's offsets in the
 * same transaction (KIP-447 group metadata). Abortable errors abort and rewind the consumer
 * to the committed offsets; fatal producer errors (fencing) recreate the producer. For
 * `lienthong transport copy` it also lists topics and group offsets (admin API), reads
 * partition ranges with a group-less read_committed consumer and writes to exact partitions. */
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/transport/kafka/fetch_wake.h"
#include "hub/transport/kafka/kafka_security.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/stop.h"
#include "hub/core/registry.h"
#include "hub/transport/transport.h"

/* hub.kafka in the config. */
struct hub_kafka_cfg {
  char *bootstrap;
  int64_t partitions;          /* for topics the hub creates */
  int64_t replication;         /* for topics the hub creates */
  int create_topics;           /* create missing route topics at start */
  int64_t session_timeout_ms;  /* consumer group session */
  int64_t transaction_timeout_ms;
  int64_t request_timeout_ms;  /* blocking calls (init, commit, abort, admin) */
  int64_t prefetch_bytes;      /* consumer prefetch queue (memory vs throughput) */
  struct hub_str_list properties; /* extra librdkafka properties "name=value" */
  struct hub_kafka_security security;
};

#define KCFG(field) offsetof(struct hub_kafka_cfg, field)
static const struct hub_cfg_entry kafka_entries[] = {
    {"bootstrap", HUB_CFG_STR, KCFG(bootstrap), "127.0.0.1:9092", 0, "Kafka bootstrap servers (host:port,...)"},
    {"partitions", HUB_CFG_INT, KCFG(partitions), "4", 0, "partitions of the topics the hub creates", NULL, NULL, 1,
     10000},
    {"replication", HUB_CFG_INT, KCFG(replication), "1", 0, "replication factor of the topics the hub creates",
     NULL, NULL, 1, 32},
    {"create_topics", HUB_CFG_BOOL, KCFG(create_topics), "true", 0, "create missing route topics at start"},
    {"session_timeout", HUB_CFG_DURATION, KCFG(session_timeout_ms), "10s", 0,
     "consumer group session timeout (a dead instance's partitions move after this)", NULL, NULL, 1000, 300000},
    {"transaction_timeout", HUB_CFG_DURATION, KCFG(transaction_timeout_ms), "60s", 0,
     "broker aborts a transaction left open longer than this", NULL, NULL, 1000, 900000},
    /* librdkafka's socket.timeout.ms, which this sets, stops at 300000 */
    {"request_timeout", HUB_CFG_DURATION, KCFG(request_timeout_ms), "30s", 0,
     "bound on each blocking call (init, commit, abort, admin) and on each broker request (socket.timeout.ms)", NULL,
     NULL, 1000, 300000},
    {"prefetch", HUB_CFG_SIZE, KCFG(prefetch_bytes), "8MiB", 0,
     "records each route's consumer fetches ahead (librdkafka's queued.max.messages.kbytes); the main "
     "term of the hub's memory. 8 MiB keeps up with about 120000 records of 1 KiB a second (docs/bench.md)",
     NULL, NULL, 1048576, 1073741824},
    {"security", HUB_CFG_OBJECT, KCFG(security), NULL, 0,
     "TLS and SASL (SCRAM) for every broker connection, secrets read from files; see docs/kafka-security.md", NULL,
     &hub_kafka_security_map},
    {"properties", HUB_CFG_STR_LIST, KCFG(properties), NULL, 0,
     "extra librdkafka properties as name=value (they override the hub's); secrets may not be written here"},
    {NULL},
};

/* ---- hub.kafka's check: what k_open would refuse, lint refuses ------------------------------
 * The check builds the librdkafka configurations producer_create and consumer_create build (the
 * settings below mirror theirs: keep them in step), adds `properties` as apply_properties does,
 * then refuses (1) what librdkafka refuses to set, (2) what breaks librdkafka's rules between
 * settings (rd_kafka_conf_finalize), with the hub's option names and the place of the option or
 * property that breaks them, and (3), as a last net, what rd_kafka_new refuses when the clients
 * are created without brokers (nothing connects): SASL settings, SSL key material. */

static const char *const base_settings[][2] = {
    {"client.id", "lienthong-lint"}, {"reconnect.backoff.ms", "50"}, {"reconnect.backoff.max.ms", "1000"}};
static const char *const producer_settings[][2] = {
    {"enable.idempotence", "true"},         {"acks", "all"},
    {"linger.ms", "2"},                     {"batch.num.messages", "10000"},
    {"queue.buffering.max.messages", "500000"}, {"transactional.id", "lienthong.lint"}};
static const char *const consumer_settings[][2] = {
    {"group.id", "lienthong.lint"},      {"isolation.level", "read_committed"},   {"enable.auto.commit", "false"},
    {"enable.auto.offset.store", "false"}, {"auto.offset.reset", "earliest"},     {"heartbeat.interval.ms", "1000"},
    {"fetch.wait.max.ms", "50"}};

static const struct hub_cfg_constraint kafka_constraints[] = {
    {"`request_timeout` (socket.timeout.ms) is at most `transaction_timeout` (transaction.timeout.ms) + 100ms",
     "transaction_timeout", "{transaction_timeout: 20s}", "{transaction_timeout: 29900ms}"},
    {"each item of `properties` is name=value, at most 1023 characters", "properties", "{properties: [linger.ms]}",
     "{properties: [linger.ms=5]}"},
    {"librdkafka knows each property's name (`run` would ignore an unknown one)", "properties",
     "{properties: [linger.msec=5]}", "{properties: [queue.buffering.max.ms=5]}"},
    {"librdkafka accepts each property's value", "properties", "{properties: [linger.ms=-1]}",
     "{properties: [linger.ms=0]}"},
    {"the transactional producer keeps enable.idempotence=true", "properties",
     "{properties: [enable.idempotence=false]}", "{properties: [enable.idempotence=true]}"},
    {"the transactional producer keeps acks=all", "properties", "{properties: [acks=1]}", "{properties: [acks=all]}"},
    {"max.in.flight (max.in.flight.requests.per.connection) is at most 5", "properties",
     "{properties: [max.in.flight=6]}", "{properties: [max.in.flight=5]}"},
    {"retries (message.send.max.retries) is at least 1", "properties", "{properties: [retries=0]}",
     "{properties: [retries=1]}"},
    {"queue.buffering.backpressure.threshold is 1", "properties",
     "{properties: [queue.buffering.backpressure.threshold=2]}",
     "{properties: [queue.buffering.backpressure.threshold=1]}"},
    {"queuing.strategy is fifo", "properties", "{properties: [queuing.strategy=lifo]}",
     "{properties: [queuing.strategy=fifo]}"},
    {"message.timeout.ms (delivery.timeout.ms) is at most `transaction_timeout`", "properties",
     "{properties: [message.timeout.ms=60001]}", "{properties: [message.timeout.ms=60000]}"},
    {"message.timeout.ms (default: `transaction_timeout`) is 0 or more than linger.ms (2 unless set)", "properties",
     "{properties: [message.timeout.ms=2]}", "{properties: [message.timeout.ms=3]}"},
    {"reconnect.backoff.max.ms (1000 unless set) is at least reconnect.backoff.ms (50 unless set)", "properties",
     "{properties: [reconnect.backoff.max.ms=49]}", "{properties: [reconnect.backoff.max.ms=50]}"},
    {"ssl.keystore.location needs ssl.keystore.password", "properties",
     "{properties: [ssl.keystore.location=keystore.p12]}",
     "{properties: [ssl.keystore.location=keystore.p12, ssl.keystore.password=secret]}"},
    {"message.max.bytes is at most the consumer's fetch.max.bytes (half of `prefetch`, within 1MiB..8MiB)",
     "properties", "{prefetch: 2MiB, properties: [message.max.bytes=1048577]}",
     "{prefetch: 2MiB, properties: [message.max.bytes=1048576]}"},
    {"receive.message.max.bytes, when set, is at least fetch.max.bytes + 512", "properties",
     "{prefetch: 2MiB, properties: [receive.message.max.bytes=1049087]}",
     "{prefetch: 2MiB, properties: [receive.message.max.bytes=1049088]}"},
    {"max.poll.interval.ms is at least `session_timeout` (session.timeout.ms)", "properties",
     "{properties: [max.poll.interval.ms=9999]}", "{properties: [max.poll.interval.ms=10000]}"},
    {"librdkafka can create the producer and the consumer (checked without brokers: SASL settings, SSL key "
     "material)",
     "properties", "{properties: [security.protocol=sasl_plaintext, sasl.mechanisms=PLAIN]}",
     "{security: {protocol: sasl_plaintext, mechanism: PLAIN, username: u, password_file: /etc/hostname}}"},
    {"no secret in `properties` (sasl.password, ssl.key.password): they go in files named by `security`",
     "properties", "{properties: [sasl.password=p]}", "{properties: [sasl.username=u]}"},
    {NULL},
};

/* A refusal: what it says and where it points. */
struct kcheck {
  const struct hub_kafka_cfg *c;
  const struct hub_node *node, *at;
  char *errbuf;
  size_t errbuf_size;
};

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk, (void)level, (void)fac, (void)buf; /* lint builds clients only to ask librdkafka */
}

/* The index of the last properties item setting one of `names` (space-separated, aliases
 * included), or -1. */
static long prop_item(const struct hub_kafka_cfg *c, const char *names) {
  long found = -1;
  for (size_t i = 0; i < c->properties.n; i++) {
    const char *kv = c->properties.v[i], *eq = strchr(kv, '=');
    size_t kl = eq ? (size_t)(eq - kv) : strlen(kv);
    for (const char *p = names; *p;) {
      size_t l = strcspn(p, " ");
      if (l == kl && !strncmp(p, kv, l)) found = (long)i;
      p += l;
      p += *p == ' ';
    }
  }
  return found;
}

/* Writes the error at properties item `item`, else at the first of `options` (space-separated)
 * written, else at the section. */
static hub_err_t refuse(const struct kcheck *k, long item, const char *options, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static hub_err_t refuse(const struct kcheck *k, long item, const char *options, const char *fmt, ...) {
  char msg[768];
  const struct hub_node *at = NULL, *props = hub_node_get(k->node, "properties");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* librdkafka's messages may end in a newline */
  for (size_t n = strlen(msg); n && (msg[n - 1] == '\n' || msg[n - 1] == ' '); n--) msg[n - 1] = '\0';
  if (item >= 0 && props) at = props->kind == HUB_NODE_SEQ && (size_t)item < props->n ? props->items[item] : props;
  for (const char *p = options; !at && p && *p;) {
    char name[64];
    size_t l = strcspn(p, " ");
    snprintf(name, sizeof name, "%.*s", (int)l, p);
    at = hub_node_get(k->node, name);
    p += l;
    p += *p == ' ';
  }
  return hub_node_error(at ? at : hub_cfg_value_at(k->node, k->at, NULL), k->errbuf, k->errbuf_size, "%s", msg);
}

static long long conf_ll(rd_kafka_conf_t *conf, const char *name) {
  char v[64];
  size_t n = sizeof v;
  if (rd_kafka_conf_get(conf, name, v, &n) != RD_KAFKA_CONF_OK) return 0;
  return strtoll(v, NULL, 10);
}

static int conf_is(rd_kafka_conf_t *conf, const char *name, const char *want) {
  char v[64];
  size_t n = sizeof v;
  return rd_kafka_conf_get(conf, name, v, &n) == RD_KAFKA_CONF_OK && !strcmp(v, want);
}

/* The configuration k_open builds for a producer or a consumer, without brokers, in *out. */
static hub_err_t build_conf(const struct kcheck *k, int consumer, rd_kafka_conf_t **out) {
  const struct hub_kafka_cfg *c = k->c;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char e[512], v[32];
  hub_err_t rc = HUB_OK;
  *out = NULL;
  rd_kafka_conf_set_log_cb(conf, quiet_log);
  struct {
    const char *name, *option;
    long long value;
  } derived[] = {{"socket.timeout.ms", "request_timeout", c->request_timeout_ms},
                 {"transaction.timeout.ms", "transaction_timeout", c->transaction_timeout_ms},
                 {"session.timeout.ms", "session_timeout", c->session_timeout_ms},
                 {"queued.max.messages.kbytes", "prefetch", c->prefetch_bytes / 1024},
                 {"fetch.max.bytes", "prefetch", 0}};
  int64_t fm = c->prefetch_bytes / 2; /* as consumer_create sizes one fetch */
  derived[4].value = fm < 1048576 ? 1048576 : fm > 8388608 ? 8388608 : fm;
  for (size_t i = 0; i < sizeof base_settings / sizeof *base_settings; i++)
    if (rd_kafka_conf_set(conf, base_settings[i][0], base_settings[i][1], e, sizeof e) != RD_KAFKA_CONF_OK) goto hub;
  for (size_t i = 0; !consumer && i < sizeof producer_settings / sizeof *producer_settings; i++)
    if (rd_kafka_conf_set(conf, producer_settings[i][0], producer_settings[i][1], e, sizeof e) != RD_KAFKA_CONF_OK)
      goto hub;
  for (size_t i = 0; consumer && i < sizeof consumer_settings / sizeof *consumer_settings; i++)
    if (rd_kafka_conf_set(conf, consumer_settings[i][0], consumer_settings[i][1], e, sizeof e) != RD_KAFKA_CONF_OK)
      goto hub;
  if (consumer && hub_fetch_wake_conf(conf, e, sizeof e) < 0) goto hub;
  if (hub_kafka_security_apply(&c->security, NULL, conf, e, sizeof e) < 0) {
    rc = refuse(k, -1, "security", "%s", e);
    goto out;
  }
  for (size_t i = 0; i < sizeof derived / sizeof *derived; i++) {
    if (consumer ? i == 1 : i >= 2) continue; /* which client sets what */
    snprintf(v, sizeof v, "%lld", derived[i].value);
    if (rd_kafka_conf_set(conf, derived[i].name, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
      rc = refuse(k, -1, derived[i].option, "'%s' sets librdkafka's %s, which refuses it: %s", derived[i].option,
                  derived[i].name, e);
      goto out;
    }
  }
  for (size_t i = 0; i < c->properties.n; i++) {
    char kv[1024];
    const char *item = c->properties.v[i];
    char *eq = strchr(item, '=');
    if (!eq || eq == item || strlen(item) >= sizeof kv) {
      rc = refuse(k, (long)i, NULL, "kafka property '%s' is not name=value (of at most %zu characters)", item,
                  sizeof kv - 1);
      goto out;
    }
    snprintf(kv, sizeof kv, "%.*s", (int)(eq - item), item);
    if (!strcmp(kv, "sasl.password") || !strcmp(kv, "ssl.key.password")) {
      rc = refuse(k, (long)i, NULL, "kafka property '%s' is a secret: put it in a file and name the file in "
                  "security.%s", kv, kv[1] == 'a' ? "password_file" : "key_password_file");
      goto out;
    }
    if (rd_kafka_conf_set(conf, kv, eq + 1, e, sizeof e) != RD_KAFKA_CONF_OK) {
      rc = refuse(k, (long)i, NULL, "kafka property '%s': %s%s", item, e,
                  strstr(e, "No such configuration property") ? " (run would ignore it: a typo?)" : "");
      goto out;
    }
  }
  /* consumer_create sets this after the properties: the statistics feed the /ready check */
  if (consumer && rd_kafka_conf_set(conf, "statistics.interval.ms", "1000", e, sizeof e) != RD_KAFKA_CONF_OK) goto hub;
  *out = conf;
  return HUB_OK;
hub:
  rc = refuse(k, -1, NULL, "librdkafka %s refuses a setting of the hub: %s", rd_kafka_version_str(), e);
out:
  rd_kafka_conf_destroy(conf);
  return rc;
}

/* librdkafka's rules between settings (rd_kafka_conf_finalize). */
static hub_err_t check_rules(const struct kcheck *k, rd_kafka_conf_t *p, rd_kafka_conf_t *cons) {
  const struct hub_kafka_cfg *c = k->c;
  long long sock = conf_ll(p, "socket.timeout.ms"), txn = conf_ll(p, "transaction.timeout.ms");
  long long linger = conf_ll(p, "linger.ms"), mt = conf_ll(p, "message.timeout.ms");
  long mt_item = prop_item(c, "message.timeout.ms delivery.timeout.ms");
  if (sock > txn + 100)
    return refuse(k, prop_item(c, "socket.timeout.ms transaction.timeout.ms"), "transaction_timeout request_timeout",
                  "request_timeout (socket.timeout.ms %lld) must be at most transaction_timeout "
                  "(transaction.timeout.ms %lld) + 100ms: librdkafka refuses the transactional producer otherwise",
                  sock, txn);
  if (!conf_is(p, "enable.idempotence", "true"))
    return refuse(k, prop_item(c, "enable.idempotence"), NULL,
                  "the transactional producer needs enable.idempotence=true");
  long item = prop_item(c, "max.in.flight max.in.flight.requests.per.connection");
  if (item >= 0 && conf_ll(p, "max.in.flight") > 5)
    return refuse(k, item, NULL, "max.in.flight must be at most 5 for the idempotent producer");
  if ((item = prop_item(c, "retries message.send.max.retries")) >= 0 && conf_ll(p, "retries") < 1)
    return refuse(k, item, NULL, "retries must be at least 1 for the idempotent producer");
  if ((item = prop_item(c, "queue.buffering.backpressure.threshold")) >= 0 &&
      conf_ll(p, "queue.buffering.backpressure.threshold") > 1)
    return refuse(k, item, NULL, "queue.buffering.backpressure.threshold must be 1 for the idempotent producer");
  if (!conf_is(p, "acks", "-1") && !conf_is(p, "acks", "all"))
    return refuse(k, prop_item(c, "acks request.required.acks"), NULL,
                  "the idempotent producer needs acks=all (every in-sync replica)");
  if ((item = prop_item(c, "queuing.strategy")) >= 0 && !conf_is(p, "queuing.strategy", "fifo"))
    return refuse(k, item, NULL, "queuing.strategy must be fifo for the idempotent producer");
  if (mt_item >= 0 && mt > txn)
    return refuse(k, mt_item, "transaction_timeout",
                  "message.timeout.ms (%lld) must be at most transaction_timeout (transaction.timeout.ms %lld)", mt,
                  txn);
  /* unless set, message.timeout.ms becomes transaction.timeout.ms; librdkafka compares both the
   * value before and after that with linger.ms */
  long long mt_eff = mt_item >= 0 ? mt : txn;
  if ((mt != 0 && mt <= linger) || (mt_eff != 0 && mt_eff <= linger))
    return refuse(k, prop_item(c, "message.timeout.ms delivery.timeout.ms linger.ms queue.buffering.max.ms"),
                  "transaction_timeout", "message.timeout.ms (%lld) must be more than linger.ms (%lld)",
                  mt_item >= 0 ? mt : mt <= linger ? mt : mt_eff, linger);
  if (conf_ll(p, "reconnect.backoff.max.ms") < conf_ll(p, "reconnect.backoff.ms"))
    return refuse(k, prop_item(c, "reconnect.backoff.ms reconnect.backoff.max.ms"), NULL,
                  "reconnect.backoff.max.ms (%lld) must be at least reconnect.backoff.ms (%lld)",
                  conf_ll(p, "reconnect.backoff.max.ms"), conf_ll(p, "reconnect.backoff.ms"));
  if ((item = prop_item(c, "ssl.keystore.location")) >= 0 && prop_item(c, "ssl.keystore.password") < 0)
    return refuse(k, item, NULL, "ssl.keystore.location needs ssl.keystore.password");
  long long fetch = conf_ll(cons, "fetch.max.bytes"), msg = conf_ll(cons, "message.max.bytes");
  if (fetch < msg)
    return refuse(k, prop_item(c, "message.max.bytes fetch.max.bytes"), "prefetch",
                  "message.max.bytes (%lld) must be at most the consumer's fetch.max.bytes (%lld, half of prefetch "
                  "within 1MiB..8MiB)",
                  msg, fetch);
  long long recv = conf_ll(cons, "receive.message.max.bytes");
  if ((item = prop_item(c, "receive.message.max.bytes")) >= 0 && recv < fetch + 512)
    return refuse(k, item, "prefetch", "receive.message.max.bytes (%lld) must be at least fetch.max.bytes (%lld) + 512",
                  recv, fetch);
  if (conf_ll(cons, "max.poll.interval.ms") < conf_ll(cons, "session.timeout.ms"))
    return refuse(k, prop_item(c, "max.poll.interval.ms session.timeout.ms"), "session_timeout",
                  "max.poll.interval.ms (%lld) must be at least session_timeout (session.timeout.ms %lld)",
                  conf_ll(cons, "max.poll.interval.ms"), conf_ll(cons, "session.timeout.ms"));
  return HUB_OK;
}

/* The last net: create each client as k_open would, with no brokers, and drop it. */
static hub_err_t check_create(const struct kcheck *k, rd_kafka_conf_t *conf, rd_kafka_type_t type) {
  char e[512];
  /* OIDC fetches a token when the client starts: that would be connecting */
  if (conf_is(conf, "sasl.oauthbearer.method", "oidc")) return HUB_OK;
  rd_kafka_conf_t *dup = rd_kafka_conf_dup(conf);
  if (rd_kafka_conf_set(dup, "bootstrap.servers", "", e, sizeof e) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(dup);
    return HUB_OK;
  }
  rd_kafka_t *rk = rd_kafka_new(type, dup, e, sizeof e);
  if (rk) {
    rd_kafka_destroy(rk);
    return HUB_OK;
  }
  rd_kafka_conf_destroy(dup);
  return refuse(k, k->c->properties.n ? (long)k->c->properties.n - 1 : -1, NULL,
                "librdkafka refuses to create the %s: %s", type == RD_KAFKA_PRODUCER ? "producer" : "consumer", e);
}

static hub_err_t kafka_check(const void *cfg, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                             size_t errbuf_size) {
  struct kcheck k = {cfg, node, at, errbuf, errbuf_size};
  rd_kafka_conf_t *p = NULL, *cons = NULL;
  hub_err_t rc;
  if ((rc = build_conf(&k, 0, &p)) == HUB_OK && (rc = build_conf(&k, 1, &cons)) == HUB_OK &&
      (rc = check_rules(&k, p, cons)) == HUB_OK && (rc = check_create(&k, p, RD_KAFKA_PRODUCER)) == HUB_OK)
    rc = check_create(&k, cons, RD_KAFKA_CONSUMER);
  if (p) rd_kafka_conf_destroy(p);
  if (cons) rd_kafka_conf_destroy(cons);
  return rc;
}

static const struct hub_cfg_map hub_kafka_cfg_map = {"hub.kafka", kafka_entries, .check = kafka_check,
                                                     .constraints = kafka_constraints};


struct mark {
  int32_t partition;
  int64_t next_offset;
};

struct hub_transport {
  const struct hub_kafka_cfg *cfg;
  struct hub_transport_opts opts;
  char *client_id, *group_id, *group_instance, *txn_id;
  char *base_dir; /* for the security files */
  rd_kafka_t *producer;
  rd_kafka_t *consumer;
  rd_kafka_queue_t *cq;        /* the consumer's queue, for fetched() */
  struct hub_fetch_wake *wake; /* librdkafka < 2.2: see fetch_wake.h */
  char *topic; /* subscribed topic */
  int in_txn;
  int revoked; /* a rebalance revoked partitions since the last poll */
  struct hub_msg *stash; /* a record of the new assignment returned with a rebalance */
  atomic_int n_assigned;
  atomic_int connected;
  atomic_llong lag;
  struct mark *marks;
  size_t n_marks, cap_marks;
  struct timespec last_lag;
  double last_commit_ms;
  unsigned long long delivery_failed; /* plain producer: failed deliveries since the last commit */
  int64_t *committed; /* per partition, for the lag before a first record; INT64_MIN unknown */
  int n_committed;
  rd_kafka_t *reader; /* read_range's group-less consumer, made on first use */
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  /* Connection failures (level 3) also reach error_cb; they are transient, so warn. */
  enum hub_log_level l = level <= 2 ? HUB_LOG_ERROR : level <= 4 ? HUB_LOG_WARN : level <= 6 ? HUB_LOG_INFO : HUB_LOG_DEBUG;
  hub_log(l, "librdkafka", "%s: %s", fac, buf);
  /* A refused login reaches neither error_cb (nobody polls a producer stuck in init_transactions)
   * nor the caller: librdkafka retries it at each reconnect, its repeats suppressed. Say as an
   * error which setting to check; the broker and librdkafka's reason are in buf. */
  if ((strstr(buf, "SASL authentication error") || strstr(buf, "mechanism handshake failed")) &&
      !strstr(buf, "Broker handle destroyed")) {
    const struct hub_transport *t = rd_kafka_opaque(rk);
    char hint[512];
    hub_kafka_security_login_hint(&t->cfg->security, hint, sizeof hint);
    hub_log(HUB_LOG_ERROR, "kafka", "the cluster refused the hub's login (%s): %s", hint, buf);
    char note[700];
    snprintf(note, sizeof note, "the cluster refused the hub's login: %s", hint);
    hub_metrics_note_cluster_error(note);
  }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  struct hub_transport *t = opaque;
  (void)rk;
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT) atomic_store(&t->connected, 0);
  /* Broker-down errors are expected during restarts: librdkafka reconnects by itself. */
  hub_log(err == RD_KAFKA_RESP_ERR__FATAL ? HUB_LOG_ERROR : HUB_LOG_WARN, "librdkafka", "%s: %s",
          rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Connectivity from librdkafka's statistics (once a second, served by consumer polls): the
 * cluster is reachable while at least one real broker connection is UP. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
  struct hub_transport *t = opaque;
  (void)rk, (void)len;
  const char *b = strstr(json, "\"brokers\":");
  atomic_store(&t->connected, b && strstr(b, "\"state\":\"UP\"") ? 1 : 0);
  return 0; /* librdkafka frees json */
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, char *errbuf, size_t errbuf_size) {
  if (rd_kafka_conf_set(conf, k, v, errbuf, errbuf_size) != RD_KAFKA_CONF_OK) return -1;
  return 0;
}

static rd_kafka_conf_t *base_conf(struct hub_transport *t, char *errbuf, size_t errbuf_size) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char num[32];
  if (set(conf, "bootstrap.servers", t->cfg->bootstrap, errbuf, errbuf_size) < 0 ||
      set(conf, "client.id", t->client_id, errbuf, errbuf_size) < 0)
    goto fail;
  snprintf(num, sizeof num, "%lld", (long long)t->cfg->request_timeout_ms);
  if (set(conf, "socket.timeout.ms", num, errbuf, errbuf_size) < 0) goto fail;
  /* Reconnect quickly after a broker restart. */
  if (set(conf, "reconnect.backoff.ms", "50", errbuf, errbuf_size) < 0 ||
      set(conf, "reconnect.backoff.max.ms", "1000", errbuf, errbuf_size) < 0)
    goto fail;
  if (hub_kafka_security_apply(&t->cfg->security, t->base_dir ? t->base_dir : "", conf, errbuf, errbuf_size) < 0)
    goto fail;
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  rd_kafka_conf_set_opaque(conf, t);
  return conf;
fail:
  rd_kafka_conf_destroy(conf);
  return NULL;
}

/* User properties last, so they win; "name=value" each. */
static int apply_properties(struct hub_transport *t, rd_kafka_conf_t *conf, char *errbuf, size_t errbuf_size) {
  for (size_t i = 0; i < t->cfg->properties.n; i++) {
    char kv[1024];
    snprintf(kv, sizeof kv, "%s", t->cfg->properties.v[i]);
    char *eq = strchr(kv, '=');
    if (!eq) {
      snprintf(errbuf, errbuf_size, "kafka property '%s' is not name=value", kv);
      return -1;
    }
    *eq = '\0';
    char e[512];
    if (rd_kafka_conf_set(conf, kv, eq + 1, e, sizeof e) != RD_KAFKA_CONF_OK) {
      /* Properties for the other client type are fine: skip those librdkafka marks as unknown. */
      if (strstr(e, "No such configuration property")) continue;
      snprintf(errbuf, errbuf_size, "kafka property '%s': %s", kv, e);
      return -1;
    }
  }
  return 0;
}

/* Delivery reports. Having a callback at all matters: without one librdkafka 2.0.2's flush,
 * and so every commit_transaction, sleeps in 10 ms steps instead of waking on the last
 * acknowledgement. A failed delivery fails the transaction by itself; for a plain producer it is
 * counted so that commit() can report it. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *km, void *opaque) {
  struct hub_transport *t = opaque;
  (void)rk;
  if (km->err) {
    t->delivery_failed++;
    hub_log(HUB_LOG_DEBUG, "kafka", "delivery to %s failed: %s", rd_kafka_topic_name(km->rkt),
            rd_kafka_err2str(km->err));
  }
}

static hub_err_t producer_create(struct hub_transport *t, char *errbuf, size_t errbuf_size) {
  rd_kafka_conf_t *conf = base_conf(t, errbuf, errbuf_size);
  char num[32];
  if (!conf) return HUB_ERR_CONFIG;
  snprintf(num, sizeof num, "%lld", (long long)t->cfg->transaction_timeout_ms);
  if (set(conf, "enable.idempotence", "true", errbuf, errbuf_size) < 0 ||
      set(conf, "acks", "all", errbuf, errbuf_size) < 0 || set(conf, "linger.ms", "2", errbuf, errbuf_size) < 0 ||
      set(conf, "batch.num.messages", "10000", errbuf, errbuf_size) < 0 ||
      set(conf, "queue.buffering.max.messages", "500000", errbuf, errbuf_size) < 0 ||
      (t->txn_id && (set(conf, "transactional.id", t->txn_id, errbuf, errbuf_size) < 0 ||
                     set(conf, "transaction.timeout.ms", num, errbuf, errbuf_size) < 0)) ||
      apply_properties(t, conf, errbuf, errbuf_size) < 0) {
    rd_kafka_conf_destroy(conf);
    return HUB_ERR_CONFIG;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  t->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errbuf_size);
  if (!t->producer) {
    rd_kafka_conf_destroy(conf);
    return HUB_ERR_CONFIG;
  }
  if (!t->txn_id) return HUB_OK;
  unsigned tries = 0;
  /* init_transactions fences any older producer with our transactional id and aborts its open
   * transaction: this is what makes a restart after SIGKILL safe. Retried while the cluster
   * is unreachable. */
  for (;;) {
    /* Short slices so a stop request is noticed while the cluster is away. */
    rd_kafka_error_t *err = rd_kafka_init_transactions(t->producer, 1000);
    if (!err) break;
    int retriable = rd_kafka_error_is_retriable(err);
    snprintf(errbuf, errbuf_size, "init_transactions: %s", rd_kafka_error_string(err));
    rd_kafka_error_destroy(err);
    if (!retriable || hub_stop_requested()) {
      rd_kafka_destroy(t->producer);
      t->producer = NULL;
      return hub_stop_requested() ? HUB_ERR_STOPPED : HUB_ERR_TRANSPORT;
    }
    if (++tries % 10 == 1) hub_log(HUB_LOG_WARN, "kafka", "%s; retrying", errbuf);
  }
  atomic_store(&t->connected, 1);
  return HUB_OK;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
  struct hub_transport *t = opaque;
  free(t->committed); /* the committed offsets cached for the lag belong to the old assignment */
  t->committed = NULL;
  t->n_committed = 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    rd_kafka_assign(rk, parts);
    hub_fetch_wake_set_assignment(t->wake, parts);
    atomic_store(&t->n_assigned, parts->cnt);
    hub_log(HUB_LOG_INFO, "kafka", "assigned %d partition(s) of %s", parts->cnt, t->topic ? t->topic : "?");
  } else {
    /* Work on revoked partitions must not be committed by us any more: abort it. The records
     * are read again by whoever gets the partitions, from the committed offsets. */
    if (t->in_txn && t->producer) {
      rd_kafka_error_t *e = rd_kafka_abort_transaction(t->producer, (int)t->cfg->request_timeout_ms);
      if (e) {
        hub_log(HUB_LOG_WARN, "kafka", "abort on revoke: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
      t->in_txn = 0;
    }
    t->n_marks = 0;
    t->revoked = 1;
    hub_msg_destroy(t->stash);
    t->stash = NULL;
    rd_kafka_assign(rk, NULL);
    hub_fetch_wake_set_assignment(t->wake, NULL);
    atomic_store(&t->n_assigned, 0);
    hub_log(HUB_LOG_INFO, "kafka", "partitions revoked (%s)", rd_kafka_err2name(err));
  }
}

static hub_err_t consumer_create(struct hub_transport *t, char *errbuf, size_t errbuf_size) {
  rd_kafka_conf_t *conf = base_conf(t, errbuf, errbuf_size);
  char num[32];
  if (!conf) return HUB_ERR_CONFIG;
  char kbytes[32], fetch_max[32];
  snprintf(num, sizeof num, "%lld", (long long)t->cfg->session_timeout_ms);
  snprintf(kbytes, sizeof kbytes, "%lld", (long long)(t->cfg->prefetch_bytes / 1024));
  /* One fetch answer comes on top of a full queue: at most half the prefetch, 1..8 MiB. */
  int64_t fm = t->cfg->prefetch_bytes / 2;
  fm = fm < 1048576 ? 1048576 : fm > 8388608 ? 8388608 : fm;
  snprintf(fetch_max, sizeof fetch_max, "%lld", (long long)fm);
  if (set(conf, "group.id", t->group_id, errbuf, errbuf_size) < 0 ||
      (t->group_instance && set(conf, "group.instance.id", t->group_instance, errbuf, errbuf_size) < 0) ||
      set(conf, "isolation.level", "read_committed", errbuf, errbuf_size) < 0 ||
      set(conf, "enable.auto.commit", "false", errbuf, errbuf_size) < 0 ||
      set(conf, "enable.auto.offset.store", "false", errbuf, errbuf_size) < 0 ||
      set(conf, "auto.offset.reset", "earliest", errbuf, errbuf_size) < 0 ||
      set(conf, "session.timeout.ms", num, errbuf, errbuf_size) < 0 ||
      set(conf, "heartbeat.interval.ms", "1000", errbuf, errbuf_size) < 0 ||
      set(conf, "fetch.wait.max.ms", "50", errbuf, errbuf_size) < 0 ||
      /* Bound the prefetch (hub.kafka.prefetch) and each fetch: librdkafka's defaults (64 MiB
       * queue, 50 MiB fetches) let RSS grow far past what a hub instance needs. fetch_wake.c
       * keeps a small queue from stalling librdkafka 2.0.2. */
      set(conf, "queued.max.messages.kbytes", kbytes, errbuf, errbuf_size) < 0 ||
      set(conf, "fetch.max.bytes", fetch_max, errbuf, errbuf_size) < 0 ||
      hub_fetch_wake_conf(conf, errbuf, errbuf_size) < 0 ||
      apply_properties(t, conf, errbuf, errbuf_size) < 0) {
    rd_kafka_conf_destroy(conf);
    return HUB_ERR_CONFIG;
  }
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_stats_cb(conf, stats_cb);
  if (set(conf, "statistics.interval.ms", "1000", errbuf, errbuf_size) < 0) {
    rd_kafka_conf_destroy(conf);
    return HUB_ERR_CONFIG;
  }
  t->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errbuf_size);
  if (!t->consumer) {
    rd_kafka_conf_destroy(conf);
    return HUB_ERR_CONFIG;
  }
  rd_kafka_poll_set_consumer(t->consumer);
  t->cq = rd_kafka_queue_get_consumer(t->consumer);
  t->wake = hub_fetch_wake_create(t->consumer);
  return HUB_OK;
}

/* What consumer_create attached to the consumer; before the consumer itself goes. */
static void consumer_helpers_destroy(struct hub_transport *t) {
  hub_fetch_wake_destroy(t->wake);
  t->wake = NULL;
  if (t->cq) rd_kafka_queue_destroy(t->cq);
  t->cq = NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void k_close(struct hub_transport *t) {
  if (!t) return;
  consumer_helpers_destroy(t);
  if (t->consumer) {
    rd_kafka_consumer_close(t->consumer);
    rd_kafka_destroy(t->consumer);
  }
  if (t->producer) {
    if (t->in_txn) {
      rd_kafka_error_t *e = rd_kafka_abort_transaction(t->producer, 5000);
      if (e) rd_kafka_error_destroy(e);
    } else if (!t->txn_id) {
      rd_kafka_flush(t->producer, 10000);
    }
    rd_kafka_destroy(t->producer);
  }
  if (t->reader) {
    rd_kafka_consumer_close(t->reader);
    rd_kafka_destroy(t->reader);
  }
  free(t->client_id);
  free(t->group_id);
  free(t->group_instance);
  free(t->txn_id);
  free(t->base_dir);
  free(t->topic);
  free(t->marks);
  hub_msg_destroy(t->stash);
  free(t->committed);
  free(t);
}

static hub_err_t k_open(const void *cfg, const struct hub_transport_opts *opts, struct hub_transport **out,
                        char *errbuf, size_t errbuf_size) {
  struct hub_transport *t = calloc(1, sizeof *t);
  hub_err_t rc;
  *out = NULL;
  if (!t) return HUB_ERR_NOMEM;
  t->cfg = cfg;
  t->client_id = strdup(opts->client_id ? opts->client_id : "lienthong");
  t->group_id = dup_or_null(opts->group_id);
  t->group_instance = dup_or_null(opts->group_instance);
  t->txn_id = dup_or_null(opts->transactional_id);
  t->base_dir = strdup(opts->base_dir ? opts->base_dir : "");
  atomic_store(&t->lag, -1);
  if ((rc = producer_create(t, errbuf, errbuf_size)) != HUB_OK) goto fail;
  if (t->group_id && (rc = consumer_create(t, errbuf, errbuf_size)) != HUB_OK) goto fail;
  *out = t;
  return HUB_OK;
fail:
  k_close(t);
  return rc;
}

static hub_err_t k_ensure_topics(struct hub_transport *t, const char *const *topics, size_t n, char *errbuf,
                                 size_t errbuf_size) {
  if (!t->cfg->create_topics) return HUB_OK;
  hub_err_t rc = HUB_OK;
  rd_kafka_NewTopic_t **nt = calloc(n ? n : 1, sizeof *nt);
  rd_kafka_queue_t *q = rd_kafka_queue_new(t->producer);
  rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(t->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_event_t *ev = NULL;
  char e[256];
  if (!nt || !q || !ao) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  rd_kafka_AdminOptions_set_operation_timeout(ao, (int)t->cfg->request_timeout_ms, e, sizeof e);
  rd_kafka_AdminOptions_set_request_timeout(ao, (int)t->cfg->request_timeout_ms, e, sizeof e);
  for (size_t i = 0; i < n; i++) {
    nt[i] = rd_kafka_NewTopic_new(topics[i], (int)t->cfg->partitions, (int)t->cfg->replication, e, sizeof e);
    if (!nt[i]) {
      snprintf(errbuf, errbuf_size, "topic '%s': %s", topics[i], e);
      rc = HUB_ERR_CONFIG;
      goto out;
    }
    /* Only the latest cursor of each source matters (Kafka Connect's offsets topic does the same). */
    if (hub_topic_compacted(topics[i])) rd_kafka_NewTopic_set_config(nt[i], "cleanup.policy", "compact");
  }
  rd_kafka_CreateTopics(t->producer, nt, n, ao, q);
  ev = rd_kafka_queue_poll(q, (int)t->cfg->request_timeout_ms + 5000);
  if (!ev) {
    snprintf(errbuf, errbuf_size, "creating topics: no answer from the cluster");
    rc = HUB_ERR_TIMEOUT;
    goto out;
  }
  if (rd_kafka_event_error(ev)) {
    snprintf(errbuf, errbuf_size, "creating topics: %s", rd_kafka_event_error_string(ev));
    rc = HUB_ERR_TRANSPORT;
    goto out;
  }
  size_t cnt;
  const rd_kafka_topic_result_t **res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
  for (size_t i = 0; i < cnt; i++) {
    rd_kafka_resp_err_t te = rd_kafka_topic_result_error(res[i]);
    if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      snprintf(errbuf, errbuf_size, "creating topic '%s': %s", rd_kafka_topic_result_name(res[i]),
               rd_kafka_topic_result_error_string(res[i]));
      rc = HUB_ERR_TRANSPORT;
      goto out;
    }
    if (!te) hub_log(HUB_LOG_INFO, "kafka", "created topic %s", rd_kafka_topic_result_name(res[i]));
  }
out:
  if (ev) rd_kafka_event_destroy(ev);
  for (size_t i = 0; nt && i < n; i++)
    if (nt[i]) rd_kafka_NewTopic_destroy(nt[i]);
  free(nt);
  if (ao) rd_kafka_AdminOptions_destroy(ao);
  if (q) rd_kafka_queue_destroy(q);
  return rc;
}

static hub_err_t k_subscribe(struct hub_transport *t, const char *topic) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(t->consumer, l);
  rd_kafka_topic_partition_list_destroy(l);
  free(t->topic);
  t->topic = strdup(topic);
  if (err) {
    hub_log(HUB_LOG_ERROR, "kafka", "subscribe %s: %s", topic, rd_kafka_err2str(err));
    return HUB_ERR_TRANSPORT;
  }
  return HUB_OK;
}

static struct hub_msg *msg_from_kafka(const rd_kafka_message_t *km) {
  struct hub_msg *m = hub_msg_new(km->key, km->key_len, km->payload, km->len);
  if (!m) return NULL;
  if (!km->key) hub_msg_set_key(m, NULL, 0);
  m->partition = km->partition;
  m->offset = km->offset;
  rd_kafka_timestamp_type_t tt;
  m->timestamp_ms = rd_kafka_message_timestamp(km, &tt);
  if (hub_msg_set_topic(m, rd_kafka_topic_name(km->rkt)) != HUB_OK) goto fail;
  rd_kafka_headers_t *hdrs = NULL;
  if (rd_kafka_message_headers(km, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char *name;
    const void *val;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
      if (hub_msg_header_add(m, name, val ? val : "", val ? size : 0) != HUB_OK) goto fail;
  }
  return m;
fail:
  hub_msg_destroy(m);
  return NULL;
}

/* Before the first record of a partition is consumed, librdkafka knows no position for it: the
 * group's committed offset stands in (asked once per assignment, then cached). */
static int64_t start_offset(struct hub_transport *t, const rd_kafka_topic_partition_list_t *a, int32_t partition) {
  if (partition < 0 || partition >= 4096) return -1;
  if (partition >= t->n_committed) {
    int n = partition + 1;
    int64_t *c = realloc(t->committed, (size_t)n * sizeof *c);
    if (!c) return -1;
    for (int k = t->n_committed; k < n; k++) c[k] = INT64_MIN;
    t->committed = c;
    t->n_committed = n;
  }
  if (t->committed[partition] == INT64_MIN) {
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(a);
    if (!rd_kafka_committed(t->consumer, q, 1000))
      for (int k = 0; k < q->cnt; k++)
        if (q->elems[k].partition < t->n_committed && !q->elems[k].err)
          t->committed[q->elems[k].partition] = q->elems[k].offset;
    rd_kafka_topic_partition_list_destroy(q);
  }
  return t->committed[partition] == INT64_MIN ? -1 : t->committed[partition];
}

static void update_lag(struct hub_transport *t) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now); /* called per record: the cheap clock */
  if (now.tv_sec == t->last_lag.tv_sec) return; /* at most once a second */
  t->last_lag = now;
  rd_kafka_topic_partition_list_t *a = NULL;
  if (rd_kafka_assignment(t->consumer, &a) || !a) return;
  rd_kafka_position(t->consumer, a);
  long long lag = 0;
  int unknown = 0;
  for (int i = 0; i < a->cnt; i++) {
    int64_t lo, hi, pos = a->elems[i].offset;
    if (rd_kafka_get_watermark_offsets(t->consumer, a->elems[i].topic, a->elems[i].partition, &lo, &hi) || hi < 0) {
      unknown++;
      continue;
    }
    if (pos < 0) {
      pos = start_offset(t, a, a->elems[i].partition);
      if (pos == RD_KAFKA_OFFSET_INVALID) pos = lo; /* nothing committed yet: from the start */
    }
    if (pos < 0) {
      unknown++;
      continue;
    }
    lag += hi > pos ? hi - pos : 0;
  }
  atomic_store(&t->lag, unknown ? -1 : lag);
  rd_kafka_topic_partition_list_destroy(a);
}

static hub_err_t k_abort(struct hub_transport *t);
static hub_err_t rewind_consumer(struct hub_transport *t);

/* A fatal consumer error (e.g. fenced group membership): abort the open work, make a new
 * consumer and subscribe again; the records come again from the committed offsets. */
static hub_err_t recreate_consumer(struct hub_transport *t) {
  char errstr[512], errbuf[512];
  rd_kafka_fatal_error(t->consumer, errstr, sizeof errstr);
  hub_log(HUB_LOG_ERROR, "kafka", "fatal consumer error: %s; recreating the consumer", errstr);
  if (t->in_txn) k_abort(t);
  consumer_helpers_destroy(t);
  rd_kafka_destroy(t->consumer);
  t->consumer = NULL;
  atomic_store(&t->n_assigned, 0);
  t->n_marks = 0;
  while (consumer_create(t, errbuf, sizeof errbuf) != HUB_OK) {
    hub_log(HUB_LOG_ERROR, "kafka", "recreating consumer: %s", errbuf);
    if (hub_stop_requested()) return HUB_ERR_STOPPED;
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
  }
  char *topic = t->topic;
  t->topic = NULL;
  hub_err_t rc = k_subscribe(t, topic);
  free(topic);
  return rc == HUB_OK ? HUB_ERR_ABORTED : rc;
}

static hub_err_t k_poll(struct hub_transport *t, int timeout_ms, struct hub_msg **out) {
  *out = NULL;
  if (t->stash) {
    *out = t->stash;
    t->stash = NULL;
    return HUB_OK;
  }
  rd_kafka_message_t *km = rd_kafka_consumer_poll(t->consumer, timeout_ms);
  if (t->producer) rd_kafka_poll(t->producer, 0); /* serve producer callbacks */
  update_lag(t);
  if (t->revoked) {
    /* A record returned by the same poll that ran the rebalance belongs to the NEW assignment
     * (librdkafka drops records fetched before it), usually the first record at the committed
     * offset: keep it for the next poll. Dropping it here would skip it for good. */
    t->revoked = 0;
    if (km && !km->err && !(t->stash = msg_from_kafka(km))) rewind_consumer(t); /* out of memory: read it again */
    if (km) rd_kafka_message_destroy(km);
    return HUB_ERR_ABORTED;
  }
  if (!km) return HUB_OK;
  if (km->err == RD_KAFKA_RESP_ERR__FATAL) {
    rd_kafka_message_destroy(km);
    return recreate_consumer(t);
  }
  if (km->err) {
    if (km->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
      hub_log(HUB_LOG_WARN, "kafka", "consume: %s", rd_kafka_message_errstr(km));
    rd_kafka_message_destroy(km);
    return HUB_OK;
  }
  atomic_store(&t->connected, 1);
  hub_fetch_wake_note_record(t->wake);
  *out = msg_from_kafka(km);
  rd_kafka_message_destroy(km);
  return *out ? HUB_OK : HUB_ERR_NOMEM;
}

/* Fatal producer error (e.g. fenced): the instance is unusable; make a new one. */
static hub_err_t recreate_producer(struct hub_transport *t) {
  char errbuf[512];
  hub_log(HUB_LOG_WARN, "kafka", "recreating the transactional producer after a fatal error");
  rd_kafka_destroy(t->producer);
  t->producer = NULL;
  t->in_txn = 0;
  for (;;) {
    hub_err_t rc = producer_create(t, errbuf, sizeof errbuf);
    if (rc == HUB_OK) return HUB_OK;
    if (rc == HUB_ERR_STOPPED || hub_stop_requested()) return HUB_ERR_STOPPED;
    hub_log(HUB_LOG_ERROR, "kafka", "recreating producer: %s", errbuf);
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
  }
}

static hub_err_t rewind_consumer(struct hub_transport *t) {
  t->n_marks = 0;
  hub_msg_destroy(t->stash); /* it comes again from the committed offset */
  t->stash = NULL;
  if (!t->consumer) return HUB_OK;
  rd_kafka_topic_partition_list_t *a = NULL;
  if (rd_kafka_assignment(t->consumer, &a) || !a) return HUB_ERR_TRANSPORT;
  hub_err_t rc = HUB_OK;
  if (a->cnt > 0) {
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_committed(t->consumer, a, (int)t->cfg->request_timeout_ms);
      if (!err) break;
      hub_log(HUB_LOG_WARN, "kafka", "reading committed offsets to rewind: %s; retrying", rd_kafka_err2str(err));
      if (hub_stop_requested()) {
        rc = HUB_ERR_STOPPED;
        goto out;
      }
    }
    for (int i = 0; i < a->cnt; i++)
      if (a->elems[i].offset < 0) a->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(t->consumer, a, (int)t->cfg->request_timeout_ms);
    if (e) {
      hub_log(HUB_LOG_WARN, "kafka", "rewind: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
      rc = HUB_ERR_TRANSPORT;
    }
    for (int i = 0; i < a->cnt; i++)
      if (a->elems[i].err)
        hub_log(HUB_LOG_WARN, "kafka", "rewind %s[%d]: %s", a->elems[i].topic, a->elems[i].partition,
                rd_kafka_err2str(a->elems[i].err));
  }
out:
  rd_kafka_topic_partition_list_destroy(a);
  return rc;
}

static hub_err_t k_abort(struct hub_transport *t) {
  hub_err_t rc = HUB_OK;
  if (t->txn_id && t->in_txn) {
    for (;;) {
      rd_kafka_error_t *e = rd_kafka_abort_transaction(t->producer, (int)t->cfg->request_timeout_ms);
      if (!e) break;
      int fatal = rd_kafka_error_is_fatal(e), retriable = rd_kafka_error_is_retriable(e);
      hub_log(HUB_LOG_WARN, "kafka", "abort_transaction: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
      if (fatal || !retriable || hub_stop_requested()) {
        if (hub_stop_requested()) return HUB_ERR_STOPPED;
        rc = recreate_producer(t);
        if (rc != HUB_OK) return rc;
        break;
      }
    }
  }
  t->in_txn = 0;
  hub_err_t r2 = rewind_consumer(t);
  return rc != HUB_OK ? rc : r2;
}

/* The broker finishes a commit (writing its markers) after it has answered it; a transaction
 * that adds partitions before that is refused with CONCURRENT_TRANSACTIONS, and librdkafka 2.0.2
 * retries only after ~20 ms. Waiting a few ms after a commit costs less. */
#define AFTER_COMMIT_PAUSE_MS 4

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static hub_err_t k_begin(struct hub_transport *t) {
  if (!t->txn_id || t->in_txn) return HUB_OK;
  double since = mono_ms() - t->last_commit_ms;
  if (since >= 0 && since < AFTER_COMMIT_PAUSE_MS) {
    long ns = (long)((AFTER_COMMIT_PAUSE_MS - since) * 1e6);
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
  }
  rd_kafka_error_t *e = rd_kafka_begin_transaction(t->producer);
  if (e) {
    int fatal = rd_kafka_error_is_fatal(e);
    hub_log(HUB_LOG_WARN, "kafka", "begin_transaction: %s", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    if (fatal) {
      hub_err_t rc = recreate_producer(t);
      if (rc != HUB_OK) return rc;
      rewind_consumer(t);
      return HUB_ERR_ABORTED;
    }
    return HUB_ERR_TRANSPORT;
  }
  t->in_txn = 1;
  return HUB_OK;
}

static hub_err_t k_produce(struct hub_transport *t, const char *topic, const struct hub_msg *m) {
  for (;;) {
    rd_kafka_headers_t *h = rd_kafka_headers_new(m->n_headers ? m->n_headers : 1);
    for (size_t i = 0; i < m->n_headers; i++)
      rd_kafka_header_add(h, m->headers[i].name, -1, m->headers[i].value, (ssize_t)m->headers[i].value_len);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        t->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->value, m->value_len), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_END);
    if (!err) return HUB_OK;
    rd_kafka_headers_destroy(h);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !hub_stop_requested()) {
      rd_kafka_poll(t->producer, 10);
      continue;
    }
    hub_log(HUB_LOG_WARN, "kafka", "produce to %s: %s", topic, rd_kafka_err2str(err));
    if (err == RD_KAFKA_RESP_ERR__FATAL) return HUB_ERR_TRANSPORT_FATAL;
    return err == RD_KAFKA_RESP_ERR__STATE ? HUB_ERR_ABORTED : HUB_ERR_TRANSPORT;
  }
}

/* librdkafka drops what it had fetched for a paused partition and, on resume, fetches again
 * from the position after the last record poll returned (here m). */
static void pause_resume(struct hub_transport *t, const struct hub_msg *m, int pause) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, m->topic, m->partition);
  rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(t->consumer, l) : rd_kafka_resume_partitions(t->consumer, l);
  if (err)
    hub_log(HUB_LOG_WARN, "kafka", "%s %s/%d: %s", pause ? "pausing" : "resuming", m->topic, (int)m->partition,
            rd_kafka_err2str(err));
  rd_kafka_topic_partition_list_destroy(l);
}

static void k_pause(struct hub_transport *t, const struct hub_msg *m) { pause_resume(t, m, 1); }
static void k_resume(struct hub_transport *t, const struct hub_msg *m) { pause_resume(t, m, 0); }

static void k_mark_done(struct hub_transport *t, const struct hub_msg *m) {
  for (size_t i = 0; i < t->n_marks; i++) {
    if (t->marks[i].partition == m->partition) {
      if (m->offset + 1 > t->marks[i].next_offset) t->marks[i].next_offset = m->offset + 1;
      return;
    }
  }
  if (t->n_marks == t->cap_marks) {
    size_t cap = t->cap_marks ? t->cap_marks * 2 : 16;
    struct mark *nm = realloc(t->marks, cap * sizeof *nm);
    if (!nm) return; /* the offset is simply not committed: records are re-read, never lost */
    t->marks = nm;
    t->cap_marks = cap;
  }
  t->marks[t->n_marks++] = (struct mark){m->partition, m->offset + 1};
}

/* Handles an error of a transactional call: abort+rewind when required, recreate when fatal.
 * Returns HUB_OK if the call may simply be retried. */
static hub_err_t txn_error(struct hub_transport *t, rd_kafka_error_t *e, const char *what) {
  int fatal = rd_kafka_error_is_fatal(e), abort_needed = rd_kafka_error_txn_requires_abort(e),
      retriable = rd_kafka_error_is_retriable(e);
  hub_log(HUB_LOG_WARN, "kafka", "%s: %s%s", what, rd_kafka_error_string(e),
          fatal ? " (fatal)" : abort_needed ? " (aborting)" : retriable ? " (retrying)" : "");
  rd_kafka_error_destroy(e);
  if (hub_stop_requested() && !fatal) {
    k_abort(t);
    return HUB_ERR_STOPPED;
  }
  if (fatal) {
    hub_err_t rc = recreate_producer(t);
    if (rc != HUB_OK) return rc;
    rewind_consumer(t);
    return HUB_ERR_ABORTED;
  }
  if (abort_needed || !retriable) {
    hub_err_t rc = k_abort(t);
    return rc == HUB_ERR_STOPPED ? rc : HUB_ERR_ABORTED;
  }
  return HUB_OK;
}

static hub_err_t k_commit(struct hub_transport *t) {
  if (!t->txn_id) {
    /* Plain producer: done when every queued record is acknowledged by all in-sync replicas. */
    while (rd_kafka_outq_len(t->producer) > 0) {
      rd_kafka_resp_err_t err = rd_kafka_flush(t->producer, 1000);
      if (err && hub_stop_requested()) return HUB_ERR_STOPPED;
    }
    if (t->delivery_failed) {
      hub_log(HUB_LOG_ERROR, "kafka", "%llu record(s) could not be delivered", t->delivery_failed);
      t->delivery_failed = 0;
      return HUB_ERR_TRANSPORT;
    }
    return HUB_OK;
  }
  if (!t->in_txn) return HUB_OK;
  if (t->consumer && t->n_marks) {
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)t->n_marks);
    for (size_t i = 0; i < t->n_marks; i++)
      rd_kafka_topic_partition_list_add(offs, t->topic, t->marks[i].partition)->offset = t->marks[i].next_offset;
    rd_kafka_consumer_group_metadata_t *gm = rd_kafka_consumer_group_metadata(t->consumer);
    for (;;) {
      rd_kafka_error_t *e = rd_kafka_send_offsets_to_transaction(t->producer, offs, gm, (int)t->cfg->request_timeout_ms);
      if (!e) break;
      hub_err_t rc = txn_error(t, e, "send_offsets_to_transaction");
      if (rc != HUB_OK) {
        rd_kafka_consumer_group_metadata_destroy(gm);
        rd_kafka_topic_partition_list_destroy(offs);
        return rc;
      }
    }
    rd_kafka_consumer_group_metadata_destroy(gm);
    rd_kafka_topic_partition_list_destroy(offs);
  }
  for (;;) {
    rd_kafka_error_t *e = rd_kafka_commit_transaction(t->producer, (int)t->cfg->request_timeout_ms);
    if (!e) break;
    hub_err_t rc = txn_error(t, e, "commit_transaction");
    if (rc != HUB_OK) return rc;
  }
  t->in_txn = 0;
  t->n_marks = 0;
  t->last_commit_ms = mono_ms();
  atomic_store(&t->connected, 1);
  return HUB_OK;
}

static int k_assigned(struct hub_transport *t) { return atomic_load(&t->n_assigned); }
static int64_t k_fetched(struct hub_transport *t) { return t->cq ? rd_kafka_queue_length(t->cq) : 0; }
static int64_t k_lag(struct hub_transport *t) { return atomic_load(&t->lag); }
static int k_connected(struct hub_transport *t) { return atomic_load(&t->connected); }

/* Reads a topic with a group-less consumer assigned to all partitions, up to the end offsets
 * read at the start. */
static hub_err_t k_scan(struct hub_transport *t, const char *topic, hub_scan_cb cb, void *ctx, char *errbuf,
                        size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  rd_kafka_t *c = NULL;
  rd_kafka_topic_partition_list_t *parts = NULL;
  const struct rd_kafka_metadata *md = NULL;
  int64_t *ends = NULL;
  int *done = NULL;
  rd_kafka_conf_t *conf = base_conf(t, errbuf, errbuf_size);
  if (!conf) return HUB_ERR_CONFIG;
  if (set(conf, "group.id", "lienthong-scan", errbuf, errbuf_size) < 0 ||
      set(conf, "isolation.level", "read_committed", errbuf, errbuf_size) < 0 ||
      set(conf, "enable.auto.commit", "false", errbuf, errbuf_size) < 0 ||
      set(conf, "enable.partition.eof", "true", errbuf, errbuf_size) < 0) {
    rd_kafka_conf_destroy(conf);
    return HUB_ERR_CONFIG;
  }
  c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errbuf_size);
  if (!c) {
    rd_kafka_conf_destroy(conf);
    return HUB_ERR_TRANSPORT;
  }
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, topic, NULL);
  rd_kafka_resp_err_t err = rd_kafka_metadata(c, 0, rkt, &md, (int)t->cfg->request_timeout_ms);
  rd_kafka_topic_destroy(rkt);
  if (err || md->topic_cnt != 1 || md->topics[0].err) {
    snprintf(errbuf, errbuf_size, "topic '%s': %s", topic,
             rd_kafka_err2str(err ? err : md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
    rc = HUB_ERR_NOT_FOUND;
    goto out;
  }
  int np = md->topics[0].partition_cnt;
  parts = rd_kafka_topic_partition_list_new(np);
  ends = calloc((size_t)np + 1, sizeof *ends);
  done = calloc((size_t)np + 1, sizeof *done);
  int remaining = 0;
  for (int i = 0; i < np; i++) {
    int32_t p = md->topics[0].partitions[i].id;
    int64_t lo, hi;
    /* a topic created a moment ago may have no leader yet: wait for it, within request_timeout */
    struct timespec w0, wn;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    for (;;) {
      err = rd_kafka_query_watermark_offsets(c, topic, p, &lo, &hi, (int)t->cfg->request_timeout_ms);
      clock_gettime(CLOCK_MONOTONIC, &wn);
      int64_t spent_ms = (int64_t)(wn.tv_sec - w0.tv_sec) * 1000 + (wn.tv_nsec - w0.tv_nsec) / 1000000;
      if ((err != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION && err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
           err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) ||
          spent_ms >= t->cfg->request_timeout_ms || hub_stop_requested())
        break;
      struct timespec nap = {0, 100 * 1000000L};
      nanosleep(&nap, NULL);
    }
    if (err) {
      snprintf(errbuf, errbuf_size, "topic '%s' partition %d: %s", topic, p, rd_kafka_err2str(err));
      rc = HUB_ERR_TRANSPORT;
      goto out;
    }
    ends[p] = hi;
    done[p] = hi <= lo;
    if (!done[p]) remaining++;
    rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(c, parts);
  while (remaining > 0 && !hub_stop_requested()) {
    rd_kafka_message_t *km = rd_kafka_consumer_poll(c, (int)t->cfg->request_timeout_ms);
    if (!km) {
      snprintf(errbuf, errbuf_size, "topic '%s': timed out reading", topic);
      rc = HUB_ERR_TIMEOUT;
      goto out;
    }
    int32_t p = km->partition;
    if (km->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (p >= 0 && p < np && !done[p]) {
        done[p] = 1;
        remaining--;
      }
    } else if (km->err) {
      hub_log(HUB_LOG_WARN, "kafka", "scan %s: %s", topic, rd_kafka_message_errstr(km));
    } else {
      struct hub_msg *m = msg_from_kafka(km);
      int stop = m ? cb(ctx, m) : 1;
      hub_msg_destroy(m);
      if (p >= 0 && p < np && !done[p] && km->offset + 1 >= ends[p]) {
        done[p] = 1;
        remaining--;
      }
      if (stop) remaining = 0;
    }
    rd_kafka_message_destroy(km);
  }
out:
  if (md) rd_kafka_metadata_destroy(md);
  if (parts) rd_kafka_topic_partition_list_destroy(parts);
  free(ends);
  free(done);
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return rc;
}

/* ---- for `lienthong transport copy` ------------------------------------------------------- */

/* Runs an admin request on the producer's handle and waits for its result event. */
static rd_kafka_event_t *admin_wait(struct hub_transport *t, rd_kafka_queue_t *q, const char *what, char *errbuf,
                                    size_t errbuf_size, hub_err_t *rc) {
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)t->cfg->request_timeout_ms + 5000);
  if (!ev) {
    snprintf(errbuf, errbuf_size, "%s: no answer from the cluster", what);
    *rc = HUB_ERR_TIMEOUT;
    return NULL;
  }
  if (rd_kafka_event_error(ev)) {
    snprintf(errbuf, errbuf_size, "%s: %s", what, rd_kafka_event_error_string(ev));
    *rc = HUB_ERR_TRANSPORT;
    rd_kafka_event_destroy(ev);
    return NULL;
  }
  return ev;
}

static rd_kafka_AdminOptions_t *admin_options(struct hub_transport *t, rd_kafka_admin_op_t op) {
  char e[256];
  rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(t->producer, op);
  if (ao) rd_kafka_AdminOptions_set_request_timeout(ao, (int)t->cfg->request_timeout_ms, e, sizeof e);
  return ao;
}

static int desc_cmp(const void *a, const void *b) {
  return strcmp(((const struct hub_topic_desc *)a)->name, ((const struct hub_topic_desc *)b)->name);
}

/* Partitions of `topic` (0 if it does not exist), or -1 with errbuf set. */
static int topic_partition_count(struct hub_transport *t, const char *topic, char *errbuf, size_t errbuf_size) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(t->producer, topic, NULL);
  rd_kafka_resp_err_t err = rd_kafka_metadata(t->producer, 0, rkt, &md, (int)t->cfg->request_timeout_ms);
  rd_kafka_topic_destroy(rkt);
  if (err) {
    snprintf(errbuf, errbuf_size, "metadata of '%s': %s", topic, rd_kafka_err2str(err));
    return -1;
  }
  int n = md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : 0;
  for (int i = 0; i < n; i++)
    if (md->topics[0].partitions[i].leader < 0 || md->topics[0].partitions[i].err) n = -2; /* not ready yet */
  rd_kafka_metadata_destroy(md);
  return n;
}

static hub_err_t k_list_topics(struct hub_transport *t, struct hub_topic_desc **out, size_t *n, char *errbuf,
                               size_t errbuf_size) {
  const struct rd_kafka_metadata *md = NULL;
  *out = NULL;
  *n = 0;
  rd_kafka_resp_err_t err = rd_kafka_metadata(t->producer, 1, NULL, &md, (int)t->cfg->request_timeout_ms);
  if (err) {
    snprintf(errbuf, errbuf_size, "listing topics: %s", rd_kafka_err2str(err));
    return HUB_ERR_TRANSPORT;
  }
  struct hub_topic_desc *d = calloc((size_t)md->topic_cnt + 1, sizeof *d);
  hub_err_t rc = d ? HUB_OK : HUB_ERR_NOMEM;
  size_t k = 0;
  for (int i = 0; rc == HUB_OK && i < md->topic_cnt; i++) {
    if (!strncmp(md->topics[i].topic, "__", 2) || md->topics[i].err) continue; /* the broker's own */
    d[k].partitions = md->topics[i].partition_cnt;
    if (!(d[k++].name = strdup(md->topics[i].topic))) rc = HUB_ERR_NOMEM;
  }
  rd_kafka_metadata_destroy(md);
  if (rc != HUB_OK) {
    hub_topic_descs_free(d, k);
    return rc;
  }
  qsort(d, k, sizeof *d, desc_cmp);
  *out = d;
  *n = k;
  return HUB_OK;
}

static hub_err_t k_watermarks(struct hub_transport *t, const char *topic, int32_t partition, int64_t *low,
                              int64_t *high, char *errbuf, size_t errbuf_size) {
  rd_kafka_resp_err_t err;
  /* A topic just created may not have its leaders everywhere yet: transient, retried a while. */
  for (int i = 0; i < 100; i++) {
    err = rd_kafka_query_watermark_offsets(t->producer, topic, partition, low, high, (int)t->cfg->request_timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION && err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
        err != RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
      break;
    struct timespec ts = {0, 100000000L};
    nanosleep(&ts, NULL);
  }
  if (!err) return HUB_OK;
  snprintf(errbuf, errbuf_size, "watermarks of %s[%d]: %s", topic, (int)partition, rd_kafka_err2str(err));
  return err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? HUB_ERR_NOT_FOUND : HUB_ERR_TRANSPORT;
}

/* read_range stops at the partition's end as a read_committed consumer sees it (the last
 * stable offset): records of aborted transactions and the transactions' markers take offsets
 * but are never returned, so `to` itself may never come. */
static hub_err_t k_read_range(struct hub_transport *t, const char *topic, int32_t partition, int64_t from, int64_t to,
                              hub_scan_cb cb, void *ctx, char *errbuf, size_t errbuf_size) {
  if (from >= to) return HUB_OK;
  if (!t->reader) {
    rd_kafka_conf_t *conf = base_conf(t, errbuf, errbuf_size);
    if (!conf) return HUB_ERR_CONFIG;
    if (set(conf, "group.id", "lienthong-copy", errbuf, errbuf_size) < 0 ||
        set(conf, "isolation.level", "read_committed", errbuf, errbuf_size) < 0 ||
        set(conf, "enable.auto.commit", "false", errbuf, errbuf_size) < 0 ||
        set(conf, "enable.partition.eof", "true", errbuf, errbuf_size) < 0 ||
        set(conf, "auto.offset.reset", "earliest", errbuf, errbuf_size) < 0 ||
        apply_properties(t, conf, errbuf, errbuf_size) < 0) {
      rd_kafka_conf_destroy(conf);
      return HUB_ERR_CONFIG;
    }
    if (!(t->reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errbuf_size))) {
      rd_kafka_conf_destroy(conf);
      return HUB_ERR_TRANSPORT;
    }
  }
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, partition)->offset = from;
  rd_kafka_resp_err_t err = rd_kafka_assign(t->reader, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (err) {
    snprintf(errbuf, errbuf_size, "reading %s[%d]: %s", topic, (int)partition, rd_kafka_err2str(err));
    return HUB_ERR_TRANSPORT;
  }
  hub_err_t rc = HUB_OK;
  for (int done = 0; !done;) {
    if (hub_stop_requested()) {
      rc = HUB_ERR_STOPPED;
      break;
    }
    rd_kafka_message_t *km = rd_kafka_consumer_poll(t->reader, (int)t->cfg->request_timeout_ms);
    if (!km) {
      snprintf(errbuf, errbuf_size, "reading %s[%d]: no answer for %lld ms", topic, (int)partition,
               (long long)t->cfg->request_timeout_ms);
      rc = HUB_ERR_TIMEOUT;
      break;
    }
    if (km->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      done = 1;
    } else if (km->err) {
      snprintf(errbuf, errbuf_size, "reading %s[%d]: %s", topic, (int)partition, rd_kafka_message_errstr(km));
      rc = HUB_ERR_TRANSPORT;
      done = 1;
    } else if (km->offset >= to) {
      done = 1;
    } else {
      struct hub_msg *m = msg_from_kafka(km);
      if (!m) {
        rc = HUB_ERR_NOMEM;
        done = 1;
      } else {
        done = cb(ctx, m) || km->offset + 1 >= to;
        hub_msg_destroy(m);
      }
    }
    rd_kafka_message_destroy(km);
  }
  rd_kafka_assign(t->reader, NULL);
  return rc;
}

static hub_err_t k_create_topic(struct hub_transport *t, const char *topic, int partitions, char *errbuf,
                                size_t errbuf_size) {
  int have = topic_partition_count(t, topic, errbuf, errbuf_size);
  if (have == -1) return HUB_ERR_TRANSPORT;
  for (int i = 0; have == -2 && i < 100; i++) { /* exists, partitions still electing leaders */
    struct timespec ts = {0, 100000000L};
    nanosleep(&ts, NULL);
    have = topic_partition_count(t, topic, errbuf, errbuf_size);
  }
  if (have < 0) {
    snprintf(errbuf, errbuf_size, "topic '%s': its partitions have no leader", topic);
    return HUB_ERR_TRANSPORT;
  }
  if (have) {
    if (have == partitions) return HUB_OK;
    snprintf(errbuf, errbuf_size, "topic '%s' exists with %d partition(s), not %d", topic, have, partitions);
    return HUB_ERR_CONFIG;
  }
  char e[256];
  hub_err_t rc = HUB_OK;
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, (int)t->cfg->replication, e, sizeof e);
  if (!nt) {
    snprintf(errbuf, errbuf_size, "topic '%s': %s", topic, e);
    return HUB_ERR_CONFIG;
  }
  if (!strcmp(topic, HUB_TOPIC_CURSORS)) rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
  rd_kafka_queue_t *q = rd_kafka_queue_new(t->producer);
  rd_kafka_AdminOptions_t *ao = admin_options(t, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(ao, (int)t->cfg->request_timeout_ms, e, sizeof e);
  rd_kafka_CreateTopics(t->producer, &nt, 1, ao, q);
  rd_kafka_event_t *ev = admin_wait(t, q, "creating a topic", errbuf, errbuf_size, &rc);
  if (ev) {
    size_t cnt;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt; i++) {
      rd_kafka_resp_err_t te = rd_kafka_topic_result_error(res[i]);
      if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        snprintf(errbuf, errbuf_size, "creating topic '%s': %s", topic, rd_kafka_topic_result_error_string(res[i]));
        rc = HUB_ERR_TRANSPORT;
      }
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_AdminOptions_destroy(ao);
  rd_kafka_queue_destroy(q);
  /* The new topic's leaders take a moment: wait until its metadata shows every partition. */
  for (int i = 0; rc == HUB_OK && i < 100; i++) {
    int n = topic_partition_count(t, topic, errbuf, errbuf_size);
    if (n == partitions) break;
    struct timespec ts = {0, 100000000L};
    nanosleep(&ts, NULL);
  }
  return rc;
}

static hub_err_t k_produce_exact(struct hub_transport *t, const char *topic, const struct hub_msg *m) {
  if (m->partition < 0) return HUB_ERR_INVALID_ARG;
  for (;;) {
    rd_kafka_headers_t *h = rd_kafka_headers_new(m->n_headers ? m->n_headers : 1);
    for (size_t i = 0; i < m->n_headers; i++)
      rd_kafka_header_add(h, m->headers[i].name, -1, m->headers[i].value, (ssize_t)m->headers[i].value_len);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        t->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(m->partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_VALUE(m->value, m->value_len), RD_KAFKA_V_TIMESTAMP(m->timestamp_ms), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_END);
    if (!err) return HUB_OK;
    rd_kafka_headers_destroy(h);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !hub_stop_requested()) {
      rd_kafka_poll(t->producer, 10);
      continue;
    }
    hub_log(HUB_LOG_WARN, "kafka", "produce to %s[%d]: %s", topic, (int)m->partition, rd_kafka_err2str(err));
    return err == RD_KAFKA_RESP_ERR__FATAL ? HUB_ERR_TRANSPORT_FATAL : HUB_ERR_TRANSPORT;
  }
}

static hub_err_t k_list_offsets(struct hub_transport *t, hub_offset_cb cb, void *ctx, char *errbuf,
                                size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  rd_kafka_queue_t *q = rd_kafka_queue_new(t->producer);
  rd_kafka_AdminOptions_t *ao = admin_options(t, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
  rd_kafka_ListConsumerGroups(t->producer, ao, q);
  rd_kafka_event_t *ev = admin_wait(t, q, "listing consumer groups", errbuf, errbuf_size, &rc);
  rd_kafka_AdminOptions_destroy(ao);
  size_t ng = 0;
  const rd_kafka_ConsumerGroupListing_t **groups =
      ev ? rd_kafka_ListConsumerGroups_result_valid(rd_kafka_event_ListConsumerGroups_result(ev), &ng) : NULL;
  int stop = 0;
  for (size_t g = 0; rc == HUB_OK && !stop && g < ng; g++) {
    const char *gid = rd_kafka_ConsumerGroupListing_group_id(groups[g]);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(gid, NULL);
    rd_kafka_AdminOptions_t *go = admin_options(t, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets(t->producer, &req, 1, go, q);
    rd_kafka_event_t *gev = admin_wait(t, q, "listing a group's offsets", errbuf, errbuf_size, &rc);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_AdminOptions_destroy(go);
    if (!gev) break;
    size_t nr = 0;
    const rd_kafka_group_result_t **res =
        rd_kafka_ListConsumerGroupOffsets_result_groups(rd_kafka_event_ListConsumerGroupOffsets_result(gev), &nr);
    for (size_t i = 0; rc == HUB_OK && !stop && i < nr; i++) {
      const rd_kafka_error_t *e = rd_kafka_group_result_error(res[i]);
      if (e) {
        snprintf(errbuf, errbuf_size, "offsets of group '%s': %s", gid, rd_kafka_error_string(e));
        rc = HUB_ERR_TRANSPORT;
        break;
      }
      const rd_kafka_topic_partition_list_t *p = rd_kafka_group_result_partitions(res[i]);
      for (int k = 0; p && !stop && k < p->cnt; k++)
        if (!p->elems[k].err && p->elems[k].offset >= 0)
          stop = cb(ctx, gid, p->elems[k].topic, p->elems[k].partition, p->elems[k].offset);
    }
    rd_kafka_event_destroy(gev);
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  return rc;
}

static hub_err_t k_set_offsets(struct hub_transport *t, const char *group, const char *topic,
                               const int32_t *partitions, const int64_t *next, size_t n, char *errbuf,
                               size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
  for (size_t i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, topic, partitions[i])->offset = next[i];
  rd_kafka_AlterConsumerGroupOffsets_t *req = rd_kafka_AlterConsumerGroupOffsets_new(group, l);
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_queue_t *q = rd_kafka_queue_new(t->producer);
  rd_kafka_AdminOptions_t *ao = admin_options(t, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
  rd_kafka_AlterConsumerGroupOffsets(t->producer, &req, 1, ao, q);
  rd_kafka_event_t *ev = admin_wait(t, q, "setting a group's offsets", errbuf, errbuf_size, &rc);
  if (ev) {
    size_t nr = 0;
    const rd_kafka_group_result_t **res =
        rd_kafka_AlterConsumerGroupOffsets_result_groups(rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &nr);
    for (size_t i = 0; rc == HUB_OK && i < nr; i++) {
      const rd_kafka_error_t *e = rd_kafka_group_result_error(res[i]);
      const rd_kafka_topic_partition_list_t *p = rd_kafka_group_result_partitions(res[i]);
      if (e) {
        snprintf(errbuf, errbuf_size, "offsets of group '%s': %s", group, rd_kafka_error_string(e));
        rc = HUB_ERR_TRANSPORT;
      }
      for (int k = 0; p && rc == HUB_OK && k < p->cnt; k++)
        if (p->elems[k].err) {
          snprintf(errbuf, errbuf_size, "offset of group '%s' on %s[%d]: %s%s", group, topic,
                   (int)p->elems[k].partition, rd_kafka_err2str(p->elems[k].err),
                   p->elems[k].err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ? " (stop the hub first)" : "");
          rc = HUB_ERR_TRANSPORT;
        }
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_AlterConsumerGroupOffsets_destroy(req);
  rd_kafka_AdminOptions_destroy(ao);
  rd_kafka_queue_destroy(q);
  return rc;
}

static const struct hub_transport_ops kafka_ops = {
    .info = {.name = "kafka",
             .summary = "Apache Kafka (librdkafka): transactions with the consumer offsets, read_committed",
             .config_map = &hub_kafka_cfg_map,
             .config_size = sizeof(struct hub_kafka_cfg)},
    .open = k_open,
    .close = k_close,
    .ensure_topics = k_ensure_topics,
    .subscribe = k_subscribe,
    .poll = k_poll,
    .begin = k_begin,
    .produce = k_produce,
    .pause = k_pause,
    .resume = k_resume,
    .mark_done = k_mark_done,
    .commit = k_commit,
    .abort = k_abort,
    .assigned = k_assigned,
    .fetched = k_fetched,
    .lag = k_lag,
    .connected = k_connected,
    .scan = k_scan,
    .list_topics = k_list_topics,
    .watermarks = k_watermarks,
    .read_range = k_read_range,
    .create_topic = k_create_topic,
    .produce_exact = k_produce_exact,
    .list_offsets = k_list_offsets,
    .set_offsets = k_set_offsets,
};
HUB_TRANSPORT_PLUGIN(hub_plugin_transport_kafka, kafka_ops);
