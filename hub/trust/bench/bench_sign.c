/* `lienthong bench sign` (command bench.sign): XML-DSig sign and verify rates for a 4 KB edXML
 * packet, measured in one run beside the references the targets are stated against:
 *   openssl      `openssl speed -seconds N rsa2048` raw RSA-2048 sign rate (one core), and the
 *                same raw signing in-process, interleaved with lienthong sign for a steady ratio
 *   lienthong    hub_xmldsig_sign with a reused signer; hub_xmldsig_verify with full checks
 *   xmlsec       a plain in-process xmlsec verify (keys manager with the same CA, X.509 chain
 *                checked by xmlsec) and a naive xmlsec sign loop (key and template per call)
 *   xmlsec1      the command line, one process per operation
 *   santuario    tests/interop/santuario in a warm JVM (built by ctest trust.interop_santuario)
 * Every figure is operations per second on one thread. The last line is one JSON object. */
#include <errno.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <openssl/evp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xmlsec/crypto.h>
#include <xmlsec/keysmngr.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmltree.h>

#include "hub/core/registry.h"
#include "hub/core/files.h"
#include "hub/trust/xmldsig.h"
#include "hub/core/xml.h"

extern char **environ;

static const struct hub_cmd cmd;

/* In-process figures are per CPU-second of this thread, as `openssl speed` counts user CPU
 * time: on a shared machine, wall time would measure the neighbours. Figures that spawn a
 * process (xmlsec1) use wall time. */
static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct ctx {
  char keys[1024], src[1024], tmp[1100];
  const unsigned char *doc;
  size_t doc_len;
  unsigned char *signed_doc;
  size_t signed_len;
  double seconds;
};

static const char *kp(const struct ctx *c, const char *name, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s", c->keys, name);
  return buf;
}

/* Runs `op` repeatedly for c->seconds of `clock`; returns operations per second, or -1. */
static double rate_on(const struct ctx *c, clockid_t clock, int (*op)(const struct ctx *, void *), void *arg) {
  long n = 0;
  double t0 = clock_s(clock), t;
  do {
    if (op(c, arg) != 0) return -1;
    n++;
    t = clock_s(clock);
  } while (t - t0 < c->seconds);
  return (double)n / (t - t0);
}

static double rate(const struct ctx *c, int (*op)(const struct ctx *, void *), void *arg) {
  return rate_on(c, CLOCK_THREAD_CPUTIME_ID, op, arg);
}

/* Raw RSA-2048 PKCS#1 v1.5 signing of a SHA-256 digest with one reused context: what `openssl
 * speed rsa2048` measures, but in this process and on the same clock. */
static int op_raw_rsa(const struct ctx *c, void *arg) {
  (void)c;
  static const unsigned char md[32] = {1, 2, 3};
  unsigned char sig[512];
  size_t sl = sizeof sig;
  return EVP_PKEY_sign(arg, sig, &sl, md, sizeof md) == 1 ? 0 : -1;
}

/* Two operations measured in alternating slices, so that a change in the machine's load hits
 * both alike; the ratio of their rates is then steadier than two separate runs. */
static void interleaved(const struct ctx *c, int (*a)(const struct ctx *, void *), void *aarg,
                        int (*b)(const struct ctx *, void *), void *barg, double *ra, double *rb) {
  struct ctx slice = *c;
  double na = 0, nb = 0, ta = 0, tb = 0;
  slice.seconds = c->seconds / 10;
  for (int i = 0; i < 10; i++) {
    double r1 = rate(&slice, a, aarg), r2 = rate(&slice, b, barg);
    if (r1 < 0 || r2 < 0) {
      *ra = *rb = -1;
      return;
    }
    na += r1 * slice.seconds, ta += slice.seconds;
    nb += r2 * slice.seconds, tb += slice.seconds;
  }
  *ra = na / ta;
  *rb = nb / tb;
}

/* A signer and which of its two paths to run. */
struct sign_op {
  const struct hub_xmldsig_signer *signer;
  hub_err_t (*sign)(const struct hub_xmldsig_signer *, const void *, size_t, unsigned char **, size_t *, char *,
                    size_t);
};

static int op_sign(const struct ctx *c, void *arg) {
  const struct sign_op *o = arg;
  unsigned char *out = NULL;
  size_t len;
  char err[512];
  hub_err_t rc = o->sign(o->signer, c->doc, c->doc_len, &out, &len, err, sizeof err);
  free(out);
  return rc ? -1 : 0;
}

static int op_verify(const struct ctx *c, void *arg) {
  struct hub_xmldsig_result r;
  hub_err_t rc = hub_xmldsig_verify(arg, c->signed_doc, c->signed_len, NULL, 0, &r);
  hub_xmldsig_result_release(&r);
  return rc ? -1 : 0;
}

static xmlNodePtr find_signature(xmlNodePtr n) {
  for (; n; n = n->next) {
    if (n->type == XML_ELEMENT_NODE && xmlSecCheckNodeName(n, xmlSecNodeSignature, xmlSecDSigNs)) return n;
    xmlNodePtr f = find_signature(n->children);
    if (f) return f;
  }
  return NULL;
}

/* The plain xmlsec way: parse, keys manager lookup from KeyInfo, xmlsec's own chain check. */
static int op_plain_verify(const struct ctx *c, void *arg) {
  xmlDocPtr d = NULL;
  char err[256];
  hub_xml_parse(c->signed_doc, c->signed_len, NULL, NULL, &d, err, sizeof err); /* the hub's one parse, as lienthong's */
  xmlNodePtr sig = d ? find_signature(xmlDocGetRootElement(d)) : NULL;
  xmlSecDSigCtxPtr ctx = sig ? xmlSecDSigCtxCreate(arg) : NULL;
  int ok = ctx && xmlSecDSigCtxVerify(ctx, sig) == 0 && ctx->status == xmlSecDSigStatusSucceeded;
  if (ctx) xmlSecDSigCtxDestroy(ctx);
  xmlFreeDoc(d);
  return ok ? 0 : -1;
}

/* A naive sign: key, certificate and template made again for every document. */
static int op_naive_sign(const struct ctx *c, void *arg) {
  (void)arg;
  char kb[1100], cb[1100];
  int ok = 0;
  xmlChar *buf = NULL;
  int size = 0;
  xmlDocPtr d = NULL;
  char err[256];
  hub_xml_parse(c->doc, c->doc_len, NULL, NULL, &d, err, sizeof err);
  xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
  xmlNodePtr sig = d ? xmlSecTmplSignatureCreate(d, xmlSecTransformExclC14NId, xmlSecTransformRsaSha256Id, NULL) : NULL;
  xmlNodePtr ref = sig ? xmlSecTmplSignatureAddReference(sig, xmlSecTransformSha256Id, NULL, (const xmlChar *)"", NULL)
                       : NULL;
  xmlNodePtr ki = sig ? xmlSecTmplSignatureEnsureKeyInfo(sig, NULL) : NULL;
  if (!ctx || !ref || !ki || !xmlSecTmplReferenceAddTransform(ref, xmlSecTransformEnvelopedId) ||
      !xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId) || !xmlSecTmplKeyInfoAddX509Data(ki))
    goto out;
  xmlAddChild(xmlDocGetRootElement(d), sig);
  ctx->signKey = xmlSecCryptoAppKeyLoad(kp(c, "agency-rsa-key.pem", kb, sizeof kb), xmlSecKeyDataFormatPem, NULL,
                                        NULL, NULL);
  if (!ctx->signKey ||
      xmlSecCryptoAppKeyCertLoad(ctx->signKey, kp(c, "agency-rsa-cert.pem", cb, sizeof cb), xmlSecKeyDataFormatPem) < 0)
    goto out;
  if (xmlSecDSigCtxSign(ctx, sig) < 0) goto out;
  xmlDocDumpMemoryEnc(d, &buf, &size, "UTF-8");
  ok = buf != NULL;
out:
  xmlFree(buf);
  if (ctx) xmlSecDSigCtxDestroy(ctx);
  xmlFreeDoc(d);
  return ok ? 0 : -1;
}

static int spawn_quiet(char *const argv[], char **out_text) {
  pid_t pid;
  posix_spawn_file_actions_t fa;
  int pipefd[2] = {-1, -1};
  if (out_text && pipe(pipefd) < 0) return -1;
  posix_spawn_file_actions_init(&fa);
  if (out_text) {
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (out_text) {
    close(pipefd[1]);
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    ssize_t got;
    while (b && (got = read(pipefd[0], b + n, cap - 1 - n)) > 0) n += (size_t)got;
    close(pipefd[0]);
    if (b) b[n] = '\0';
    *out_text = b;
  }
  if (rc != 0) return -1;
  int st;
  if (waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

struct argvs {
  char **sign, **verify;
};

static int op_spawn(const struct ctx *c, void *arg) {
  (void)c;
  return spawn_quiet(arg, NULL);
}

/* openssl speed's "rsa 2048 bits ... sign/s verify/s" line. */
static double openssl_rsa2048(int seconds) {
  char secs[16], *out = NULL;
  snprintf(secs, sizeof secs, "%d", seconds);
  char *argv[] = {"openssl", "speed", "-seconds", secs, "rsa2048", NULL};
  double sign = -1;
  if (spawn_quiet(argv, &out) == 0 && out) {
    char *line = strstr(out, "rsa 2048 bits");
    double a, b, s, v;
    if (line && sscanf(line, "rsa 2048 bits %lfs %lfs %lf %lf", &a, &b, &s, &v) == 4) sign = s;
  }
  free(out);
  return sign;
}

static double json_number(const char *text, const char *key) {
  char pat[128];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = text ? strstr(text, pat) : NULL;
  return p ? strtod(p + strlen(pat), NULL) : -1;
}

static void jnum(FILE *f, const char *key, double v, int last) {
  if (v < 0) fprintf(f, "\"%s\":null%s", key, last ? "" : ",");
  else fprintf(f, "\"%s\":%.1f%s", key, v, last ? "" : ",");
}

static void jratio(FILE *f, const char *key, double a, double b, int last) {
  if (a < 0 || b <= 0) fprintf(f, "\"%s\":null%s", key, last ? "" : ",");
  else fprintf(f, "\"%s\":%.3f%s", key, a / b, last ? "" : ",");
}

static int write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(data, 1, n, f);
  return fclose(f) == 0 && w == n ? 0 : -1;
}

static int bench_main(int argc, char **argv) {
  struct ctx c = {.seconds = 2};
  const char *src = getenv("LT_SOURCE_DIR") ? getenv("LT_SOURCE_DIR") : LT_SOURCE_DIR;
  int no_external = 0, rc = HUB_EXIT_FAIL;
  char err[1024], path[1200], kb[1100], cb[1100], cab[1100];
  char *doc = NULL;
  struct hub_xmldsig_signer *signer = NULL;
  struct hub_xmldsig_verifier *verifier = NULL;
  xmlSecKeysMngrPtr mngr = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
      char *end;
      c.seconds = strtod(argv[++i], &end);
      if (*end || c.seconds <= 0 || c.seconds > 600) return hub_cmd_usage_error(&cmd, "--seconds takes 0 < N <= 600");
    } else if (!strcmp(argv[i], "--source") && i + 1 < argc) {
      src = argv[++i];
    } else if (!strcmp(argv[i], "--no-external")) {
      no_external = 1;
    } else {
      return hub_cmd_usage_error(&cmd, "unknown argument '%s'", argv[i]);
    }
  }
  snprintf(c.src, sizeof c.src, "%s", src);
  snprintf(c.keys, sizeof c.keys, "%s/tests/trust/fixtures/keys", src);
  snprintf(path, sizeof path, "%s/tests/trust/fixtures/edxml-document.edxml", src);
  if (hub_file_read(path, 1 << 20, &doc, &c.doc_len, err, sizeof err)) {
    fprintf(stderr, "lienthong bench sign: %s (give --source REPO)\n", err);
    return HUB_EXIT_USAGE;
  }
  c.doc = (const unsigned char *)doc;
  const char *ca[] = {kp(&c, "ca.pem", cab, sizeof cab)};
  struct hub_xmldsig_verify_opts vo = {.trust_ca = ca, .n_trust_ca = 1, .clock_skew_s = -1};
  if (hub_xmldsig_signer_new(kp(&c, "agency-rsa-key.pem", kb, sizeof kb), kp(&c, "agency-rsa-cert.pem", cb, sizeof cb),
                             NULL, &signer, err, sizeof err) ||
      hub_xmldsig_verifier_new(&vo, &verifier, err, sizeof err) ||
      hub_xmldsig_sign(signer, c.doc, c.doc_len, &c.signed_doc, &c.signed_len, err, sizeof err)) {
    fprintf(stderr, "lienthong bench sign: %s\n", err);
    goto out;
  }
  mngr = xmlSecKeysMngrCreate();
  if (!mngr || xmlSecCryptoAppDefaultKeysMngrInit(mngr) < 0 ||
      xmlSecCryptoAppKeysMngrCertLoad(mngr, ca[0], xmlSecKeyDataFormatPem, xmlSecKeyDataTypeTrusted) < 0) {
    fprintf(stderr, "lienthong bench sign: cannot set up the plain xmlsec keys manager\n");
    goto out;
  }
  int secs = c.seconds < 1 ? 1 : (int)(c.seconds + 0.5);
  printf("XML-DSig bench: %zu-byte edXML packet, RSA-2048, %.1f s per figure, one thread;\n"
         "in-process and Santuario figures per CPU-second of the thread (as openssl speed), xmlsec1 per wall-second\n",
         c.doc_len, c.seconds);
  fflush(stdout);
  /* openssl speed, the direct sign and raw RSA take turns, a second of each per round: this
   * machine's speed drifts by tens of percent within a minute, and a drift between two figures
   * measured apart would show as a change of their ratio. */
  struct sign_op direct = {signer, hub_xmldsig_sign}, via_xmlsec = {signer, hub_xmldsig_sign_xmlsec};
  double ossl = 0, lt_sign = 0, raw_rsa = 0;
  int rounds = secs < 3 ? 3 : secs;
  struct ctx turn = c;
  turn.seconds = c.seconds * 2 / rounds; /* split in two by interleaved() */
  EVP_PKEY_CTX *raw = EVP_PKEY_CTX_new(hub_xmldsig_signer_get_pkey(signer), NULL);
  if (!raw || EVP_PKEY_sign_init(raw) != 1 || EVP_PKEY_CTX_set_signature_md(raw, EVP_sha256()) != 1) rounds = 0;
  for (int i = 0; i < rounds && ossl >= 0 && lt_sign >= 0; i++) {
    double o = openssl_rsa2048(1), l, r;
    interleaved(&turn, op_sign, &direct, op_raw_rsa, raw, &l, &r);
    ossl = o < 0 ? -1 : ossl + o / rounds;
    lt_sign = l < 0 ? -1 : lt_sign + l / rounds;
    raw_rsa = r < 0 ? -1 : raw_rsa + r / rounds;
  }
  if (!rounds) ossl = lt_sign = raw_rsa = -1;
  EVP_PKEY_CTX_free(raw);
  printf("  openssl speed rsa2048 sign        %10.1f /s  (%d rounds of 1 s, taking turns with the next two)\n", ossl,
         rounds);
  printf("  raw RSA-2048 sign in-process      %10.1f /s  (EVP_PKEY_sign, interleaved with the next)\n", raw_rsa);
  printf("  lienthong sign                    %10.1f /s\n", lt_sign);
  double lt_sign_xmlsec = rate(&c, op_sign, &via_xmlsec);
  printf("  lienthong sign, xmlsec path       %10.1f /s  (xmlSecDSigCtxSign, reused key/template)\n", lt_sign_xmlsec);
  double lt_verify = rate(&c, op_verify, verifier);
  printf("  lienthong verify (full checks)    %10.1f /s\n", lt_verify);
  double plain_verify = rate(&c, op_plain_verify, mngr);
  printf("  plain xmlsec verify (in-process)  %10.1f /s\n", plain_verify);
  double naive_sign = rate(&c, op_naive_sign, NULL);
  printf("  naive xmlsec sign (in-process)    %10.1f /s\n", naive_sign);
  fflush(stdout);

  double cli_sign = -1, cli_verify = -1, san_sign = -1, san_verify = -1, san_warm = -1;
  const char *san_note = "not run (--no-external)";
  char dir[] = "/tmp/lt-bench-XXXXXX";
  if (!no_external && mkdtemp(dir)) {
    char tmpl[1200], signed_path[1200], out_path[1200], keyarg[2300], jar[1300], cpf[1300];
    snprintf(signed_path, sizeof signed_path, "%s/signed.xml", dir);
    snprintf(tmpl, sizeof tmpl, "%s/template.xml", dir);
    snprintf(out_path, sizeof out_path, "%s/out.xml", dir);
    snprintf(keyarg, sizeof keyarg, "%s,%s", kb, cb);
    /* the xmlsec1 template: the signed document with its values emptied is equivalent; simpler
     * to insert an empty signature template after TraceHeaderList */
    const char *t = "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><SignedInfo><CanonicalizationMethod "
                    "Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><SignatureMethod Algorithm=\"http://www."
                    "w3.org/2001/04/xmldsig-more#rsa-sha256\"/><Reference URI=\"\"><Transforms><Transform Algorithm="
                    "\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/><Transform Algorithm=\"http://www.w3."
                    "org/2001/10/xml-exc-c14n#\"/></Transforms><DigestMethod Algorithm=\"http://www.w3.org/2001/04/"
                    "xmlenc#sha256\"/><DigestValue/></Reference></SignedInfo><SignatureValue/><KeyInfo><X509Data/>"
                    "</KeyInfo></Signature>";
    const char *anchor = strstr((const char *)c.doc, "</edXML:TraceHeaderList>");
    FILE *f = anchor ? fopen(tmpl, "wb") : NULL;
    if (f) {
      size_t head = (size_t)(anchor - (const char *)c.doc) + strlen("</edXML:TraceHeaderList>");
      fwrite(c.doc, 1, head, f);
      fputs(t, f);
      fwrite(c.doc + head, 1, c.doc_len - head, f);
      fclose(f);
    }
    if (f && write_file(signed_path, c.signed_doc, c.signed_len) == 0) {
      char *sargv[] = {"xmlsec1", "--sign", "--privkey-pem", keyarg, "--output", out_path, tmpl, NULL};
      char *vargv[] = {"xmlsec1", "--verify", "--trusted-pem", (char *)ca[0], "--enabled-key-data", "x509",
                       signed_path, NULL};
      struct ctx half = c; /* a process per operation: half the time gives enough of them */
      half.seconds = c.seconds / 2;
      cli_sign = rate_on(&half, CLOCK_MONOTONIC, op_spawn, sargv);
      printf("  xmlsec1 command line sign         %10.1f /s\n", cli_sign);
      cli_verify = rate_on(&half, CLOCK_MONOTONIC, op_spawn, vargv);
      printf("  xmlsec1 command line verify       %10.1f /s\n", cli_verify);
    }
    snprintf(jar, sizeof jar, "%s/.cache/santuario-target/santuario-tool-1.0.jar", src);
    snprintf(cpf, sizeof cpf, "%s/.cache/santuario-target/classpath.txt", src);
    char *cp = NULL;
    size_t cpl;
    if (access(jar, R_OK) == 0 && hub_file_read(cpf, 1 << 20, &cp, &cpl, err, sizeof err) == 0) {
      while (cpl && (cp[cpl - 1] == '\n' || cp[cpl - 1] == '\r')) cp[--cpl] = '\0';
      size_t n = strlen(jar) + cpl + 2;
      char *classpath = malloc(n), secs_s[32], *json = NULL;
      snprintf(secs_s, sizeof secs_s, "%.2f", c.seconds);
      if (classpath) {
        snprintf(classpath, n, "%s:%s", jar, cp);
        char *jargv[] = {"java", "-cp", classpath, "lt.interop.Tool", "bench", "--key", kb, "--cert", cb, "--trust",
                         (char *)ca[0], "--seconds", secs_s, path, NULL};
        if (spawn_quiet(jargv, &json) == 0) {
          san_sign = json_number(json, "santuario_sign_per_s");
          san_verify = json_number(json, "santuario_verify_per_s");
          san_warm = json_number(json, "santuario_warm_rounds");
          san_note = "warm JVM";
        } else {
          san_note = "java failed";
        }
        free(json);
        free(classpath);
      }
      printf("  Santuario sign (warm JVM, CPU s)  %10.1f /s\n", san_sign);
      printf("  Santuario verify (warm JVM, CPU s)%10.1f /s  (after %.0f warm-up rounds of 2 s)\n", san_verify, san_warm);
    } else {
      san_note = "not built (ctest -R trust.interop_santuario builds it)";
      printf("  Santuario: %s\n", san_note);
    }
    free(cp);
    unlink(tmpl);
    unlink(signed_path);
    unlink(out_path);
    rmdir(dir);
  }
  printf("  ratios: sign/openssl speed %.3f, sign/raw RSA in-process %.3f (target >= 0.7), verify/plain xmlsec %.3f "
         "(target >= 0.9), sign/Santuario %.2f (target >= 2), verify/Santuario %.2f (target >= 1)\n",
         ossl > 0 ? lt_sign / ossl : -1, raw_rsa > 0 ? lt_sign / raw_rsa : -1,
         plain_verify > 0 ? lt_verify / plain_verify : -1, san_sign > 0 ? lt_sign / san_sign : -1,
         san_verify > 0 ? lt_verify / san_verify : -1);
  printf("{\"doc_bytes\":%zu,\"seconds\":%.2f,\"cores\":%ld,", c.doc_len, c.seconds, sysconf(_SC_NPROCESSORS_ONLN));
  jnum(stdout, "openssl_rsa2048_sign_per_s", ossl, 0);
  jnum(stdout, "lienthong_sign_per_s", lt_sign, 0);
  jnum(stdout, "lienthong_sign_xmlsec_path_per_s", lt_sign_xmlsec, 0);
  jnum(stdout, "lienthong_verify_per_s", lt_verify, 0);
  jnum(stdout, "xmlsec_plain_verify_per_s", plain_verify, 0);
  jnum(stdout, "xmlsec_naive_sign_per_s", naive_sign, 0);
  jnum(stdout, "xmlsec1_cli_sign_per_s", cli_sign, 0);
  jnum(stdout, "xmlsec1_cli_verify_per_s", cli_verify, 0);
  jnum(stdout, "santuario_sign_per_s", san_sign, 0);
  jnum(stdout, "santuario_verify_per_s", san_verify, 0);
  jnum(stdout, "santuario_warm_rounds", san_warm, 0);
  printf("\"santuario\":\"%s\",", san_note);
  jnum(stdout, "raw_rsa2048_sign_inprocess_per_s", raw_rsa, 0);
  jratio(stdout, "sign_vs_openssl", lt_sign, ossl, 0);
  jratio(stdout, "sign_vs_raw_rsa_inprocess", lt_sign, raw_rsa, 0);
  jratio(stdout, "verify_vs_plain_xmlsec", lt_verify, plain_verify, 0);
  jratio(stdout, "sign_vs_santuario", lt_sign, san_sign, 0);
  jratio(stdout, "verify_vs_santuario", lt_verify, san_verify, 0);
  jratio(stdout, "xmlsec_path_sign_vs_openssl", lt_sign_xmlsec, ossl, 0);
  jratio(stdout, "naive_sign_vs_openssl", naive_sign, ossl, 1);
  printf("}\n");
  rc = lt_sign > 0 && lt_verify > 0 && plain_verify > 0 ? HUB_EXIT_OK : HUB_EXIT_FAIL;
out:
  if (mngr) xmlSecKeysMngrDestroy(mngr);
  hub_xmldsig_signer_destroy(signer);
  hub_xmldsig_verifier_destroy(verifier);
  free(c.signed_doc);
  free(doc);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "bench.sign",
    .summary = "XML-DSig sign/verify rates beside openssl, xmlsec and Santuario",
    .usage = "Usage: lienthong bench sign [--seconds N] [--no-external] [--source REPO]\n\n"
             "Measures XML-DSig sign and verify rates (one thread) for the 4 KB edXML packet in\n"
             "tests/trust/fixtures with the test PKI, beside `openssl speed rsa2048`, a plain in-process\n"
             "xmlsec verify and a naive xmlsec sign, the xmlsec1 command line and Apache Santuario in a\n"
             "warm JVM (if built). The last output line is one JSON object with every figure and the\n"
             "ratios sign_vs_openssl, verify_vs_plain_xmlsec, sign_vs_santuario and verify_vs_santuario.\n\n"
             "  --seconds N     time per figure (default 2; the whole run takes about 15 N seconds of CPU)\n"
             "  --no-external   skip the xmlsec1 command line and Santuario\n"
             "  --source REPO   the repository (default: $LT_SOURCE_DIR, else the build's source)",
    .main = bench_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_bench_sign, cmd);
