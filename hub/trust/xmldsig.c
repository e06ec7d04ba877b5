/* XML-DSig on xmlsec1 + OpenSSL (see xmldsig.h). The policy checks run on the parsed tree
 * before xmlsec sees it, so that every refusal has a precise reason; xmlsec's own transform
 * and URI allow-lists are set as well, as a second line. The signing key for verification is
 * handed to xmlsec directly (dsigCtx->signKey) after our own chain check, so xmlsec never
 * reads a key out of KeyInfo (1.2.37 would accept a bare KeyValue). */
#include "hub/trust/xmldsig.h"

#include <errno.h>
#include <stdarg.h>
#include <libxml/c14n.h>
#include <libxml/hash.h>
#include <libxml/parser.h>
#include <libxml/valid.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xmlsec/base64.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/openssl/evp.h>
#include <xmlsec/openssl/x509.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/xmltree.h>

#include "hub/core/log.h"
#include "hub/trust/rsapss.h"
#include "hub/trust/certcache.h"
#include "hub/trust/truststore.h"
#include "hub/core/xml.h"

#define DSIG_NS "http://www.w3.org/2000/09/xmldsig#"

/* ---- process-wide setup and error routing ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static hub_err_t init_rc = HUB_ERR_CRYPTO;
static _Thread_local char last_err[512];

static void on_xmlsec_error(const char *file, int line, const char *func, const char *obj, const char *subj,
                            int reason, const char *msg) {
  (void)file, (void)line;
  const char *r = xmlSecErrorsGetMsg((xmlSecSize)0);
  for (xmlSecSize i = 0; (r = xmlSecErrorsGetMsg(i)) != NULL; i++)
    if (xmlSecErrorsGetCode(i) == reason) break;
  /* Keep the first error of an operation: it names the cause, the later ones only the callers. */
  char msg_buf[512];
  snprintf(msg_buf, sizeof msg_buf, "%s%s%s: %s%s%s", obj ? obj : "", obj ? " " : "", subj ? subj : func,
           r ? r : "error", msg && *msg ? ": " : "", msg ? msg : "");
  if (!last_err[0]) snprintf(last_err, sizeof last_err, "%s", msg_buf);
  hub_log(HUB_LOG_DEBUG, "xmlsec", "%s (in %s)", msg_buf, func ? func : "?");
}

static void do_init(void) {
  xmlInitParser();
  if (xmlSecInit() < 0) return;
  if (xmlSecCheckVersion() != 1) return;
  if (xmlSecCryptoAppInit(NULL) < 0 || xmlSecCryptoInit() < 0 || hub_rsapss_register() < 0) return;
  /* after the crypto init, which installs its own default callback */
  xmlSecErrorsSetCallback(on_xmlsec_error);
  init_rc = HUB_OK;
}

hub_err_t hub_xmldsig_init(void) {
  pthread_once(&init_once, do_init);
  return init_rc;
}

void hub_xmldsig_clear_error(void) {
  last_err[0] = '\0';
}

const char *hub_xmldsig_last_error(void) {
  return last_err;
}

/* ---- algorithm tables: what the hub accepts and produces ---- */

enum { K_RSA = 1, K_EC = 2 };

struct alg {
  const char *name;
  const char *href;
  xmlSecTransformId (*klass)(void);
  int sha1; /* only under policy legacy-sha1 */
  int key;  /* K_RSA, K_EC; 0 for digests and c14n */
};

static const struct alg sig_algs[] = {
    {"rsa-sha256", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", xmlSecOpenSSLTransformRsaSha256GetKlass, 0, K_RSA},
    {"rsa-sha384", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384", xmlSecOpenSSLTransformRsaSha384GetKlass, 0, K_RSA},
    {"rsa-sha512", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512", xmlSecOpenSSLTransformRsaSha512GetKlass, 0, K_RSA},
    {"rsa-sha224", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha224", xmlSecOpenSSLTransformRsaSha224GetKlass, 0, K_RSA},
    {"ecdsa-sha256", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", xmlSecOpenSSLTransformEcdsaSha256GetKlass, 0, K_EC},
    {"ecdsa-sha384", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384", xmlSecOpenSSLTransformEcdsaSha384GetKlass, 0, K_EC},
    {"ecdsa-sha512", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512", xmlSecOpenSSLTransformEcdsaSha512GetKlass, 0, K_EC},
    {"ecdsa-sha224", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha224", xmlSecOpenSSLTransformEcdsaSha224GetKlass, 0, K_EC},
    {"rsa-pss-sha256", "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1", hub_rsapss_sha256_klass, 0, K_RSA},
    {"rsa-pss-sha384", "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1", hub_rsapss_sha384_klass, 0, K_RSA},
    {"rsa-pss-sha512", "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1", hub_rsapss_sha512_klass, 0, K_RSA},
    {"rsa-pss-sha224", "http://www.w3.org/2007/05/xmldsig-more#sha224-rsa-MGF1", hub_rsapss_sha224_klass, 0, K_RSA},
    {"rsa-sha1", "http://www.w3.org/2000/09/xmldsig#rsa-sha1", xmlSecOpenSSLTransformRsaSha1GetKlass, 1, K_RSA},
    {"rsa-pss-sha1", "http://www.w3.org/2007/05/xmldsig-more#sha1-rsa-MGF1", hub_rsapss_sha1_klass, 1, K_RSA},
    {"ecdsa-sha1", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1", xmlSecOpenSSLTransformEcdsaSha1GetKlass, 1, K_EC},
    {NULL, NULL, NULL, 0, 0}};

static const struct alg digest_algs[] = {
    {"sha256", "http://www.w3.org/2001/04/xmlenc#sha256", xmlSecOpenSSLTransformSha256GetKlass, 0, 0},
    {"sha384", "http://www.w3.org/2001/04/xmldsig-more#sha384", xmlSecOpenSSLTransformSha384GetKlass, 0, 0},
    {"sha512", "http://www.w3.org/2001/04/xmlenc#sha512", xmlSecOpenSSLTransformSha512GetKlass, 0, 0},
    {"sha224", "http://www.w3.org/2001/04/xmldsig-more#sha224", xmlSecOpenSSLTransformSha224GetKlass, 0, 0},
    {"sha1", "http://www.w3.org/2000/09/xmldsig#sha1", xmlSecOpenSSLTransformSha1GetKlass, 1, 0},
    {NULL, NULL, NULL, 0, 0}};

static const struct alg c14n_algs[] = {
    {"exclusive", "http://www.w3.org/2001/10/xml-exc-c14n#", xmlSecTransformExclC14NGetKlass, 0, 0},
    {"exclusive-with-comments", "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
     xmlSecTransformExclC14NWithCommentsGetKlass, 0, 0},
    {"inclusive", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315", xmlSecTransformInclC14NGetKlass, 0, 0},
    {"inclusive-with-comments", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
     xmlSecTransformInclC14NWithCommentsGetKlass, 0, 0},
    {"inclusive-1.1", "http://www.w3.org/2006/12/xml-c14n11", xmlSecTransformInclC14N11GetKlass, 0, 0},
    {"inclusive-1.1-with-comments", "http://www.w3.org/2006/12/xml-c14n11#WithComments",
     xmlSecTransformInclC14N11WithCommentsGetKlass, 0, 0},
    {NULL, NULL, NULL, 0, 0}};

#define ENVELOPED_HREF "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

static const struct alg *alg_by_name(const struct alg *t, const char *name) {
  for (; t->name; t++)
    if (!strcmp(t->name, name)) return t;
  return NULL;
}

static const struct alg *alg_by_href(const struct alg *t, const char *href) {
  for (; href && t->name; t++)
    if (!strcmp(t->href, href)) return t;
  return NULL;
}

/* Names of algorithms the hub knows of but refuses, for readable reasons. */
static const char *refused_transform(const char *href) {
  static const struct {
    const char *href, *what;
  } t[] = {{"http://www.w3.org/TR/1999/REC-xslt-19991116", "XSLT transform"},
           {"http://www.w3.org/TR/1999/REC-xpath-19991116", "XPath transform"},
           {"http://www.w3.org/2002/06/xmldsig-filter2", "XPath Filter 2.0 transform"},
           {"http://www.w3.org/2001/04/xmldsig-more#xptr", "XPointer transform"},
           {"http://www.w3.org/2000/09/xmldsig#base64", "base64 transform"},
           {NULL, NULL}};
  for (int i = 0; href && t[i].href; i++)
    if (!strcmp(t[i].href, href)) return t[i].what;
  return NULL;
}

/* ---- small tree helpers ---- */

static int is_ds(const xmlNode *n, const char *local) {
  return n && n->type == XML_ELEMENT_NODE && n->ns && !strcmp((const char *)n->ns->href, DSIG_NS) &&
         !strcmp((const char *)n->name, local);
}

static int is_el(const xmlNode *n, const char *ns, const char *local) {
  return n && n->type == XML_ELEMENT_NODE && n->ns && !strcmp((const char *)n->ns->href, ns) &&
         !strcmp((const char *)n->name, local);
}

static xmlNodePtr first_el(xmlNodePtr n) {
  while (n && n->type != XML_ELEMENT_NODE) n = n->next;
  return n;
}

static xmlNodePtr next_el(xmlNodePtr n) {
  return n ? first_el(n->next) : NULL;
}

static xmlNodePtr child_el(xmlNodePtr parent, const char *ns, const char *local) {
  for (xmlNodePtr c = parent ? first_el(parent->children) : NULL; c; c = next_el(c))
    if (is_el(c, ns, local)) return c;
  return NULL;
}

static void collect_ds(xmlNodePtr n, const char *local, xmlNodePtr *found, size_t cap, size_t *count) {
  for (; n; n = n->next) {
    if (n->type != XML_ELEMENT_NODE) continue;
    if (is_ds(n, local)) {
      if (*count < cap) found[*count] = n;
      (*count)++;
    }
    collect_ds(n->children, local, found, cap, count);
  }
}

static char *attr(xmlNodePtr n, const char *name) {
  return (char *)xmlGetProp(n, (const xmlChar *)name);
}

/* ---- signing ---- */

struct hub_xmldsig_signer {
  xmlSecKeyPtr key;
  xmlDocPtr tmpl_doc; /* holds the Signature templates copied into each document */
  xmlNodePtr tmpl;    /* for xmlsec: X509Data empty, xmlsec fills it */
  xmlNodePtr fast;    /* for the direct path: X509Certificate already filled in */
  int profile;        /* 0 auto, 1 edxml, 2 generic */
  EVP_PKEY *pkey;     /* borrowed from key */
  EVP_MD *sign_md, *ref_md; /* owned (fetched) */
  EVP_PKEY_CTX *sign_ctx;   /* initialised once (padding, digest); each signature uses a copy */
  int c14n_mode;      /* XML_C14N_* */
  int ec_half;        /* EC: bytes of r and of s; 0 for RSA */
  int pss;            /* RSA-PSS padding */
  char identity[512];
};

void hub_xmldsig_signer_destroy(struct hub_xmldsig_signer *s) {
  if (!s) return;
  if (s->key) xmlSecKeyDestroy(s->key);
  xmlFreeNode(s->fast); /* not linked into tmpl_doc */
  EVP_PKEY_CTX_free(s->sign_ctx);
  EVP_MD_free(s->sign_md);
  EVP_MD_free(s->ref_md);
  xmlFreeDoc(s->tmpl_doc);
  free(s);
}

EVP_PKEY *hub_xmldsig_signer_get_pkey(const struct hub_xmldsig_signer *s) {
  return s->pkey;
}

const char *hub_xmldsig_signer_get_identity(const struct hub_xmldsig_signer *s) {
  return s->identity;
}

static char *b64_new(const unsigned char *d, size_t n) {
  char *b = malloc(4 * ((n + 2) / 3) + 1);
  if (b) EVP_EncodeBlock((unsigned char *)b, d, (int)n);
  return b;
}

/* The direct signing path (hub_xmldsig_sign) needs the digests, the c14n mode and a template
 * with the certificates (leaf first, then the intermediates of the PEM file) in X509Data. */
static hub_err_t fast_setup(struct hub_xmldsig_signer *s, STACK_OF(X509) *certs, const struct alg *sa,
                            const struct alg *dg, const struct alg *c14n, char *errbuf, size_t errbuf_size) {
  /* fetched once: OpenSSL 3 would otherwise look the digest up on every signature */
  static const char *const mds[][2] = {{"sha224", "SHA2-224"}, {"sha256", "SHA2-256"}, {"sha384", "SHA2-384"},
                                       {"sha512", "SHA2-512"}};
  for (size_t i = 0; i < sizeof mds / sizeof mds[0]; i++) {
    if (strstr(sa->name, mds[i][0]) && !s->sign_md) s->sign_md = EVP_MD_fetch(NULL, mds[i][1], NULL);
    if (!strcmp(dg->name, mds[i][0]) && !s->ref_md) s->ref_md = EVP_MD_fetch(NULL, mds[i][1], NULL);
  }
  s->c14n_mode = !strncmp(c14n->name, "exclusive", 9) ? XML_C14N_EXCLUSIVE_1_0
                 : strstr(c14n->name, "1.1")          ? XML_C14N_1_1
                                                      : XML_C14N_1_0;
  s->ec_half = sa->key == K_EC ? (EVP_PKEY_get_bits(s->pkey) + 7) / 8 : 0;
  s->pss = !strncmp(sa->name, "rsa-pss", 7);
  /* A copy of a prepared context costs less than EVP_DigestSignInit's look-ups on every call. */
  s->sign_ctx = s->sign_md ? EVP_PKEY_CTX_new_from_pkey(NULL, s->pkey, NULL) : NULL;
  int ok = s->sign_ctx && EVP_PKEY_sign_init(s->sign_ctx) == 1 &&
           EVP_PKEY_CTX_set_signature_md(s->sign_ctx, s->sign_md) == 1 &&
           (!s->pss || hub_rsapss_set_params(s->sign_ctx, s->sign_md) == 0);
  s->fast = xmlDocCopyNode(s->tmpl, s->tmpl_doc, 1);
  xmlNodePtr x509 = s->fast ? child_el(child_el(s->fast, DSIG_NS, "KeyInfo"), DSIG_NS, "X509Data") : NULL;
  ok = ok && s->ref_md && x509;
  for (int i = 0; ok && i < sk_X509_num(certs); i++) {
    unsigned char *der = NULL;
    int n = i2d_X509(sk_X509_value(certs, i), &der);
    char *b64 = n > 0 ? b64_new(der, (size_t)n) : NULL;
    ok = b64 && xmlNewTextChild(x509, x509->ns, (const xmlChar *)"X509Certificate", (const xmlChar *)b64);
    free(b64);
    OPENSSL_free(der);
  }
  if (!ok) {
    snprintf(errbuf, errbuf_size, "cannot build the signature template");
    return HUB_ERR_CRYPTO;
  }
  return HUB_OK;
}

hub_err_t hub_xmldsig_signer_new(const char *key_pem, const char *cert_pem, const struct hub_xmldsig_sign_opts *opts,
                                 struct hub_xmldsig_signer **out, char *errbuf, size_t errbuf_size) {
  hub_err_t rc = HUB_ERR_CONFIG;
  struct hub_xmldsig_sign_opts o = opts ? *opts : (struct hub_xmldsig_sign_opts){0};
  struct hub_xmldsig_signer *s = NULL;
  STACK_OF(X509) *certs = NULL;
  X509 *cert = NULL; /* the leaf, borrowed from certs */
  *out = NULL;
  if (hub_xmldsig_init() != HUB_OK) {
    snprintf(errbuf, errbuf_size, "xmlsec initialisation failed: %s", last_err);
    return HUB_ERR_CRYPTO;
  }
  last_err[0] = '\0';
  if (!key_pem || !cert_pem) {
    snprintf(errbuf, errbuf_size, "signing needs a private key and a certificate (PEM files)");
    return HUB_ERR_CONFIG;
  }
  if (!(s = calloc(1, sizeof *s))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  FILE *probe = fopen(key_pem, "rb");
  if (!probe) {
    snprintf(errbuf, errbuf_size, "%s: cannot open: %s", key_pem, strerror(errno));
    goto out;
  }
  fclose(probe);
  s->key = xmlSecCryptoAppKeyLoad(key_pem, xmlSecKeyDataFormatPem, NULL, NULL, NULL);
  if (!s->key) {
    snprintf(errbuf, errbuf_size, "%s: not a PEM private key", key_pem);
    goto out;
  }
  if (!(certs = hub_x509_load_pem_file(cert_pem, errbuf, errbuf_size))) goto out;
  cert = sk_X509_value(certs, 0);
  if (xmlSecCryptoAppKeyCertLoad(s->key, cert_pem, xmlSecKeyDataFormatPem) < 0) {
    snprintf(errbuf, errbuf_size, "%s: cannot attach the certificate: %s", cert_pem, last_err);
    goto out;
  }
  /* intermediates after the leaf go into X509Data too, for xmlsec's path as for ours */
  xmlSecKeyDataPtr x509data = xmlSecKeyEnsureData(s->key, xmlSecOpenSSLKeyDataX509Id);
  for (int i = 1; i < sk_X509_num(certs); i++) {
    X509 *dup = X509_dup(sk_X509_value(certs, i));
    if (!x509data || !dup || xmlSecOpenSSLKeyDataX509AdoptCert(x509data, dup) < 0) {
      X509_free(dup);
      snprintf(errbuf, errbuf_size, "%s: cannot attach certificate %d: %s", cert_pem, i + 1, last_err);
      goto out;
    }
  }
  EVP_PKEY *pk = xmlSecOpenSSLEvpKeyDataGetEvp(xmlSecKeyGetValue(s->key));
  if (!pk || X509_check_private_key(cert, pk) != 1) {
    ERR_clear_error();
    snprintf(errbuf, errbuf_size, "%s does not match the certificate %s", key_pem, cert_pem);
    goto out;
  }
  s->pkey = pk;
  int ktype = EVP_PKEY_base_id(pk) == EVP_PKEY_RSA ? K_RSA : EVP_PKEY_base_id(pk) == EVP_PKEY_EC ? K_EC : 0;
  if (!ktype) {
    snprintf(errbuf, errbuf_size, "%s: only RSA and EC keys can sign XML", key_pem);
    goto out;
  }
  if (!o.alg) o.alg = ktype == K_RSA ? "rsa-sha256" : EVP_PKEY_get_bits(pk) > 256 ? "ecdsa-sha384" : "ecdsa-sha256";
  const struct alg *sa = alg_by_name(sig_algs, o.alg);
  if (!sa || sa->sha1) {
    snprintf(errbuf, errbuf_size, "signature algorithm '%s' is not supported for signing (rsa-sha256, rsa-sha384, "
             "rsa-sha512, rsa-pss-sha256, rsa-pss-sha384, rsa-pss-sha512, ecdsa-sha256, ecdsa-sha384, ecdsa-sha512)",
             o.alg);
    goto out;
  }
  if (sa->key != ktype) {
    snprintf(errbuf, errbuf_size, "signature algorithm '%s' does not fit the %s key in %s", o.alg,
             ktype == K_RSA ? "RSA" : "EC", key_pem);
    goto out;
  }
  const struct alg *c14n = alg_by_name(c14n_algs, o.c14n ? o.c14n : "exclusive");
  if (!c14n) {
    snprintf(errbuf, errbuf_size, "c14n '%s' is not one of exclusive, inclusive, inclusive-1.1", o.c14n);
    goto out;
  }
  const struct alg *dg = alg_by_name(digest_algs, o.digest ? o.digest : "sha256");
  if (!dg || dg->sha1) {
    snprintf(errbuf, errbuf_size, "digest '%s' is not one of sha256, sha384, sha512", o.digest);
    goto out;
  }
  if (!o.profile) s->profile = 0;
  else if (!strcmp(o.profile, "edxml")) s->profile = 1;
  else if (!strcmp(o.profile, "generic")) s->profile = 2;
  else {
    snprintf(errbuf, errbuf_size, "profile '%s' is not one of edxml, generic", o.profile);
    goto out;
  }
  /* The template is built once; each signature starts from a copy of it. */
  s->tmpl_doc = xmlNewDoc((const xmlChar *)"1.0");
  s->tmpl = s->tmpl_doc ? xmlSecTmplSignatureCreate(s->tmpl_doc, c14n->klass(), sa->klass(), NULL) : NULL;
  xmlNodePtr ref = s->tmpl ? xmlSecTmplSignatureAddReference(s->tmpl, dg->klass(), NULL, (const xmlChar *)"", NULL)
                           : NULL;
  xmlNodePtr ki = s->tmpl ? xmlSecTmplSignatureEnsureKeyInfo(s->tmpl, NULL) : NULL;
  if (!ref || !xmlSecTmplReferenceAddTransform(ref, xmlSecTransformEnvelopedId) ||
      !xmlSecTmplReferenceAddTransform(ref, c14n->klass()) || !ki || !xmlSecTmplKeyInfoAddX509Data(ki)) {
    snprintf(errbuf, errbuf_size, "cannot build the signature template: %s", last_err);
    rc = HUB_ERR_CRYPTO;
    goto out;
  }
  xmlDocSetRootElement(s->tmpl_doc, s->tmpl);
  if ((rc = fast_setup(s, certs, sa, dg, c14n, errbuf, errbuf_size)) != HUB_OK) goto out;
  hub_x509_signer_string(cert, s->identity, sizeof s->identity);
  *out = s;
  s = NULL;
  rc = HUB_OK;
out:
  sk_X509_pop_free(certs, X509_free);
  hub_xmldsig_signer_destroy(s);
  return rc;
}

/* Where the signature goes: edXML wants it in edXMLHeader after TraceHeaderList (QCVN 102 §1.5
 * of vn-standards.md); anything else gets it as the last child of the root. */
static hub_err_t place_signature(const struct hub_xmldsig_signer *s, xmlDocPtr doc, xmlNodePtr sig, char *errbuf,
                                 size_t errbuf_size) {
  xmlNodePtr root = xmlDocGetRootElement(doc);
  int edxml = s->profile == 1 || (s->profile == 0 && is_el(root, HUB_EDXML_NS, "edXML"));
  if (!edxml) {
    if (!xmlAddChild(root, sig)) goto fail;
    return HUB_OK;
  }
  xmlNodePtr header = is_el(root, HUB_EDXML_NS, "edXML")
                          ? child_el(child_el(root, HUB_EDXML_NS, "edXMLEnvelope"), HUB_EDXML_NS, "edXMLHeader")
                          : NULL;
  if (!header) {
    snprintf(errbuf, errbuf_size, "profile edxml: no edXML/edXMLEnvelope/edXMLHeader in the document");
    return HUB_ERR_INVALID_ARG;
  }
  xmlNodePtr trace = child_el(header, HUB_EDXML_NS, "TraceHeaderList");
  if (!(trace ? xmlAddNextSibling(trace, sig) : xmlAddChild(header, sig))) goto fail;
  return HUB_OK;
fail:
  snprintf(errbuf, errbuf_size, "cannot insert the signature");
  return HUB_ERR_NOMEM;
}

/* Text nodes longer than this are cut into nodes of at most this size before c14n. libxml2's
 * c14n escapes each text node into a fresh buffer (xmlC11NNormalizeText) before writing it, so
 * a 50 MB base64 attachment would cost another 50 MB; cut, it costs one piece. Adjacent text
 * nodes canonicalise to the same bytes as one node, so digests do not change. */
#define TEXT_PIECE (1u << 20)

/* Cuts the pieces off the end, shrinking the node as it goes, so the text is never held twice.
 * Linked by hand: xmlAddNextSibling would merge the text nodes again. */
static hub_err_t split_text(xmlDocPtr doc, xmlNodePtr n) {
  size_t len = xmlStrlen(n->content);
  if (xmlDictOwns(doc->dict, n->content) || n->content == (xmlChar *)&n->properties) return HUB_OK;
  while (len > TEXT_PIECE) {
    size_t cut = (len - 1) / TEXT_PIECE * TEXT_PIECE;
    xmlNodePtr t = xmlNewDocTextLen(doc, n->content + cut, (int)(len - cut));
    if (!t) return HUB_ERR_NOMEM;
    t->parent = n->parent;
    t->prev = n;
    t->next = n->next;
    if (n->next)
      n->next->prev = t;
    else if (n->parent)
      n->parent->last = t;
    n->next = t;
    n->content[cut] = '\0';
    len = cut;
    xmlChar *shrunk = realloc(n->content, len + 1); /* gives the cut pages back */
    if (shrunk) n->content = shrunk;
  }
  return HUB_OK;
}

static hub_err_t split_big_text(xmlDocPtr doc, xmlNodePtr n) {
  for (; n; n = n->next) {
    if (n->type == XML_TEXT_NODE && n->content && xmlStrlen(n->content) > (int)TEXT_PIECE) {
      if (split_text(doc, n) != HUB_OK) return HUB_ERR_NOMEM;
    } else if (n->type == XML_ELEMENT_NODE && split_big_text(doc, n->children) != HUB_OK) {
      return HUB_ERR_NOMEM;
    }
  }
  return HUB_OK;
}

/* Parses a document to be signed: it must not carry a signature yet (the verifier wants one). */
static hub_err_t parse_unsigned(const void *xml, size_t len, xmlDocPtr *doc, char *errbuf, size_t errbuf_size) {
  hub_err_t rc = hub_xml_parse(xml, len, NULL, NULL, doc, errbuf, errbuf_size);
  if (rc) return rc;
  size_t n_sig = 0;
  xmlNodePtr found[1];
  collect_ds(xmlDocGetRootElement(*doc), "Signature", found, 1, &n_sig);
  if (n_sig) {
    snprintf(errbuf, errbuf_size, "the document already carries a signature (line %d)", found[0]->line);
    return HUB_ERR_SIG_POLICY;
  }
  if (split_big_text(*doc, (*doc)->children) != HUB_OK) {
    snprintf(errbuf, errbuf_size, "out of memory");
    return HUB_ERR_NOMEM;
  }
  return HUB_OK;
}

/* The whole tree serialised as UTF-8 into a malloc'd, NUL-terminated buffer. */
static hub_err_t dump_doc(xmlDocPtr doc, unsigned char **out, size_t *out_len, char *errbuf, size_t errbuf_size) {
  xmlChar *buf = NULL;
  int size = 0;
  xmlDocDumpMemoryEnc(doc, &buf, &size, "UTF-8");
  if (!buf || size <= 0 || !(*out = malloc((size_t)size + 1))) {
    xmlFree(buf);
    snprintf(errbuf, errbuf_size, "cannot serialise the signed document");
    return HUB_ERR_NOMEM;
  }
  memcpy(*out, buf, (size_t)size);
  (*out)[size] = '\0';
  *out_len = (size_t)size;
  xmlFree(buf);
  return HUB_OK;
}

hub_err_t hub_xmldsig_sign_xmlsec(const struct hub_xmldsig_signer *s, const void *xml, size_t len, unsigned char **out,
                                  size_t *out_len, char *errbuf, size_t errbuf_size) {
  xmlDocPtr doc = NULL;
  xmlSecDSigCtx ctx;
  int ctx_ready = 0;
  *out = NULL;
  *out_len = 0;
  last_err[0] = '\0';
  hub_err_t rc = parse_unsigned(xml, len, &doc, errbuf, errbuf_size);
  if (rc) goto out;
  xmlNodePtr sig = xmlDocCopyNode(s->tmpl, doc, 1);
  if (!sig) {
    rc = HUB_ERR_NOMEM;
    snprintf(errbuf, errbuf_size, "out of memory");
    goto out;
  }
  if ((rc = place_signature(s, doc, sig, errbuf, errbuf_size)) != HUB_OK) {
    xmlFreeNode(sig);
    goto out;
  }
  if (xmlSecDSigCtxInitialize(&ctx, NULL) < 0) {
    rc = HUB_ERR_CRYPTO;
    snprintf(errbuf, errbuf_size, "xmlsec: %s", last_err);
    goto out;
  }
  ctx_ready = 1;
  ctx.signKey = s->key; /* borrowed: cleared before finalize */
  if (xmlSecDSigCtxSign(&ctx, sig) < 0) {
    rc = HUB_ERR_CRYPTO;
    snprintf(errbuf, errbuf_size, "signing failed: %s", last_err);
    goto out;
  }
  rc = dump_doc(doc, out, out_len, errbuf, errbuf_size);
out:
  if (ctx_ready) {
    ctx.signKey = NULL;
    xmlSecDSigCtxFinalize(&ctx);
  }
  xmlFreeDoc(doc);
  return rc;
}

/* ---- direct signing ----
 * The same signature as hub_xmldsig_sign_xmlsec, computed with libxml2's c14n and OpenSSL
 * directly: xmlsec evaluates the enveloped reference through node-set callbacks, which costs
 * more than the RSA operation for a 4 KB packet. The reference is c14n(document) taken before
 * the signature is inserted (that is exactly the enveloped-signature node set, as no other
 * node is added), then SignedInfo is canonicalised as a subtree and signed. The tests check
 * that both paths give identical RSA signature values and that xmlsec, xmlsec1 and Santuario
 * verify the result. */

struct digest_sink {
  EVP_MD_CTX *md;
  int failed;
};

static int sink_write(void *ctx, const char *buf, int len) {
  struct digest_sink *d = ctx;
  if (EVP_DigestUpdate(d->md, buf, (size_t)len) != 1) d->failed = 1;
  return len;
}

static int sink_close(void *ctx) {
  (void)ctx;
  return 0;
}

/* ---- canonicalisation of a node set, shared by signing and verification ----
 * The node sets the hub signs and verifies are all of one kind: the whole document or one
 * element's subtree, without comments, minus the Signature element under enveloped-signature.
 * They are canonicalised with libxml2's xmlC14NExecute directly, not through xmlsec's node-set
 * machinery (a callback per node over an XPath node set: on a flood of empty elements that was
 * two thirds of the verification time). */

/* Visibility for a subtree: the element `root`, its attributes and namespace nodes and all
 * below. The answer for a node's parent is cached: libxml2 asks for siblings one after another,
 * so a deep subtree does not cost its depth at every node. */
struct subtree {
  xmlNodePtr root;
  xmlNodePtr parent; /* the last parent asked about */
  int parent_in;
};

static int in_tree(xmlNodePtr n, xmlNodePtr top) {
  for (; n; n = n->parent)
    if (n == top) return 1;
  return 0;
}

static int in_subtree(void *ctx, xmlNodePtr node, xmlNodePtr parent) {
  struct subtree *t = ctx;
  xmlNodePtr n = (node && node->type != XML_NAMESPACE_DECL) ? node : parent;
  if (n == t->root) return 1;
  if (!n || !n->parent) return 0;
  if (n->parent != t->parent) {
    t->parent = n->parent;
    t->parent_in = in_tree(n->parent, t->root);
  }
  return t->parent_in;
}

/* libxml2's c14n walks the whole document and calls the visibility callback at every node
 * (making lists of namespaces and attributes at every element) even when it renders a small
 * subtree: the SignedInfo of a 1 MB document cost a pass over all of it. Cutting every ancestor
 * of the subtree down to the one child on the path for the duration leaves it the path and the
 * subtree to walk; the output is the same, since the ancestors are not rendered and c14n reads
 * only their own namespace declarations and xml: attributes, never their other children. */
struct cut {
  xmlNodePtr node, prev, next, first, last; /* node's siblings and its parent's children */
};

static struct cut *prune(xmlNodePtr top, size_t *n_out) {
  size_t n = 0;
  for (xmlNodePtr x = top; x && x->parent; x = x->parent) n++;
  struct cut *c = malloc((n ? n : 1) * sizeof *c);
  if (!c) return NULL;
  n = 0;
  for (xmlNodePtr x = top; x && x->parent; x = x->parent, n++) {
    xmlNodePtr p = x->parent; /* an element or the document node (same layout for these fields) */
    c[n] = (struct cut){x, x->prev, x->next, p->children, p->last};
    x->prev = x->next = NULL;
    p->children = p->last = x;
  }
  *n_out = n;
  return c;
}

static void unprune(struct cut *c, size_t n) {
  while (n--) {
    c[n].node->prev = c[n].prev;
    c[n].node->next = c[n].next;
    c[n].node->parent->children = c[n].first;
    c[n].node->parent->last = c[n].last;
  }
  free(c);
}

/* Takes `n` out of its parent's children (enveloped-signature) and puts it back, by hand: libxml2's
 * own functions would merge the text nodes on either side. n keeps its pointers meanwhile. */
static void detach(xmlNodePtr n) {
  if (n->prev) n->prev->next = n->next;
  else n->parent->children = n->next;
  if (n->next) n->next->prev = n->prev;
  else n->parent->last = n->prev;
}

static void reattach(xmlNodePtr n) {
  if (n->prev) n->prev->next = n;
  else n->parent->children = n;
  if (n->next) n->next->prev = n;
  else n->parent->last = n;
}

/* Canonical form, without comments unless `comments`, of the subtree of `root` (NULL: the whole
 * document), without the element `skip` (NULL: none), written to `ob`, which is closed. */
static int c14n_write(xmlDocPtr doc, xmlNodePtr root, xmlNodePtr skip, int mode, xmlChar **prefixes, int comments,
                      xmlOutputBufferPtr ob) {
  if (!ob) return -1;
  struct subtree vis = {root, NULL, 0};
  struct cut *cuts = NULL;
  size_t n_cuts = 0;
  int rc = -1;
  if (skip) detach(skip);
  if (!root || (cuts = prune(root, &n_cuts)) != NULL)
    rc = xmlC14NExecute(doc, root ? in_subtree : NULL, root ? &vis : NULL, mode, prefixes, comments, ob);
  if (cuts) unprune(cuts, n_cuts);
  if (skip) reattach(skip);
  if (xmlOutputBufferClose(ob) < 0) rc = -1;
  return rc < 0 ? -1 : 0;
}

/* The same into a digest. */
static int c14n_digest(xmlDocPtr doc, xmlNodePtr root, xmlNodePtr skip, int mode, xmlChar **prefixes, int comments,
                       EVP_MD_CTX *md) {
  struct digest_sink sink = {md, 0};
  int rc = c14n_write(doc, root, skip, mode, prefixes, comments,
                      xmlOutputBufferCreateIO(sink_write, sink_close, &sink, NULL));
  return rc < 0 || sink.failed ? -1 : 0;
}

/* Where the serialised signature goes in the input bytes, so that the rest of the document
 * keeps its exact bytes. The place is found as the end tag of the previous sibling or of the
 * parent; only when that tag's text occurs exactly once in the input (it could also appear in a
 * comment or CDATA) and the input is UTF-8. On success *at is the offset and *sigxml (owned)
 * the signature element. Otherwise returns HUB_ERR_NOT_FOUND and the caller serialises the
 * tree. Planning first lets the caller free the tree before the output is allocated: a 50 MB
 * packet is then never held as input, tree and output at once. */
static hub_err_t splice_plan(xmlDocPtr doc, xmlNodePtr sig, const void *xml, size_t len, size_t *at_out,
                             xmlBufferPtr *sigxml) {
  const char *in = xml;
  char tag[300];
  xmlNodePtr prev = sig->prev;
  while (prev && prev->type != XML_ELEMENT_NODE) prev = prev->prev;
  if (doc->encoding && xmlStrcasecmp(doc->encoding, (const xmlChar *)"UTF-8")) return HUB_ERR_NOT_FOUND;
  /* after </prev> when the signature follows an element directly, else before </parent> */
  int after = prev && prev->next == sig;
  xmlNodePtr anchor = after ? prev : sig->parent;
  if (after && !prev->children) return HUB_ERR_NOT_FOUND; /* <x/> has no end tag */
  if (!anchor || anchor->type != XML_ELEMENT_NODE) return HUB_ERR_NOT_FOUND;
  if (anchor->ns && anchor->ns->prefix)
    snprintf(tag, sizeof tag, "</%s:%s>", anchor->ns->prefix, anchor->name);
  else
    snprintf(tag, sizeof tag, "</%s>", anchor->name);
  size_t tl = strlen(tag);
  const char *hit = NULL;
  for (const char *p = memmem(in, len, tag, tl); p; p = memmem(p + 1, len - (size_t)(p + 1 - in), tag, tl)) {
    if (hit) return HUB_ERR_NOT_FOUND;
    hit = p;
  }
  if (!hit) return HUB_ERR_NOT_FOUND;
  xmlBufferPtr b = xmlBufferCreate();
  if (!b) return HUB_ERR_NOMEM;
  if (xmlNodeDump(b, doc, sig, 0, 0) < 0) {
    xmlBufferFree(b);
    return HUB_ERR_NOT_FOUND;
  }
  *at_out = (size_t)(hit - in) + (after ? tl : 0);
  *sigxml = b;
  return HUB_OK;
}

/* The input with the signature inserted at `at` (malloc'd, NUL-terminated). */
static hub_err_t splice_write(const void *xml, size_t len, size_t at, xmlBufferPtr sigxml, unsigned char **out,
                              size_t *out_len) {
  const char *in = xml;
  size_t sl = (size_t)xmlBufferLength(sigxml);
  unsigned char *o = malloc(len + sl + 1);
  if (!o) return HUB_ERR_NOMEM;
  memcpy(o, in, at);
  memcpy(o + at, xmlBufferContent(sigxml), sl);
  memcpy(o + at + sl, in + at, len - at);
  o[len + sl] = '\0';
  *out = o;
  *out_len = len + sl;
  return HUB_OK;
}

hub_err_t hub_xmldsig_sign(const struct hub_xmldsig_signer *s, const void *xml, size_t len, unsigned char **out,
                           size_t *out_len, char *errbuf, size_t errbuf_size) {
  xmlDocPtr doc = NULL, tiny = NULL;
  EVP_MD_CTX *md = NULL;
  unsigned char digest[EVP_MAX_MD_SIZE], sig[1024];
  unsigned int dlen = 0;
  size_t slen = sizeof sig;
  char *b64 = NULL;
  *out = NULL;
  *out_len = 0;
  hub_err_t rc = parse_unsigned(xml, len, &doc, errbuf, errbuf_size);
  if (rc) goto out;
  rc = HUB_ERR_CRYPTO;
  /* the reference: the document as it is now, without comments */
  if (!(md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(md, s->ref_md, NULL) != 1 ||
      c14n_digest(doc, NULL, NULL, s->c14n_mode, NULL, 0, md) < 0 || EVP_DigestFinal_ex(md, digest, &dlen) != 1) {
    snprintf(errbuf, errbuf_size, "canonicalisation of the document failed");
    goto out;
  }
  /* Exclusive c14n of SignedInfo depends on its subtree only, so it is computed in a small
   * document holding just the Signature: libxml2's c14n visits every node of the document it
   * is given. Inclusive c14n takes in-scope namespaces from the ancestors, so there the
   * signature is placed first and SignedInfo canonicalised where it sits (c14n_write cuts
   * the walk down to the path to it). */
  int exclusive = s->c14n_mode == XML_C14N_EXCLUSIVE_1_0;
  if (exclusive && !(tiny = xmlNewDoc((const xmlChar *)"1.0"))) {
    rc = HUB_ERR_NOMEM;
    snprintf(errbuf, errbuf_size, "out of memory");
    goto out;
  }
  xmlNodePtr sigel = xmlDocCopyNode(s->fast, exclusive ? tiny : doc, 1);
  if (!sigel) {
    rc = HUB_ERR_NOMEM;
    snprintf(errbuf, errbuf_size, "out of memory");
    goto out;
  }
  if (exclusive) {
    xmlDocSetRootElement(tiny, sigel);
  } else if ((rc = place_signature(s, doc, sigel, errbuf, errbuf_size)) != HUB_OK) {
    xmlFreeNode(sigel);
    goto out;
  }
  rc = HUB_ERR_CRYPTO;
  xmlNodePtr si = child_el(sigel, DSIG_NS, "SignedInfo");
  xmlNodePtr dv = child_el(child_el(si, DSIG_NS, "Reference"), DSIG_NS, "DigestValue");
  xmlNodePtr sv = child_el(sigel, DSIG_NS, "SignatureValue");
  if (!dv || !sv || !(b64 = b64_new(digest, dlen))) goto fail;
  xmlNodeSetContent(dv, (const xmlChar *)b64);
  free(b64);
  b64 = NULL;
  /* SignedInfo as canonicalised within the document, hashed, then signed with a copy of the
   * prepared context (the signer is shared between threads) */
  EVP_PKEY_CTX *pctx = NULL;
  int signed_ok = EVP_DigestInit_ex(md, s->sign_md, NULL) == 1 &&
                  c14n_digest(exclusive ? tiny : doc, si, NULL, s->c14n_mode, NULL, 0, md) >= 0 &&
                  EVP_DigestFinal_ex(md, digest, &dlen) == 1 && (pctx = EVP_PKEY_CTX_dup(s->sign_ctx)) &&
                  EVP_PKEY_sign(pctx, sig, &slen, digest, dlen) == 1;
  EVP_PKEY_CTX_free(pctx);
  if (!signed_ok) goto fail;
  if (s->ec_half) { /* XML-DSig wants r||s, OpenSSL gives DER */
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
    const BIGNUM *r, *sv_;
    if (!es) goto fail;
    ECDSA_SIG_get0(es, &r, &sv_);
    int ok = BN_bn2binpad(r, sig, s->ec_half) == s->ec_half && BN_bn2binpad(sv_, sig + s->ec_half, s->ec_half) == s->ec_half;
    ECDSA_SIG_free(es);
    if (!ok) goto fail;
    slen = 2 * (size_t)s->ec_half;
  }
  if (!(b64 = b64_new(sig, slen))) goto fail;
  xmlNodeSetContent(sv, (const xmlChar *)b64);
  if (exclusive) { /* move the finished signature into the document */
    xmlUnlinkNode(sigel);
    xmlSetTreeDoc(sigel, doc);
    if ((rc = place_signature(s, doc, sigel, errbuf, errbuf_size)) != HUB_OK) {
      xmlFreeNode(sigel);
      goto out;
    }
  }
  size_t at = 0;
  xmlBufferPtr sigxml = NULL;
  if ((rc = splice_plan(doc, sigel, xml, len, &at, &sigxml)) == HUB_ERR_NOMEM) {
    snprintf(errbuf, errbuf_size, "out of memory");
    goto out;
  }
  if (rc == HUB_OK) {
    xmlFreeDoc(doc); /* the tree is no longer needed: free it before the output exists */
    doc = NULL;
    rc = splice_write(xml, len, at, sigxml, out, out_len);
    xmlBufferFree(sigxml);
    if (rc != HUB_OK) snprintf(errbuf, errbuf_size, "out of memory");
    goto out;
  }
  if ((rc = dump_doc(doc, out, out_len, errbuf, errbuf_size)) != HUB_OK) /* no unambiguous place */
    goto out;
  rc = HUB_OK;
  goto out;
fail:
  ERR_clear_error();
  snprintf(errbuf, errbuf_size, "signing failed");
out:
  free(b64);
  EVP_MD_CTX_free(md);
  xmlFreeDoc(tiny);
  xmlFreeDoc(doc);
  return rc;
}

/* ---- verification ---- */

struct pinned {
  xmlSecKeyPtr key;
  char identity[512];
};

struct hub_xmldsig_verifier {
  struct hub_truststore *ts;
  struct pinned *pins;
  size_t n_pins;
  int legacy_sha1;
  struct hub_xml_limits limits;
  int max_refs, max_transforms, cost_per_byte;
  int xmlsec_only; /* opts.engine "xmlsec" */
};

void hub_xmldsig_verifier_destroy(struct hub_xmldsig_verifier *v) {
  if (!v) return;
  hub_truststore_destroy(v->ts);
  for (size_t i = 0; i < v->n_pins; i++)
    if (v->pins[i].key) xmlSecKeyDestroy(v->pins[i].key);
  free(v->pins);
  free(v);
}

static hub_err_t load_pin(const char *path, struct pinned *p, char *errbuf, size_t errbuf_size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(errbuf, errbuf_size, "%s: cannot open: %s", path, strerror(errno));
    return HUB_ERR_CONFIG;
  }
  EVP_PKEY *pk = NULL;
  X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
  if (x) {
    pk = X509_get_pubkey(x);
    hub_x509_signer_string(x, p->identity, sizeof p->identity);
    X509_free(x);
  } else {
    rewind(f);
    pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    if (pk) {
      unsigned char *der = NULL;
      int n = i2d_PUBKEY(pk, &der);
      char hex[65];
      unsigned char md[32];
      unsigned int mdlen = 0;
      EVP_Digest(der, n > 0 ? (size_t)n : 0, md, &mdlen, EVP_sha256(), NULL);
      for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
      OPENSSL_free(der);
      snprintf(p->identity, sizeof p->identity, "pinned key %s; sha256=%s", path, hex);
    }
  }
  fclose(f);
  ERR_clear_error();
  if (!pk) {
    snprintf(errbuf, errbuf_size, "%s: neither a PEM certificate nor a PEM public key", path);
    return HUB_ERR_CONFIG;
  }
  xmlSecKeyDataPtr data = xmlSecOpenSSLEvpKeyAdopt(pk);
  if (!data) {
    EVP_PKEY_free(pk);
    snprintf(errbuf, errbuf_size, "%s: key type not supported by xmlsec", path);
    return HUB_ERR_CONFIG;
  }
  p->key = xmlSecKeyCreate();
  if (!p->key || xmlSecKeySetValue(p->key, data) < 0) {
    xmlSecKeyDataDestroy(data);
    snprintf(errbuf, errbuf_size, "out of memory");
    return HUB_ERR_NOMEM;
  }
  return HUB_OK;
}

hub_err_t hub_xmldsig_verifier_new(const struct hub_xmldsig_verify_opts *opts, struct hub_xmldsig_verifier **out,
                                   char *errbuf, size_t errbuf_size) {
  hub_err_t rc = HUB_ERR_CONFIG;
  struct hub_xmldsig_verifier *v = NULL;
  *out = NULL;
  if (hub_xmldsig_init() != HUB_OK) {
    snprintf(errbuf, errbuf_size, "xmlsec initialisation failed: %s", last_err);
    return HUB_ERR_CRYPTO;
  }
  if (!opts->n_trust_ca && !opts->n_pinned) {
    snprintf(errbuf, errbuf_size, "verification needs trusted CA certificates or pinned keys");
    return HUB_ERR_CONFIG;
  }
  if (!(v = calloc(1, sizeof *v))) return HUB_ERR_NOMEM;
  if (opts->policy && strcmp(opts->policy, "default") && strcmp(opts->policy, "legacy-sha1")) {
    snprintf(errbuf, errbuf_size, "unknown policy '%s' (default, legacy-sha1)", opts->policy);
    goto out;
  }
  v->legacy_sha1 = opts->policy && !strcmp(opts->policy, "legacy-sha1");
  if (opts->engine && strcmp(opts->engine, "direct") && strcmp(opts->engine, "xmlsec")) {
    snprintf(errbuf, errbuf_size, "unknown verification engine '%s' (direct, xmlsec)", opts->engine);
    goto out;
  }
  v->xmlsec_only = opts->engine && !strcmp(opts->engine, "xmlsec");
  v->limits.max_bytes = opts->max_bytes;
  v->limits.max_depth = opts->max_depth;
  v->limits.max_attrs = opts->max_attrs;
  v->max_refs = opts->max_references > 0 ? opts->max_references : HUB_XMLDSIG_DEFAULT_MAX_REFERENCES;
  v->max_transforms = opts->max_transforms > 0 ? opts->max_transforms : HUB_XMLDSIG_DEFAULT_MAX_TRANSFORMS;
  v->cost_per_byte = opts->c14n_cost_per_byte > 0 ? opts->c14n_cost_per_byte : HUB_XMLDSIG_DEFAULT_C14N_COST_PER_BYTE;
  if (opts->n_trust_ca &&
      (rc = hub_truststore_new(opts->trust_ca, opts->n_trust_ca, opts->crl, opts->n_crl, opts->clock_skew_s, &v->ts,
                               errbuf, errbuf_size)) != HUB_OK)
    goto out;
  if (v->ts && opts->cert_policy && (rc = hub_truststore_set_policy(v->ts, opts->cert_policy, errbuf, errbuf_size)))
    goto out;
  if (opts->n_pinned) {
    if (!(v->pins = calloc(opts->n_pinned, sizeof *v->pins))) {
      rc = HUB_ERR_NOMEM;
      goto out;
    }
    for (; v->n_pins < opts->n_pinned; v->n_pins++)
      if ((rc = load_pin(opts->pinned[v->n_pins], &v->pins[v->n_pins], errbuf, errbuf_size)) != HUB_OK) {
        v->n_pins++;
        goto out;
      }
  }
  *out = v;
  v = NULL;
  rc = HUB_OK;
out:
  hub_xmldsig_verifier_destroy(v);
  return rc;
}

void hub_xmldsig_result_release(struct hub_xmldsig_result *res) {
  free(res->detail);
  res->detail = NULL;
  res->detail_len = 0;
  xmlFreeDoc(res->doc);
  res->doc = NULL;
  res->element = NULL;
}

static hub_err_t fail(struct hub_xmldsig_result *res, hub_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static hub_err_t fail(struct hub_xmldsig_result *res, hub_err_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->reason, sizeof res->reason, fmt, ap);
  va_end(ap);
  return code;
}

static hub_err_t check_alg(struct hub_xmldsig_result *res, const struct alg *table, const char *what, const char *href,
                           int legacy, const struct alg **found) {
  const struct alg *a = alg_by_href(table, href);
  if (!a) {
    return fail(res, HUB_ERR_SIG_POLICY, "algorithm not allowed: %s '%s'", what, href ? href : "(none)");
  }
  if (a->sha1 && !legacy)
    return fail(res, HUB_ERR_SIG_POLICY, "algorithm not allowed: %s %s (SHA-1) needs policy legacy-sha1", what,
                a->name);
  *found = a;
  return HUB_OK;
}

#define EXC_C14N_NS "http://www.w3.org/2001/10/xml-exc-c14n#"

/* Exclusive c14n's parameter (RFC 3741 / exc-c14n §3): an ec:InclusiveNamespaces with only a
 * PrefixList, as the one child of a CanonicalizationMethod or Transform whose algorithm is
 * exclusive c14n. It sits inside SignedInfo, so the signature covers it; xmlsec applies it. */
static int inclusive_namespaces(xmlNodePtr n) {
  xmlNodePtr p = n->parent;
  if (!is_el(n, EXC_C14N_NS, "InclusiveNamespaces") || first_el(n->children) || !p ||
      !(is_ds(p, "CanonicalizationMethod") || is_ds(p, "Transform")) || first_el(p->children) != n || next_el(n))
    return 0;
  for (xmlAttrPtr a = n->properties; a; a = a->next)
    if (a->ns || strcmp((const char *)a->name, "PrefixList")) return 0;
  xmlChar *alg = xmlGetProp(p, (const xmlChar *)"Algorithm");
  int ok = alg && (!strcmp((const char *)alg, EXC_C14N_NS) || !strcmp((const char *)alg, EXC_C14N_NS "WithComments"));
  xmlFree(alg);
  return ok;
}

/* The first element under `n` (skipping `skip`) outside the XML-DSig namespaces, or NULL. */
static xmlNodePtr foreign_element(xmlNodePtr n, xmlNodePtr skip) {
  static const char *const ok[] = {DSIG_NS, "http://www.w3.org/2009/xmldsig11#",
                                   "http://www.w3.org/2001/04/xmldsig-more#", NULL};
  for (; n; n = n->next) {
    if (n->type != XML_ELEMENT_NODE || n == skip) continue;
    int known = 0;
    for (int i = 0; ok[i] && !known; i++) known = n->ns && !strcmp((const char *)n->ns->href, ok[i]);
    if (!known && inclusive_namespaces(n)) continue;
    if (!known) return n;
    xmlNodePtr f = foreign_element(n->children, skip);
    if (f) return f;
  }
  return NULL;
}

/* Nothing the signature does not cover may hide in it: with references limited to the processed
 * element, an Object is unsigned content, and a business element in KeyInfo or an Object would
 * be found by a reader searching the document (the classic wrapping place). The processed
 * element itself may sit in an Object (enveloping signatures, the W3C vectors). */
static hub_err_t check_unsigned_parts(xmlNodePtr sig, xmlNodePtr target, struct hub_xmldsig_result *res) {
  if (target == sig)
    return fail(res, HUB_ERR_SIG_POLICY, "the processed element is the Signature itself: it signs nothing else");
  for (xmlNodePtr c = first_el(sig->children); c; c = next_el(c))
    if (is_ds(c, "Object") && !in_tree(target, c))
      return fail(res, HUB_ERR_SIG_POLICY, "Object at line %d inside the signature is not signed (only the processed "
                  "element may be referenced)", c->line);
  xmlNodePtr f = foreign_element(sig->children, target);
  if (f)
    return fail(res, HUB_ERR_SIG_POLICY, "foreign element %s at line %d inside the signature: unsigned content is "
                "not accepted", (const char *)f->name, f->line);
  return HUB_OK;
}

/* What the references will cost, gathered by check_structure for the cost estimate. */
struct sig_plan {
  int si_inclusive;     /* SignedInfo canonicalised with inclusive c14n */
  long incl_passes;     /* references canonicalised with inclusive c14n (the default when none is named) */
  long excl_passes;     /* references canonicalised with exclusive c14n */
  long transforms;      /* transforms in all references: each walks the target's node set once */
  int xmlsec;           /* a reference the direct path does not take (c14n with comments): run xmlsec */
  int enveloped;        /* a reference has the enveloped-signature transform */
  uint64_t prefixes;    /* the longest exclusive PrefixList of a reference (each prefix is a search per element) */
  uint64_t si_prefixes; /* SignedInfo's */
};

/* Entries of the PrefixList of an exclusive c14n method or transform (0 without one). */
static uint64_t prefix_count(xmlNodePtr method) {
  xmlNodePtr in = first_el(method->children);
  xmlChar *pl = in && is_el(in, EXC_C14N_NS, "InclusiveNamespaces") ? xmlGetProp(in, (const xmlChar *)"PrefixList")
                                                                     : NULL;
  uint64_t n = 0;
  for (const xmlChar *p = pl; p && *p; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' &&
        (p == pl || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' || p[-1] == '\r'))
      n++;
  xmlFree(pl);
  return n;
}

static int is_inclusive(const struct alg *c14n) {
  return strncmp(c14n->name, "exclusive", 9) != 0;
}

/* Checks SignedInfo, References, Transforms and KeyInfo against the hub's policy. */
static hub_err_t check_structure(const struct hub_xmldsig_verifier *v, xmlDocPtr doc, xmlNodePtr sig,
                                 xmlNodePtr target, const char *target_id, struct hub_xmldsig_result *res,
                                 struct sig_plan *plan) {
  hub_err_t rc = HUB_OK;
  char *val = NULL;
  const struct alg *a = NULL;
  xmlNodePtr si = first_el(sig->children);
  if (!is_ds(si, "SignedInfo")) return fail(res, HUB_ERR_SIG_INVALID, "Signature has no SignedInfo");
  xmlNodePtr cm = first_el(si->children);
  if (!is_ds(cm, "CanonicalizationMethod"))
    return fail(res, HUB_ERR_SIG_INVALID, "SignedInfo has no CanonicalizationMethod");
  val = attr(cm, "Algorithm");
  rc = check_alg(res, c14n_algs, "canonicalization", val, 1, &a);
  xmlFree(val);
  if (rc) return rc;
  plan->si_inclusive = is_inclusive(a);
  if (!plan->si_inclusive) plan->si_prefixes = prefix_count(cm);
  xmlNodePtr sm = next_el(cm);
  if (!is_ds(sm, "SignatureMethod")) return fail(res, HUB_ERR_SIG_INVALID, "SignedInfo has no SignatureMethod");
  val = attr(sm, "Algorithm");
  rc = check_alg(res, sig_algs, "signature", val, v->legacy_sha1, &a);
  xmlFree(val);
  if (rc) return rc;
  int nref = 0;
  for (xmlNodePtr r = next_el(sm); r; r = next_el(r)) {
    if (!is_ds(r, "Reference")) return fail(res, HUB_ERR_SIG_INVALID, "unexpected element %s in SignedInfo", r->name);
    /* counted before anything else: each reference is a pass over the document */
    if (++nref > v->max_refs)
      return fail(res, HUB_ERR_SIG_POLICY, "more than %d References in SignedInfo (limit max_references %d; line %d)",
                  v->max_refs, v->max_refs, r->line);
    char *uri = attr(r, "URI");
    if (!uri) return fail(res, HUB_ERR_SIG_POLICY, "reference %d has no URI (only \"\" or \"#Id\" are allowed)", nref);
    if (!uri[0]) {
      if (target != xmlDocGetRootElement(doc))
        rc = fail(res, HUB_ERR_SIG_POLICY, "reference %d URI \"\" covers the whole document, not the processed element "
                  "'%s'", nref, target_id);
    } else if (uri[0] == '#') {
      xmlAttrPtr id = xmlGetID(doc, (const xmlChar *)uri + 1);
      if (!id) rc = fail(res, HUB_ERR_SIG_POLICY, "reference %d URI '%s' resolves to no element", nref, uri);
      else if (id->parent != target)
        rc = fail(res, HUB_ERR_SIG_POLICY, "reference %d URI '%s' points to element %s at line %d, not to the "
                  "processed element %s (signature wrapping)", nref, uri, id->parent->name, id->parent->line,
                  target->name);
    } else {
      rc = fail(res, HUB_ERR_SIG_POLICY, "reference %d: external or remote URI '%s' not allowed", nref, uri);
    }
    xmlFree(uri);
    if (rc) return rc;
    xmlNodePtr c = first_el(r->children);
    const struct alg *ref_c14n = NULL;
    if (is_ds(c, "Transforms")) {
      int nt = 0;
      for (xmlNodePtr t = first_el(c->children); t; t = next_el(t)) {
        if (!is_ds(t, "Transform")) return fail(res, HUB_ERR_SIG_INVALID, "reference %d: unexpected %s", nref, t->name);
        if (++nt > v->max_transforms)
          return fail(res, HUB_ERR_SIG_POLICY, "reference %d: more than %d Transforms (limit max_transforms %d; line %d)",
                      nref, v->max_transforms, v->max_transforms, t->line);
        plan->transforms++;
        val = attr(t, "Algorithm");
        const char *refused = refused_transform(val);
        if (refused) rc = fail(res, HUB_ERR_SIG_POLICY, "reference %d: %s not allowed", nref, refused);
        else if (!val || (strcmp(val, ENVELOPED_HREF) && !alg_by_href(c14n_algs, val)))
          rc = fail(res, HUB_ERR_SIG_POLICY, "reference %d: transform '%s' not allowed (only enveloped-signature "
                    "and canonicalization)", nref, val ? val : "(none)");
        /* c14n gives octets: any transform after it makes xmlsec parse them back into a new
         * tree, a copy of the document per transform (300 transforms reached 4 GB) */
        else if (ref_c14n)
          rc = fail(res, HUB_ERR_SIG_POLICY, "reference %d: transform %d follows a canonicalization (it must be the "
                    "last transform)", nref, nt);
        ref_c14n = val ? alg_by_href(c14n_algs, val) : NULL;
        if (val && !strcmp(val, ENVELOPED_HREF)) plan->enveloped = 1;
        if (ref_c14n && !is_inclusive(ref_c14n) && prefix_count(t) > plan->prefixes) plan->prefixes = prefix_count(t);
        xmlFree(val);
        if (rc) return rc;
      }
      c = next_el(c);
    }
    if (ref_c14n && strstr(ref_c14n->name, "with-comments")) plan->xmlsec = 1;
    if (!ref_c14n || is_inclusive(ref_c14n))
      plan->incl_passes++;
    else
      plan->excl_passes++;
    if (!is_ds(c, "DigestMethod")) return fail(res, HUB_ERR_SIG_INVALID, "reference %d has no DigestMethod", nref);
    val = attr(c, "Algorithm");
    char what[48];
    snprintf(what, sizeof what, "reference %d digest", nref);
    rc = check_alg(res, digest_algs, what, val, v->legacy_sha1, &a);
    xmlFree(val);
    if (rc) return rc;
  }
  if (!nref) return fail(res, HUB_ERR_SIG_INVALID, "SignedInfo has no Reference");
  size_t n_rm = 0;
  collect_ds(sig->children, "RetrievalMethod", NULL, 0, &n_rm);
  if (n_rm) return fail(res, HUB_ERR_SIG_POLICY, "KeyInfo RetrievalMethod not allowed");
  return check_unsigned_parts(sig, target, res);
}

/* A comment inside the signed element is not covered by a URI="" (or without-comments)
 * reference, yet it splits text nodes: `<Amount>100<!---->0</Amount>` verifies as "1000" and
 * may read as "100". So none is accepted inside the processed element (outside the signature). */
static xmlNodePtr find_comment(xmlNodePtr n, xmlNodePtr skip) {
  for (; n; n = n->next) {
    if (n == skip) continue;
    if (n->type == XML_COMMENT_NODE) return n;
    if (n->type == XML_ELEMENT_NODE) {
      xmlNodePtr c = find_comment(n->children, skip);
      if (c) return c;
    }
  }
  return NULL;
}

/* The signer's certificate from KeyInfo/X509Data: the one certificate that issued no other. */
static hub_err_t x509_from_keyinfo(xmlNodePtr sig, X509 **leaf, STACK_OF(X509) **chain,
                                   struct hub_xmldsig_result *res) {
  xmlNodePtr ki = child_el(sig, DSIG_NS, "KeyInfo");
  *leaf = NULL;
  *chain = sk_X509_new_null();
  if (!*chain) return fail(res, HUB_ERR_NOMEM, "out of memory");
  if (!ki) return fail(res, HUB_ERR_SIG_UNTRUSTED, "no KeyInfo: the signer must be identified by X509Data");
  int keyvalue = 0;
  for (xmlNodePtr c = first_el(ki->children); c; c = next_el(c)) {
    if (is_ds(c, "KeyValue") || is_el(c, "http://www.w3.org/2009/xmldsig11#", "DEREncodedKeyValue")) keyvalue = 1;
    if (!is_ds(c, "X509Data")) continue;
    for (xmlNodePtr x = first_el(c->children); x; x = next_el(x)) {
      if (!is_ds(x, "X509Certificate")) continue;
      xmlChar *b64 = xmlNodeGetContent(x);
      size_t blen = b64 ? strlen((const char *)b64) : 0;
      unsigned char *der = malloc(blen + 1);
      xmlSecSize n = 0;
      int ok = der && b64 && xmlSecBase64Decode_ex(b64, der, (xmlSecSize)blen + 1, &n) == 0;
      X509 *cert = ok ? hub_certcache_get_x509(der, n) : NULL;
      xmlFree(b64);
      free(der);
      if (!cert) {
        return fail(res, HUB_ERR_SIG_UNTRUSTED, "X509Certificate at line %d is not a DER certificate", x->line);
      }
      sk_X509_push(*chain, cert);
    }
  }
  int n = sk_X509_num(*chain);
  if (!n && keyvalue)
    return fail(res, HUB_ERR_SIG_POLICY, "key in KeyValue not accepted: the signer must be identified by an "
                "X509Certificate that chains to the trust store");
  if (!n) return fail(res, HUB_ERR_SIG_UNTRUSTED, "no X509Certificate in KeyInfo/X509Data");
  if (keyvalue)
    return fail(res, HUB_ERR_SIG_POLICY, "key in KeyValue not accepted next to X509Data (ambiguous signing key)");
  int leaves = 0, at = -1;
  for (int i = 0; i < n; i++) {
    int issuer = 0;
    for (int j = 0; j < n && !issuer; j++)
      if (i != j && X509_check_issued(sk_X509_value(*chain, i), sk_X509_value(*chain, j)) == X509_V_OK) issuer = 1;
    if (!issuer) leaves++, at = i;
  }
  if (leaves != 1)
    return fail(res, HUB_ERR_SIG_UNTRUSTED, "X509Data holds %d unrelated certificates: cannot tell the signer", leaves);
  *leaf = sk_X509_delete(*chain, at);
  return HUB_OK;
}

/* ---- cost bounds and the signature value first ---- */

/* Namespace declarations on the ancestors of n: inclusive c14n renders them all at n. */
static uint64_t ns_above(xmlNodePtr n) {
  uint64_t k = 0;
  for (n = n ? n->parent : NULL; n && n->type == XML_ELEMENT_NODE; n = n->parent)
    for (xmlNsPtr ns = n->nsDef; ns; ns = ns->next) k++;
  return k;
}

/* Estimated work of one c14n pass, in units of about one pointer step, with a node visit at
 * NODE_WEIGHT (the node's allocation, its callback and its output: about 0.3 us per node with
 * the direct path, against 2 to 9 ns per unit of the terms below, measured on the development
 * machine). What libxml2 2.9's c14n does per element, beyond the visit:
 *  - inclusive: for every declaration in scope, a search up the ancestors for the declaration
 *    that prefix binds (a 30 KB document with 250 declarations on the root and 1,000 children
 *    took 2.9 s): scope x (depth + scope);
 *  - exclusive: a search up the ancestors for the default namespace, and one per prefix of an
 *    InclusiveNamespaces PrefixList: (1 + prefixes) x (depth + scope) (a flood of empty
 *    elements 120 deep cost 2.5 times the same flood at depth 1);
 *  - both: the attributes are sorted by insertion into a list: attributes squared / 2 (255
 *    attributes on every element cost twice as much per byte as 4).
 * The walk is kept apart so that each reference can weigh it by its own PrefixList. */
#define NODE_WEIGHT 8

struct c14n_work {
  uint64_t base;   /* node visits and attribute sorting: every pass */
  uint64_t walk;   /* sum over elements of depth + declarations in scope: exclusive, per search */
  uint64_t incl;   /* sum over elements of scope x (depth + scope): inclusive only */
  uint64_t widest; /* most declarations in scope at any element */
  uint64_t deepest, most_attrs; /* for the reason of a refusal */
};

/* Adds element n's own share; `scope` counts the declarations in scope at n (its own included),
 * `depth` its ancestors plus one. */
static void work_element(struct c14n_work *w, uint64_t scope, uint64_t depth, uint64_t n_attrs,
                         uint64_t n_ns) {
  w->base += NODE_WEIGHT * (1 + n_attrs + n_ns) + n_attrs * n_attrs / 2;
  w->walk += depth + scope;
  w->incl += scope * (depth + scope);
  if (scope > w->widest) w->widest = scope;
  if (depth > w->deepest) w->deepest = depth;
  if (n_attrs > w->most_attrs) w->most_attrs = n_attrs;
}

/* The work of the subtree of n (or the list of its siblings when `siblings`). */
static void c14n_work_of(xmlNodePtr n, uint64_t scope, uint64_t depth, int siblings, struct c14n_work *w) {
  for (; n; n = siblings ? n->next : NULL) {
    if (n->type != XML_ELEMENT_NODE) {
      w->base += NODE_WEIGHT;
      continue;
    }
    uint64_t here = scope, n_attrs = 0, n_ns = 0;
    for (xmlNsPtr ns = n->nsDef; ns; ns = ns->next) here++, n_ns++;
    for (xmlAttrPtr a = n->properties; a; a = a->next) n_attrs++;
    work_element(w, here, depth, n_attrs, n_ns);
    c14n_work_of(n->children, here, depth + 1, 1, w);
  }
}

/* Canonicalisation cost of one pass in `mode` with `prefixes` PrefixList entries. */
static uint64_t pass_cost(const struct c14n_work *w, int inclusive, uint64_t prefixes) {
  return inclusive ? w->base + w->walk + w->incl : w->base + (1 + prefixes) * w->walk;
}

static uint64_t depth_of(xmlNodePtr n) {
  uint64_t d = 1;
  for (n = n ? n->parent : NULL; n && n->type == XML_ELEMENT_NODE; n = n->parent) d++;
  return d;
}

/* One pass over the parsed document before any check, instead of one per question: on a flood
 * of small nodes every walk of the tree costs about as much as a tenth of the parse (the tree
 * is many times the input and does not fit in the cache). It
 *  - cuts text nodes over TEXT_PIECE (split_text);
 *  - registers every Id/ID/id attribute without a namespace as an XML ID so "#x" references
 *    resolve (libxml2 registers xml:id itself), refusing a value used twice by any attribute
 *    named Id, ID or id in any namespace (xml:id, wsu:Id, ...): duplicate Ids are the classic
 *    way to make the verifier and the reader look at different elements, and libxml2 binds only
 *    the first;
 *  - finds the Signature elements and counts the comments;
 *  - adds up the canonicalisation work of the root element as c14n_work_of would. */
struct survey {
  xmlDocPtr doc;
  xmlHashTablePtr seen; /* Id value -> its first attribute */
  xmlNodePtr sigs[2];
  size_t n_sig, comments;
  struct c14n_work work; /* of the root element, as c14n_work_of counts it */
  char *errbuf;
  size_t errbuf_size;
};

static int id_name(const xmlChar *n) {
  return (n[0] == 'I' || n[0] == 'i') && (n[1] == 'd' || n[1] == 'D') && !n[2] && !(n[0] == 'i' && n[1] == 'D');
}

static hub_err_t survey_walk(struct survey *s, xmlNodePtr n, uint64_t scope, uint64_t depth) {
  for (; n; n = n->next) {
    if (n->type != XML_ELEMENT_NODE) s->work.base += NODE_WEIGHT;
    if (n->type == XML_TEXT_NODE) {
      if (n->content && xmlStrlen(n->content) > (int)TEXT_PIECE && split_text(s->doc, n) != HUB_OK)
        return hub_errf(s->errbuf, s->errbuf_size, HUB_ERR_NOMEM, "out of memory");
      continue;
    }
    if (n->type == XML_COMMENT_NODE) s->comments++;
    if (n->type != XML_ELEMENT_NODE) continue;
    uint64_t here = scope, n_attrs = 0, n_ns = 0;
    for (xmlNsPtr ns = n->nsDef; ns; ns = ns->next) here++, n_ns++;
    for (xmlAttrPtr a = n->properties; a; a = a->next) {
      n_attrs++;
      if (!id_name(a->name)) continue;
      xmlChar *val = xmlNodeListGetString(s->doc, a->children, 1);
      if (!val) continue;
      xmlAttrPtr prev = xmlHashLookup(s->seen, val);
      if (prev) {
        snprintf(s->errbuf, s->errbuf_size, "duplicate Id '%s' (line %d and line %d)", (const char *)val,
                 prev->parent ? prev->parent->line : 0, n->line);
        xmlFree(val);
        return HUB_ERR_SIG_POLICY;
      }
      xmlHashAddEntry(s->seen, val, a);
      if (!a->ns && !xmlGetID(s->doc, val)) xmlAddID(NULL, s->doc, val, a);
      xmlFree(val);
    }
    work_element(&s->work, here, depth, n_attrs, n_ns);
    if (is_ds(n, "Signature")) {
      if (s->n_sig < 2) s->sigs[s->n_sig] = n;
      s->n_sig++;
    }
    hub_err_t rc = survey_walk(s, n->children, here, depth + 1);
    if (rc) return rc;
  }
  return HUB_OK;
}

static hub_err_t survey(xmlDocPtr doc, struct survey *s, char *errbuf, size_t errbuf_size) {
  *s = (struct survey){.doc = doc, .errbuf = errbuf, .errbuf_size = errbuf_size};
  if (!(s->seen = xmlHashCreate(16))) return hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
  /* document-level text cannot occur; comments and PIs there are outside the root's cost */
  hub_err_t rc = HUB_OK;
  for (xmlNodePtr n = doc->children; n && !rc; n = n->next) {
    if (n->type == XML_COMMENT_NODE) s->comments++;
    if (n->type != XML_ELEMENT_NODE) continue;
    xmlNodePtr next = n->next; /* walk the root alone */
    n->next = NULL;
    rc = survey_walk(s, n, 0, 1);
    n->next = next;
  }
  xmlHashFree(s->seen, NULL);
  s->seen = NULL;
  return rc;
}

/* Refuses, before any canonicalisation runs, a document whose references would cost more than
 * the budget for its size; *total is the estimate. */
static hub_err_t check_cost(const struct hub_xmldsig_verifier *v, xmlNodePtr sig, xmlNodePtr target, size_t len,
                            const struct sig_plan *plan, const struct survey *sv, uint64_t *total,
                            struct hub_xmldsig_result *res) {
  uint64_t budget = (uint64_t)v->cost_per_byte * len + HUB_XMLDSIG_C14N_COST_FLOOR;
  struct c14n_work tw = {0}, sw = {0};
  if (target == xmlDocGetRootElement(target->doc))
    tw = sv->work;
  else
    c14n_work_of(target, ns_above(target), depth_of(target), 0, &tw);
  xmlNodePtr si = first_el(sig->children);
  c14n_work_of(si, ns_above(si), depth_of(si), 0, &sw);
  /* xmlsec walks the node set once per transform; the direct path once per reference */
  long passes = v->xmlsec_only || plan->xmlsec ? plan->transforms : 0;
  uint64_t incl = plan->incl_passes ? pass_cost(&tw, 1, 0) : 0;
  uint64_t excl = plan->excl_passes || passes ? pass_cost(&tw, 0, plan->prefixes) : 0;
  uint64_t t = pass_cost(&sw, plan->si_inclusive, plan->si_prefixes);
  /* saturating: the counts are bounded by max_references and max_transforms */
  t += incl > budget ? budget + 1 : incl * (uint64_t)plan->incl_passes;
  t += excl > budget ? budget + 1 : excl * (uint64_t)(plan->excl_passes + passes);
  *total = t;
  if (t <= budget) return HUB_OK;
  return fail(res, HUB_ERR_SIG_POLICY, "canonicalization cost over the limit: more than %llu units of work (%s c14n, "
              "%ld reference(s); up to %llu namespace declarations in scope, elements %llu deep, %llu attributes on "
              "one element) for %zu bytes (limit c14n_cost_per_byte %d x bytes + %d); fewer namespace declarations, "
              "attributes, nesting or references (or exclusive c14n) keep a document under it",
              (unsigned long long)budget, plan->incl_passes || plan->si_inclusive ? "inclusive" : "exclusive",
              plan->incl_passes + plan->excl_passes, (unsigned long long)tw.widest, (unsigned long long)tw.deepest,
              (unsigned long long)tw.most_attrs, len, v->cost_per_byte, HUB_XMLDSIG_C14N_COST_FLOOR);
}

/* When xmlsec verifies (c14n with comments, or engine "xmlsec"): above this estimate the
 * SignatureValue is checked on its own before any reference is digested (xmlsec digests the
 * references first), so a forged document costs one pass over SignedInfo; below it, the
 * references are as cheap as SignedInfo and xmlsec's single run is faster. The direct path
 * always checks the SignatureValue first. */
#define SIG_FIRST_COST 16384

/* The digests, fetched once: OpenSSL 3 looks EVP_sha256() and the like up again at every
 * initialisation, which shows on a 4 KB document. */
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *fetched_md[5]; /* sha1, sha224, sha256, sha384, sha512; kept for the process */

static void fetch_mds(void) {
  static const char *const names[] = {"SHA1", "SHA2-224", "SHA2-256", "SHA2-384", "SHA2-512"};
  for (int i = 0; i < 5; i++) fetched_md[i] = EVP_MD_fetch(NULL, names[i], NULL);
  ERR_clear_error();
}

/* The digest an algorithm name ends in (sha1, sha224, sha256, sha384, sha512). */
static const EVP_MD *md_of(const char *name) {
  pthread_once(&md_once, fetch_mds);
  int i = strstr(name, "sha512") ? 4 : strstr(name, "sha384") ? 3 : strstr(name, "sha224") ? 1
        : strstr(name, "sha1") ? 0 : 2;
  static const EVP_MD *(*const legacy[])(void) = {EVP_sha1, EVP_sha224, EVP_sha256, EVP_sha384, EVP_sha512};
  return fetched_md[i] ? fetched_md[i] : legacy[i]();
}

static const EVP_MD *sig_md(const struct alg *sa) {
  return md_of(sa->name);
}

/* Exclusive c14n's PrefixList as libxml2 wants it (NULL-terminated), or NULL. */
static xmlChar **prefix_list(xmlNodePtr method, xmlChar **storage) {
  xmlNodePtr in = first_el(method->children);
  *storage = in && is_el(in, EXC_C14N_NS, "InclusiveNamespaces") ? xmlGetProp(in, (const xmlChar *)"PrefixList") : NULL;
  if (!*storage) return NULL;
  size_t n = 1;
  for (const xmlChar *p = *storage; *p; p++) n += *p == ' ';
  xmlChar **list = calloc(n + 1, sizeof *list);
  size_t k = 0;
  for (xmlChar *p = *storage; list && *p;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') *p++ = '\0';
    if (!*p) break;
    list[k++] = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') p++;
  }
  return list;
}

/* Verifies the SignatureValue over the canonical SignedInfo with `pk`, as xmlsec would. */
static hub_err_t check_signature_value(xmlDocPtr doc, xmlNodePtr sig, EVP_PKEY *pk, struct hub_xmldsig_result *res,
                                       int *key_fits) {
  hub_err_t rc = HUB_ERR_SIG_INVALID;
  xmlNodePtr si = first_el(sig->children), cm = first_el(si->children), sm = next_el(cm), sv = next_el(si);
  char *c_href = attr(cm, "Algorithm"), *s_href = attr(sm, "Algorithm");
  const struct alg *ca = alg_by_href(c14n_algs, c_href), *sa = alg_by_href(sig_algs, s_href);
  xmlChar *b64 = NULL, *prefixes_buf = NULL, **prefixes = NULL;
  unsigned char *raw = NULL, *der = NULL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  ECDSA_SIG *es = NULL;
  xmlFree(c_href);
  xmlFree(s_href);
  if (!ca || !sa || !md) { /* check_structure passed them: only memory can fail here */
    rc = fail(res, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  if (!is_ds(sv, "SignatureValue")) {
    rc = fail(res, HUB_ERR_SIG_INVALID, "Signature has no SignatureValue after SignedInfo");
    goto out;
  }
  int ktype = EVP_PKEY_base_id(pk) == EVP_PKEY_RSA ? K_RSA : EVP_PKEY_base_id(pk) == EVP_PKEY_EC ? K_EC : 0;
  if (ktype != sa->key) {
    *key_fits = 0;
    rc = fail(res, HUB_ERR_SIG_INVALID, "the signer's key does not fit the signature algorithm %s", sa->name);
    goto out;
  }
  b64 = xmlNodeGetContent(sv);
  size_t blen = b64 ? strlen((const char *)b64) : 0;
  xmlSecSize n = 0;
  if (!(raw = malloc(blen + 1)) || !b64 || xmlSecBase64Decode_ex(b64, raw, (xmlSecSize)blen + 1, &n) < 0 || !n) {
    rc = fail(res, HUB_ERR_SIG_INVALID, "SignatureValue at line %d is not base64", sv->line);
    goto out;
  }
  const unsigned char *sigbytes = raw;
  size_t siglen = n;
  if (ktype == K_EC) { /* r||s to the DER OpenSSL verifies */
    BIGNUM *r = BN_bin2bn(raw, (int)(n / 2), NULL), *s2 = BN_bin2bn(raw + n / 2, (int)(n - n / 2), NULL);
    int dl;
    if (!r || !s2 || !(es = ECDSA_SIG_new()) || ECDSA_SIG_set0(es, r, s2) != 1) {
      BN_free(r), BN_free(s2);
      rc = fail(res, HUB_ERR_NOMEM, "out of memory");
      goto out;
    }
    if ((dl = i2d_ECDSA_SIG(es, &der)) <= 0) {
      rc = fail(res, HUB_ERR_NOMEM, "out of memory");
      goto out;
    }
    sigbytes = der, siglen = (size_t)dl;
  }
  int mode = !strncmp(ca->name, "exclusive", 9) ? XML_C14N_EXCLUSIVE_1_0 : strstr(ca->name, "1.1") ? XML_C14N_1_1
                                                                                                     : XML_C14N_1_0;
  if (mode == XML_C14N_EXCLUSIVE_1_0) prefixes = prefix_list(cm, &prefixes_buf);
  EVP_PKEY_CTX *pctx = NULL;
  if (EVP_DigestVerifyInit(md, &pctx, sig_md(sa), NULL, pk) != 1 ||
      (!strncmp(sa->name, "rsa-pss", 7) && hub_rsapss_set_params(pctx, sig_md(sa)) < 0)) {
    *key_fits = 0;
    rc = fail(res, HUB_ERR_SIG_INVALID, "the signer's key does not fit the signature algorithm %s", sa->name);
    goto out;
  }
  if (c14n_digest(doc, si, NULL, mode, prefixes, strstr(ca->name, "with-comments") != NULL, md) < 0) {
    rc = fail(res, HUB_ERR_SIG_INVALID, "SignedInfo cannot be canonicalized");
    goto out;
  }
  if (EVP_DigestVerifyFinal(md, sigbytes, siglen) == 1)
    rc = HUB_OK;
  else
    rc = fail(res, HUB_ERR_SIG_INVALID, "signature value does not verify with the signer's key (SignedInfo altered or "
              "wrong certificate)");
out:
  ERR_clear_error();
  EVP_MD_CTX_free(md);
  ECDSA_SIG_free(es);
  OPENSSL_free(der);
  free(raw);
  xmlFree(b64);
  free(prefixes);
  xmlFree(prefixes_buf);
  return rc;
}

/* ---- the direct verification path ----
 * For the reference shapes the policy allows (URI "" or "#Id" of the processed element, any
 * enveloped-signature transforms, then at most one canonicalization without comments) each
 * digest is computed by canonicalising the node set straight into the digest (c14n_write, the
 * code signing uses), after the SignatureValue over SignedInfo has verified: the same checks
 * as xmlsec's, in the cheapest-first order, without its per-node XPath node sets. Other shapes
 * (c14n with comments) go to run_xmlsec. The tests check both paths agree on every vector,
 * on the interop corpora and on the negative corpus. */

static const EVP_MD *digest_md(const struct alg *dg) {
  return md_of(dg->name);
}

/* What one Reference digests; check_structure has checked its shape and algorithms. */
struct ref_spec {
  int whole_doc;       /* URI "": the whole document; else the processed element's subtree */
  int enveloped;       /* without the Signature element */
  int mode;            /* XML_C14N_*; inclusive 1.0 when no c14n transform is named */
  xmlNodePtr c14n;     /* the c14n Transform (for its PrefixList) or NULL */
  xmlChar *prefix_buf; /* its PrefixList (owned), for comparing specs */
  const struct alg *dg;
  xmlNodePtr value;    /* DigestValue */
};

static hub_err_t ref_spec_of(xmlNodePtr r, int nref, struct ref_spec *sp, struct hub_xmldsig_result *res) {
  memset(sp, 0, sizeof *sp);
  sp->mode = XML_C14N_1_0;
  char *uri = attr(r, "URI");
  sp->whole_doc = uri && !uri[0];
  xmlFree(uri);
  xmlNodePtr c = first_el(r->children);
  if (is_ds(c, "Transforms")) {
    for (xmlNodePtr t = first_el(c->children); t; t = next_el(t)) {
      char *href = attr(t, "Algorithm");
      const struct alg *ca = href ? alg_by_href(c14n_algs, href) : NULL;
      if (ca) {
        sp->mode = !strncmp(ca->name, "exclusive", 9) ? XML_C14N_EXCLUSIVE_1_0
                   : strstr(ca->name, "1.1")          ? XML_C14N_1_1
                                                      : XML_C14N_1_0;
        sp->c14n = t;
      } else {
        sp->enveloped = 1; /* the only other transform check_structure lets through */
      }
      xmlFree(href);
    }
    c = next_el(c);
  }
  char *href = attr(c, "Algorithm");
  sp->dg = href ? alg_by_href(digest_algs, href) : NULL;
  xmlFree(href);
  sp->value = next_el(c);
  if (!sp->dg) return fail(res, HUB_ERR_SIG_INVALID, "reference %d has no DigestMethod", nref);
  if (!is_ds(sp->value, "DigestValue")) return fail(res, HUB_ERR_SIG_INVALID, "reference %d has no DigestValue", nref);
  if (next_el(sp->value)) /* as xmlsec refuses it */
    return fail(res, HUB_ERR_SIG_INVALID, "reference %d: unexpected %s after DigestValue", nref, next_el(sp->value)->name);
  if (sp->c14n && sp->mode == XML_C14N_EXCLUSIVE_1_0) {
    xmlNodePtr in = first_el(sp->c14n->children);
    if (in && is_el(in, EXC_C14N_NS, "InclusiveNamespaces")) sp->prefix_buf = xmlGetProp(in, (const xmlChar *)"PrefixList");
  }
  return HUB_OK;
}

static int ref_spec_same(const struct ref_spec *a, const struct ref_spec *b) {
  return a->whole_doc == b->whole_doc && a->enveloped == b->enveloped && a->mode == b->mode && a->dg == b->dg &&
         xmlStrEqual(a->prefix_buf, b->prefix_buf);
}

/* Digests one reference's node set; with `detail`, also keeps its canonical bytes (only after
 * a mismatch: they are as large as the document). */
static int ref_digest(xmlNodePtr sig, xmlNodePtr target, const struct ref_spec *sp, unsigned char *d, unsigned *dl,
                      xmlBufferPtr detail) {
  xmlChar *buf = NULL, **prefixes = sp->c14n && sp->mode == XML_C14N_EXCLUSIVE_1_0 ? prefix_list(sp->c14n, &buf) : NULL;
  xmlNodePtr root = sp->whole_doc ? NULL : target, skip = sp->enveloped ? sig : NULL;
  int rc = -1;
  if (detail) {
    rc = c14n_write(sig->doc, root, skip, sp->mode, prefixes, 0, xmlOutputBufferCreateBuffer(detail, NULL));
  } else {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && EVP_DigestInit_ex(md, digest_md(sp->dg), NULL) == 1 &&
        c14n_digest(sig->doc, root, skip, sp->mode, prefixes, 0, md) == 0 && EVP_DigestFinal_ex(md, d, dl) == 1)
      rc = 0;
    EVP_MD_CTX_free(md);
  }
  free(prefixes);
  xmlFree(buf);
  return rc;
}

static hub_err_t run_direct(xmlNodePtr sig, xmlNodePtr target, xmlSecKeyPtr key, struct hub_xmldsig_result *res,
                            int *key_fits) {
  EVP_PKEY *pk = xmlSecOpenSSLEvpKeyDataGetEvp(xmlSecKeyGetValue(key));
  if (!pk) return fail(res, HUB_ERR_SIG_POLICY, "algorithm not allowed: the key type is not supported");
  /* the layout xmlsec insists on: SignedInfo, SignatureValue, KeyInfo?, Object* */
  xmlNodePtr c = next_el(next_el(first_el(sig->children)));
  if (is_ds(c, "KeyInfo")) c = next_el(c);
  while (is_ds(c, "Object")) c = next_el(c);
  if (c) return fail(res, HUB_ERR_SIG_INVALID, "unexpected %s at line %d in Signature", c->name, c->line);
  hub_err_t rc = check_signature_value(sig->doc, sig, pk, res, key_fits);
  if (rc != HUB_OK) return rc;
  xmlNodePtr si = first_el(sig->children);
  struct ref_spec prev = {0}, sp = {0};
  unsigned char d[EVP_MAX_MD_SIZE], prev_d[EVP_MAX_MD_SIZE];
  unsigned dl = 0, prev_dl = 0;
  int nref = 0;
  for (xmlNodePtr r = next_el(next_el(first_el(si->children))); r && rc == HUB_OK; r = next_el(r)) {
    nref++;
    if ((rc = ref_spec_of(r, nref, &sp, res)) != HUB_OK) break;
    if (prev.dg && ref_spec_same(&sp, &prev)) { /* the same node set again: one pass is enough */
      memcpy(d, prev_d, prev_dl);
      dl = prev_dl;
    } else if (ref_digest(sig, target, &sp, d, &dl, NULL) < 0) {
      ERR_clear_error();
      rc = fail(res, HUB_ERR_SIG_INVALID, "reference %d cannot be canonicalized", nref);
      break;
    }
    xmlChar *b64 = xmlNodeGetContent(sp.value);
    size_t blen = b64 ? strlen((const char *)b64) : 0;
    unsigned char *want = malloc(blen + 1);
    xmlSecSize wl = 0;
    int ok = want && b64 && xmlSecBase64Decode_ex(b64, want, (xmlSecSize)blen + 1, &wl) == 0 && wl == dl &&
             CRYPTO_memcmp(want, d, dl) == 0;
    free(want);
    xmlFree(b64);
    if (!ok) {
      char *uri = attr(r, "URI");
      rc = fail(res, HUB_ERR_SIG_DIGEST, "reference %d (URI \"%s\"): digest mismatch (%s): the content was altered "
                "after signing", nref, uri ? uri : "", sp.dg->name);
      xmlFree(uri);
      xmlBufferPtr b = xmlBufferCreate();
      if (b && ref_digest(sig, target, &sp, NULL, NULL, b) == 0 && xmlBufferLength(b) > 0 &&
          (res->detail = malloc((size_t)xmlBufferLength(b)))) {
        res->detail_len = (size_t)xmlBufferLength(b);
        memcpy(res->detail, xmlBufferContent(b), res->detail_len);
      }
      xmlBufferFree(b);
      break;
    }
    xmlFree(prev.prefix_buf);
    prev = sp;
    sp.prefix_buf = NULL;
    memcpy(prev_d, d, dl);
    prev_dl = dl;
  }
  xmlFree(sp.prefix_buf);
  xmlFree(prev.prefix_buf);
  return rc;
}

/* Runs xmlsec with `key`; maps its outcome to a code and reason. */
/* `store`: keep the canonical bytes each reference digested, for the detail of a digest
 * mismatch. They are as large as the document, so the first run does not keep them; only a
 * reference that failed makes a second run that does. */
/* `sig_first`: check the SignatureValue on its own before xmlsec digests the references. */
static hub_err_t run_xmlsec(const struct hub_xmldsig_verifier *v, xmlNodePtr sig, xmlSecKeyPtr key,
                            struct hub_xmldsig_result *res, int *key_fits, int store, int sig_first) {
  xmlSecDSigCtx ctx;
  hub_err_t rc = HUB_ERR_SIG_INVALID;
  int again = 0;
  last_err[0] = '\0';
  if (sig_first) {
    EVP_PKEY *pk = xmlSecOpenSSLEvpKeyDataGetEvp(xmlSecKeyGetValue(key));
    if (!pk) return fail(res, HUB_ERR_SIG_POLICY, "algorithm not allowed: the key type is not supported");
    if ((rc = check_signature_value(sig->doc, sig, pk, res, key_fits)) != HUB_OK) return rc;
  }
  if (xmlSecDSigCtxInitialize(&ctx, NULL) < 0) return fail(res, HUB_ERR_CRYPTO, "xmlsec: %s", last_err);
  ctx.flags = XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS | (store ? XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES : 0);
  ctx.enabledReferenceUris = xmlSecTransformUriTypeEmpty | xmlSecTransformUriTypeSameDocument;
  /* A second line behind check_structure: xmlsec itself refuses anything else. */
  for (const struct alg *a = c14n_algs; a->name; a++) {
    xmlSecDSigCtxEnableReferenceTransform(&ctx, a->klass());
    xmlSecDSigCtxEnableSignatureTransform(&ctx, a->klass());
  }
  xmlSecDSigCtxEnableReferenceTransform(&ctx, xmlSecTransformEnvelopedId);
  for (const struct alg *a = digest_algs; a->name; a++)
    if (!a->sha1 || v->legacy_sha1) xmlSecDSigCtxEnableReferenceTransform(&ctx, a->klass());
  for (const struct alg *a = sig_algs; a->name; a++)
    if (!a->sha1 || v->legacy_sha1) xmlSecDSigCtxEnableSignatureTransform(&ctx, a->klass());
  ctx.signKey = key; /* borrowed: cleared before finalize */
  if (xmlSecDSigCtxVerify(&ctx, sig) < 0) {
    if (strstr(last_err, "key is not found") && (*key_fits = 0) == 0)
      rc = fail(res, HUB_ERR_SIG_INVALID, "the signer's key does not fit the signature algorithm (%s)", last_err);
    else
      rc = fail(res, HUB_ERR_SIG_INVALID, "signature cannot be processed: %s", last_err[0] ? last_err : "xmlsec error");
    goto out;
  }
  if (ctx.status == xmlSecDSigStatusSucceeded) {
    rc = HUB_OK;
    goto out;
  }
  xmlSecSize n = xmlSecPtrListGetSize(&ctx.signedInfoReferences);
  for (xmlSecSize i = 0; i < n; i++) {
    xmlSecDSigReferenceCtxPtr r = xmlSecPtrListGetItem(&ctx.signedInfoReferences, i);
    if (!r || r->status == xmlSecDSigStatusSucceeded) continue;
    if (!store) {
      again = 1;
      goto out;
    }
    rc = fail(res, HUB_ERR_SIG_DIGEST, "reference %u (URI \"%s\"): digest mismatch (%s): the content was altered "
              "after signing", (unsigned)i + 1, r->uri ? (const char *)r->uri : "",
              r->digestMethod && r->digestMethod->id ? (const char *)r->digestMethod->id->name : "?");
    xmlSecBufferPtr b = xmlSecDSigReferenceCtxGetPreDigestBuffer(r);
    if (b && xmlSecBufferGetSize(b) > 0 && (res->detail = malloc(xmlSecBufferGetSize(b)))) {
      res->detail_len = xmlSecBufferGetSize(b);
      memcpy(res->detail, xmlSecBufferGetData(b), res->detail_len);
    }
    goto out;
  }
  rc = fail(res, HUB_ERR_SIG_INVALID, "signature value does not verify with the signer's key (SignedInfo altered or "
            "wrong certificate)");
out:
  ctx.signKey = NULL;
  xmlSecDSigCtxFinalize(&ctx);
  return again ? run_xmlsec(v, sig, key, res, key_fits, 1, 0) : rc;
}

hub_err_t hub_xmldsig_verify(const struct hub_xmldsig_verifier *v, const void *xml, size_t len,
                             const char *element_id, time_t at, struct hub_xmldsig_result *res) {
  xmlDocPtr doc = NULL;
  X509 *leaf = NULL;
  STACK_OF(X509) *chain = NULL;
  xmlSecKeyPtr key = NULL;
  hub_err_t rc;
  res->reason[0] = res->signer[0] = '\0';
  res->detail = NULL;
  res->detail_len = 0;
  res->doc = NULL;
  res->element = NULL;
  rc = hub_xml_parse(xml, len, &v->limits, NULL, &doc, res->reason, sizeof res->reason);
  if (rc) goto out;
  struct survey sv;
  if ((rc = survey(doc, &sv, res->reason, sizeof res->reason)) != HUB_OK) goto out;
  xmlNodePtr *sigs = sv.sigs;
  size_t n_sig = sv.n_sig;
  if (n_sig == 0) {
    rc = fail(res, HUB_ERR_SIG_MISSING, "no XML-DSig Signature element in the document");
    goto out;
  }
  if (n_sig > 1) {
    rc = fail(res, HUB_ERR_SIG_MISSING, "%zu Signature elements (lines %d and %d): exactly one is allowed", n_sig,
              sigs[0]->line, sigs[1]->line);
    goto out;
  }
  xmlNodePtr target = xmlDocGetRootElement(doc);
  if (element_id) {
    xmlAttrPtr id = xmlGetID(doc, (const xmlChar *)element_id);
    if (!id) {
      rc = fail(res, HUB_ERR_SIG_POLICY, "no element with Id '%s'", element_id);
      goto out;
    }
    target = id->parent;
  }
  struct sig_plan plan = {0};
  uint64_t cost = 0;
  if ((rc = check_structure(v, doc, sigs[0], target, element_id ? element_id : "(root)", res, &plan)) != HUB_OK)
    goto out;
  /* an element inside the Signature (an enveloping signature) under enveloped-signature has an
   * empty node set, which the direct path does not model: xmlsec verifies that */
  if (plan.enveloped && in_tree(target, sigs[0])) plan.xmlsec = 1;
  if ((rc = check_cost(v, sigs[0], target, len, &plan, &sv, &cost, res)) != HUB_OK) goto out;
  int sig_first = cost > SIG_FIRST_COST;
  int use_xmlsec = plan.xmlsec || v->xmlsec_only;
  xmlNodePtr comment = sv.comments ? find_comment(target->children, sigs[0]) : NULL;
  if (comment) {
    rc = fail(res, HUB_ERR_SIG_POLICY, "comment at line %d inside the signed element: comments are not covered by "
              "the signature and can change what a reader sees", comment->line);
    goto out;
  }
  if (v->n_pins) {
    /* Each pinned key in turn; the reason kept is that of a key whose type fitted the
     * algorithm, since "wrong key type" for the other pins says nothing. */
    struct hub_xmldsig_result best = {0};
    hub_err_t best_rc = HUB_OK;
    int best_fits = 0;
    for (size_t i = 0; i < v->n_pins; i++) {
      struct hub_xmldsig_result one = {0};
      int fits = 1;
      rc = use_xmlsec ? run_xmlsec(v, sigs[0], v->pins[i].key, &one, &fits, 0, sig_first)
                                         : run_direct(sigs[0], target, v->pins[i].key, &one, &fits);
      if (rc == HUB_OK) {
        snprintf(res->signer, sizeof res->signer, "%s", v->pins[i].identity);
        free(best.detail);
        best.detail = NULL;
        break;
      }
      if (!best_rc || (fits && !best_fits)) {
        free(best.detail);
        best = one;
        best_rc = rc;
        best_fits = fits;
      } else {
        free(one.detail);
      }
    }
    if (rc != HUB_OK) {
      rc = best_rc;
      snprintf(res->reason, sizeof res->reason, "%s", best.reason);
      res->detail = best.detail;
      res->detail_len = best.detail_len;
    }
    goto out;
  }
  if ((rc = x509_from_keyinfo(sigs[0], &leaf, &chain, res)) != HUB_OK) goto out;
  if ((rc = hub_truststore_check(v->ts, leaf, chain, at, res->reason, sizeof res->reason)) != HUB_OK) goto out;
  EVP_PKEY *pk = X509_get_pubkey(leaf);
  xmlSecKeyDataPtr data = pk ? xmlSecOpenSSLEvpKeyAdopt(pk) : NULL;
  if (!data) {
    EVP_PKEY_free(pk);
    rc = fail(res, HUB_ERR_SIG_POLICY, "algorithm not allowed: the certificate's key type is not supported");
    goto out;
  }
  key = xmlSecKeyCreate();
  if (!key || xmlSecKeySetValue(key, data) < 0) {
    xmlSecKeyDataDestroy(data);
    rc = fail(res, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  int fits = 1;
  rc = use_xmlsec ? run_xmlsec(v, sigs[0], key, res, &fits, 0, sig_first)
                                     : run_direct(sigs[0], target, key, res, &fits);
  if (rc == HUB_OK) hub_x509_signer_string(leaf, res->signer, sizeof res->signer);
out:
  if (key) xmlSecKeyDestroy(key);
  X509_free(leaf);
  sk_X509_pop_free(chain, X509_free);
  if (rc == HUB_OK) {
    res->doc = doc;
    res->element = element_id ? xmlGetID(doc, (const xmlChar *)element_id)->parent : xmlDocGetRootElement(doc);
  } else {
    xmlFreeDoc(doc);
  }
  return rc;
}
