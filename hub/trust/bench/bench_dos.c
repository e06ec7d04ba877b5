/* `lienthong bench verify-dos` (command bench.verify-dos): the verifier's worst case per input
 * size over a corpus of adversarial shapes (issue 10), as ratios to a benign signed document of
 * the same size measured in the same run. Each shape is verified in a forked child, so that its
 * CPU time and peak memory (wait4's ru_maxrss, minus that of a child that verifies nothing) are
 * its own. The shapes are built here:
 *   benign        a signed record list (exclusive c14n): the baseline
 *   elements      a signed document of empty elements only: most nodes per byte
 *   attributes    one element with as many attributes as fit (refused past max_attrs)
 *   ns-inclusive  250 namespace declarations on the root x children, inclusive c14n
 *   references    the benign document with 16 References (the limit) and a forged value
 *   refs-300      the same with 300 References (refused by count)
 *   transforms    16 References of 8 Transforms each (the limits), forged
 *   forged-digest the benign document with its body altered (every check runs)
 *   nul-tail      the benign document, a NUL and a copy of itself
 *   elements-forged  the elements document with a forged signature value
 *   text          a signed flood of empty elements and one-character text nodes between them
 *   deep          a signed flood of empty elements 120 levels deep (refused: canonicalisation cost)
 *   attrs-64      a signed flood of elements with 64 attributes each
 *   attrs-255     the same with 255 (refused: canonicalisation cost of sorting them)
 * The last line is one JSON object. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hub/core/registry.h"
#include "hub/trust/xmldsig.h"

static const struct hub_cmd cmd;

struct buf {
  char *p;
  size_t n, cap;
};

static void put(struct buf *b, const void *d, size_t n) {
  if (n > PTRDIFF_MAX / 4) abort(); /* never; it tells gcc -O3 that memcpy's bound is sane */
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    char *p = realloc(b->p, b->cap);
    if (!p) abort(); /* a bench: out of memory ends it */
    b->p = p;
  }
  memcpy(b->p + b->n, d, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s) {
  put(b, s, strlen(s));
}

/* `in` with the first occurrence of `what` replaced by `with` repeated `times` times. */
static struct buf replace(const char *in, size_t len, const char *what, const char *with, size_t with_len, int times) {
  struct buf b = {0};
  const char *at = strstr(in, what);
  if (!at) {
    put(&b, in, len);
    return b;
  }
  put(&b, in, (size_t)(at - in));
  for (int i = 0; i < times; i++) put(&b, with, with_len);
  const char *rest = at + strlen(what);
  put(&b, rest, len - (size_t)(rest - in));
  return b;
}

static struct buf benign_body(size_t size) {
  struct buf b = {0};
  char rec[160];
  puts_(&b, "<DanhSach>");
  for (int i = 0; b.n + 100 < size; i++) {
    snprintf(rec, sizeof rec, "<HoSo><Ma>%06d</Ma><Ten>Nguyen Van A</Ten><DiaChi>Nghe An</DiaChi></HoSo>", i);
    puts_(&b, rec);
  }
  puts_(&b, "</DanhSach>");
  return b;
}

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct measure {
  double cpu_ms; /* per verification */
  long rss_kb;   /* peak of the child */
  int code;      /* hub_err_t of the verification */
};

/* Verifies `doc` in a child until `min_s` of CPU has passed (at least once). */
static int measure(const struct hub_xmldsig_verifier *v, const struct buf *doc, double min_s, struct measure *m) {
  int fd[2];
  if (pipe(fd) < 0) return -1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fd[0]);
    double t0 = cpu_s(), t;
    int n = 0, code = 0;
    do {
      struct hub_xmldsig_result r;
      code = doc ? (int)hub_xmldsig_verify(v, doc->p, doc->n, NULL, 0, &r) : 0;
      if (doc) hub_xmldsig_result_release(&r);
      n++;
    } while ((t = cpu_s() - t0) < min_s && doc);
    struct measure out = {t * 1000.0 / n, 0, code};
    ssize_t w = write(fd[1], &out, sizeof out);
    _exit(w == (ssize_t)sizeof out ? 0 : 1);
  }
  close(fd[1]);
  ssize_t r = read(fd[0], m, sizeof *m);
  close(fd[0]);
  int st;
  struct rusage ru;
  if (wait4(pid, &st, 0, &ru) < 0 || r != (ssize_t)sizeof *m || !WIFEXITED(st) || WEXITSTATUS(st)) return -1;
  m->rss_kb = ru.ru_maxrss;
  return 0;
}

static int bench_main(int argc, char **argv) {
  const char *src = getenv("LT_SOURCE_DIR") ? getenv("LT_SOURCE_DIR") : LT_SOURCE_DIR;
  size_t sizes[8] = {64u << 10, 256u << 10, 1u << 20};
  int n_sizes = 3;
  double min_s = 0.3;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
      char *end;
      min_s = strtod(argv[++i], &end);
      if (*end || min_s <= 0 || min_s > 60) return hub_cmd_usage_error(&cmd, "--seconds takes 0 < N <= 60");
    } else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
      n_sizes = 0;
      for (char *s = argv[++i], *end; *s && n_sizes < 8; s = *end ? end + 1 : end) {
        long k = strtol(s, &end, 10);
        if (k < 4 || k > 16384 || (*end && *end != ','))
          return hub_cmd_usage_error(&cmd, "--sizes takes KiB values 4..16384, comma-separated");
        sizes[n_sizes++] = (size_t)k << 10;
      }
    } else if (!strcmp(argv[i], "--source") && i + 1 < argc) {
      src = argv[++i];
    } else {
      return hub_cmd_usage_error(&cmd, "unknown argument '%s'", argv[i]);
    }
  }
  char key[1100], cert[1100], ca[1100], err[1024];
  snprintf(key, sizeof key, "%s/tests/trust/fixtures/keys/agency-rsa-key.pem", src);
  snprintf(cert, sizeof cert, "%s/tests/trust/fixtures/keys/agency-rsa-cert.pem", src);
  snprintf(ca, sizeof ca, "%s/tests/trust/fixtures/keys/ca.pem", src);
  const char *cas[] = {ca};
  struct hub_xmldsig_verify_opts vo = {.trust_ca = cas, .n_trust_ca = 1, .clock_skew_s = -1};
  struct hub_xmldsig_sign_opts incl = {.c14n = "inclusive", .profile = "generic"};
  struct hub_xmldsig_sign_opts gen = {.profile = "generic"};
  struct hub_xmldsig_signer *signer = NULL, *signer_incl = NULL;
  struct hub_xmldsig_verifier *v = NULL;
  int rc = HUB_EXIT_FAIL;
  if (hub_xmldsig_signer_new(key, cert, &gen, &signer, err, sizeof err) ||
      hub_xmldsig_signer_new(key, cert, &incl, &signer_incl, err, sizeof err) ||
      hub_xmldsig_verifier_new(&vo, &v, err, sizeof err)) {
    fprintf(stderr, "lienthong bench verify-dos: %s (give --source REPO)\n", err);
    goto out;
  }
  struct measure base;
  if (measure(v, NULL, 0, &base) < 0) goto out;
  printf("verify-dos bench: worst case per input size, per verification (CPU of the child) and peak memory\n"
         "above an idle child (%ld KiB); ratios to the benign signed document of the same size\n", base.rss_kb);
  printf("%-9s %-14s %10s %10s %10s %8s %8s  %s\n", "size", "shape", "bytes", "cpu ms", "ms/MB", "cpu x", "mem x",
         "result");
  double worst_cpu = 0, worst_mem = 0, worst_ms_mb = 0;
  const char *worst_cpu_shape = "", *worst_mem_shape = "";
  struct buf json = {0};
  puts_(&json, "{\"bench\": \"verify-dos\", \"results\": [");
  for (int si = 0; si < n_sizes; si++) {
    size_t size = sizes[si];
    enum { N_SHAPES = 14 };
    struct buf docs[N_SHAPES] = {{0}};
    const char *names[N_SHAPES] = {"benign",     "elements",   "attributes",    "ns-inclusive", "references",
                                   "refs-300",   "transforms", "forged-digest", "nul-tail",
                                   "elements-forged", "text", "deep", "attrs-64", "attrs-255"};
    unsigned char *out = NULL;
    size_t out_len = 0;
    struct buf body = benign_body(size);
    if (hub_xmldsig_sign(signer, body.p, body.n, &out, &out_len, err, sizeof err)) goto sign_failed;
    put(&docs[0], out, out_len);
    free(out);
    struct buf el = {0};
    puts_(&el, "<r>");
    while (el.n + 100 < size) puts_(&el, "<a/>");
    puts_(&el, "</r>");
    if (hub_xmldsig_sign(signer, el.p, el.n, &out, &out_len, err, sizeof err)) goto sign_failed;
    put(&docs[1], out, out_len);
    free(out);
    free(el.p);
    puts_(&docs[2], "<r><e");
    for (int i = 0; docs[2].n + 20 < size; i++) {
      char a[32];
      snprintf(a, sizeof a, " a%d=\"v\"", i);
      puts_(&docs[2], a);
    }
    puts_(&docs[2], "/></r>");
    struct buf ns = {0};
    puts_(&ns, "<r");
    for (int i = 0; i < 250; i++) {
      char a[48];
      snprintf(a, sizeof a, " xmlns:p%d=\"urn:ns:%d\"", i, i);
      puts_(&ns, a);
    }
    puts_(&ns, "><c>0</c></r>");
    if (hub_xmldsig_sign(signer_incl, ns.p, ns.n, &out, &out_len, err, sizeof err)) goto sign_failed;
    size_t kids = size > out_len ? (size - out_len) / 8 : 1;
    docs[3] = replace((char *)out, out_len, "<c>0</c>", "<c>0</c>", 8, (int)kids);
    free(out);
    free(ns.p);
    const char *ref = strstr(docs[0].p, "<Reference"), *ref_end = ref ? strstr(ref, "</Reference>") : NULL;
    if (!ref_end) goto sign_failed;
    struct buf one_ref = {0};
    put(&one_ref, ref, (size_t)(ref_end - ref) + 12);
    char *ref_str = one_ref.p;
    docs[4] = replace(docs[0].p, docs[0].n, ref_str, ref_str, one_ref.n, 16);
    docs[5] = replace(docs[0].p, docs[0].n, ref_str, ref_str, one_ref.n, 300);
    const char *env = "<Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>";
    struct buf ref8 = replace(one_ref.p, one_ref.n, env, env, strlen(env), 7);
    docs[6] = replace(docs[0].p, docs[0].n, ref_str, ref8.p, ref8.n, 16);
    free(ref8.p);
    free(one_ref.p);
    docs[7] = replace(docs[0].p, docs[0].n, "<Ma>000001</Ma>", "<Ma>999999</Ma>", 15, 1);
    put(&docs[8], docs[0].p, docs[0].n);
    put(&docs[8], "", 1);
    put(&docs[8], docs[0].p, docs[0].n);
    put(&docs[9], docs[1].p, docs[1].n);
    char *sv = strstr(docs[9].p, "<SignatureValue>");
    if (sv) sv[16] = sv[16] == 'A' ? 'B' : 'A'; /* no key: what an attacker can send */
    /* floods of the nodes that cost libxml2 the most per byte, signed (a key holder's worst) */
    for (int k = 10; k < N_SHAPES; k++) {
      struct buf f = {0};
      char unit[2400];
      int deep = k == 11 ? 120 : 0, n_attrs = k == 12 ? 64 : k == 13 ? 255 : 0;
      puts_(&f, "<r>");
      for (int d = 0; d < deep; d++) puts_(&f, "<d>");
      snprintf(unit, sizeof unit, "%s", k == 10 ? "<a/>x" : "<a");
      for (int i = 0; i < n_attrs; i++) snprintf(unit + strlen(unit), sizeof unit - strlen(unit), " a%d=\"\"", i);
      if (n_attrs) snprintf(unit + strlen(unit), sizeof unit - strlen(unit), "/>");
      if (k == 11) snprintf(unit, sizeof unit, "<a/>");
      while (f.n + strlen(unit) + 4 * (size_t)deep + 100 < size) puts_(&f, unit);
      for (int d = 0; d < deep; d++) puts_(&f, "</d>");
      puts_(&f, "</r>");
      int bad = hub_xmldsig_sign(signer, f.p, f.n, &out, &out_len, err, sizeof err) != HUB_OK;
      free(f.p);
      if (bad) goto sign_failed;
      put(&docs[k], out, out_len);
      free(out);
    }
    struct measure benign = {0};
    for (int k = 0; k < N_SHAPES; k++) {
      struct measure m;
      if (measure(v, &docs[k], min_s, &m) < 0) {
        fprintf(stderr, "lienthong bench verify-dos: shape %s failed\n", names[k]);
        goto next;
      }
      if (k == 0) benign = m;
      double cpu_x = benign.cpu_ms > 0 ? m.cpu_ms / benign.cpu_ms : 0;
      long extra = m.rss_kb - base.rss_kb, bextra = benign.rss_kb - base.rss_kb;
      double mem_x = bextra > 0 ? (double)(extra > 0 ? extra : 0) / (double)bextra : 0;
      double ms_mb = m.cpu_ms / ((double)docs[k].n / (1 << 20));
      if (cpu_x > worst_cpu) worst_cpu = cpu_x, worst_cpu_shape = names[k];
      if (mem_x > worst_mem) worst_mem = mem_x, worst_mem_shape = names[k];
      if (ms_mb > worst_ms_mb) worst_ms_mb = ms_mb;
      printf("%-9zu %-14s %10zu %10.3f %10.1f %8.2f %8.2f  %s\n", size, names[k], docs[k].n, m.cpu_ms, ms_mb, cpu_x,
             mem_x, m.code ? hub_err2name((hub_err_t)m.code) : "valid");
      char line[400];
      snprintf(line, sizeof line,
               "%s{\"size\": %zu, \"shape\": \"%s\", \"bytes\": %zu, \"cpu_ms\": %.4f, \"peak_kb\": %ld, "
               "\"cpu_ratio\": %.3f, \"mem_ratio\": %.3f, \"result\": \"%s\"}",
               si || k ? ", " : "", size, names[k], docs[k].n, m.cpu_ms, extra, cpu_x, mem_x,
               m.code ? hub_err2name((hub_err_t)m.code) : "valid");
      puts_(&json, line);
    }
  next:
    for (int k = 0; k < N_SHAPES; k++) free(docs[k].p);
    free(body.p);
    continue;
  sign_failed:
    fprintf(stderr, "lienthong bench verify-dos: cannot build the corpus: %s\n", err);
    for (int k = 0; k < N_SHAPES; k++) free(docs[k].p);
    free(body.p);
    free(json.p);
    goto out;
  }
  char tail[300];
  snprintf(tail, sizeof tail,
           "], \"worst_cpu_ratio\": %.3f, \"worst_cpu_shape\": \"%s\", \"worst_mem_ratio\": %.3f, "
           "\"worst_mem_shape\": \"%s\", \"worst_ms_per_mb\": %.2f}",
           worst_cpu, worst_cpu_shape, worst_mem, worst_mem_shape, worst_ms_mb);
  puts_(&json, tail);
  printf("worst: cpu %.2fx the benign document (%s), memory %.2fx (%s), %.1f ms of CPU per MB\n", worst_cpu,
         worst_cpu_shape, worst_mem, worst_mem_shape, worst_ms_mb);
  printf("%s\n", json.p);
  free(json.p);
  rc = HUB_EXIT_OK;
out:
  hub_xmldsig_signer_destroy(signer);
  hub_xmldsig_signer_destroy(signer_incl);
  hub_xmldsig_verifier_destroy(v);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "bench.verify-dos",
    .summary = "XML-DSig verify worst case per input size over adversarial shapes",
    .usage = "Usage: lienthong bench verify-dos [--sizes KIB,KIB,...] [--seconds N] [--source REPO]\n\n"
             "Verifies a corpus of adversarial shapes (many attributes, inclusive c14n over many namespace\n"
             "declarations, References and Transforms at and past their limits, a forged digest, a NUL\n"
             "tail, element floods) beside a benign signed document of the same size, each in a forked\n"
             "child, and reports CPU per verification, CPU per MB and peak memory, as ratios to the benign\n"
             "document. The last output line is one JSON object (worst_cpu_ratio, worst_mem_ratio,\n"
             "worst_ms_per_mb). See docs/trust.md, \"Limits\".\n\n"
             "  --sizes K,...   input sizes in KiB (default 64,256,1024)\n"
             "  --seconds N     CPU time per figure (default 0.3)\n"
             "  --source REPO   the repository, for the test keys (default: $LT_SOURCE_DIR, else the build's)",
    .main = bench_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_bench_verify_dos, cmd);
