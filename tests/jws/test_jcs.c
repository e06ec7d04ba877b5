/* RFC 8785 canonicalisation: the official vectors in testdata/jcs (output/ and outhex/ byte
 * for byte), the RFC's Appendix B number table, refusals. `--numbers N SEED` prints N random
 * doubles as "HEXBITS FORMATTED" lines for jcs_numbers.py to check against Python. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hub/trust/jcs.h"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *p = malloc(cap);
  size_t r;
  while (p && (r = fread(p + n, 1, cap - n - 1, f)) > 0) {
    n += r;
    if (cap - n - 1 == 0) p = realloc(p, cap *= 2);
  }
  fclose(f);
  if (p) p[n] = 0;
  *len = n;
  return p;
}

static double from_bits(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}

static int numbers_mode(long n, unsigned long seed) {
  uint64_t x = seed ? seed : 88172645463325252ULL;
  char buf[40];
  for (long i = 0; i < n; i++) {
    /* xorshift64: random bit patterns cover every exponent, subnormals included */
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint64_t bits = x;
    if (i % 4 == 1) bits = (x & 0x800fffffffffffffULL) | ((uint64_t)(1023 + (int)(x % 140) - 70) << 52); /* near 1 */
    if (i % 4 == 2) bits = (uint64_t)(x % 100000000) * 1 ; /* integers as doubles below */
    double d = from_bits(bits);
    if (i % 4 == 2) d = (double)(int64_t)(x % 20000000000000000ULL) / (double)(1 + (x >> 60));
    if (hub_jcs_number(d, buf, sizeof buf) < 0) continue; /* NaN/inf patterns */
    memcpy(&bits, &d, sizeof bits);
    printf("%016" PRIx64 " %s\n", bits, buf);
  }
  return 0;
}

static void number_table(void) {
  /* RFC 8785 Appendix B */
  static const struct {
    uint64_t bits;
    const char *want;
  } t[] = {
      {0x0000000000000000ULL, "0"},
      {0x8000000000000000ULL, "0"},
      {0x0000000000000001ULL, "5e-324"},
      {0x8000000000000001ULL, "-5e-324"},
      {0x7fefffffffffffffULL, "1.7976931348623157e+308"},
      {0xffefffffffffffffULL, "-1.7976931348623157e+308"},
      {0x4340000000000000ULL, "9007199254740992"},
      {0xc340000000000000ULL, "-9007199254740992"},
      {0x4430000000000000ULL, "295147905179352830000"},
      {0x44b52d02c7e14af5ULL, "9.999999999999997e+22"},
      {0x44b52d02c7e14af6ULL, "1e+23"},
      {0x44b52d02c7e14af7ULL, "1.0000000000000001e+23"},
      {0x444b1ae4d6e2ef4eULL, "999999999999999700000"},
      {0x444b1ae4d6e2ef4fULL, "999999999999999900000"},
      {0x444b1ae4d6e2ef50ULL, "1e+21"},
      {0x3eb0c6f7a0b5ed8cULL, "9.999999999999997e-7"},
      {0x3eb0c6f7a0b5ed8dULL, "0.000001"},
      {0x41b3de4355555553ULL, "333333333.3333332"},
      {0x41b3de4355555554ULL, "333333333.33333325"},
      {0x41b3de4355555555ULL, "333333333.3333333"},
      {0x41b3de4355555556ULL, "333333333.3333334"},
      {0x41b3de4355555557ULL, "333333333.33333343"},
      {0xbecbf647612f3696ULL, "-0.0000033333333333333333"},
      {0x43143ff3c1cb0959ULL, "1424953923781206.2"},
  };
  char buf[40];
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    CHECK(hub_jcs_number(from_bits(t[i].bits), buf, sizeof buf) > 0);
    CHECK_STR(buf, t[i].want);
  }
  CHECK(hub_jcs_number(from_bits(0x7fffffffffffffffULL), buf, sizeof buf) == -1); /* NaN */
  CHECK(hub_jcs_number(from_bits(0x7ff0000000000000ULL), buf, sizeof buf) == -1); /* Infinity */
}

/* outhex/: hex byte pairs separated by white space */
static char *unhex(const char *txt, size_t *len) {
  char *out = malloc(strlen(txt) / 2 + 1);
  size_t n = 0;
  for (const char *p = txt; *p;) {
    if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
      p++;
      continue;
    }
    char h[3] = {p[0], p[1], 0};
    out[n++] = (char)strtol(h, NULL, 16);
    p += 2;
  }
  *len = n;
  return out;
}

static void official_vectors(const char *shared) {
  char dir[1024], path[1200], errbuf[256];
  snprintf(dir, sizeof dir, "%s/testdata/jcs/testdata/input", shared);
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "cannot open %s: %s (LT_SHARED_DIR must point at the shared test data)\n", dir, strerror(errno));
    CHECK(!"JCS test data present");
    return;
  }
  int files = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t nl = strlen(e->d_name);
    if (nl < 6 || strcmp(e->d_name + nl - 5, ".json") != 0) continue;
    char base[256];
    snprintf(base, sizeof base, "%.*s", (int)(nl - 5), e->d_name);
    size_t in_len, want_len, hex_len, want2_len, got_len;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    char *in = slurp(path, &in_len);
    snprintf(path, sizeof path, "%s/testdata/jcs/testdata/output/%s.json", shared, base);
    char *want = slurp(path, &want_len);
    snprintf(path, sizeof path, "%s/testdata/jcs/testdata/outhex/%s.txt", shared, base);
    char *hex = slurp(path, &hex_len);
    CHECK(in && want && hex);
    if (!in || !want || !hex) goto next;
    char *want2 = unhex(hex, &want2_len);
    char *got = NULL;
    hub_err_t err = hub_jcs_canonicalize_new(in, in_len, &got, &got_len, errbuf, sizeof errbuf);
    CHECK(err == HUB_OK);
    if (err) fprintf(stderr, "%s: %s\n", e->d_name, errbuf);
    int ok = got && got_len == want_len && memcmp(got, want, want_len) == 0;
    int ok2 = got && got_len == want2_len && memcmp(got, want2, want2_len) == 0;
    CHECK(ok);
    CHECK(ok2);
    printf("jcs vector %-12s %s (%zu bytes)\n", base, ok && ok2 ? "exact" : "MISMATCH", got_len);
    if (!ok) fprintf(stderr, "got:  %s\nwant: %s\n", got ? got : "(null)", want);
    files++;
    free(want2);
    free(got);
  next:
    free(in);
    free(want);
    free(hex);
  }
  closedir(d);
  CHECK(files == 6);
}

/* Damaged copies of the official inputs: never a crash; whatever is accepted canonicalises to a
 * fixed point (canonicalising the output again gives the same bytes). */
static void mutations(const char *shared) {
  static const char *names[] = {"arrays", "french", "structures", "unicode", "values", "weird"};
  const char *alphabet = "{}[]\",:0-.eE\\u \x01\xc3\xa9\xff";
  uint64_t x = 0x2545f4914f6cdd1dULL;
  int accepted = 0, refused = 0, fixed = 0;
  for (int f = 0; f < 6; f++) {
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/testdata/jcs/testdata/input/%s.json", shared, names[f]);
    char *in = slurp(path, &len);
    if (!in) continue;
    for (int i = 0; i < 500; i++) {
      char *t = malloc(len + 2);
      memcpy(t, in, len + 1);
      size_t n = len;
      for (int k = 0; k < 1 + i % 3; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t at = (size_t)(x % n);
        if ((x >> 40) % 3 == 0 && n > 1) memmove(t + at, t + at + 1, n - at), n--;
        else t[at] = alphabet[(x >> 32) % 20];
      }
      char *out = NULL, *again = NULL, errbuf[256];
      size_t ol = 0, al = 0;
      if (hub_jcs_canonicalize_new(t, n, &out, &ol, errbuf, sizeof errbuf) == HUB_OK) {
        accepted++;
        if (hub_jcs_canonicalize_new(out, ol, &again, &al, errbuf, sizeof errbuf) == HUB_OK && al == ol &&
            memcmp(out, again, ol) == 0)
          fixed++;
      } else {
        refused++;
        CHECK(out == NULL);
      }
      free(out);
      free(again);
      free(t);
    }
    free(in);
  }
  printf("jcs mutations: %d accepted (%d fixed points), %d refused\n", accepted, fixed, refused);
  CHECK(accepted == fixed);
  CHECK(accepted + refused == 3000);
}

static void expect_refused(const char *json, const char *reason) {
  char *out = NULL, errbuf[256] = "";
  hub_err_t err = hub_jcs_canonicalize_new(json, strlen(json), &out, NULL, errbuf, sizeof errbuf);
  CHECK(err == HUB_ERR_JSON);
  CHECK(out == NULL);
  CHECK_CONTAINS(errbuf, reason);
}

static void expect_canon(const char *json, const char *want) {
  char *out = NULL, errbuf[256] = "";
  size_t len = 0;
  hub_err_t err = hub_jcs_canonicalize_new(json, strlen(json), &out, &len, errbuf, sizeof errbuf);
  CHECK(err == HUB_OK);
  CHECK_STR(out, want);
  CHECK(out && len == strlen(want));
  free(out);
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--numbers") == 0) return numbers_mode(strtol(argv[2], NULL, 10), strtoul(argv[3], NULL, 10));
  const char *shared = getenv("LT_SHARED_DIR");
  if (!shared) {
    fprintf(stderr, "LT_SHARED_DIR is not set: run through ctest\n");
    return 1;
  }
  official_vectors(shared);
  number_table();
  mutations(shared);
  expect_refused("{\"a\":1,\"a\":2}", "duplicate");
  expect_refused("[1e400]", "line 1");
  expect_refused("{\"a\":", "line 1");
  expect_refused("\"\\ud800\"", "line 1"); /* lone surrogate */
  expect_canon("\"\\u0000\\u001f\\u007f\\u2028\"", "\"\\u0000\\u001f\x7f\xe2\x80\xa8\"");
  /* U+10000 (surrogates d800 dc00) sorts before U+FFFD in UTF-16, after it in code points */
  expect_canon("{\"\\ufffd\":1,\"\\ud800\\udc00\":2}", "{\"\xf0\x90\x80\x80\":2,\"\xef\xbf\xbd\":1}");
  expect_canon("-0.0", "0");
  expect_canon("[123456789012345678901234567890, 0.1, -1e-7, 1e21, 1e20]",
               "[1.2345678901234568e+29,0.1,-1e-7,1e+21,100000000000000000000]");
  /* signed payloads: only numbers whose text is the value of their double */
  const char *exact[] = {"[0.1, 4.50, 2e-3, 1E30, -0, 0.000000000000000000000000001, 9007199254740992, 1.5e5, 100e-2]", "{\"a\":\"1e-400 in a string\"}"};
  for (int k = 0; k < 2; k++) {
    char err2[256] = "";
    CHECK(hub_jcs_check_exact(exact[k], strlen(exact[k]), err2, sizeof err2) == HUB_OK);
    if (err2[0]) fprintf(stderr, "exact: %s\n", err2);
  }
  const char *inexact[][2] = {{"[1,\n 333333333.33333329]", "line 2 column 2: number 333333333.33333329 does not survive the IEEE-754 round trip (it reads as 333333333.3333333)"},
                              {"[9007199254740993]", "does not survive"},
                              {"[18014398509481984]", "integer 18014398509481984 is beyond 2^53"},
                              {"[1e-400]", "(it reads as 0)"},
                              {"{\"k\\\"\":1.00000000000000000000000000000000000000000000001}", "line 1 column 8: number 1.0000000000"}};
  for (size_t k = 0; k < sizeof inexact / sizeof *inexact; k++) {
    char err2[256] = "", *o2 = NULL;
    CHECK(hub_jcs_canonicalize_exact_new(inexact[k][0], strlen(inexact[k][0]), &o2, NULL, err2, sizeof err2) == HUB_ERR_JSON);
    CHECK(o2 == NULL);
    CHECK_CONTAINS(err2, inexact[k][1]);
  }
  /* jansson values built in code: integers beyond 2^53 would change and are refused */
  json_t *big = json_pack("{s:I}", "n", (json_int_t)9007199254740993LL);
  char *out = NULL, errbuf[256] = "";
  CHECK(hub_jcs_dump_new(big, &out, NULL, errbuf, sizeof errbuf) == HUB_ERR_JSON);
  CHECK_CONTAINS(errbuf, "2^53");
  json_decref(big);
  json_t *ok = json_pack("{s:I,s:f,s:[b,n]}", "z", (json_int_t)-42, "a", 2.5, "m", 1);
  CHECK(hub_jcs_dump_new(ok, &out, NULL, errbuf, sizeof errbuf) == HUB_OK);
  CHECK_STR(out, "{\"a\":2.5,\"m\":[true,null],\"z\":-42}");
  free(out);
  json_decref(ok);
  return check_done();
}
