/* `lienthong bench passthrough`: the hub's runtime against kcat on the same broker in the
 * same run.
 *   0. starts `lienthong run` (a child process) with one exactly-once passthrough route and
 *      sends WARMUP records through it, so that its start-up is not timed;
 *   1. per round: pauses the hub (SIGSTOP), loads N keyed records into the input topic,
 *      resumes it, and times the N records from the first one the hub produces to the last
 *      one visible to a read_committed consumer of its output; then pipes `kcat -C` (from
 *      the round's first record, by timestamp) into `kcat -P` and times it the same way;
 *   2. with the hub still running, sends more records at half the hub's (median) rate and
 *      measures each record's end-to-end latency (send time -> visible to read_committed);
 *   3. stops the hub (its peak RSS is its VmHWM) and checks that every record it was given
 *      arrived exactly once, intact and in per-key order.
 * Prints a summary and, as the last line, one JSON object with every figure. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hub/bench/bench_proc.h"
#include "hub/bench/bench_records.h"
#include "hub/bench/bench_transports.h"
#include "hub/core/cmd.h"
#include "hub/core/config.h"
#include "hub/core/freeport.h"
#include "hub/core/registry.h"

#define MAX_PROPS 32
#define MAX_ROUNDS 20
#define FIRST_RECORD_TIMEOUT_MS 120000 /* broker warm-up, group join, init_transactions */
#define STALL_TIMEOUT_MS 60000         /* no new record for this long: give up */
#define WARMUP 1000                    /* records through the hub before anything is timed */

static const struct hub_cmd cmd;

struct opts {
  const char *bootstrap;
  uint64_t messages;
  uint64_t size;
  uint64_t keys;
  uint64_t partitions;
  uint64_t rounds;
  double latency_s;
  double latency_rate; /* 0: half of the hub's measured rate */
  int64_t batch_max_messages; /* 0: the hub's default */
  int64_t batch_max_wait_ms;  /* 0: the hub's default */
  const char *props[MAX_PROPS];
  size_t n_props;
  int keep;
};

/* One timed pass of N records. */
struct pass {
  double rate, seconds, tail_ms, cpu_s;
  double steady_rate; /* 80 % of N over the time from 10 % to 90 % of them visible */
};

/* What one run measured; zero where a phase did not get that far. */
struct results {
  char broker[300];
  double produce_rate;
  struct pass hub[MAX_ROUNDS], kcat[MAX_ROUNDS];
  size_t hub_rounds, kcat_rounds; /* completed */
  double hub_rate, kcat_rate, ratio; /* medians over the rounds */
  double hub_steady, kcat_steady, steady_ratio; /* the same for the middle 80 % of each pass */
  double lat_rate;
  uint64_t lat_n;
  double p50, p99, p999, pmax;
  double in_p50, in_p99; /* send -> the hub produced it (before its commit) */
  double rss_mib;
  double kcat_rss_mib[2]; /* peak of kcat -C, of kcat -P (the highest over the rounds) */
  char hub_exit[32];
  uint64_t checked, dup, missing, corrupt, order;
  uint64_t kcat_dup, kcat_missing;
  int64_t eff_max_messages, eff_max_wait_ms;
  int lat_done;
  double load[2]; /* 1-minute load average at the start and at the end (the machine may be shared) */
};

static atomic_int interrupted; /* set by the signal handler, read by the producer thread */
static void on_signal(int sig) {
  (void)sig;
  atomic_store(&interrupted, 1);
}

/* The 1-minute load average, or -1. */
static double loadavg(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

static void msleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = s && *s != '-' ? strtoull(s, &end, 10) : 0;
  if (!s || *s == '-' || errno || end == s || *end || v < min || v > max) {
    hub_cmd_usage_error(&cmd, "%s wants a whole number from %llu to %llu, not '%s'", opt, (unsigned long long)min,
                        (unsigned long long)max, s ? s : "");
    return -1;
  }
  *out = v;
  return 0;
}

/* Returns HUB_EXIT_OK to go on, else the exit code. */
static int parse_opts(int argc, char **argv, struct opts *o) {
  uint64_t v;
  int quick = 0, have_n = 0, have_lat = 0;
  *o = (struct opts){.messages = 200000, .size = 1024, .keys = 1000, .partitions = 4, .rounds = 1, .latency_s = 10};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    int takes = strcmp(a, "--quick") && strcmp(a, "--keep");
    if (takes && !val) return hub_cmd_usage_error(&cmd, "%s needs a value", a);
    if (!strcmp(a, "--quick")) {
      quick = 1;
    } else if (!strcmp(a, "--keep")) {
      o->keep = 1;
    } else if (!strcmp(a, "--bootstrap")) {
      if (!*val || strlen(val) > 200 || strpbrk(val, "\"\\\n"))
        return hub_cmd_usage_error(&cmd, "bad --bootstrap '%s'", val);
      o->bootstrap = val;
    } else if (!strcmp(a, "--messages")) {
      if (parse_u64(a, val, 1, 100000000, &o->messages) < 0) return HUB_EXIT_USAGE;
      have_n = 1;
    } else if (!strcmp(a, "--size")) {
      if (parse_u64(a, val, BENCH_MIN_SIZE, BENCH_MAX_SIZE, &o->size) < 0) return HUB_EXIT_USAGE;
    } else if (!strcmp(a, "--keys")) {
      if (parse_u64(a, val, 1, BENCH_MAX_KEYS, &o->keys) < 0) return HUB_EXIT_USAGE;
    } else if (!strcmp(a, "--partitions")) {
      if (parse_u64(a, val, 1, 256, &o->partitions) < 0) return HUB_EXIT_USAGE;
    } else if (!strcmp(a, "--rounds")) {
      if (parse_u64(a, val, 1, MAX_ROUNDS, &o->rounds) < 0) return HUB_EXIT_USAGE;
    } else if (!strcmp(a, "--latency-seconds")) {
      if (parse_u64(a, val, 1, 3600, &v) < 0) return HUB_EXIT_USAGE;
      o->latency_s = (double)v;
      have_lat = 1;
    } else if (!strcmp(a, "--latency-rate")) {
      if (parse_u64(a, val, 10, 10000000, &v) < 0) return HUB_EXIT_USAGE;
      o->latency_rate = (double)v;
    } else if (!strcmp(a, "--batch-max-messages")) {
      if (parse_u64(a, val, 1, 1000000, &v) < 0) return HUB_EXIT_USAGE;
      o->batch_max_messages = (int64_t)v;
    } else if (!strcmp(a, "--batch-max-wait-ms")) {
      if (parse_u64(a, val, 1, 60000, &v) < 0) return HUB_EXIT_USAGE;
      o->batch_max_wait_ms = (int64_t)v;
    } else if (!strcmp(a, "--hub-property")) {
      if (!strchr(val, '=') || strpbrk(val, "\"\\\n"))
        return hub_cmd_usage_error(&cmd, "--hub-property wants NAME=VALUE (no quotes or backslashes), not '%s'", val);
      if (o->n_props == MAX_PROPS) return hub_cmd_usage_error(&cmd, "at most %d --hub-property options", MAX_PROPS);
      o->props[o->n_props++] = val;
    } else {
      return hub_cmd_usage_error(&cmd, "unknown option '%s'", a);
    }
    if (takes) i++;
  }
  if (quick && !have_n) o->messages = 20000;
  if (quick && !have_lat) o->latency_s = 3;
  return HUB_EXIT_OK;
}

static const char *source_dir(void) {
  const char *s = getenv("LT_SOURCE_DIR");
  return s && *s ? s : LT_SOURCE_DIR;
}

/* Creates SRC/.cache/bench/run-XXXXXX. */
int bench_scratch_make(char *out, size_t cap) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/.cache", source_dir());
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/.cache/bench", source_dir());
  mkdir(path, 0755);
  if (snprintf(out, cap, "%s/run-XXXXXX", path) >= (int)cap || !mkdtemp(out)) {
    fprintf(stderr, "bench: cannot create a scratch directory under %s: %s\n", path, strerror(errno));
    return -1;
  }
  return 0;
}

int bench_broker_start(const char *scratch, char *bootstrap, size_t cap) {
  char script[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], env_port[64], env_cport[64];
  int port = hub_free_port(-1), cport = port > 0 ? hub_free_port(port) : -1;
  if (cport < 0) {
    fprintf(stderr, "bench: no free TCP port on 127.0.0.1\n");
    return -1;
  }
  snprintf(script, sizeof script, "%s/scripts/kafka-start", source_dir());
  snprintf(dir, sizeof dir, "%s/broker", scratch);
  snprintf(log, sizeof log, "%s/broker-start.log", scratch);
  snprintf(env_port, sizeof env_port, "LT_KAFKA_PORT=%d", port);
  snprintf(env_cport, sizeof env_cport, "LT_KAFKA_CONTROLLER_PORT=%d", cport);
  if (access(script, X_OK) != 0) {
    fprintf(stderr, "bench: no --bootstrap given and %s is missing (set LT_SOURCE_DIR to the source tree)\n", script);
    return -1;
  }
  fprintf(stderr, "bench: starting a Kafka broker on 127.0.0.1:%d (%s)\n", port, dir);
  char *argv[] = {script, dir, NULL};
  char *env[] = {env_port, env_cport, NULL};
  if (bench_run_script(argv, env, log, 300000) != 0) {
    fprintf(stderr, "bench: the broker did not start:\n");
    bench_print_tail(log, 30, "  ");
    return -1;
  }
  snprintf(bootstrap, cap, "127.0.0.1:%d", port);
  return 0;
}

void bench_broker_stop(const char *scratch) {
  char script[PATH_MAX], dir[PATH_MAX], log[PATH_MAX];
  snprintf(script, sizeof script, "%s/scripts/kafka-stop", source_dir());
  snprintf(dir, sizeof dir, "%s/broker", scratch);
  snprintf(log, sizeof log, "%s/broker-stop.log", scratch);
  char *argv[] = {script, dir, NULL};
  if (bench_run_script(argv, NULL, log, 60000) != 0) fprintf(stderr, "bench: kafka-stop failed (see %s)\n", log);
}

static int write_config(const char *path, const struct opts *o, const char *bootstrap, const char *id,
                        const char *in, const char *out) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  fprintf(f,
          "# generated by lienthong bench passthrough\n"
          "hub:\n  transport: kafka\n  instance: \"%s\"\n  log_level: warn\n"
          "  admin: { listen: \"\" }\n"
          "  kafka:\n    bootstrap: \"%s\"\n    partitions: %llu\n",
          id, bootstrap, (unsigned long long)o->partitions);
  if (o->n_props) {
    fprintf(f, "    properties:\n");
    for (size_t i = 0; i < o->n_props; i++) fprintf(f, "      - \"%s\"\n", o->props[i]);
  }
  fprintf(f, "routes:\n  - name: \"%s\"\n    from: \"%s\"\n    to: \"%s\"\n    steps:\n      - passthrough: {}\n", id,
          in, out);
  if (o->batch_max_messages || o->batch_max_wait_ms) {
    fprintf(f, "    batch:\n");
    if (o->batch_max_messages) fprintf(f, "      max_messages: %lld\n", (long long)o->batch_max_messages);
    if (o->batch_max_wait_ms) fprintf(f, "      max_wait: %lldms\n", (long long)o->batch_max_wait_ms);
  }
  return fclose(f) == 0 ? 0 : -1;
}

/* Waits until the observer's timed window is complete (`lat`: until `want` latency-phase
 * records are visible), sampling `child` and `also` (may be NULL). Fails on interrupt, on a
 * stall, or when a `must_run` child ends. */
static int wait_for(struct bench_observer *ob, int lat, uint64_t want, struct bench_child *child,
                    struct bench_child *also, int must_run, const char *what, char *why, size_t cap) {
  uint64_t last = 0;
  int64_t last_progress = bench_now_us();
  for (;;) {
    struct bench_observer_stats st;
    bench_observer_get_stats(ob, &st);
    uint64_t got = lat ? st.distinct_lat : st.distinct_win;
    if (got >= want) return 0;
    int64_t now = bench_now_us();
    if (got != last) last_progress = now, last = got;
    int running = child ? bench_child_poll(child) : 1;
    if (also) bench_child_poll(also);
    if (atomic_load(&interrupted)) {
      snprintf(why, cap, "interrupted");
      return -1;
    }
    if (must_run && !running) {
      char ex[32];
      bench_child_describe(child, ex, sizeof ex);
      snprintf(why, cap, "%s ended (%s) with %llu of %llu records visible", what, ex, (unsigned long long)got,
               (unsigned long long)want);
      return -1;
    }
    int64_t limit = got ? STALL_TIMEOUT_MS : FIRST_RECORD_TIMEOUT_MS;
    if ((now - last_progress) / 1000 > limit) {
      snprintf(why, cap, "%s: only %llu of %llu records visible, none new for %lld s", what, (unsigned long long)got,
               (unsigned long long)want, (long long)(limit / 1000));
      return -1;
    }
    msleep(20);
  }
}

/* Records per second over [first produced by the system under test, last visible]; tail:
 * from the last record produced to the last one visible (the final commit, for the hub). */
static void pass_times(const struct bench_observer_stats *st, uint64_t n, struct pass *p) {
  p->seconds = (double)(st->win_complete_us - st->first_create_ms * 1000) / 1e6;
  p->tail_ms = (double)(st->win_complete_us - st->last_create_ms * 1000) / 1e3;
  p->rate = p->seconds > 0 ? (double)n / p->seconds : 0;
  /* The middle of the pass, free of start-up and of the final commit or flush. */
  uint64_t k10 = (n + 9) / 10, k90 = (9 * n + 9) / 10;
  double mid = (double)(st->win_90_us - st->win_10_us) / 1e6;
  p->steady_rate = k90 > k10 && mid > 0 ? (double)(k90 - k10) / mid : 0;
}

struct ctx {
  const struct opts *o;
  const char *bootstrap;
  const char *scratch;
  char id[64];
  char in[128], hub_out[128], dlq[140];
  char kcat_out[MAX_ROUNDS][140];
  char *self;
  struct results *r;
  char why[1024];
  /* the hub runs from hub_start to hub_finish */
  struct bench_child hub;
  struct bench_observer *hub_ob;
  char hub_log[PATH_MAX];
  uint64_t sent; /* records in the input topic, acknowledged by the broker; the next sequence number */
};

/* Why the run failed, for the summary and the JSON. */
static void set_why(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(struct ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->why, sizeof c->why, fmt, ap);
  va_end(ap);
}

/* Sends `count` more records to the input topic (the next sequence numbers) at `rate` (<= 0:
 * as fast as possible); `*seconds` from first send to last acknowledgement. */
static int send_input(struct ctx *c, uint64_t count, double rate, double *seconds) {
  char errbuf[1024];
  if (bench_produce(c->bootstrap, c->in, c->sent, count, c->o->size, (uint32_t)c->o->keys, rate, &interrupted,
                    seconds, errbuf, sizeof errbuf) != HUB_OK) {
    set_why(c, "producing to %s: %s", c->in, errbuf);
    return -1;
  }
  c->sent += count;
  return 0;
}

/* Starts the hub and sends WARMUP records through it, so that the timed rounds do not include
 * its start-up (group join, InitProducerId, first AddPartitionsToTxn, metadata). */
static int hub_start(struct ctx *c) {
  const struct opts *o = c->o;
  struct results *r = c->r;
  char yaml[PATH_MAX], errbuf[1024];
  double secs;
  snprintf(yaml, sizeof yaml, "%s/hub.yaml", c->scratch);
  snprintf(c->hub_log, sizeof c->hub_log, "%s/hub.log", c->scratch);
  if (write_config(yaml, o, c->bootstrap, c->id, c->in, c->hub_out) < 0) {
    set_why(c, "cannot write %s", yaml);
    return -1;
  }
  /* Load it here first: a bad --hub-property or batch value is reported before anything runs,
   * and the effective batch settings go into the results. */
  struct hub_config *cfg = NULL;
  if (hub_config_load(yaml, &cfg, errbuf, sizeof errbuf) != HUB_OK) {
    set_why(c, "generated configuration: %s", errbuf);
    return -1;
  }
  r->eff_max_messages = cfg->routes[0].batch.max_messages;
  r->eff_max_wait_ms = cfg->routes[0].batch.max_wait_ms;
  hub_config_destroy(cfg);
  if (bench_observer_start(c->bootstrap, c->hub_out, (int)o->partitions, o->size, (uint32_t)o->keys, &c->hub_ob,
                           errbuf, sizeof errbuf) != HUB_OK) {
    set_why(c, "observer: %s", errbuf);
    return -1;
  }
  fprintf(stderr, "bench: hub: lienthong run %s (log %s)\n", yaml, c->hub_log);
  char *argv[] = {c->self, "run", yaml, NULL};
  if (bench_child_spawn(&c->hub, argv, NULL, -1, -1, c->hub_log, errbuf, sizeof errbuf) != HUB_OK) {
    set_why(c, "%s", errbuf);
    return -1;
  }
  fprintf(stderr, "bench: hub: warming up with %d records\n", WARMUP);
  bench_observer_set_window(c->hub_ob, c->sent, c->sent + WARMUP);
  if (send_input(c, WARMUP, 0, &secs) < 0) return -1;
  return wait_for(c->hub_ob, 0, WARMUP, &c->hub, NULL, 1, "the hub (warm-up)", c->why, sizeof c->why);
}

/* Loads N records while the hub is paused (SIGSTOP), then times the hub through them. The
 * round's first record has a timestamp >= *start_ms, every earlier record one below it. */
static int hub_round(struct ctx *c, size_t i, int64_t *start_ms) {
  const struct opts *o = c->o;
  struct results *r = c->r;
  struct pass *p = &r->hub[i];
  double secs;
  if (kill(c->hub.pid, SIGSTOP) != 0) {
    set_why(c, "cannot pause the hub: %s", strerror(errno));
    return -1;
  }
  msleep(2); /* records sent before now have an earlier timestamp than *start_ms */
  *start_ms = bench_now_us() / 1000 + 1;
  while (bench_now_us() / 1000 < *start_ms) msleep(1);
  fprintf(stderr, "bench: round %zu: loading %llu records of %llu bytes into %s (hub paused)\n", i + 1,
          (unsigned long long)o->messages, (unsigned long long)o->size, c->in);
  uint64_t from = c->sent;
  bench_observer_set_window(c->hub_ob, from, from + o->messages);
  int rc = send_input(c, o->messages, 0, &secs);
  bench_child_poll(&c->hub);
  double cpu0 = c->hub.cpu_s;
  kill(c->hub.pid, SIGCONT);
  if (rc < 0) return -1;
  if (i == 0) r->produce_rate = secs > 0 ? (double)o->messages / secs : 0;
  if (wait_for(c->hub_ob, 0, o->messages, &c->hub, NULL, 1, "the hub", c->why, sizeof c->why) < 0) return -1;
  struct bench_observer_stats st;
  bench_observer_get_stats(c->hub_ob, &st);
  bench_child_poll(&c->hub);
  p->cpu_s = c->hub.cpu_s - cpu0;
  pass_times(&st, o->messages, p);
  r->hub_rounds = i + 1;
  fprintf(stderr, "bench: round %zu: hub: %llu records in %.3f s (%.0f msgs/s)\n", i + 1,
          (unsigned long long)o->messages, p->seconds, p->rate);
  return 0;
}

/* kcat -C | kcat -P over the round's records (those with a timestamp >= start_ms, sequence
 * numbers [from, from + N)), into a fresh topic, timed the same way as the hub. */
static int kcat_round(struct ctx *c, size_t i, int64_t start_ms, uint64_t from) {
  const struct opts *o = c->o;
  struct results *r = c->r;
  struct pass *p = &r->kcat[i];
  char log_c[PATH_MAX], log_p[PATH_MAX], errbuf[1024], offset[64];
  struct bench_observer *ob = NULL;
  struct bench_child cons = {0}, prod = {0};
  int rc = -1, pfd[2] = {-1, -1};
  snprintf(log_c, sizeof log_c, "%s/kcat-consumer.log", c->scratch);
  snprintf(log_p, sizeof log_p, "%s/kcat-producer.log", c->scratch);
  snprintf(offset, sizeof offset, "s@%lld", (long long)start_ms);
  if (bench_observer_start(c->bootstrap, c->kcat_out[i], (int)o->partitions, o->size, (uint32_t)o->keys, &ob, errbuf,
                           sizeof errbuf) != HUB_OK) {
    set_why(c, "observer: %s", errbuf);
    goto out;
  }
  bench_observer_set_window(ob, from, from + o->messages);
  /* The observer must be reading before kcat starts, as the hub's has been all along. */
  if (bench_observer_wait_ready(ob, 60000) != 0) {
    set_why(c, "the observer of %s did not reach the end of its partitions within 60 s", c->kcat_out[i]);
    goto out;
  }
  if (pipe2(pfd, O_CLOEXEC) != 0) {
    set_why(c, "pipe: %s", strerror(errno));
    goto out;
  }
  char *bs = (char *)c->bootstrap;
  char *pargv[] = {"kcat", "-P", "-b", bs, "-t", c->kcat_out[i], "-K", "\t", NULL};
  char *cargv[] = {"kcat", "-C", "-b", bs, "-t", c->in, "-o", offset, "-e", "-q", "-f", "%k\t%s\n", NULL};
  fprintf(stderr, "bench: round %zu: kcat -C -t %s -o %s -e | kcat -P -t %s -K '\\t'\n", i + 1, c->in, offset,
          c->kcat_out[i]);
  if (bench_child_spawn(&prod, pargv, NULL, pfd[0], -1, log_p, errbuf, sizeof errbuf) != HUB_OK ||
      bench_child_spawn(&cons, cargv, NULL, -1, pfd[1], log_c, errbuf, sizeof errbuf) != HUB_OK) {
    set_why(c, "%s (is kcat installed?)", errbuf);
    goto out;
  }
  close(pfd[0]);
  close(pfd[1]);
  pfd[0] = pfd[1] = -1;
  if (wait_for(ob, 0, o->messages, &prod, &cons, 0, "kcat", c->why, sizeof c->why) < 0) goto out;
  struct bench_observer_stats st;
  bench_observer_get_stats(ob, &st);
  pass_times(&st, o->messages, p);
  r->kcat_rounds = i + 1;
  fprintf(stderr, "bench: round %zu: kcat: %llu records in %.3f s (%.0f msgs/s)\n", i + 1,
          (unsigned long long)o->messages, p->seconds, p->rate);
  rc = 0;
out:
  if (pfd[0] >= 0) close(pfd[0]);
  if (pfd[1] >= 0) close(pfd[1]);
  /* Both end by themselves: the consumer at the end of the input, the producer at the end of its stdin. */
  if (cons.pid > 0 && !bench_child_wait(&cons, rc == 0 ? 30000 : 0)) bench_child_stop(&cons, SIGTERM, 5000);
  if (prod.pid > 0 && !bench_child_wait(&prod, rc == 0 ? 30000 : 0)) bench_child_stop(&prod, SIGTERM, 5000);
  p->cpu_s = cons.cpu_s + prod.cpu_s;
  if ((double)cons.hwm_kib / 1024.0 > r->kcat_rss_mib[0]) r->kcat_rss_mib[0] = (double)cons.hwm_kib / 1024.0;
  if ((double)prod.hwm_kib / 1024.0 > r->kcat_rss_mib[1]) r->kcat_rss_mib[1] = (double)prod.hwm_kib / 1024.0;
  if (rc != 0) {
    bench_print_tail(log_c, 10, "  kcat-consumer.log: ");
    bench_print_tail(log_p, 10, "  kcat-producer.log: ");
  }
  if (ob) {
    if (rc == 0) bench_observer_drain(ob, 1000, 30000);
    bench_observer_stop(ob);
    struct bench_observer_stats st;
    bench_observer_get_stats(ob, &st);
    r->kcat_dup += st.duplicates;
    r->kcat_missing += bench_observer_missing(ob, from, from + o->messages);
  }
  bench_observer_destroy(ob);
  return rc;
}

/* The median of n values (the mean of the middle two when n is even). */
static double median(const double *v, size_t n) {
  double s[MAX_ROUNDS];
  if (!n) return 0;
  memcpy(s, v, n * sizeof *s);
  bench_sort(s, n);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Medians of the rounds' hub and kcat rates and of their ratios (each pairs two passes run
 * seconds apart); `steady`: of the middle-80 % rates. */
static void summarize(const struct results *r, int steady, double *hub, double *kcat, double *ratio) {
  double h[MAX_ROUNDS], k[MAX_ROUNDS], q[MAX_ROUNDS];
  size_t n = r->kcat_rounds < r->hub_rounds ? r->kcat_rounds : r->hub_rounds;
  for (size_t i = 0; i < r->hub_rounds; i++) h[i] = steady ? r->hub[i].steady_rate : r->hub[i].rate;
  for (size_t i = 0; i < r->kcat_rounds; i++) k[i] = steady ? r->kcat[i].steady_rate : r->kcat[i].rate;
  for (size_t i = 0; i < n; i++) q[i] = k[i] > 0 ? h[i] / k[i] : 0;
  *hub = median(h, r->hub_rounds);
  *kcat = median(k, r->kcat_rounds);
  *ratio = median(q, n);
}

static void summarize_rounds(struct results *r) {
  summarize(r, 0, &r->hub_rate, &r->kcat_rate, &r->ratio);
  summarize(r, 1, &r->hub_steady, &r->kcat_steady, &r->steady_ratio);
}

/* Half the hub's median rate through the same running hub. */
static int hub_latency(struct ctx *c) {
  const struct opts *o = c->o;
  struct results *r = c->r;
  double secs;
  r->lat_rate = o->latency_rate > 0 ? o->latency_rate : r->hub_rate / 2;
  r->lat_n = (uint64_t)(r->lat_rate * o->latency_s);
  if (r->lat_n < 100) r->lat_n = 100;
  fprintf(stderr, "bench: latency: %llu records at %.0f msgs/s\n", (unsigned long long)r->lat_n, r->lat_rate);
  bench_observer_set_latency(c->hub_ob, c->sent);
  if (send_input(c, r->lat_n, r->lat_rate, &secs) < 0) return -1;
  if (secs > 0) r->lat_rate = (double)r->lat_n / secs; /* the rate actually achieved */
  if (wait_for(c->hub_ob, 1, r->lat_n, &c->hub, NULL, 1, "the hub (latency phase)", c->why, sizeof c->why) < 0) return -1;
  r->lat_done = 1;
  return 0;
}

/* Stops the hub and counts what its output holds. `ok`: the phases so far succeeded. */
static int hub_finish(struct ctx *c, int ok) {
  struct results *r = c->r;
  if (c->hub.pid > 0) {
    kill(c->hub.pid, SIGCONT); /* in case it is still paused */
    bench_child_stop(&c->hub, SIGTERM, 40000);
    bench_child_describe(&c->hub, r->hub_exit, sizeof r->hub_exit);
    r->rss_mib = (double)c->hub.hwm_kib / 1024.0;
    if (ok && !(WIFEXITED(c->hub.status) && WEXITSTATUS(c->hub.status) == 0)) {
      set_why(c, "the hub did not stop cleanly (%s)", r->hub_exit);
      ok = 0;
    }
    if (!ok) bench_print_tail(c->hub_log, 20, "  hub.log: ");
  }
  if (c->hub_ob) {
    if (ok && bench_observer_drain(c->hub_ob, 1000, 30000) != 0)
      fprintf(stderr, "bench: the hub's output did not go quiet; late duplicates may be uncounted\n");
    bench_observer_stop(c->hub_ob);
    struct bench_observer_stats st;
    bench_observer_get_stats(c->hub_ob, &st);
    r->dup = st.duplicates;
    r->corrupt = st.corrupt;
    r->order = st.order_violations;
    r->checked = c->sent;
    r->missing = bench_observer_missing(c->hub_ob, 0, c->sent);
    size_t n;
    const double *lat = bench_observer_latencies(c->hub_ob, &n);
    if (r->lat_done && n) {
      r->p50 = bench_quantile(lat, n, 0.50);
      r->p99 = bench_quantile(lat, n, 0.99);
      r->p999 = bench_quantile(lat, n, 0.999);
      r->pmax = lat[n - 1];
      const double *in = bench_observer_latencies_in(c->hub_ob, &n);
      r->in_p50 = bench_quantile(in, n, 0.50);
      r->in_p99 = bench_quantile(in, n, 0.99);
    }
    bench_observer_destroy(c->hub_ob);
    c->hub_ob = NULL;
  }
  return ok ? 0 : -1;
}

/* x rounded to `places` decimals, so the JSON shows 12.34 rather than 12.339999999999. */
static double round_to(double x, int places) {
  double f = 1;
  while (places-- > 0) f *= 10;
  return (double)(long long)(x * f + (x >= 0 ? 0.5 : -0.5)) / f;
}
static double round2(double x) { return round_to(x, 2); }

static json_t *pass_json(const struct pass *p, uint64_t n, uint64_t size) {
  json_t *j = json_object();
  json_object_set_new(j, "msgs_per_s", json_real(round2(p->rate)));
  json_object_set_new(j, "mb_per_s", json_real(round2(p->seconds > 0 ? (double)n * (double)size / 1e6 / p->seconds : 0)));
  json_object_set_new(j, "seconds", json_real(round_to(p->seconds, 3)));
  json_object_set_new(j, "tail_ms", json_real(round2(p->tail_ms)));
  json_object_set_new(j, "cpu_us_per_msg", json_real(round2(p->cpu_s / (double)n * 1e6)));
  json_object_set_new(j, "steady_msgs_per_s", json_real(round2(p->steady_rate)));
  return j;
}

static double mean_cpu_us(const struct pass *p, size_t rounds, uint64_t n) {
  double s = 0;
  for (size_t i = 0; i < rounds; i++) s += p[i].cpu_s;
  return rounds ? s / (double)rounds / (double)n * 1e6 : 0;
}

static void print_results(const struct opts *o, const struct results *r, const char *error) {
  double mb = (double)o->size / 1e6;
  int hub_ok = r->hub_rounds == o->rounds, kcat_ok = r->kcat_rounds == o->rounds;
  int verified = hub_ok && r->lat_done && !r->dup && !r->missing && !r->corrupt && !r->order;
  printf("lienthong bench passthrough: %llu records of %llu bytes, %llu keys, %llu partitions, %llu round(s),"
         " broker %s\n",
         (unsigned long long)o->messages, (unsigned long long)o->size, (unsigned long long)o->keys,
         (unsigned long long)o->partitions, (unsigned long long)o->rounds, r->broker);
  if (r->produce_rate > 0)
    printf("  loading the input      %10.0f msgs/s (idempotent producer, acks=all; the hub paused)\n", r->produce_rate);
  for (size_t i = 0; i < r->hub_rounds; i++) {
    const struct pass *h = &r->hub[i], *k = &r->kcat[i];
    printf("  round %zu: hub %8.0f msgs/s (%.3f s, last visible %.0f ms after produced, CPU %.1f us/msg)", i + 1,
           h->rate, h->seconds, h->tail_ms, h->cpu_s / (double)o->messages * 1e6);
    if (i < r->kcat_rounds)
      printf("; kcat %8.0f msgs/s (%.3f s, %.0f ms, CPU %.1f us/msg); ratio %.2f", k->rate, k->seconds, k->tail_ms,
             k->cpu_s / (double)o->messages * 1e6, k->rate > 0 ? h->rate / k->rate : 0);
    printf("\n");
  }
  if (hub_ok)
    printf("  hub, exactly-once      %10.0f msgs/s %8.2f MB/s (median; batch max %lld records / %lld ms)\n",
           r->hub_rate, r->hub_rate * mb, (long long)r->eff_max_messages, (long long)r->eff_max_wait_ms);
  if (kcat_ok)
    printf("  kcat -C | kcat -P      %10.0f msgs/s %8.2f MB/s (median)\n", r->kcat_rate, r->kcat_rate * mb);
  if (hub_ok && kcat_ok) {
    printf("  ratio hub/kcat         %10.2f   (median of the rounds; target >= 0.70, aim 0.90): %s\n", r->ratio,
           r->ratio >= 0.7 ? "met" : "MISSED");
    printf("  middle 80 %% of each pass: hub %.0f msgs/s, kcat %.0f msgs/s, ratio %.2f (start-up and final commit"
           " left out)\n",
           r->hub_steady, r->kcat_steady, r->steady_ratio);
  }
  if (r->lat_done) {
    printf("  latency at %.0f msgs/s (%llu records): p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms"
           " (target p99 < 50 ms at half the hub's rate): %s\n",
           r->lat_rate, (unsigned long long)r->lat_n, r->p50, r->p99, r->p999, r->pmax,
           o->latency_rate > 0 ? "not judged (--latency-rate)" : r->p99 < 50 ? "met" : "MISSED");
    printf("    of which send -> produced by the hub (before its commit): p50 %.1f ms, p99 %.1f ms\n", r->in_p50,
           r->in_p99);
  }
  if (r->rss_mib > 0)
    printf("  hub peak RSS           %10.1f MiB (target < 64 MiB): %s; kcat -C %.1f MiB, kcat -P %.1f MiB\n",
           r->rss_mib, r->rss_mib < 64 ? "met" : "MISSED", r->kcat_rss_mib[0], r->kcat_rss_mib[1]);
  printf("  exactly-once check     %s: %llu records sent, %llu duplicates, %llu missing, %llu corrupt,"
         " %llu out of key order; hub %s\n",
         verified ? "passed" : "FAILED", (unsigned long long)r->checked, (unsigned long long)r->dup,
         (unsigned long long)r->missing, (unsigned long long)r->corrupt, (unsigned long long)r->order,
         r->hub_exit[0] ? r->hub_exit : "not run");
  printf("  load average (1 min)   %.2f at the start, %.2f at the end, on %ld CPUs\n", r->load[0], r->load[1],
         sysconf(_SC_NPROCESSORS_ONLN));
  if (error) printf("  error: %s\n", error);

  json_t *j = json_object(), *rounds = json_array();
  json_object_set_new(j, "bench", json_string("passthrough"));
  json_object_set_new(j, "messages", json_integer((json_int_t)o->messages));
  json_object_set_new(j, "size", json_integer((json_int_t)o->size));
  json_object_set_new(j, "keys", json_integer((json_int_t)o->keys));
  json_object_set_new(j, "partitions", json_integer((json_int_t)o->partitions));
  json_object_set_new(j, "rounds", json_integer((json_int_t)o->rounds));
  json_object_set_new(j, "broker", json_string(o->bootstrap ? "external" : "started"));
  json_object_set_new(j, "warmup_messages", json_integer(WARMUP));
  json_object_set_new(j, "produce_msgs_per_s", json_real(round2(r->produce_rate)));
  json_object_set_new(j, "hub_msgs_per_s", json_real(round2(r->hub_rate)));
  json_object_set_new(j, "hub_mb_per_s", json_real(round2(r->hub_rate * mb)));
  json_object_set_new(j, "hub_cpu_us_per_msg", json_real(round2(mean_cpu_us(r->hub, r->hub_rounds, o->messages))));
  json_object_set_new(j, "kcat_msgs_per_s", json_real(round2(r->kcat_rate)));
  json_object_set_new(j, "kcat_mb_per_s", json_real(round2(r->kcat_rate * mb)));
  json_object_set_new(j, "kcat_cpu_us_per_msg", json_real(round2(mean_cpu_us(r->kcat, r->kcat_rounds, o->messages))));
  json_object_set_new(j, "ratio", json_real(round_to(r->ratio, 3)));
  json_object_set_new(j, "hub_steady_msgs_per_s", json_real(round2(r->hub_steady)));
  json_object_set_new(j, "kcat_steady_msgs_per_s", json_real(round2(r->kcat_steady)));
  json_object_set_new(j, "steady_ratio", json_real(round_to(r->steady_ratio, 3)));
  json_object_set_new(j, "latency_rate_msgs_per_s", json_real(round2(r->lat_rate)));
  json_object_set_new(j, "latency_messages", json_integer((json_int_t)r->lat_n));
  json_object_set_new(j, "p50_ms", json_real(round2(r->p50)));
  json_object_set_new(j, "p99_ms", json_real(round2(r->p99)));
  json_object_set_new(j, "p999_ms", json_real(round2(r->p999)));
  json_object_set_new(j, "max_ms", json_real(round2(r->pmax)));
  json_object_set_new(j, "to_hub_p50_ms", json_real(round2(r->in_p50)));
  json_object_set_new(j, "to_hub_p99_ms", json_real(round2(r->in_p99)));
  json_object_set_new(j, "peak_rss_mib", json_real(round2(r->rss_mib)));
  json_object_set_new(j, "kcat_consumer_rss_mib", json_real(round2(r->kcat_rss_mib[0])));
  json_object_set_new(j, "kcat_producer_rss_mib", json_real(round2(r->kcat_rss_mib[1])));
  json_object_set_new(j, "batch_max_messages", json_integer(r->eff_max_messages));
  json_object_set_new(j, "batch_max_wait_ms", json_integer(r->eff_max_wait_ms));
  json_object_set_new(j, "exactly_once", json_boolean(verified));
  json_object_set_new(j, "checked_messages", json_integer((json_int_t)r->checked));
  json_object_set_new(j, "duplicates", json_integer((json_int_t)r->dup));
  json_object_set_new(j, "missing", json_integer((json_int_t)r->missing));
  json_object_set_new(j, "corrupt", json_integer((json_int_t)r->corrupt));
  json_object_set_new(j, "order_violations", json_integer((json_int_t)r->order));
  json_object_set_new(j, "kcat_duplicates", json_integer((json_int_t)r->kcat_dup));
  json_object_set_new(j, "kcat_missing", json_integer((json_int_t)r->kcat_missing));
  json_object_set_new(j, "hub_exit", json_string(r->hub_exit[0] ? r->hub_exit : "not run"));
  for (size_t i = 0; i < r->hub_rounds; i++) {
    json_t *e = json_object();
    json_object_set_new(e, "hub", pass_json(&r->hub[i], o->messages, o->size));
    if (i < r->kcat_rounds) {
      json_object_set_new(e, "kcat", pass_json(&r->kcat[i], o->messages, o->size));
      json_object_set_new(e, "ratio", json_real(round_to(r->kcat[i].rate > 0 ? r->hub[i].rate / r->kcat[i].rate : 0, 3)));
    }
    json_array_append_new(rounds, e);
  }
  json_object_set_new(j, "per_round", rounds);
  json_t *load = json_array();
  json_array_append_new(load, json_real(round2(r->load[0])));
  json_array_append_new(load, json_real(round2(r->load[1])));
  json_object_set_new(j, "load_avg", load);
  json_object_set_new(j, "cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
  json_t *t = json_object();
  json_object_set_new(t, "ratio", json_boolean(hub_ok && kcat_ok && r->ratio >= 0.7));
  json_object_set_new(t, "p99", json_boolean(r->lat_done && !o->latency_rate && r->p99 < 50));
  json_object_set_new(t, "rss", json_boolean(r->rss_mib > 0 && r->rss_mib < 64));
  json_object_set_new(j, "targets_met", t);
  json_object_set_new(j, "error", error ? json_string(error) : json_null());
  char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
  printf("%s\n", s ? s : "{\"bench\":\"passthrough\",\"error\":\"out of memory\"}");
  fflush(stdout);
  free(s);
  json_decref(j);
}

static int bench_main(int argc, char **argv) {
  struct opts o;
  struct results r = {0};
  struct ctx c = {0};
  char scratch[PATH_MAX] = "", bootstrap[256] = "", errbuf[1024], self[PATH_MAX];
  const char *topics[3 + MAX_ROUNDS];
  size_t n_topics = 0;
  int started_broker = 0, exit_code = HUB_EXIT_FAIL;
  const char *error = NULL;
  for (int i = 1; i < argc; i++) /* the hub on each transport instead of against kcat */
    if (!strcmp(argv[i], "--transport")) return bench_transports_main(&cmd, argc, argv);
  int rc = parse_opts(argc, argv, &o);
  if (rc != HUB_EXIT_OK) return rc;
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "bench: cannot find this program's path: %s\n", strerror(errno));
    return HUB_EXIT_FAIL;
  }
  self[n] = '\0';
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  c.o = &o;
  c.r = &r;
  c.self = self;
  r.load[0] = loadavg();
  r.eff_max_messages = o.batch_max_messages;
  r.eff_max_wait_ms = o.batch_max_wait_ms;
  if (bench_scratch_make(scratch, sizeof scratch) < 0) {
    error = "cannot create a scratch directory";
    goto out;
  }
  c.scratch = scratch;
  if (o.bootstrap) {
    snprintf(bootstrap, sizeof bootstrap, "%s", o.bootstrap);
  } else {
    if (bench_broker_start(scratch, bootstrap, sizeof bootstrap) < 0) {
      error = "the broker did not start";
      goto out;
    }
    started_broker = 1;
  }
  c.bootstrap = bootstrap;
  snprintf(r.broker, sizeof r.broker, "%s%s", bootstrap, started_broker ? " (started by the bench)" : "");
  /* Unique names per run: topics, consumer group and transactional id start fresh. */
  snprintf(c.id, sizeof c.id, "bench-%lld-%d", (long long)time(NULL), (int)getpid());
  snprintf(c.in, sizeof c.in, "lt-%s.in", c.id);
  snprintf(c.hub_out, sizeof c.hub_out, "lt-%s.hub-out", c.id);
  snprintf(c.dlq, sizeof c.dlq, "%s.dlq", c.id);
  topics[n_topics++] = c.in;
  topics[n_topics++] = c.hub_out;
  for (size_t i = 0; i < o.rounds; i++) {
    snprintf(c.kcat_out[i], sizeof c.kcat_out[i], "lt-%s.kcat-out-%zu", c.id, i + 1);
    topics[n_topics++] = c.kcat_out[i];
  }
  if (bench_topics_create(bootstrap, topics, n_topics, (int)o.partitions, errbuf, sizeof errbuf) != HUB_OK) {
    set_why(&c, "%s", errbuf);
    error = c.why;
    goto out;
  }
  topics[n_topics++] = c.dlq; /* the hub creates it; deleted with the others */
  /* Each round times the hub first and kcat right after it on the same records, so a broker
   * still warming up favours kcat; the hub idles (connected) while kcat runs. */
  int ok = hub_start(&c) == 0;
  for (size_t i = 0; ok && i < o.rounds; i++) {
    int64_t start_ms;
    uint64_t from = c.sent;
    ok = hub_round(&c, i, &start_ms) == 0 && kcat_round(&c, i, start_ms, from) == 0;
  }
  summarize_rounds(&r);
  ok = ok && hub_latency(&c) == 0;
  if (hub_finish(&c, ok) < 0 || !ok) {
    error = c.why;
    goto out;
  }
  exit_code = HUB_EXIT_OK;
out:
  if (!error && (r.dup || r.missing || r.corrupt || r.order)) exit_code = HUB_EXIT_FAIL;
  if (bootstrap[0] && !started_broker && !o.keep && n_topics &&
      bench_topics_delete(bootstrap, topics, n_topics, errbuf, sizeof errbuf))
    fprintf(stderr, "bench: deleting the bench topics: %s\n", errbuf);
  if (started_broker) bench_broker_stop(scratch);
  if (scratch[0]) {
    char data[PATH_MAX];
    snprintf(data, sizeof data, "%s/broker/data", scratch);
    if (o.keep || exit_code != HUB_EXIT_OK) {
      bench_rmtree(data); /* the logs stay for a look; the records do not */
      fprintf(stderr, "bench: logs kept in %s\n", scratch);
    } else if (bench_rmtree(scratch) != 0) {
      fprintf(stderr, "bench: cannot remove %s: %s\n", scratch, strerror(errno));
    }
  }
  if (error) fprintf(stderr, "bench: %s\n", error);
  r.load[1] = loadavg();
  print_results(&o, &r, error);
  return exit_code;
}

static const struct hub_cmd cmd = {
    .name = "bench.passthrough",
    .summary = "benchmark an exactly-once passthrough route against kcat",
    .usage =
        "Usage: lienthong bench passthrough [OPTIONS]\n\n"
        "Measures the hub's runtime on a real Kafka broker, against kcat on the same broker in the same run:\n"
        "  1. starts `lienthong run` with one passthrough route, exactly-once (transactions carrying the\n"
        "     consumer offsets; its output read with isolation.level=read_committed), and sends 1000\n"
        "     warm-up records through it;\n"
        "  2. each round: pauses the hub, loads N keyed records of SIZE bytes, resumes it and times them\n"
        "     from the first record the hub produces to the last one visible on its output; then times\n"
        "     `kcat -C -o s@START -e | kcat -P -K '\\t'` over the same records into a fresh topic, the\n"
        "     same way; ratio = hub/kcat (median over the rounds);\n"
        "  3. sends records at half the hub's rate through the running hub and measures each one's\n"
        "     end-to-end latency (send time to visible to a read_committed consumer): p50, p99;\n"
        "  4. stops the hub (peak RSS = its VmHWM) and checks every record it was given arrived\n"
        "     exactly once, intact and in per-key order.\n"
        "Progress goes to stderr; a summary and, as the last line, one JSON object go to stdout.\n\n"
        "Options:\n"
        "  --bootstrap HOST:PORT     broker to use (default: start one with scripts/kafka-start on free\n"
        "                            ports in a scratch directory under .cache/bench/, stop it at the end)\n"
        "  --messages N              records per round (default 200000; 20000 with --quick)\n"
        "  --size BYTES              value size, 64..900000 (default 1024)\n"
        "  --keys K                  distinct record keys (default 1000)\n"
        "  --partitions P            partitions of the bench topics (default 4)\n"
        "  --rounds R                hub/kcat pairs to time, 1..20 (default 1); figures are medians\n"
        "  --latency-seconds S       length of the latency phase (default 10; 3 with --quick)\n"
        "  --latency-rate N          records per second in the latency phase (default: half the\n"
        "                            hub's measured rate, the target's definition)\n"
        "  --quick                   a small run for CI\n"
        "  --batch-max-messages N    route batch.max_messages (default: the hub's)\n"
        "  --batch-max-wait-ms MS    route batch.max_wait (default: the hub's)\n"
        "  --hub-property NAME=VALUE librdkafka property for the hub's clients (hub.kafka.properties);\n"
        "                            repeatable\n"
        "  --keep                    keep the scratch directory (logs, generated config) and the topics\n\n"
        "With --transport embedded, instead: the same route run by the hub on the Kafka transport and on\n"
        "the embedded (SQLite) one, in the same run: per transport, 1000 warm-up records, then N records\n"
        "loaded with the hub paused and timed from its resumption to the last one seen by an observer\n"
        "(a consumer group of its own, read_committed); its peak RSS; every record checked exactly once.\n"
        "Reports each rate, embedded/kafka (target >= 2) and the embedded hub's RSS (target < 48 MiB).\n"
        "  --transport embedded      this comparison (options: --bootstrap, --messages (default 100000,\n"
        "                            20000 with --quick), --size, --keys, --partitions, --rounds 1..9\n"
        "                            (medians; the transports alternate who goes first), --keep and\n"
        "                            --embedded-sync full|normal (hub.embedded.sync, default full),\n"
        "                            --broker-pid PID (the broker's CPU, when --bootstrap is given))\n\n"
        "The source tree (for scripts/) is LT_SOURCE_DIR, else the one this binary was built from.\n"
        "Exit codes: 0 measured and verified, 1 a failure (a lost, duplicated or damaged record, a hub\n"
        "that did not run or stop cleanly, no broker), 2 usage error.",
    .main = bench_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_bench_passthrough, cmd);
