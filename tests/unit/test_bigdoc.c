/* Big documents (issue 13 item 5): the XML limit is the route's `xml:` setting (through the
 * thread limits of hub/core/xml.h), a text node over libxml2's 10 MB limit parses, the engine's
 * working copy borrows the record's value, and a route with `xml: {max_size: 32MiB}` passes a
 * 17 MB edXML packet through verify-xml -> validate that the default 16 MiB sends to the DLQ
 * with the size as the reason. Memory figures are `lienthong bench edoc`'s, not a test's. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "memtest.h"
#include "hub/core/config.h"
#include "hub/core/log.h"
#include "hub/core/msg.h"
#include "hub/core/stop.h"
#include "hub/core/xml.h"
#include "hub/engine/route.h"
#include "hub/transport/memory/memory.h"
#include "hub/transport/transport.h"

static const char *src_dir(void) {
  return getenv("LT_SOURCE_DIR") ? getenv("LT_SOURCE_DIR") : LT_SOURCE_DIR;
}

/* <edXML>...<ContentTransferEncoded>BASE64 of about `size` bytes</...></edXML>: a QCVN 102
 * document packet that satisfies edxml-document.xsd. Owned. */
static char *packet_new(size_t size, size_t *len) {
  static const char head[] =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<edXML xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\"><edXMLEnvelope><edXMLHeader><MessageHeader>"
      "<From><OrganId>000.00.00.G22</OrganId></From><To><OrganId>000.00.00.H41</OrganId></To>"
      "<DocumentId>000.00.00.G22,2024/05/02,1/X</DocumentId></MessageHeader></edXMLHeader></edXMLEnvelope>"
      "<AttachmentEncoded><Attachment><ContentId>1</ContentId><ContentTransferEncoded>";
  static const char tail[] = "</ContentTransferEncoded></Attachment></AttachmentEncoded></edXML>\n";
  size_t body = size - (sizeof head - 1) - (sizeof tail - 1);
  body -= body % 4;
  char *p = malloc(sizeof head - 1 + body + sizeof tail);
  if (!p) return NULL;
  memcpy(p, head, sizeof head - 1);
  for (size_t i = 0; i < body; i++) p[sizeof head - 1 + i] = "QUJD"[i % 4];
  memcpy(p + sizeof head - 1 + body, tail, sizeof tail);
  *len = sizeof head - 1 + body + sizeof tail - 1;
  return p;
}

static void test_parse_limits(void) {
  size_t n12, n17;
  char *p12 = packet_new(12u * 1000u * 1000u, &n12), *p17 = packet_new(17u * 1024u * 1024u, &n17);
  char e[512];
  xmlDocPtr d = NULL;
  CHECK(p12 && p17);
  if (!p12 || !p17) goto out;
  /* one 12 MB text node: over libxml2's 10 MB text limit, within the 16 MiB default */
  CHECK(hub_xml_parse(p12, n12, NULL, "p12", &d, e, sizeof e) == HUB_OK);
  if (d) {
    xmlChar *t = xmlNodeGetContent(xmlDocGetRootElement(d));
    CHECK(t && xmlStrlen(t) > 11 * 1000 * 1000);
    xmlFree(t);
  }
  xmlFreeDoc(d);
  d = NULL;
  /* a 12 MB attribute value: libxml2 refuses it unless the parse is HUGE */
  {
    size_t an = 12u * 1000u * 1000u;
    char *a = malloc(an + 16);
    CHECK(a != NULL);
    if (a) {
      memcpy(a, "<a b=\"", 6);
      memset(a + 6, 'Q', an);
      memcpy(a + 6 + an, "\"/>", 4);
      CHECK(hub_xml_parse(a, an + 9, NULL, "attr", &d, e, sizeof e) == HUB_OK);
      xmlFreeDoc(d);
      d = NULL;
      free(a);
    }
  }
  /* 17 MiB: refused by default, with the size and the limit in the reason */
  CHECK(hub_xml_parse(p17, n17, NULL, "p17", &d, e, sizeof e) == HUB_ERR_TOO_LARGE);
  CHECK(strstr(e, "p17: document of") && strstr(e, "exceeds the limit of 16777216 bytes"));
  /* a route's limits for this thread let it through; explicit limits still win */
  struct hub_xml_limits route = {32u << 20, 0};
  struct hub_xml_limits prev = hub_xml_set_thread_limits(&route);
  CHECK(prev.max_bytes == 0 && prev.max_depth == 0);
  CHECK(hub_xml_parse(p17, n17, NULL, "p17", &d, e, sizeof e) == HUB_OK);
  xmlFreeDoc(d);
  d = NULL;
  struct hub_xml_limits small = {1024, 0};
  CHECK(hub_xml_parse(p17, n17, &small, "p17", &d, e, sizeof e) == HUB_ERR_TOO_LARGE);
  /* the thread's depth limit too */
  struct hub_xml_limits shallow = {0, 3};
  hub_xml_set_thread_limits(&shallow);
  CHECK(hub_xml_parse("<a><b><c><d/></c></b></a>", 25, NULL, "deep", &d, e, sizeof e) == HUB_ERR_TOO_LARGE);
  CHECK(strstr(e, "nested deeper than 3") != NULL);
  /* restored: the default again */
  hub_xml_set_thread_limits(&prev);
  CHECK(hub_xml_parse(p17, n17, NULL, "p17", &d, e, sizeof e) == HUB_ERR_TOO_LARGE);
  CHECK(hub_xml_parse("<a><b><c><d/></c></b></a>", 25, NULL, "deep", &d, e, sizeof e) == HUB_OK);
  xmlFreeDoc(d);
  /* reading in chunks keeps line numbers and encoding detection */
  d = NULL;
  CHECK(hub_xml_parse("<a>\n<b>\n</a>", 12, NULL, "bad", &d, e, sizeof e) == HUB_ERR_XML);
  CHECK(strstr(e, "bad: line 3") != NULL);
out:
  free(p12);
  free(p17);
}

static void test_borrow(void) {
  struct hub_msg *m = hub_msg_new("k", 1, "original", 8);
  CHECK(m && hub_msg_header_set_str(m, "h", "v") == HUB_OK);
  if (!m) return;
  struct hub_msg *w = hub_msg_dup_borrow(m);
  CHECK(w && w->value == m->value && w->value_len == 8 && w->value_borrowed);
  if (!w) goto out;
  CHECK(w->key_len == 1 && w->key != m->key && !memcmp(w->key, "k", 1));
  CHECK_STR(hub_msg_header_get_str(w, "h"), "v");
  /* a step replaces the value: the original keeps its own */
  CHECK(hub_msg_set_value(w, "replaced", 8) == HUB_OK);
  CHECK(w->value != m->value && !w->value_borrowed);
  CHECK_STR((const char *)m->value, "original");
  CHECK_STR((const char *)w->value, "replaced");
  hub_msg_destroy(w);
  /* destroyed while borrowing: the original's value is untouched (ASan sees a double free) */
  w = hub_msg_dup_borrow(m);
  hub_msg_destroy(w);
  CHECK_STR((const char *)m->value, "original");
  /* a deep copy of a borrowing copy owns its value */
  w = hub_msg_dup_borrow(m);
  struct hub_msg *d = w ? hub_msg_dup(w) : NULL;
  CHECK(d && d->value != m->value && !d->value_borrowed);
  hub_msg_destroy(w);
  hub_msg_destroy(d);
out:
  hub_msg_destroy(m);
}

/* ---- a route with `xml:` on the memory transport ---- */

struct instance {
  struct hub_config *cfg;
  struct hub_route *route;
  pthread_t thread;
  hub_err_t rc;
};

static void *run_route(void *arg) {
  struct instance *x = arg;
  x->rc = hub_route_run(x->route);
  return NULL;
}

static int put(const char *topic, const char *value, size_t len) {
  struct hub_memory_cfg mc = {1};
  struct hub_transport_opts o = {"test", NULL, NULL, "test.put"};
  struct hub_transport *p = NULL;
  char e[256];
  int ok = T->open(&mc, &o, &p, e, sizeof e) == HUB_OK && T->begin(p) == HUB_OK;
  struct hub_msg *m = ok ? hub_msg_new("doc", 3, value, len) : NULL;
  ok = ok && m && T->produce(p, topic, m) == HUB_OK && T->commit(p) == HUB_OK;
  hub_msg_destroy(m);
  if (p) T->close(p);
  return ok;
}

/* Runs route `name` (`in` -> `out`, DLQ NAME.dlq: validate against the edXML XSD) with the
 * route option line `xml` ("" for none) until `topic` holds one record. */
static int run_once(const char *name, const char *in, const char *xml, const char *topic) {
  char dir[] = "/tmp/lt-bigdoc-XXXXXX", yaml[2048];
  struct instance x = {0};
  if (!mkdtemp(dir)) return 0;
  snprintf(yaml, sizeof yaml,
           "hub:\n  transport: memory\n  instance: %s\n  memory: {partitions: 1}\n  admin: {listen: \"\"}\n"
           "routes:\n  - name: %s\n    from: %s\n    to: out.%s\n"
           "    steps:\n      - validate: %s/schemas/edxml/edxml-document.xsd\n"
           "    errors: {dlq: %s.dlq, retries: 0}\n%s",
           name, name, in, name, src_dir(), name, xml);
  char e[1024] = "";
  int ok = (x.cfg = config_load_in(dir, yaml)) != NULL &&
           hub_route_create(x.cfg, &x.cfg->routes[0], T, &x.route, e, sizeof e) == HUB_OK &&
           pthread_create(&x.thread, NULL, run_route, &x) == 0;
  if (!ok) fprintf(stderr, "route %s: %s\n", name, e);
  double t0 = now_ms();
  while (ok && count(topic) < 1 && now_ms() - t0 < 60000) sleep_ms(20);
  if (ok) {
    hub_stop_request();
    pthread_join(x.thread, NULL);
    hub_stop_reset();
  }
  hub_route_destroy(x.route);
  hub_config_destroy(x.cfg);
  char path[600];
  snprintf(path, sizeof path, "%s/hub.yaml", dir);
  unlink(path);
  rmdir(dir);
  return ok;
}

static void test_route_limit(void) {
  size_t n;
  char *p = packet_new(17u * 1024u * 1024u, &n);
  CHECK(p != NULL);
  if (!p) return;
  CHECK(put("in.big", p, n));
  /* default limit: to the DLQ, saying why */
  CHECK(run_once("dflt", "in.big", "", "dflt.dlq"));
  struct coll c = {0};
  CHECK(scan_topic("dflt.dlq", &c) && c.n == 1);
  if (c.n == 1) {
    const char *why = hub_msg_header_get_str(c.v[0], HUB_H_ERROR_REASON);
    CHECK(why && strstr(why, "exceeds the limit of 16777216 bytes"));
    CHECK(c.v[0]->value_len == n && !memcmp(c.v[0]->value, p, n)); /* the original bytes */
  }
  coll_clear(&c);
  CHECK(count("out.dflt") <= 0);
  /* xml.max_size: 32MiB: through, unchanged */
  CHECK(run_once("big", "in.big", "    xml: {max_size: 32MiB}\n", "out.big"));
  CHECK(scan_topic("out.big", &c) && c.n == 1);
  if (c.n == 1) CHECK(c.v[0]->value_len == n && !memcmp(c.v[0]->value, p, n));
  coll_clear(&c);
  CHECK(count("big.dlq") <= 0);
  free(p);
}

static void test_config_errors(void) {
  char dir[] = "/tmp/lt-bigdoc-XXXXXX", path[600];
  if (!mkdtemp(dir)) return;
  struct hub_config *cfg = config_load_in(dir,
                                          "hub: {transport: memory, admin: {listen: \"\"}}\n"
                                          "routes:\n  - {name: r, from: a, to: b, xml: {max_size: 4GiB}}\n");
  CHECK(cfg == NULL);
  hub_config_destroy(cfg);
  cfg = config_load_in(dir, "hub: {transport: memory, admin: {listen: \"\"}}\n"
                            "routes:\n  - {name: r, from: a, to: b, xml: {max_size: 64MiB, max_depth: 64}}\n");
  CHECK(cfg && cfg->routes[0].xml.max_size == 64 << 20 && cfg->routes[0].xml.max_depth == 64);
  hub_config_destroy(cfg);
  cfg = config_load_in(dir, "hub: {transport: memory, admin: {listen: \"\"}}\nroutes:\n  - {name: r, from: a, to: b}\n");
  CHECK(cfg && cfg->routes[0].xml.max_size == 16 << 20 && cfg->routes[0].xml.max_depth == 128);
  hub_config_destroy(cfg);
  snprintf(path, sizeof path, "%s/hub.yaml", dir);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  hub_log_set_level(HUB_LOG_ERROR);
  hub_stop_reset();
  T = hub_transport_get("memory");
  CHECK(T != NULL);
  if (!T) return check_done();
  test_parse_limits();
  test_borrow();
  test_config_errors();
  test_route_limit();
  return check_done();
}
