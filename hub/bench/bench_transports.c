/* `lienthong bench passthrough --transport embedded`: the same exactly-once passthrough route
 * run by `lienthong run` on the Kafka transport and on the embedded one, in the same run, on
 * the same machine; the embedded rate is reported as a ratio of the Kafka transport's.
 *
 * Per transport and round:
 *   1. writes a configuration (one route IN -> OUT, admin off), creates the topics and starts
 *      the hub; an observer (a consumer group of its own on OUT, through the transport
 *      interface, read_committed on both) counts every record by its sequence number;
 *   2. sends WARMUP records through the hub and waits for them, so its start-up is not timed;
 *   3. pauses the hub (SIGSTOP), loads N keyed records into IN (through the transport's plain
 *      producer: acks=all on Kafka, one SQLite transaction per chunk on embedded), resumes it
 *      (SIGCONT) and times until the observer has seen the N-th record: rate = N / that time;
 *   4. stops the hub (SIGTERM; its peak RSS is its VmHWM) and checks that every record arrived
 *      exactly once, intact.
 * The transports alternate (Kafka first in odd rounds, embedded first in even ones), so a
 * machine warming up favours neither. Both use the transport interface for loading and
 * observing, so the instruments cost the same on both sides. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hub/bench/bench_proc.h"
#include "hub/bench/bench_records.h"
#include "hub/bench/bench_transports.h"
#include "hub/core/cmd.h"
#include "hub/core/config.h"
#include "hub/core/log.h"
#include "hub/transport/transport.h"

#define WARMUP 1000
#define CHUNK 5000           /* records per loader commit */
#define STALL_MS 60000       /* no new record for this long: give up */
#define FIRST_MS 120000      /* group join, init_transactions, broker warm-up */
#define MAX_ROUNDS 9

struct topts {
  const char *bootstrap;
  long broker_pid; /* for the broker's CPU time: the one the bench started, or --broker-pid */
  uint64_t messages, size, keys, partitions, rounds;
  int sync_normal, keep;
};

struct measure {
  double rate, seconds, rss_mib, cpu_s;
  double broker_cpu_s; /* Kafka: the broker's CPU over the same window (-1: unknown) */
  uint64_t dup, missing, corrupt;
  int ok;
};

/* user + system CPU seconds of a process so far, or -1. */
static double proc_cpu_s(long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = pid > 0 ? fopen(path, "r") : NULL;
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  unsigned long long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the observer: a consumer group of its own on OUT, counting sequence numbers ---------- */

struct observer {
  const struct hub_transport_ops *ops;
  struct hub_transport *t;
  pthread_t thread;
  atomic_int stop;
  size_t size;
  uint64_t capacity;
  unsigned char *seen; /* one byte per sequence number */
  atomic_ullong distinct, received, dup, corrupt;
  atomic_llong last_new_us; /* when the last new sequence number became visible */
  atomic_int failed;
};

static void *observe(void *arg) {
  struct observer *o = arg;
  while (!atomic_load(&o->stop)) {
    struct hub_msg *m = NULL;
    hub_err_t rc = o->ops->poll(o->t, 100, &m);
    if (rc != HUB_OK && rc != HUB_ERR_ABORTED) {
      atomic_store(&o->failed, 1);
      break;
    }
    if (!m) continue;
    int64_t now = bench_now_us();
    uint64_t seq;
    int64_t sent;
    atomic_fetch_add(&o->received, 1);
    if (bench_value_parse(m->value, m->value_len, o->size, &seq, &sent) != 0 || seq >= o->capacity) {
      atomic_fetch_add(&o->corrupt, 1);
    } else if (o->seen[seq]) {
      atomic_fetch_add(&o->dup, 1);
    } else {
      o->seen[seq] = 1;
      atomic_store(&o->last_new_us, now);
      atomic_fetch_add(&o->distinct, 1);
    }
    hub_msg_destroy(m);
  }
  return NULL;
}

/* ---- one transport ---------------------------------------------------------------------- */

struct run {
  const struct topts *o;
  const char *name; /* kafka | embedded */
  const char *self, *scratch, *bootstrap;
  char id[96], in[128], out[128], yaml[PATH_MAX], log[PATH_MAX];
  struct hub_config *cfg;
  const struct hub_transport_ops *ops;
  struct hub_transport *loader;
  struct observer ob;
  struct bench_child hub;
  uint64_t sent;
  char why[1024];
};

static int write_config(struct run *r) {
  FILE *f = fopen(r->yaml, "w");
  if (!f) {
    snprintf(r->why, sizeof r->why, "cannot write %s: %s", r->yaml, strerror(errno));
    return -1;
  }
  fprintf(f, "# generated by lienthong bench passthrough --transport\nhub:\n  transport: %s\n  instance: \"%s\"\n"
             "  log_level: warn\n  admin: { listen: \"\" }\n", r->name, r->id);
  if (!strcmp(r->name, "kafka"))
    fprintf(f, "  kafka: { bootstrap: \"%s\", partitions: %llu }\n", r->bootstrap, (unsigned long long)r->o->partitions);
  else
    fprintf(f, "  embedded: { path: \"%s/%s.db\", partitions: %llu, sync: %s }\n", r->scratch, r->id,
            (unsigned long long)r->o->partitions, r->o->sync_normal ? "normal" : "full");
  fprintf(f, "routes:\n  - name: \"%s\"\n    from: \"%s\"\n    to: \"%s\"\n    steps:\n      - passthrough: {}\n", r->id,
          r->in, r->out);
  return fclose(f) == 0 ? 0 : -1;
}

/* Sends records [from, from + n) to IN, CHUNK per commit. An embedded commit can meet the
 * paused hub holding SQLite's write lock (a heartbeat under way when SIGSTOP came): then the
 * hub runs a moment and the chunk is sent again. */
static int load(struct run *r, uint64_t from, uint64_t n, int paused) {
  unsigned char *v = malloc(r->o->size + 1);
  char key[32];
  int rc = 0;
  for (uint64_t done = 0; v && done < n && rc == 0;) {
    uint64_t k = n - done < CHUNK ? n - done : CHUNK;
    int64_t now = bench_now_us();
    hub_err_t e = r->ops->begin(r->loader);
    for (uint64_t i = 0; e == HUB_OK && i < k; i++) {
      uint64_t seq = from + done + i;
      size_t kl = bench_key(key, sizeof key, seq, (uint32_t)r->o->keys);
      bench_value_fill(v, r->o->size, seq, now);
      struct hub_msg *m = hub_msg_new(key, kl, v, r->o->size);
      e = m ? r->ops->produce(r->loader, r->in, m) : HUB_ERR_NOMEM;
      hub_msg_destroy(m);
    }
    if (e == HUB_OK) e = r->ops->commit(r->loader);
    if (e == HUB_OK) {
      done += k;
      continue;
    }
    if (!paused || strcmp(r->name, "embedded")) {
      snprintf(r->why, sizeof r->why, "%s: loading records: %s", r->name, hub_err2str(e));
      rc = -1;
      break;
    }
    kill(r->hub.pid, SIGCONT);
    struct timespec ts = {0, 50000000L};
    nanosleep(&ts, NULL);
    kill(r->hub.pid, SIGSTOP);
  }
  free(v);
  return v ? rc : -1;
}

/* Waits until the observer has seen `want` distinct records. */
static int wait_seen(struct run *r, uint64_t want) {
  uint64_t last = 0;
  int64_t progress = bench_now_us();
  for (;;) {
    uint64_t got = atomic_load(&r->ob.distinct);
    if (got >= want) return 0;
    int64_t now = bench_now_us();
    if (got != last) last = got, progress = now;
    if (!bench_child_poll(&r->hub)) {
      char ex[32];
      bench_child_describe(&r->hub, ex, sizeof ex);
      snprintf(r->why, sizeof r->why, "%s: the hub ended (%s) with %llu of %llu records seen (log %s)", r->name, ex,
               (unsigned long long)got, (unsigned long long)want, r->log);
      return -1;
    }
    if (atomic_load(&r->ob.failed)) {
      snprintf(r->why, sizeof r->why, "%s: the observer's transport failed", r->name);
      return -1;
    }
    if ((now - progress) / 1000 > (got ? STALL_MS : FIRST_MS)) {
      snprintf(r->why, sizeof r->why, "%s: only %llu of %llu records seen, none new for a while (log %s)", r->name,
               (unsigned long long)got, (unsigned long long)want, r->log);
      return -1;
    }
    struct timespec ts = {0, 5000000L};
    nanosleep(&ts, NULL);
  }
}

static void run_close(struct run *r) {
  if (r->ob.t) {
    atomic_store(&r->ob.stop, 1);
    pthread_join(r->ob.thread, NULL);
    r->ops->close(r->ob.t);
    r->ob.t = NULL;
  }
  free(r->ob.seen);
  r->ob.seen = NULL;
  if (r->loader) r->ops->close(r->loader);
  r->loader = NULL;
  hub_config_destroy(r->cfg);
  r->cfg = NULL;
}

static int measure_one(struct run *r, struct measure *m) {
  char errbuf[1024];
  *m = (struct measure){0};
  r->sent = 0;
  if (write_config(r) < 0) return -1;
  if (hub_config_load(r->yaml, &r->cfg, errbuf, sizeof errbuf) != HUB_OK) {
    snprintf(r->why, sizeof r->why, "%s", errbuf);
    return -1;
  }
  r->ops = hub_transport_get(r->name);
  struct hub_transport_opts lo = {"lienthong-bench-load", NULL, NULL, NULL, r->cfg->base_dir};
  const char *topics[] = {r->in, r->out};
  if (r->ops->open(r->cfg->transport_cfg, &lo, &r->loader, errbuf, sizeof errbuf) != HUB_OK ||
      r->ops->ensure_topics(r->loader, topics, 2, errbuf, sizeof errbuf) != HUB_OK) {
    snprintf(r->why, sizeof r->why, "%s: %s", r->name, errbuf);
    return -1;
  }
  char group[160];
  snprintf(group, sizeof group, "%s.observer", r->id);
  struct hub_transport_opts oo = {"lienthong-bench-observer", group, NULL, NULL, r->cfg->base_dir};
  r->ob = (struct observer){.ops = r->ops, .size = r->o->size, .capacity = WARMUP + r->o->messages};
  if (!(r->ob.seen = calloc(r->ob.capacity, 1)) ||
      r->ops->open(r->cfg->transport_cfg, &oo, &r->ob.t, errbuf, sizeof errbuf) != HUB_OK ||
      r->ops->subscribe(r->ob.t, r->out) != HUB_OK) {
    snprintf(r->why, sizeof r->why, "%s: observer: %s", r->name, errbuf);
    return -1;
  }
  if (pthread_create(&r->ob.thread, NULL, observe, &r->ob) != 0) {
    r->ops->close(r->ob.t);
    r->ob.t = NULL;
    snprintf(r->why, sizeof r->why, "cannot start a thread");
    return -1;
  }
  snprintf(r->log, sizeof r->log, "%s/%s.log", r->scratch, r->id);
  char *argv[] = {(char *)r->self, "run", r->yaml, NULL};
  fprintf(stderr, "bench: %s: lienthong run %s\n", r->name, r->yaml);
  if (bench_child_spawn(&r->hub, argv, NULL, -1, -1, r->log, errbuf, sizeof errbuf) != HUB_OK) {
    snprintf(r->why, sizeof r->why, "%s", errbuf);
    return -1;
  }
  int rc = -1;
  if (load(r, 0, WARMUP, 0) < 0 || wait_seen(r, WARMUP) < 0) goto stop;
  fprintf(stderr, "bench: %s: warm-up done; loading %llu records with the hub paused\n", r->name,
          (unsigned long long)r->o->messages);
  kill(r->hub.pid, SIGSTOP);
  int loaded = load(r, WARMUP, r->o->messages, 1);
  double cpu0 = (bench_child_poll(&r->hub), r->hub.cpu_s);
  int kafka = !strcmp(r->name, "kafka");
  double bcpu0 = kafka ? proc_cpu_s(r->o->broker_pid) : -1;
  int64_t t0 = bench_now_us();
  kill(r->hub.pid, SIGCONT);
  if (loaded < 0 || wait_seen(r, WARMUP + r->o->messages) < 0) goto stop;
  m->seconds = (double)(atomic_load(&r->ob.last_new_us) - t0) / 1e6;
  m->rate = m->seconds > 0 ? (double)r->o->messages / m->seconds : 0;
  bench_child_poll(&r->hub);
  m->cpu_s = r->hub.cpu_s - cpu0;
  double bcpu1 = bcpu0 >= 0 ? proc_cpu_s(r->o->broker_pid) : -1;
  m->broker_cpu_s = bcpu1 >= 0 ? bcpu1 - bcpu0 : (kafka ? -1 : 0);
  rc = 0;
stop:
  kill(r->hub.pid, SIGCONT);
  bench_child_stop(&r->hub, SIGTERM, 40000);
  m->rss_mib = (double)r->hub.hwm_kib / 1024.0;
  char ex[32];
  bench_child_describe(&r->hub, ex, sizeof ex);
  if (rc == 0 && strcmp(ex, "exit 0")) {
    snprintf(r->why, sizeof r->why, "%s: the hub did not stop cleanly (%s; log %s)", r->name, ex, r->log);
    rc = -1;
  }
  /* Late duplicates show within a moment of the hub's last commit. */
  struct timespec ts = {0, 500000000L};
  nanosleep(&ts, NULL);
  m->dup = atomic_load(&r->ob.dup);
  m->corrupt = atomic_load(&r->ob.corrupt);
  m->missing = rc == 0 ? WARMUP + r->o->messages - atomic_load(&r->ob.distinct) : 0;
  m->ok = rc == 0 && !m->dup && !m->corrupt && !m->missing;
  if (rc == 0 && !m->ok)
    snprintf(r->why, sizeof r->why, "%s: %llu duplicate(s), %llu damaged, %llu missing", r->name,
             (unsigned long long)m->dup, (unsigned long long)m->corrupt, (unsigned long long)m->missing);
  if (rc != 0) bench_print_tail(r->log, 15, "  hub log: ");
  if (!strcmp(r->name, "kafka") && r->o->bootstrap && !r->o->keep) { /* a broker of the user's: tidy up */
    const char *topics[] = {r->in, r->out};
    if (bench_topics_delete(r->bootstrap, topics, 2, errbuf, sizeof errbuf) != HUB_OK)
      fprintf(stderr, "bench: deleting %s, %s: %s\n", r->in, r->out, errbuf);
  }
  fprintf(stderr, "bench: %s: %.0f records/s (%.2f s), hub peak RSS %.1f MiB, %s\n", r->name, m->rate, m->seconds,
          m->rss_mib, m->ok ? "exactly once" : r->why);
  run_close(r);
  return m->ok ? 0 : -1;
}

/* ---- options, the runs, the report ------------------------------------------------------ */

static const struct hub_cmd *the_cmd;

static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = s && *s != '-' ? strtoull(s, &end, 10) : 0;
  if (!s || *s == '-' || errno || end == s || *end || v < min || v > max)
    return hub_cmd_usage_error(the_cmd, "%s wants a whole number from %llu to %llu, not '%s'", opt,
                               (unsigned long long)min, (unsigned long long)max, s ? s : ""),
           -1;
  *out = v;
  return 0;
}

static int parse(int argc, char **argv, struct topts *o) {
  int quick = 0, have_n = 0;
  *o = (struct topts){.messages = 100000, .size = 1024, .keys = 1000, .partitions = 4, .rounds = 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--quick")) {
      quick = 1;
      continue;
    }
    if (!strcmp(a, "--keep")) {
      o->keep = 1;
      continue;
    }
    if (!val) return hub_cmd_usage_error(the_cmd, "%s needs a value", a);
    if (!strcmp(a, "--transport")) {
      if (strcmp(val, "embedded"))
        return hub_cmd_usage_error(the_cmd, "--transport: only 'embedded' (compared with kafka), not '%s'", val);
    } else if (!strcmp(a, "--broker-pid")) {
      uint64_t v;
      if (parse_u64(a, val, 1, 4194304, &v) < 0) return HUB_EXIT_USAGE;
      o->broker_pid = (long)v;
    } else if (!strcmp(a, "--bootstrap")) {
      o->bootstrap = val;
    } else if (!strcmp(a, "--messages")) {
      if (parse_u64(a, val, 1, 10000000, &o->messages) < 0) return HUB_EXIT_USAGE;
      have_n = 1;
    } else if (!strcmp(a, "--size")) {
      if (parse_u64(a, val, BENCH_MIN_SIZE, BENCH_MAX_SIZE, &o->size) < 0) return HUB_EXIT_USAGE;
    } else if (!strcmp(a, "--keys")) {
      if (parse_u64(a, val, 1, BENCH_MAX_KEYS, &o->keys) < 0) return HUB_EXIT_USAGE;
    } else if (!strcmp(a, "--partitions")) {
      if (parse_u64(a, val, 1, 256, &o->partitions) < 0) return HUB_EXIT_USAGE;
    } else if (!strcmp(a, "--rounds")) {
      if (parse_u64(a, val, 1, MAX_ROUNDS, &o->rounds) < 0) return HUB_EXIT_USAGE;
    } else if (!strcmp(a, "--embedded-sync")) {
      if (strcmp(val, "full") && strcmp(val, "normal"))
        return hub_cmd_usage_error(the_cmd, "--embedded-sync: full or normal, not '%s'", val);
      o->sync_normal = !strcmp(val, "normal");
    } else {
      return hub_cmd_usage_error(the_cmd, "unknown option '%s' with --transport (see --help)", a);
    }
    i++;
  }
  if (quick && !have_n) o->messages = 20000;
  return HUB_EXIT_OK;
}

static double loadavg1(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

static double median(double *v, size_t n) {
  if (!n) return 0;
  bench_sort(v, n);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_transports_main(const struct hub_cmd *cmd, int argc, char **argv) {
  struct topts o;
  the_cmd = cmd;
  int rc = parse(argc, argv, &o);
  if (rc != HUB_EXIT_OK) return rc;
  char self[PATH_MAX], scratch[PATH_MAX] = "", bootstrap[256] = "";
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "bench: cannot find this program's path: %s\n", strerror(errno));
    return HUB_EXIT_FAIL;
  }
  self[n] = '\0';
  signal(SIGPIPE, SIG_IGN);
  hub_log_set_level(HUB_LOG_ERROR); /* the bench's own clients: their warnings are not the figures */
  if (bench_scratch_make(scratch, sizeof scratch) < 0) return HUB_EXIT_FAIL;
  int started = 0;
  if (o.bootstrap) {
    snprintf(bootstrap, sizeof bootstrap, "%s", o.bootstrap);
  } else if (bench_broker_start(scratch, bootstrap, sizeof bootstrap) < 0) {
    return HUB_EXIT_FAIL;
  } else {
    started = 1;
    char pidfile[PATH_MAX];
    snprintf(pidfile, sizeof pidfile, "%s/broker/pid", scratch);
    FILE *f = fopen(pidfile, "r");
    if (f) {
      if (fscanf(f, "%ld", &o.broker_pid) != 1) o.broker_pid = 0;
      fclose(f);
    }
  }
  struct measure mk[MAX_ROUNDS] = {0}, me[MAX_ROUNDS] = {0};
  const char *error = NULL;
  char why[1024] = "";
  size_t done = 0;
  for (size_t i = 0; i < o.rounds && !error; i++) {
    for (int k = 0; k < 2 && !error; k++) {
      int embedded = (int)((k + i) % 2); /* kafka first in odd rounds, embedded first in even ones */
      struct run r = {.o = &o, .name = embedded ? "embedded" : "kafka", .self = self, .scratch = scratch,
                      .bootstrap = bootstrap};
      snprintf(r.id, sizeof r.id, "bench-%s-%lld-%d-%zu", r.name, (long long)time(NULL), (int)getpid(), i);
      snprintf(r.in, sizeof r.in, "lt-%s.in", r.id);
      snprintf(r.out, sizeof r.out, "lt-%s.out", r.id);
      snprintf(r.yaml, sizeof r.yaml, "%s/%s.yaml", scratch, r.id);
      if (measure_one(&r, embedded ? &me[i] : &mk[i]) < 0) {
        snprintf(why, sizeof why, "%s", r.why);
        error = why;
        run_close(&r);
      }
    }
    if (!error) done++;
  }
  if (started) bench_broker_stop(scratch);
  if (!o.keep && !error) bench_rmtree(scratch);
  else fprintf(stderr, "bench: logs kept in %s\n", scratch);

  double kr[MAX_ROUNDS], er[MAX_ROUNDS], ratio[MAX_ROUNDS], krss = 0, erss = 0, kcpu[MAX_ROUNDS], ecpu[MAX_ROUNDS];
  double bcpu[MAX_ROUNDS];
  int have_b = done > 0;
  for (size_t i = 0; i < done; i++) {
    kr[i] = mk[i].rate, er[i] = me[i].rate;
    ratio[i] = mk[i].rate > 0 ? me[i].rate / mk[i].rate : 0;
    kcpu[i] = mk[i].cpu_s * 1e6 / (double)o.messages, ecpu[i] = me[i].cpu_s * 1e6 / (double)o.messages;
    bcpu[i] = mk[i].broker_cpu_s * 1e6 / (double)o.messages;
    have_b = have_b && mk[i].broker_cpu_s >= 0;
    if (mk[i].rss_mib > krss) krss = mk[i].rss_mib;
    if (me[i].rss_mib > erss) erss = me[i].rss_mib;
  }
  double k = median(kr, done), e = median(er, done), q = median(ratio, done);
  double kc = median(kcpu, done), ec = median(ecpu, done), bc = have_b ? median(bcpu, done) : -1;
  printf("bench passthrough --transport embedded: %llu records of %llu bytes, %llu keys, %llu partitions, %zu "
         "round(s), %ld CPU(s)\n",
         (unsigned long long)o.messages, (unsigned long long)o.size, (unsigned long long)o.keys,
         (unsigned long long)o.partitions, done, sysconf(_SC_NPROCESSORS_ONLN));
  printf("  kafka transport     %10.0f records/s  %6.1f CPU us/record  hub peak RSS %6.1f MiB\n", k, kc, krss);
  printf("  embedded transport  %10.0f records/s  %6.1f CPU us/record  hub peak RSS %6.1f MiB (sync: %s)\n", e, ec,
         erss, o.sync_normal ? "normal" : "full");
  if (bc >= 0)
    printf("  kafka broker (JVM)  %10s            %6.1f CPU us/record  (hub + broker: %.1f us/record)\n", "", bc,
           kc + bc);
  printf("  load average        %10.1f at the end, %ld CPU(s): a loaded machine shares its CPUs by thread\n",
         loadavg1(), sysconf(_SC_NPROCESSORS_ONLN));
  printf("  embedded / kafka    %10.2f (target >= 2: %s); embedded RSS target < 48 MiB: %s\n", q,
         done ? (q >= 2 ? "met" : "MISSED") : "not measured", done ? (erss < 48 ? "met" : "MISSED") : "not measured");
  json_t *j = json_object(), *rounds = json_array();
  json_object_set_new(j, "bench", json_string("passthrough-transports"));
  json_object_set_new(j, "messages", json_integer((json_int_t)o.messages));
  json_object_set_new(j, "size", json_integer((json_int_t)o.size));
  json_object_set_new(j, "partitions", json_integer((json_int_t)o.partitions));
  json_object_set_new(j, "embedded_sync", json_string(o.sync_normal ? "normal" : "full"));
  json_object_set_new(j, "kafka_msgs_per_s", json_real(k));
  json_object_set_new(j, "embedded_msgs_per_s", json_real(e));
  json_object_set_new(j, "ratio", json_real(q));
  json_object_set_new(j, "kafka_cpu_us_per_msg", json_real(kc));
  json_object_set_new(j, "embedded_cpu_us_per_msg", json_real(ec));
  json_object_set_new(j, "kafka_broker_cpu_us_per_msg", bc >= 0 ? json_real(bc) : json_null());
  json_object_set_new(j, "load_avg_end", json_real(loadavg1()));
  json_object_set_new(j, "kafka_peak_rss_mib", json_real(krss));
  json_object_set_new(j, "embedded_peak_rss_mib", json_real(erss));
  for (size_t i = 0; i < done; i++) {
    json_t *r = json_object();
    json_object_set_new(r, "kafka", json_real(mk[i].rate));
    json_object_set_new(r, "embedded", json_real(me[i].rate));
    json_object_set_new(r, "ratio", json_real(ratio[i]));
    json_array_append_new(rounds, r);
  }
  json_object_set_new(j, "per_round", rounds);
  json_object_set_new(j, "exactly_once", json_boolean(done == o.rounds && !error));
  json_t *t = json_object();
  json_object_set_new(t, "ratio", json_boolean(done && q >= 2));
  json_object_set_new(t, "rss", json_boolean(done && erss > 0 && erss < 48));
  json_object_set_new(j, "targets_met", t);
  json_object_set_new(j, "error", error ? json_string(error) : json_null());
  char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
  printf("%s\n", s ? s : "{}");
  free(s);
  json_decref(j);
  if (error) fprintf(stderr, "bench: %s\n", error);
  return error ? HUB_EXIT_FAIL : HUB_EXIT_OK;
}
