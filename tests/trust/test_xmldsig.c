/* XML-DSig library and steps: placement, algorithms, trust decisions (skew, CRL, key usage,
 * pinning), and the sign-xml / verify-xml steps through the registry. */
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hub/core/node.h"
#include "hub/core/registry.h"
#include "hub/core/step_chain.h"
#include "hub/core/files.h"
#include "hub/trust/xmldsig.h"
#include "hub/core/xml.h"

static char keys[1024], fixtures[1024];

static const char *kp(const char *name) {
  static char buf[8][1200];
  static int i;
  i = (i + 1) % 8;
  snprintf(buf[i], sizeof buf[i], "%s/%s", keys, name);
  return buf[i];
}

static unsigned char *fixture(const char *name, size_t *len) {
  char path[1200], err[256];
  char *b = NULL;
  snprintf(path, sizeof path, "%s/%s", fixtures, name);
  if (hub_file_read(path, 1 << 24, &b, len, err, sizeof err)) fprintf(stderr, "%s\n", err);
  return (unsigned char *)b;
}

static unsigned char *sign_with(const char *key, const char *cert, const struct hub_xmldsig_sign_opts *o,
                                const unsigned char *in, size_t len, size_t *out_len) {
  struct hub_xmldsig_signer *s = NULL;
  unsigned char *out = NULL;
  char err[1024] = "";
  hub_err_t rc = hub_xmldsig_signer_new(kp(key), kp(cert), o, &s, err, sizeof err);
  CHECK(rc == HUB_OK);
  if (rc) {
    fprintf(stderr, "signer: %s\n", err);
    return NULL;
  }
  rc = hub_xmldsig_sign(s, in, len, &out, out_len, err, sizeof err);
  CHECK(rc == HUB_OK);
  if (rc) fprintf(stderr, "sign: %s\n", err);
  hub_xmldsig_signer_destroy(s);
  return out;
}

static struct hub_xmldsig_verifier *verifier(const char *crl, const char *pin, int64_t skew) {
  const char *ca[] = {kp("ca.pem")}, *crls[] = {crl ? kp(crl) : NULL}, *pins[] = {pin ? kp(pin) : NULL};
  struct hub_xmldsig_verify_opts o = {.trust_ca = pin ? NULL : ca, .n_trust_ca = pin ? 0 : 1, .crl = crls,
                                      .n_crl = crl ? 1 : 0, .pinned = pins, .n_pinned = pin ? 1 : 0,
                                      .clock_skew_s = skew};
  struct hub_xmldsig_verifier *v = NULL;
  char err[1024];
  if (hub_xmldsig_verifier_new(&o, &v, err, sizeof err)) fprintf(stderr, "verifier: %s\n", err);
  CHECK(v != NULL);
  return v;
}

static hub_err_t verify(struct hub_xmldsig_verifier *v, const unsigned char *doc, size_t len, time_t at,
                        char *reason, size_t n, char *signer, size_t sn) {
  struct hub_xmldsig_result r;
  hub_err_t rc = hub_xmldsig_verify(v, doc, len, NULL, at, &r);
  snprintf(reason, n, "%s", r.reason);
  if (signer) snprintf(signer, sn, "%s", r.signer);
  if (!rc) CHECK(r.doc && r.element == xmlDocGetRootElement(r.doc));
  hub_xmldsig_result_release(&r);
  return rc;
}

/* The element just before the signature, and its parent, by local name. */
static void placement(const unsigned char *doc, size_t len, char *prev, char *parent) {
  xmlDocPtr d = NULL;
  char err[256];
  prev[0] = parent[0] = '\0';
  CHECK(hub_xml_parse(doc, len, NULL, NULL, &d, err, sizeof err) == HUB_OK);
  for (xmlNodePtr n = d ? xmlDocGetRootElement(d) : NULL; n;) {
    if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, "Signature")) {
      xmlNodePtr p = n->prev;
      while (p && p->type != XML_ELEMENT_NODE) p = p->prev;
      snprintf(prev, 64, "%s", p ? (const char *)p->name : "");
      snprintf(parent, 64, "%s", (const char *)n->parent->name);
      break;
    }
    if (n->children) n = n->children;
    else {
      while (n && !n->next) n = n->parent;
      if (n) n = n->next;
    }
  }
  xmlFreeDoc(d);
}

static void test_sign_verify(void) {
  size_t dlen, slen, olen;
  unsigned char *doc = fixture("edxml-document.edxml", &dlen), *status = fixture("edxml-status.edxml", &slen);
  char prev[64], parent[64], reason[1024], signer[512];
  struct hub_xmldsig_verifier *v = verifier(NULL, NULL, -1);
  struct hub_xmldsig_sign_opts o = {0};

  unsigned char *out = sign_with("agency-rsa-key.pem", "agency-rsa-cert.pem", &o, doc, dlen, &olen);
  placement(out, olen, prev, parent);
  CHECK_STR(prev, "TraceHeaderList");
  CHECK_STR(parent, "edXMLHeader");
  CHECK_CONTAINS((char *)out, "xmldsig-more#rsa-sha256");
  CHECK_CONTAINS((char *)out, "<X509Certificate>");
  CHECK(verify(v, out, olen, 0, reason, sizeof reason, signer, sizeof signer) == HUB_OK);
  CHECK_CONTAINS(signer, "CN=UBND Tinh Nghe An; sha256=");
  CHECK(strlen(strstr(signer, "sha256=")) == 7 + 64);
  free(out);

  out = sign_with("agency-ec-key.pem", "agency-ec-cert.pem", &o, status, slen, &olen);
  placement(out, olen, prev, parent);
  CHECK_STR(prev, "Status");
  CHECK_STR(parent, "edXMLHeader");
  CHECK_CONTAINS((char *)out, "xmldsig-more#ecdsa-sha256");
  CHECK(verify(v, out, olen, 0, reason, sizeof reason, signer, sizeof signer) == HUB_OK);
  CHECK_CONTAINS(signer, "Van phong Chinh phu");
  free(out);

  out = sign_with("agency-ec384-key.pem", "agency-ec384-cert.pem", &o, doc, dlen, &olen);
  CHECK_CONTAINS((char *)out, "xmldsig-more#ecdsa-sha384");
  CHECK(verify(v, out, olen, 0, reason, sizeof reason, NULL, 0) == HUB_OK);
  free(out);

  struct hub_xmldsig_sign_opts inc = {.c14n = "inclusive", .alg = "rsa-sha512", .digest = "sha384",
                                      .profile = "generic"};
  out = sign_with("hub-key.pem", "hub-cert.pem", &inc, doc, dlen, &olen);
  placement(out, olen, prev, parent);
  CHECK_STR(prev, "AttachmentEncoded");
  CHECK_STR(parent, "edXML");
  CHECK_CONTAINS((char *)out, "REC-xml-c14n-20010315");
  CHECK_CONTAINS((char *)out, "xmldsig-more#sha384");
  CHECK(verify(v, out, olen, 0, reason, sizeof reason, NULL, 0) == HUB_OK);

  /* signing an already signed document is refused (the verifier wants exactly one) */
  struct hub_xmldsig_signer *s = NULL;
  char err[1024];
  unsigned char *again = NULL;
  size_t alen;
  CHECK(hub_xmldsig_signer_new(kp("hub-key.pem"), kp("hub-cert.pem"), NULL, &s, err, sizeof err) == HUB_OK);
  CHECK(hub_xmldsig_sign(s, out, olen, &again, &alen, err, sizeof err) == HUB_ERR_SIG_POLICY);
  CHECK_CONTAINS(err, "already carries a signature");
  CHECK(hub_xmldsig_sign(s, "<a><b></a>", 10, &again, &alen, err, sizeof err) == HUB_ERR_XML);
  CHECK_CONTAINS(err, "line 1");
  const char *generic = "<Payment xmlns=\"urn:x\"><Amount>1</Amount></Payment>";
  CHECK(hub_xmldsig_sign(s, generic, strlen(generic), &again, &alen, err, sizeof err) == HUB_OK);
  placement(again, alen, prev, parent);
  CHECK_STR(prev, "Amount");
  CHECK_STR(parent, "Payment");
  free(again);
  hub_xmldsig_signer_destroy(s);
  free(out);

  /* setup errors */
  s = NULL;
  CHECK(hub_xmldsig_signer_new(kp("hub-key.pem"), kp("agency-rsa-cert.pem"), NULL, &s, err, sizeof err) ==
        HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "does not match the certificate");
  /* RSA-PSS: our xmlsec transform klass (xmlsec 1.2.37 has none) signs and verifies, both paths */
  const char *psss[] = {"rsa-pss-sha256", "rsa-pss-sha384", "rsa-pss-sha512"};
  for (int i = 0; i < 3; i++) {
    struct hub_xmldsig_sign_opts pss = {.alg = psss[i]};
    struct hub_xmldsig_verifier *pv = verifier(NULL, NULL, -1);
    CHECK(hub_xmldsig_signer_new(kp("hub-key.pem"), kp("hub-cert.pem"), &pss, &s, err, sizeof err) == HUB_OK);
    for (int path = 0; s && path < 2; path++) {
      again = NULL;
      CHECK((path ? hub_xmldsig_sign_xmlsec : hub_xmldsig_sign)(s, doc, dlen, &again, &alen, err, sizeof err) == HUB_OK);
      CHECK_CONTAINS((char *)again, "-rsa-MGF1");
      CHECK(again && verify(pv, again, alen, 0, reason, sizeof reason, NULL, 0) == HUB_OK);
      if (again) { /* tampered SignedInfo fails as a PSS signature (checked before the digests) */
        char *dv = strstr((char *)again, "<DigestValue>");
        if (dv) dv[13] = dv[13] == 'A' ? 'B' : 'A';
        CHECK(verify(pv, again, alen, 0, reason, sizeof reason, NULL, 0) == HUB_ERR_SIG_INVALID);
      }
      free(again);
    }
    hub_xmldsig_signer_destroy(s);
    s = NULL;
    hub_xmldsig_verifier_destroy(pv);
  }
  struct hub_xmldsig_sign_opts sha1 = {.alg = "rsa-sha1"};
  CHECK(hub_xmldsig_signer_new(kp("hub-key.pem"), kp("hub-cert.pem"), &sha1, &s, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "not supported for signing");
  struct hub_xmldsig_sign_opts ecrsa = {.alg = "ecdsa-sha256"};
  CHECK(hub_xmldsig_signer_new(kp("hub-key.pem"), kp("hub-cert.pem"), &ecrsa, &s, err, sizeof err) ==
        HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "does not fit the RSA key");
  struct hub_xmldsig_sign_opts edx = {.profile = "edxml"};
  CHECK(hub_xmldsig_signer_new(kp("hub-key.pem"), kp("hub-cert.pem"), &edx, &s, err, sizeof err) == HUB_OK);
  CHECK(hub_xmldsig_sign(s, generic, strlen(generic), &again, &alen, err, sizeof err) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(err, "edXMLHeader");
  hub_xmldsig_signer_destroy(s);
  hub_xmldsig_verifier_destroy(v);
  free(doc);
  free(status);
}

/* The text of the first <NAME>...</NAME> with whitespace removed (into out). */
static void element_text(const char *doc, const char *name, char *out, size_t n) {
  char open[64], close[64];
  snprintf(open, sizeof open, "<%s>", name);
  snprintf(close, sizeof close, "</%s>", name);
  const char *a = strstr(doc, open), *b = a ? strstr(a, close) : NULL;
  size_t k = 0;
  for (const char *p = a ? a + strlen(open) : NULL; p && p < b && k + 1 < n; p++)
    if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') out[k++] = *p;
  out[k] = '\0';
}

/* The direct signing path must give exactly xmlsec's signature (RSA PKCS#1 v1.5 is
 * deterministic), for each c14n and placement. */
static void test_direct_equals_xmlsec(void) {
  size_t dlen, slen;
  unsigned char *docs[2] = {fixture("edxml-document.edxml", &dlen), fixture("edxml-status.edxml", &slen)};
  size_t lens[2] = {dlen, slen};
  const char *c14ns[] = {"exclusive", "inclusive", "inclusive-1.1"};
  const char *profiles[] = {NULL, "generic"};
  for (int c = 0; c < 3; c++)
    for (int p = 0; p < 2; p++)
      for (int d = 0; d < 2; d++) {
        struct hub_xmldsig_sign_opts o = {.c14n = c14ns[c], .profile = profiles[p]};
        struct hub_xmldsig_signer *s = NULL;
        unsigned char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        char err[1024], sa[1024], sb[1024], da[128], db[128];
        CHECK(hub_xmldsig_signer_new(kp("hub-key.pem"), kp("hub-cert.pem"), &o, &s, err, sizeof err) == HUB_OK);
        if (!s) continue;
        CHECK(hub_xmldsig_sign(s, docs[d], lens[d], &a, &al, err, sizeof err) == HUB_OK);
        CHECK(hub_xmldsig_sign_xmlsec(s, docs[d], lens[d], &b, &bl, err, sizeof err) == HUB_OK);
        if (a && b) {
          element_text((char *)a, "SignatureValue", sa, sizeof sa);
          element_text((char *)b, "SignatureValue", sb, sizeof sb);
          element_text((char *)a, "DigestValue", da, sizeof da);
          element_text((char *)b, "DigestValue", db, sizeof db);
          CHECK(strlen(sa) > 300);
          CHECK_STR(sa, sb);
          CHECK_STR(da, db);
        }
        free(a);
        free(b);
        hub_xmldsig_signer_destroy(s);
      }
  free(docs[0]);
  free(docs[1]);
}

static void test_trust_decisions(void) {
  size_t dlen, olen;
  unsigned char *doc = fixture("edxml-document.edxml", &dlen);
  char reason[1024], signer[512];
  struct hub_xmldsig_sign_opts o = {0};
  /* expired-cert.pem is valid 2020-01-01 .. 2021-01-01T00:00:00Z (1609459200) */
  unsigned char *exp = sign_with("expired-key.pem", "expired-cert.pem", &o, doc, dlen, &olen);
  struct hub_xmldsig_verifier *v = verifier(NULL, NULL, 300);
  CHECK(verify(v, exp, olen, 1609459200 + 200, reason, sizeof reason, NULL, 0) == HUB_OK);
  CHECK(verify(v, exp, olen, 1609459200 + 400, reason, sizeof reason, NULL, 0) == HUB_ERR_SIG_EXPIRED);
  CHECK_CONTAINS(reason, "expired at 2021-01-01T00:00:00Z (clock skew 300s)");
  CHECK(verify(v, exp, olen, 1577836800 - 200, reason, sizeof reason, NULL, 0) == HUB_OK);
  CHECK(verify(v, exp, olen, 1577836800 - 400, reason, sizeof reason, NULL, 0) == HUB_ERR_SIG_EXPIRED);
  CHECK_CONTAINS(reason, "is not valid before 2020-01-01T00:00:00Z");
  CHECK(verify(v, exp, olen, 0, reason, sizeof reason, NULL, 0) == HUB_ERR_SIG_EXPIRED);
  hub_xmldsig_verifier_destroy(v);
  v = verifier(NULL, NULL, 0);
  CHECK(verify(v, exp, olen, 1609459200 + 1, reason, sizeof reason, NULL, 0) == HUB_ERR_SIG_EXPIRED);
  hub_xmldsig_verifier_destroy(v);
  free(exp);

  /* CRL: the revoked certificate is refused, others still pass */
  unsigned char *rev = sign_with("revoked-key.pem", "revoked-cert.pem", &o, doc, dlen, &olen);
  size_t glen;
  unsigned char *good = sign_with("agency-rsa-key.pem", "agency-rsa-cert.pem", &o, doc, dlen, &glen);
  v = verifier("crl.pem", NULL, -1);
  CHECK(verify(v, rev, olen, 0, reason, sizeof reason, NULL, 0) == HUB_ERR_SIG_UNTRUSTED);
  CHECK_CONTAINS(reason, "certificate revoked");
  CHECK(verify(v, good, glen, 0, reason, sizeof reason, NULL, 0) == HUB_OK);
  hub_xmldsig_verifier_destroy(v);
  v = verifier(NULL, NULL, -1);
  CHECK(verify(v, rev, olen, 0, reason, sizeof reason, NULL, 0) == HUB_OK); /* no CRL configured */
  hub_xmldsig_verifier_destroy(v);

  /* an intermediate CA: the signer puts leaf + intermediate into X509Data (both paths), the
   * verifier builds the chain to the root alone, with CRLs from both CAs */
  struct hub_xmldsig_signer *sub = NULL;
  char err[1024];
  CHECK(hub_xmldsig_signer_new(kp("agency-sub-key.pem"), kp("agency-sub-chain.pem"), NULL, &sub, err, sizeof err) ==
        HUB_OK);
  v = verifier("crl.pem", NULL, -1);
  for (int path = 0; sub && path < 2; path++) {
    unsigned char *chained = NULL;
    size_t clen = 0;
    CHECK((path ? hub_xmldsig_sign_xmlsec : hub_xmldsig_sign)(sub, doc, dlen, &chained, &clen, err, sizeof err) ==
          HUB_OK);
    int n_certs = 0;
    for (const char *p = (const char *)chained; p && (p = strstr(p, "<X509Certificate>")) != NULL; p++) n_certs++;
    CHECK(n_certs == 2);
    CHECK(chained && verify(v, chained, clen, 0, reason, sizeof reason, signer, sizeof signer) == HUB_OK);
    CHECK_CONTAINS(signer, "UBND Tinh Cao Bang");
    free(chained);
  }
  hub_xmldsig_signer_destroy(sub);
  hub_xmldsig_verifier_destroy(v);

  /* pinned: KeyInfo ignored, only the pinned key counts */
  v = verifier(NULL, "agency-rsa-cert.pem", -1);
  CHECK(verify(v, good, glen, 0, reason, sizeof reason, signer, sizeof signer) == HUB_OK);
  CHECK_CONTAINS(signer, "UBND Tinh Nghe An");
  CHECK(verify(v, rev, olen, 0, reason, sizeof reason, NULL, 0) == HUB_ERR_SIG_INVALID);
  hub_xmldsig_verifier_destroy(v);
  free(rev);
  free(good);
  free(doc);
}

static struct hub_node *yaml(const char *text) {
  char err[512];
  struct hub_node *n = hub_node_load_string("test.yaml", text, strlen(text), err, sizeof err);
  if (!n) fprintf(stderr, "yaml: %s\n", err);
  CHECK(n != NULL);
  return n;
}

static void test_steps(void) {
  const struct hub_step_ops *sign = hub_registry_get_step("sign-xml"), *ver = hub_registry_get_step("verify-xml");
  CHECK(sign && ver);
  if (!sign || !ver) return;
  struct hub_node *keysec = yaml("hub: {key: hub-key.pem, cert: hub-cert.pem}\ntrust: {ca: [ca.pem], crl: crl.pem}\n");
  struct hub_node *sargs = yaml("{profile: edxml, c14n: inclusive}");
  struct hub_node *vargs = yaml("{clock_skew: 2m}");
  struct hub_node *bad = yaml("{profile: edxml, keyfile: x.pem}");
  struct hub_step_env env = {.base_dir = keys, .keys = keysec, .route = "test"};
  struct hub_step *ss = NULL, *vs = NULL, *xs = NULL;
  char err[1024];
  CHECK(hub_step_create(sign, sargs, &env, &ss, err, sizeof err) == HUB_OK);
  CHECK(hub_step_create(ver, vargs, &env, &vs, err, sizeof err) == HUB_OK);
  CHECK(hub_step_create(sign, bad, &env, &xs, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "test.yaml:1:");
  CHECK_CONTAINS(err, "unknown key 'keyfile'");
  struct hub_step_env nokeys = {.base_dir = keys};
  CHECK(hub_step_create(ver, NULL, &nokeys, &xs, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "trust store");

  size_t dlen;
  unsigned char *doc = fixture("edxml-status.edxml", &dlen);
  struct hub_msg *m = hub_msg_new("k", 1, doc, dlen);
  struct hub_step_outcome out = {0};
  CHECK(hub_step_process(ss, m, &out) == HUB_STEP_OK);
  CHECK_STR(hub_msg_header_get_str(m, HUB_H_SIG), "signed");
  CHECK_CONTAINS(hub_msg_header_get_str(m, HUB_H_SIGNER), "CN=lienthong-hub; sha256=");
  CHECK(hub_msg_header_get_str(m, HUB_H_PARENT) && strlen(hub_msg_header_get_str(m, HUB_H_PARENT)) == 64);
  CHECK_CONTAINS((char *)m->value, "REC-xml-c14n-20010315");
  struct hub_msg *copy = hub_msg_dup(m);
  CHECK(hub_step_process(vs, m, &out) == HUB_STEP_OK);
  CHECK_STR(hub_msg_header_get_str(m, HUB_H_SIG), "verified");
  CHECK_CONTAINS(hub_msg_header_get_str(m, HUB_H_SIGNER), "CN=lienthong-hub; sha256=");

  /* tampered: REJECT with the code and the canonical bytes as detail */
  char *p = strstr((char *)copy->value, "<edXML:StatusCode>01<");
  CHECK(p != NULL);
  if (p) p[strlen("<edXML:StatusCode>0")] = '6';
  hub_msg_header_del(copy, HUB_H_SIG);
  CHECK(hub_step_process(vs, copy, &out) == HUB_STEP_REJECT);
  CHECK(out.code == HUB_ERR_SIG_DIGEST);
  CHECK_CONTAINS(out.reason, "verify-xml: reference 1 (URI \"\"): digest mismatch");
  CHECK(out.detail != NULL && out.detail_len > 100);
  if (out.detail) {
    char *d = strndup((char *)out.detail, out.detail_len);
    CHECK_CONTAINS(d, "<edXML:StatusCode>06</edXML:StatusCode>");
    free(d);
  }
  CHECK(hub_msg_header_get_str(copy, HUB_H_SIG) == NULL);
  hub_step_outcome_clear(&out);

  struct hub_msg *plain = hub_msg_new(NULL, 0, doc, dlen);
  CHECK(hub_step_process(vs, plain, &out) == HUB_STEP_REJECT);
  CHECK(out.code == HUB_ERR_SIG_MISSING);
  hub_step_outcome_clear(&out);

  hub_msg_destroy(plain);
  hub_msg_destroy(copy);
  hub_msg_destroy(m);
  free(doc);
  hub_step_destroy(ss);
  hub_step_destroy(vs);
  hub_node_destroy(keysec);
  hub_node_destroy(sargs);
  hub_node_destroy(vargs);
  hub_node_destroy(bad);
}

int main(void) {
  const char *src = getenv("LT_SOURCE_DIR");
  if (!src) {
    fprintf(stderr, "LT_SOURCE_DIR is not set (run through ctest)\n");
    return 1;
  }
  snprintf(keys, sizeof keys, "%s/tests/trust/fixtures/keys", src);
  snprintf(fixtures, sizeof fixtures, "%s/tests/trust/fixtures", src);
  test_sign_verify();
  test_direct_equals_xmlsec();
  test_trust_decisions();
  test_steps();
  return check_done();
}
