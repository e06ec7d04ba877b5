/* The bench's instruments without a broker: the self-checking record format, the quantile,
 * and the observer's exactly-once accounting (duplicates, gaps, damage, per-key order, the
 * timed window and the latency split), fed synthetic records. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hub/bench/bench_records.h"

static void feed(struct bench_observer *o, uint64_t seq, uint32_t keys, size_t size, int64_t send_us, int64_t ts_ms,
                 int64_t now_us) {
  unsigned char *v = malloc(size);
  char key[16];
  size_t klen = bench_key(key, sizeof key, seq, keys);
  bench_value_fill(v, size, seq, send_us);
  bench_observer_feed(o, key, klen, v, size, ts_ms, now_us);
  free(v);
}

static void test_format(void) {
  unsigned char v[100];
  uint64_t seq = 0;
  int64_t t = 0;
  char key[16];
  bench_value_fill(v, sizeof v, 123456789, 1795965000123456LL);
  CHECK(bench_value_parse(v, sizeof v, sizeof v, &seq, &t) == 0);
  CHECK(seq == 123456789);
  CHECK(t == 1795965000123456LL);
  CHECK(memchr(v, '\t', sizeof v) == NULL && memchr(v, '\n', sizeof v) == NULL);
  CHECK(bench_value_parse(v, sizeof v - 1, sizeof v, &seq, &t) != 0); /* truncated */
  v[80] ^= 1;
  CHECK(bench_value_parse(v, sizeof v, sizeof v, &seq, &t) != 0); /* a filler byte changed */
  v[80] ^= 1;
  v[7] = 'x';
  CHECK(bench_value_parse(v, sizeof v, sizeof v, &seq, &t) != 0); /* not a number */
  CHECK(bench_key(key, sizeof key, 1234, 1000) == 7);
  CHECK_STR(key, "k000234");
}

static void test_quantile(void) {
  double a[100];
  for (int i = 0; i < 100; i++) a[i] = i + 1;
  CHECK(bench_quantile(a, 100, 0.50) == 50);
  CHECK(bench_quantile(a, 100, 0.99) == 99);
  CHECK(bench_quantile(a, 100, 1.0) == 100);
  CHECK(bench_quantile(a, 1, 0.99) == 1);
  CHECK(bench_quantile(a, 0, 0.5) == 0);
}

static void test_observer(void) {
  char errbuf[512];
  struct bench_observer *o = NULL;
  struct bench_observer_stats st;
  const size_t size = 64;
  const uint32_t keys = 10;
  /* Nothing listens on port 1: the consumer never delivers anything, only what is fed. */
  CHECK(bench_observer_start("127.0.0.1:1", "lt-bench-test", 2, size, keys, &o, errbuf, sizeof errbuf) == HUB_OK);
  if (!o) return;
  bench_observer_set_window(o, 0, 5);
  for (uint64_t s = 0; s < 5; s++) feed(o, s, keys, size, 1000, 1, 2000); /* warm-up */
  bench_observer_get_stats(o, &st);
  CHECK(st.distinct_win == 5 && st.win_complete_us == 2000);
  /* Timed window [5, 25): 19 of 20 arrive (24 is missing), 7 twice, first produced at 3005 ms. */
  bench_observer_set_window(o, 5, 25);
  bench_observer_get_stats(o, &st);
  CHECK(st.distinct_win == 0 && st.win_complete_us == -1 && st.first_create_ms == -1);
  for (uint64_t s = 5; s < 24; s++) feed(o, s, keys, size, 1000, (int64_t)(3000 + s), 5000000 + (int64_t)s);
  feed(o, 7, keys, size, 1000, 3007, 6000000);
  bench_observer_get_stats(o, &st);
  CHECK(st.distinct_win == 19);
  CHECK(st.win_10_us == 5000006);  /* the 2nd of 20 (seq 6) */
  CHECK(st.win_90_us == 5000022);  /* the 18th (seq 22) */
  CHECK(st.distinct == 24);
  CHECK(st.duplicates == 1);
  CHECK(st.win_complete_us == -1); /* 24 has not arrived */
  CHECK(st.first_create_ms == 3005);
  feed(o, 24, keys, size, 1000, 3100, 7000000);
  bench_observer_get_stats(o, &st);
  CHECK(st.win_complete_us == 7000000);
  CHECK(st.last_create_ms == 3100);
  /* Latency phase: sent at 10 s, produced at 10.004 s, visible at 10.030 s. */
  bench_observer_set_latency(o, 30);
  feed(o, 30, keys, size, 10000000, 10004, 10030000);
  feed(o, 31, keys, size, 10000000, 10004, 10030000);
  unsigned char bad[64];
  bench_value_fill(bad, sizeof bad, 40, 1000);
  bench_observer_feed(o, "k000001", 7, bad, sizeof bad, 1, 1); /* wrong key for 40 */
  bench_observer_feed(o, "k000000", 7, bad, sizeof bad - 1, 1, 1); /* wrong size */
  bench_observer_stop(o);
  bench_observer_get_stats(o, &st);
  CHECK(st.corrupt == 2);
  CHECK(st.distinct_lat == 2);
  CHECK(st.received == 30); /* 5 + 19 + 1 duplicate + 1 + 2 latency + 2 corrupt */
  CHECK(st.order_violations == 0);
  CHECK(bench_observer_missing(o, 0, 25) == 0);
  CHECK(bench_observer_missing(o, 0, 35) == 8); /* 25..29 and 32..34 */
  size_t n = 0;
  const double *lat = bench_observer_latencies(o, &n);
  CHECK(n == 2 && lat && lat[0] > 29.9 && lat[0] < 30.1);
  const double *in = bench_observer_latencies_in(o, &n);
  CHECK(n == 2 && in && in[0] > 3.9 && in[0] < 4.1);
  bench_observer_destroy(o);

  /* Order: per key, sequence numbers must grow (keys = 10: 3 and 13 share k000003). */
  o = NULL;
  CHECK(bench_observer_start("127.0.0.1:1", "lt-bench-test", 1, size, keys, &o, errbuf, sizeof errbuf) == HUB_OK);
  if (!o) return;
  feed(o, 13, keys, size, 1, 1, 1);
  feed(o, 3, keys, size, 1, 1, 1);
  feed(o, 4, keys, size, 1, 1, 1);
  bench_observer_stop(o);
  bench_observer_get_stats(o, &st);
  CHECK(st.order_violations == 1);
  CHECK(st.duplicates == 0);
  bench_observer_destroy(o);
}

int main(void) {
  test_format();
  test_quantile();
  test_observer();
  return check_done();
}
