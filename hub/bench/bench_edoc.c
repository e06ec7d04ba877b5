/* `lienthong bench edoc` (command bench.edoc): peak memory of a big edXML packet (default 50 MB,
 * one base64 attachment) through the document flows, measured in one run against the floor
 * the engine itself costs:
 *   floor  the consumed record plus the working copy a route makes of it (hub/engine/route.c):
 *          no step can go below it, so it is the baseline each flow is compared with
 *   in     received: verify-xml (trust: the test CA) -> validate (edxml-document.xsd)
 *   out    sent: validate -> sign-xml (edxml profile)
 *   and each step alone (verify-xml, validate, sign-xml), to show where the memory goes.
 * floor-copy is the floor with a deep working copy, as the engine made it before.
 * Each flow runs in a forked child that first drops what it does not use and resets its peak
 * (/proc/self/clear_refs 5), so a figure is that flow's own VmHWM. The ratio is (peak - the
 * process's RSS before any packet existed) / packet size; the target is under 3. The steps are
 * created by name from the registry, as a route creates them, with the route's `xml.max_size`
 * raised to fit the packet (the 16 MiB default refuses it: checked too). The last line is one
 * JSON object. Keys and schema come from the source tree (LT_SOURCE_DIR, tests/trust/fixtures). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hub/core/cmd.h"
#include "hub/core/msg.h"
#include "hub/core/node.h"
#include "hub/core/registry.h"
#include "hub/core/step_chain.h"
#include "hub/core/xml.h"

static const struct hub_cmd cmd;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* VmRSS or VmHWM of this process in KiB, or -1. */
static long status_kib(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t fl = strlen(field);
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, field, fl) && line[fl] == ':') {
      v = strtol(line + fl + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

/* Resets VmHWM to the current RSS (Linux 4.0+). */
static int reset_peak(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY);
  if (fd < 0) return -1;
  int ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ the packet */

static const char head[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<edXML xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\">\n"
    " <edXML:edXMLEnvelope xmlns:edXML=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\">\n"
    "  <edXML:edXMLHeader>\n"
    "   <edXML:MessageHeader>\n"
    "    <edXML:From><edXML:OrganId>000.00.00.G22</edXML:OrganId><edXML:OrganName>Văn phòng Chính phủ</edXML:OrganName></edXML:From>\n"
    "    <edXML:To><edXML:OrganId>000.00.00.H41</edXML:OrganId><edXML:OrganName>UBND Tỉnh Nghệ An</edXML:OrganName></edXML:To>\n"
    "    <edXML:DocumentId>000.00.00.G22,2024/05/02,999/VPCP-TH</edXML:DocumentId>\n"
    "    <edXML:Code><edXML:CodeNumber>999</edXML:CodeNumber><edXML:CodeNotation>VPCP-TH</edXML:CodeNotation></edXML:Code>\n"
    "    <edXML:PromulgationInfo><edXML:Place>Hà Nội</edXML:Place><edXML:PromulgationDate>2024/05/02</edXML:PromulgationDate></edXML:PromulgationInfo>\n"
    "    <edXML:Subject>Hồ sơ dự án kèm bản vẽ (tệp lớn)</edXML:Subject>\n"
    "   </edXML:MessageHeader>\n"
    "   <edXML:TraceHeaderList>\n"
    "    <edXML:Bussiness><edXML:DocumentId>000.00.00.G22,2024/05/02,999/VPCP-TH</edXML:DocumentId><edXML:BussinessDocType>0</edXML:BussinessDocType><edXML:Paper>0</edXML:Paper></edXML:Bussiness>\n"
    "    <edXML:TraceHeader><edXML:OrganId>000.00.00.G22</edXML:OrganId><edXML:Timestamp>2024/05/02 09:00:00</edXML:Timestamp></edXML:TraceHeader>\n"
    "   </edXML:TraceHeaderList>\n"
    "  </edXML:edXMLHeader>\n"
    "  <edXML:edXMLBody><edXML:edXMLManifest version=\"1.0\">\n"
    "   <edXML:Reference><edXML:ContentId>cid:1</edXML:ContentId><edXML:ContentType>application/zip</edXML:ContentType><edXML:AttachmentName>ban-ve.zip</edXML:AttachmentName></edXML:Reference>\n"
    "  </edXML:edXMLManifest></edXML:edXMLBody>\n"
    " </edXML:edXMLEnvelope>\n"
    " <AttachmentEncoded><Attachment><ContentId>cid:1</ContentId><AttachmentName>ban-ve.zip</AttachmentName>"
    "<ContentType>application/zip</ContentType><edXML:ContentTransferEncoded xmlns:edXML=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\">";
static const char tail[] = "</edXML:ContentTransferEncoded></Attachment></AttachmentEncoded>\n</edXML>\n";

/* An unsigned packet of about `size` bytes: base64 of pseudo-random bytes in 76-character lines,
 * as MIME producers write it. Owned by the message. */
static struct hub_msg *packet_new(size_t size) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t fixed = sizeof head - 1 + sizeof tail - 1;
  size_t body = size > fixed + 77 ? size - fixed : 77;
  size_t lines = body / 77, n = 0; /* 76 characters and a newline: 57 bytes per line */
  unsigned char *v = malloc(fixed + lines * 77 + 1);
  uint64_t x = 0x9e3779b97f4a7c15u;
  if (!v) return NULL;
  memcpy(v, head, sizeof head - 1);
  n = sizeof head - 1;
  for (size_t l = 0; l < lines; l++) {
    for (int i = 0; i < 76; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      v[n++] = (unsigned char)b64[x & 63];
    }
    v[n++] = '\n';
  }
  memcpy(v + n, tail, sizeof tail - 1);
  n += sizeof tail - 1;
  struct hub_msg *m = hub_msg_new("doc-1", 5, NULL, 0);
  if (!m || hub_msg_set_value_take(m, v, n) != HUB_OK) {
    hub_msg_destroy(m);
    return NULL;
  }
  return m;
}

/* ------------------------------------------------------------------ steps */

struct env {
  char keys[1024], schema[1024];
  struct hub_step_env senv;
};

/* The YAML the chains were made from: kept until the chains are destroyed, as the config is. */
static struct hub_node *nodes[8];
static size_t n_nodes;

/* A chain from `steps:` YAML text, as a route creates it. */
static struct hub_step_chain *chain_new(const struct env *e, const char *name, const char *yaml) {
  char err[2048];
  struct hub_node *n = hub_node_load_string(name, yaml, strlen(yaml), err, sizeof err);
  struct hub_step_chain *c = NULL;
  if (!n) {
    fprintf(stderr, "lienthong bench edoc: %s\n", err);
    return NULL;
  }
  if (n_nodes < sizeof nodes / sizeof nodes[0]) nodes[n_nodes++] = n;
  if (hub_step_chain_create(n, &e->senv, &c, err, sizeof err) != HUB_OK) {
    fprintf(stderr, "lienthong bench edoc: %s: %s\n", name, err);
    c = NULL;
  }
  return c;
}

/* Runs `c` on a working copy of `m`, as route.c's process_one does (hub_msg_dup_borrow; with
 * `deep`, a full copy, as it did before); 0 on success. */
static int deep_copy;
static int run_flow(struct hub_step_chain *c, const struct hub_msg *m, char *why, size_t n) {
  struct hub_msg *work = deep_copy ? hub_msg_dup(m) : hub_msg_dup_borrow(m);
  struct hub_step_outcome out = {0};
  char stage[128] = "";
  int rc = 0;
  if (!work) {
    snprintf(why, n, "out of memory");
    return -1;
  }
  if (c && hub_step_chain_run(c, work, &out, stage, sizeof stage) != HUB_STEP_OK) {
    snprintf(why, n, "%s: %s", stage, out.reason);
    rc = -1;
  }
  hub_step_outcome_clear(&out);
  hub_msg_destroy(work);
  return rc;
}

struct figure {
  const char *name, *what;
  long peak_kib, const_kib;
  double seconds, ratio;
  int ok;
  char why[512];
};

/* Runs one flow in a child that keeps only `keep` of the packets, warms the flow up on `small`
 * (a packet of the same kind: the code and tables the flow needs get faulted in, since a forked
 * child maps the parent's file pages anew), resets its peak and reports its VmHWM. The
 * constant is the child's RSS then, less the packet it keeps: the packet counts as the flow's. */
static void measure(struct figure *f, struct hub_step_chain *c, struct hub_msg *keep, struct hub_msg *drop,
                    const struct hub_msg *small, size_t packet) {
  int p[2];
  struct {
    long peak, constant;
    double s;
    int ok;
    char why[512];
  } r = {0};
  f->ok = 0;
  if (pipe(p) < 0) {
    snprintf(f->why, sizeof f->why, "pipe: %s", strerror(errno));
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    hub_msg_destroy(drop);
    if (run_flow(c, small, r.why, sizeof r.why) < 0) {
      /* r.ok stays 0: the flow fails on the small packet already */
    } else if (reset_peak() < 0) {
      snprintf(r.why, sizeof r.why, "cannot reset the peak (/proc/self/clear_refs)");
    } else {
      r.constant = status_kib("VmRSS") - (long)(keep->value_len / 1024);
      double t0 = now_s();
      r.ok = run_flow(c, keep, r.why, sizeof r.why) == 0;
      r.s = now_s() - t0;
      r.peak = status_kib("VmHWM");
    }
    ssize_t w = write(p[1], &r, sizeof r);
    _exit(w == (ssize_t)sizeof r ? 0 : 1);
  }
  close(p[1]);
  ssize_t got = pid > 0 ? read(p[0], &r, sizeof r) : -1;
  close(p[0]);
  if (pid > 0) waitpid(pid, NULL, 0);
  if (got != (ssize_t)sizeof r) {
    snprintf(f->why, sizeof f->why, "the measuring child failed");
    return;
  }
  f->ok = r.ok;
  f->peak_kib = r.peak;
  f->const_kib = r.constant;
  f->seconds = r.s;
  f->ratio = ((double)r.peak - (double)r.constant) * 1024.0 / (double)packet;
  snprintf(f->why, sizeof f->why, "%s", r.why);
}

static double round2(double v) {
  return (double)(long long)(v * 100.0 + (v < 0 ? -0.5 : 0.5)) / 100.0;
}

static int edoc_main(int argc, char **argv) {
  size_t mb = 50;
  int rc = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) {
      mb = 8;
    } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
      char *end;
      unsigned long v = strtoul(argv[++i], &end, 10);
      if (*end || v < 1 || v > 1024) return hub_cmd_usage_error(&cmd, "--size takes megabytes, 1..1024");
      mb = v;
    } else {
      return hub_cmd_usage_error(&cmd, "unknown option '%s'", argv[i]);
    }
  }
  size_t size = mb * 1000u * 1000u;
  /* glibc raises its mmap threshold after each big free, up to 32 MiB, so that later big
   * buffers come from the heap and stay resident after free: fix it, so that every figure of a
   * run counts the same way whatever the packet size */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  const char *src = getenv("LT_SOURCE_DIR") ? getenv("LT_SOURCE_DIR") : LT_SOURCE_DIR;
  struct env e = {0};
  snprintf(e.keys, sizeof e.keys, "%s/tests/trust/fixtures/keys", src);
  snprintf(e.schema, sizeof e.schema, "%s/schemas/edxml/edxml-document.xsd", src);
  e.senv.base_dir = e.keys;
  e.senv.route = "bench-edoc";
  if (access(e.schema, R_OK) || access(e.keys, R_OK)) {
    fprintf(stderr, "lienthong bench edoc: needs the source tree (%s, %s): set LT_SOURCE_DIR\n", e.keys, e.schema);
    return 2;
  }
  char y_agency[512], y_in[2048], y_out[2048], y_verify[512], y_validate[1200], y_sign[512];
  snprintf(y_agency, sizeof y_agency, "- sign-xml: {key: agency-rsa-key.pem, cert: agency-rsa-cert.pem, profile: edxml}\n");
  snprintf(y_verify, sizeof y_verify, "- verify-xml: {trust: [ca.pem]}\n");
  snprintf(y_validate, sizeof y_validate, "- validate: %s\n", e.schema);
  snprintf(y_sign, sizeof y_sign, "- sign-xml: {key: hub-key.pem, cert: hub-cert.pem, profile: edxml}\n");
  snprintf(y_in, sizeof y_in, "%s%s", y_verify, y_validate);
  snprintf(y_out, sizeof y_out, "%s%s", y_validate, y_sign);
  struct hub_step_chain *agency = chain_new(&e, "agency", y_agency), *in = chain_new(&e, "in", y_in),
                        *out = chain_new(&e, "out", y_out), *verify = chain_new(&e, "verify", y_verify),
                        *validate = chain_new(&e, "validate", y_validate), *sign = chain_new(&e, "sign", y_sign);
  struct hub_msg *plain = NULL, *signed_msg = NULL, *small_plain = NULL, *small_signed = NULL;
  struct figure f[7] = {{"floor", "consumed record + the route's working copy (borrows the value), no step"},
                        {"in", "verify-xml -> validate"},
                        {"out", "validate -> sign-xml"},
                        {"verify-xml", "verify-xml alone"},
                        {"validate", "validate alone"},
                        {"sign-xml", "sign-xml alone"},
                        {"floor-copy", "the same with a deep working copy (the engine before hub_msg_dup_borrow)"}};
  if (!agency || !in || !out || !verify || !validate || !sign) goto done;

  /* the constant: everything but the packets (binary, libraries, keys, the compiled XSD) */
  long const_kib = status_kib("VmRSS");
  if (!(plain = packet_new(size))) {
    fprintf(stderr, "lienthong bench edoc: out of memory building the packet\n");
    goto done;
  }
  size_t packet = plain->value_len;

  /* the 16 MiB default refuses the packet: the route's xml.max_size is what lets it through */
  int refused = 0;
  if (packet > HUB_XML_DEFAULT_MAX_BYTES) {
    struct hub_msg *tmp = hub_msg_dup(plain);
    if (tmp) {
      struct hub_step_outcome o = {0};
      char stage[128];
      refused = hub_step_chain_run(validate, tmp, &o, stage, sizeof stage) != HUB_STEP_OK && o.code == HUB_ERR_TOO_LARGE;
      hub_step_outcome_clear(&o);
      hub_msg_destroy(tmp);
    }
  }
  size_t limit = (packet * 2 + (1u << 20) - 1) & ~(size_t)((1u << 20) - 1);
  if (limit > HUB_XML_MAX_MAX_BYTES) limit = HUB_XML_MAX_MAX_BYTES;
  struct hub_xml_limits xl = {limit, 0};
  hub_xml_set_thread_limits(&xl); /* what route.c does with `xml: {max_size: ...}` */

  /* the received packets, signed by the agency (setup, not measured); small ones to warm up */
  if (!(small_plain = packet_new(64 * 1024)) || !(small_signed = hub_msg_dup(small_plain)) ||
      !(signed_msg = hub_msg_dup(plain)))
    goto done;
  for (int i = 0; i < 2; i++) {
    struct hub_step_outcome o = {0};
    char stage[128];
    if (hub_step_chain_run(agency, i ? signed_msg : small_signed, &o, stage, sizeof stage) != HUB_STEP_OK) {
      fprintf(stderr, "lienthong bench edoc: signing the received packet: %s: %s\n", stage, o.reason);
      hub_step_outcome_clear(&o);
      goto done;
    }
    hub_step_outcome_clear(&o);
  }
  printf("lienthong bench edoc: a %.1f MB edXML packet (one base64 attachment), xml.max_size %zu MiB; "
         "process RSS before any packet %.1f MiB\n",
         (double)packet / 1e6, limit >> 20, (double)const_kib / 1024.0);

  measure(&f[0], NULL, signed_msg, plain, small_signed, packet);
  measure(&f[1], in, signed_msg, plain, small_signed, packet);
  measure(&f[2], out, plain, signed_msg, small_plain, packet);
  measure(&f[3], verify, signed_msg, plain, small_signed, packet);
  measure(&f[4], validate, signed_msg, plain, small_signed, packet);
  measure(&f[5], sign, plain, signed_msg, small_plain, packet);
  deep_copy = 1;
  measure(&f[6], NULL, signed_msg, plain, small_signed, packet);
  deep_copy = 0;

  int all_ok = refused || packet <= HUB_XML_DEFAULT_MAX_BYTES;
  double worst = 0;
  printf("  %-11s %10s %9s %8s %9s  %s\n", "flow", "peak MiB", "const MiB", "x packet", "seconds", "what");
  for (int i = 0; i < 7; i++) {
    printf("  %-11s %10.1f %9.1f %8.2f %9.2f  %s%s%s\n", f[i].name, (double)f[i].peak_kib / 1024.0,
           (double)f[i].const_kib / 1024.0, f[i].ratio, f[i].seconds,
           f[i].what, f[i].ok ? "" : "  FAILED: ", f[i].ok ? "" : f[i].why);
    all_ok &= f[i].ok;
    if (i == 1 || i == 2) worst = f[i].ratio > worst ? f[i].ratio : worst;
  }
  int met = all_ok && worst < 3.0;
  printf("  flows in and out: peak %.2f x the packet above the constant (target < 3): %s; the floor alone is %.2f x\n",
         worst, met ? "met" : "MISSED", f[0].ratio);
  if (packet > HUB_XML_DEFAULT_MAX_BYTES)
    printf("  with the default xml.max_size (16 MiB) the packet is refused: %s\n", refused ? "yes" : "NO (unexpected)");

  json_t *j = json_object(), *flows = json_object();
  json_object_set_new(j, "bench", json_string("edoc"));
  json_object_set_new(j, "packet_bytes", json_integer((json_int_t)packet));
  json_object_set_new(j, "xml_max_size", json_integer((json_int_t)limit));
  json_object_set_new(j, "constant_rss_mib", json_real(round2((double)const_kib / 1024.0)));
  for (int i = 0; i < 7; i++) {
    json_t *o = json_object();
    json_object_set_new(o, "peak_rss_mib", json_real(round2((double)f[i].peak_kib / 1024.0)));
    json_object_set_new(o, "constant_rss_mib", json_real(round2((double)f[i].const_kib / 1024.0)));
    json_object_set_new(o, "ratio", json_real(round2(f[i].ratio)));
    json_object_set_new(o, "seconds", json_real(round2(f[i].seconds)));
    json_object_set_new(o, "ok", json_boolean(f[i].ok));
    if (!f[i].ok) json_object_set_new(o, "error", json_string(f[i].why));
    json_object_set_new(flows, f[i].name, o);
  }
  json_object_set_new(j, "flows", flows);
  json_object_set_new(j, "peak_ratio", json_real(round2(worst)));
  json_object_set_new(j, "default_limit_refuses", json_boolean(refused));
  json_object_set_new(j, "target_met", json_boolean(met));
  char *line = json_dumps(j, JSON_COMPACT);
  if (line) printf("%s\n", line);
  free(line);
  json_decref(j);
  rc = all_ok ? 0 : 1;
done:
  hub_msg_destroy(plain);
  hub_msg_destroy(signed_msg);
  hub_msg_destroy(small_plain);
  hub_msg_destroy(small_signed);
  hub_step_chain_destroy(agency);
  hub_step_chain_destroy(in);
  hub_step_chain_destroy(out);
  hub_step_chain_destroy(verify);
  hub_step_chain_destroy(validate);
  hub_step_chain_destroy(sign);
  while (n_nodes) hub_node_destroy(nodes[--n_nodes]);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "bench.edoc",
    .summary = "peak memory of a big edXML packet through verify-xml, validate and sign-xml",
    .usage = "Usage: lienthong bench edoc [--size MB | --quick]\n\n"
             "Builds an edXML packet of MB megabytes (default 50; --quick: 8) with one base64 attachment,\n"
             "has it signed by the test agency key, then measures the peak RSS of each flow in a child\n"
             "process: floor (the record and the route's working copy), in (verify-xml -> validate\n"
             "against schemas/edxml/edxml-document.xsd), out (validate -> sign-xml), and each step alone.\n"
             "Ratio = (peak - RSS before any packet) / packet size; target for in and out: under 3.\n"
             "Needs the source tree (keys in tests/trust/fixtures/keys): LT_SOURCE_DIR.\n"
             "The last line of output is one JSON object with every figure. See docs/bench.md.\n\n"
             "Exit codes: 0 the flows ran (whether or not the target was met), 1 a flow failed, 2 usage.",
    .main = edoc_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_bench_edoc, cmd);
