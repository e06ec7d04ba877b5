/* XML-DSig signing and THE verify function of the hub (design.md, "XML safety in one place"),
 * on xmlsec1 1.2.37 with OpenSSL. Every document is parsed with hub_xml_parse.
 *
 * Verification refuses, with a precise code and reason: no signature or more than one
 * (SIG_MISSING); a reference that is not "" or "#Id" of the processed element, an external or
 * remote URI, duplicate Ids, a transform other than enveloped-signature and c14n, XSLT/XPath,
 * RetrievalMethod, a key in KeyValue, an algorithm outside the policy (SIG_POLICY); a chain that
 * does not reach the trust store or a certificate that may not sign (SIG_UNTRUSTED); a
 * certificate outside its validity period beyond the clock skew (SIG_EXPIRED); a digest
 * mismatch (SIG_DIGEST, with the canonical bytes that were digested as detail); a bad signature
 * value (SIG_INVALID). Keys come only from KeyInfo/X509Data checked against the trust store,
 * unless keys are pinned, in which case KeyInfo is ignored.
 *
 * Signing places an enveloped signature where the message type wants it (edXML: inside
 * edXMLHeader after TraceHeaderList; otherwise the last child of the root), with X509Data. A
 * signer and a verifier are built once and reused; both may be shared between threads. */
#ifndef HUB_TRUST_XMLDSIG_H
#define HUB_TRUST_XMLDSIG_H

#include <libxml/tree.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hub/core/err.h"

#define HUB_EDXML_NS "http://www.mic.gov.vn/TBT/QCVN_102_2016"

/* Initialises libxml2 + xmlsec + its OpenSSL backend once per process and routes xmlsec's
 * errors into hub_log. Every function below calls it; returns HUB_OK or HUB_ERR_CRYPTO. */
hub_err_t hub_xmldsig_init(void);
/* The first xmlsec error reported on this thread since hub_xmldsig_clear_error() ("" if none),
 * for reasons. Every sign and verify call clears it first. */
const char *hub_xmldsig_last_error(void);
void hub_xmldsig_clear_error(void);

struct hub_xmldsig_sign_opts {
  const char *alg;     /* rsa-sha256 (RSA default), rsa-sha384, rsa-sha512, rsa-pss-sha256, rsa-pss-sha384,
                          rsa-pss-sha512, ecdsa-sha256 (P-256 default), ecdsa-sha384 (P-384 default),
                          ecdsa-sha512; NULL: by key */
  const char *c14n;    /* "exclusive" (default), "inclusive", "inclusive-1.1" */
  const char *profile; /* "edxml", "generic"; NULL: edxml when the root is in the edXML namespace */
  const char *digest;  /* "sha256" (default), "sha384", "sha512" */
};

struct hub_xmldsig_signer;

hub_err_t hub_xmldsig_signer_new(const char *key_pem, const char *cert_pem, const struct hub_xmldsig_sign_opts *opts,
                                 struct hub_xmldsig_signer **out, char *errbuf, size_t errbuf_size);
void hub_xmldsig_signer_destroy(struct hub_xmldsig_signer *s);
/* The signing key (borrowed), for benchmarks that compare with raw signing. */
struct evp_pkey_st *hub_xmldsig_signer_get_pkey(const struct hub_xmldsig_signer *s);
/* "subject; sha256=<thumbprint>" of the signing certificate (borrowed). */
const char *hub_xmldsig_signer_get_identity(const struct hub_xmldsig_signer *s);
/* Signs `len` bytes of XML; *out (malloc'd, NUL-terminated) is the signed document. Computes
 * the signature with libxml2's c14n and OpenSSL directly (see xmldsig.c for why). */
hub_err_t hub_xmldsig_sign(const struct hub_xmldsig_signer *s, const void *xml, size_t len, unsigned char **out,
                           size_t *out_len, char *errbuf, size_t errbuf_size);
/* The same signature made by xmlsec's own signing (xmlSecDSigCtxSign): the reference the
 * direct path is tested against, and a bench figure. */
hub_err_t hub_xmldsig_sign_xmlsec(const struct hub_xmldsig_signer *s, const void *xml, size_t len,
                                  unsigned char **out, size_t *out_len, char *errbuf, size_t errbuf_size);

struct hub_cert_policy;

struct hub_xmldsig_verify_opts {
  const char *const *trust_ca; /* PEM files of trusted CA certificates */
  size_t n_trust_ca;
  const char *const *crl; /* PEM CRL files (optional) */
  size_t n_crl;
  const char *const *pinned; /* PEM public keys or certificates; when given, KeyInfo is ignored */
  size_t n_pinned;
  const char *policy;  /* NULL or "default"; "legacy-sha1" also allows rsa-sha1, ecdsa-sha1, sha1 */
  int64_t clock_skew_s; /* < 0: HUB_TRUST_DEFAULT_SKEW_S */
  size_t max_bytes;     /* 0: hub_xml_parse's default */
  int max_depth;        /* 0: hub_xml_parse's default */
  const struct hub_cert_policy *cert_policy; /* NULL: hub_cert_policy_default() */
  /* Bounds against denial of service (docs/trust.md, "Limits"); 0 takes the default. */
  int max_attrs;          /* attributes per element: hub_xml_parse's default (256) */
  int max_references;     /* References in SignedInfo: HUB_XMLDSIG_DEFAULT_MAX_REFERENCES */
  int max_transforms;     /* Transforms per Reference: HUB_XMLDSIG_DEFAULT_MAX_TRANSFORMS */
  int c14n_cost_per_byte; /* estimated canonicalisation work allowed per input byte:
                             HUB_XMLDSIG_DEFAULT_C14N_COST_PER_BYTE */
  /* NULL or "direct": references of the usual shapes are digested by canonicalising straight into
   * the digest (xmlsec only for the rest); "xmlsec": xmlsec's own verification for every shape,
   * the reference the direct path is tested against. */
  const char *engine;
};

#define HUB_XMLDSIG_DEFAULT_MAX_REFERENCES 16
#define HUB_XMLDSIG_DEFAULT_MAX_TRANSFORMS 8
#define HUB_XMLDSIG_DEFAULT_C14N_COST_PER_BYTE 8
/* Work every document may have whatever its size (a small document is never refused for it):
 * about 1-2 ms. 1,000,000 let a 64 KB document with 255 attributes on every element through at
 * 167 ms of CPU per MB; a benign 4 KB packet uses about 5,000. */
#define HUB_XMLDSIG_C14N_COST_FLOOR 250000

struct hub_xmldsig_verifier;

/* Verifies with the trust store and/or pinned keys; a verifier needs at least one of them. */
hub_err_t hub_xmldsig_verifier_new(const struct hub_xmldsig_verify_opts *opts, struct hub_xmldsig_verifier **out,
                                   char *errbuf, size_t errbuf_size);
void hub_xmldsig_verifier_destroy(struct hub_xmldsig_verifier *v);

struct hub_xmldsig_result {
  char reason[1024];       /* why verification failed */
  char signer[512];        /* on success: "subject; sha256=<thumbprint>" */
  unsigned char *detail;   /* on SIG_DIGEST: the canonical bytes that were digested (owned) */
  size_t detail_len;
  xmlDocPtr doc;           /* on success: the document that was verified (owned); text nodes over 1 MiB
                              are cut into adjacent pieces (read text with xmlNodeGetContent) */
  xmlNodePtr element;      /* on success: the element the signature covers, in doc (borrowed) */
};

/* Verifies one document, cheapest refusal first: parse (size, depth, attributes, NUL), then
 * structure and policy (counts of References and Transforms, algorithms, URIs, estimated
 * canonicalisation cost), then the signer's certificate, then the SignatureValue over SignedInfo,
 * and only then the reference digests (canonicalised straight into the digest for the usual
 * shapes; through xmlsec for c14n with comments, or every shape with opts.engine "xmlsec"). `element_id` names the processed element by its Id attribute (NULL:
 * the document element); references must be "" (only for the document element) or "#" + that
 * Id. `at` is the time for certificate checks (0: now). Release the result in every case. */
hub_err_t hub_xmldsig_verify(const struct hub_xmldsig_verifier *v, const void *xml, size_t len,
                             const char *element_id, time_t at, struct hub_xmldsig_result *res);
void hub_xmldsig_result_release(struct hub_xmldsig_result *res);

#endif
