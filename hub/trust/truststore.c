/* Certificate trust decisions on OpenSSL's X509_STORE (see truststore.h). We run the chain
 * check ourselves rather than inside xmlsec so that the reasons are precise (expired versus
 * untrusted) and the clock skew is configurable. */
#include "hub/trust/truststore.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hub_truststore {
  X509_STORE *store;
  int have_crls;
  int64_t skew_s;
  struct hub_cert_policy policy; /* eku unused here: see ekus */
  ASN1_OBJECT **ekus;
  size_t n_ekus;
};

void hub_cert_policy_default(struct hub_cert_policy *p) {
  memset(p, 0, sizeof *p);
  p->min_rsa_bits = 2048;
  p->min_ec_bits = 256;
  p->require_key_usage = 1;
}

static void free_ekus(struct hub_truststore *ts) {
  for (size_t i = 0; i < ts->n_ekus; i++) ASN1_OBJECT_free(ts->ekus[i]);
  free(ts->ekus);
  ts->ekus = NULL;
  ts->n_ekus = 0;
}

hub_err_t hub_truststore_set_policy(struct hub_truststore *ts, const struct hub_cert_policy *p, char *errbuf,
                                    size_t errbuf_size) {
  ASN1_OBJECT **ekus = p->n_eku ? calloc(p->n_eku, sizeof *ekus) : NULL;
  if (p->n_eku && !ekus) return hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < p->n_eku; i++) {
    if (!(ekus[i] = OBJ_txt2obj(p->eku[i], 0))) {
      ERR_clear_error();
      for (size_t j = 0; j < i; j++) ASN1_OBJECT_free(ekus[j]);
      free(ekus);
      return hub_errf(errbuf, errbuf_size, HUB_ERR_CONFIG,
                      "extended key usage '%s' is neither a known name (emailProtection, codeSigning, ...) nor an OID",
                      p->eku[i]);
    }
  }
  free_ekus(ts);
  ts->policy = *p;
  ts->policy.eku = NULL;
  ts->ekus = ekus;
  ts->n_ekus = p->n_eku;
  return HUB_OK;
}

STACK_OF(X509) *hub_x509_load_pem_file(const char *path, char *errbuf, size_t errbuf_size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(errbuf, errbuf_size, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  STACK_OF(X509) *sk = sk_X509_new_null();
  X509 *x;
  while (sk && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
    if (!sk_X509_push(sk, x)) X509_free(x);
  }
  ERR_clear_error();
  fclose(f);
  if (!sk || sk_X509_num(sk) == 0) {
    snprintf(errbuf, errbuf_size, "%s: no PEM certificate found", path);
    sk_X509_pop_free(sk, X509_free);
    return NULL;
  }
  return sk;
}

static int load_crls(X509_STORE *store, const char *path, char *errbuf, size_t errbuf_size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(errbuf, errbuf_size, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  int n = 0;
  X509_CRL *crl;
  while ((crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) {
    X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    n++;
  }
  ERR_clear_error();
  fclose(f);
  if (!n) {
    snprintf(errbuf, errbuf_size, "%s: no PEM CRL found", path);
    return -1;
  }
  return 0;
}

hub_err_t hub_truststore_new(const char *const *ca_files, size_t n_ca, const char *const *crl_files, size_t n_crl,
                             int64_t skew_s, struct hub_truststore **out, char *errbuf, size_t errbuf_size) {
  hub_err_t rc = HUB_ERR_CONFIG;
  *out = NULL;
  struct hub_truststore *ts = calloc(1, sizeof *ts);
  if (!ts || !(ts->store = X509_STORE_new())) {
    snprintf(errbuf, errbuf_size, "out of memory");
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  ts->skew_s = skew_s < 0 ? HUB_TRUST_DEFAULT_SKEW_S : skew_s;
  hub_cert_policy_default(&ts->policy);
  for (size_t i = 0; i < n_ca; i++) {
    STACK_OF(X509) *sk = hub_x509_load_pem_file(ca_files[i], errbuf, errbuf_size);
    if (!sk) goto out;
    for (int j = 0; j < sk_X509_num(sk); j++) X509_STORE_add_cert(ts->store, sk_X509_value(sk, j));
    sk_X509_pop_free(sk, X509_free);
  }
  for (size_t i = 0; i < n_crl; i++)
    if (load_crls(ts->store, crl_files[i], errbuf, errbuf_size) < 0) goto out;
  ts->have_crls = n_crl > 0;
  if (ts->have_crls) X509_STORE_set_flags(ts->store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  *out = ts;
  ts = NULL;
  rc = HUB_OK;
out:
  hub_truststore_destroy(ts);
  return rc;
}

void hub_truststore_destroy(struct hub_truststore *ts) {
  if (!ts) return;
  free_ekus(ts);
  X509_STORE_free(ts->store);
  free(ts);
}

static void subject_of(X509 *x, char *out, size_t n) {
  BIO *b = BIO_new(BIO_s_mem());
  out[0] = '\0';
  if (!b) return;
  X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  int len = BIO_read(b, out, (int)n - 1);
  out[len > 0 ? len : 0] = '\0';
  BIO_free(b);
}

void hub_x509_signer_string(X509 *cert, char *out, size_t out_size) {
  unsigned char md[32];
  unsigned int mdlen = 0;
  char subj[400], hex[65];
  subject_of(cert, subj, sizeof subj);
  X509_digest(cert, EVP_sha256(), md, &mdlen);
  for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  snprintf(out, out_size, "%s; sha256=%s", subj, hex);
}

static hub_err_t check_policy(const struct hub_truststore *ts, X509 *leaf, char *errbuf, size_t errbuf_size) {
  const struct hub_cert_policy *p = &ts->policy;
  char subj[400];
  subject_of(leaf, subj, sizeof subj);
  uint32_t xflags = X509_get_extension_flags(leaf);
  if (xflags & EXFLAG_KUSAGE) {
    if (!(X509_get_key_usage(leaf) & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)))
      return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_UNTRUSTED,
                      "certificate '%s' key usage does not allow signing (needs digitalSignature or nonRepudiation)", subj);
  } else if (p->require_key_usage) {
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY,
                    "certificate '%s' has no keyUsage extension; the certificate policy requires digitalSignature or "
                    "nonRepudiation", subj);
  }
  if ((xflags & EXFLAG_CA) && !p->allow_ca_signer)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY,
                    "certificate '%s' is a CA certificate (basicConstraints CA:TRUE); the certificate policy does not "
                    "let a CA sign documents", subj);
  EVP_PKEY *pk = X509_get0_pubkey(leaf);
  int bits = pk ? EVP_PKEY_get_bits(pk) : 0;
  if (pk && EVP_PKEY_is_a(pk, "RSA") && bits < p->min_rsa_bits)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY,
                    "certificate '%s' has a %d-bit RSA key; the certificate policy needs at least %lld bits", subj, bits,
                    (long long)p->min_rsa_bits);
  if (pk && EVP_PKEY_is_a(pk, "EC") && bits < p->min_ec_bits)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY,
                    "certificate '%s' has a %d-bit EC key; the certificate policy needs at least %lld bits", subj, bits,
                    (long long)p->min_ec_bits);
  if (!ts->n_ekus) return HUB_OK;
  EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, NULL, NULL);
  int found = 0;
  for (int i = 0; eku && !found && i < sk_ASN1_OBJECT_num(eku); i++)
    for (size_t j = 0; !found && j < ts->n_ekus; j++) found = OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), ts->ekus[j]) == 0;
  EXTENDED_KEY_USAGE_free(eku);
  ERR_clear_error();
  if (found) return HUB_OK;
  char allowed[300] = "";
  for (size_t j = 0; j < ts->n_ekus; j++) {
    char name[80];
    int nid = OBJ_obj2nid(ts->ekus[j]);
    if (nid != NID_undef) snprintf(name, sizeof name, "%s", OBJ_nid2sn(nid));
    else OBJ_obj2txt(name, sizeof name, ts->ekus[j], 1);
    snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s", j ? ", " : "", name);
  }
  return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY,
                  "certificate '%s' %s; the certificate policy allows only: %s", subj,
                  (xflags & EXFLAG_XKUSAGE) ? "names none of the allowed extended key usages" : "has no extendedKeyUsage",
                  allowed);
}

/* One chain check at time t; returns the X509_V_ code and the failing certificate. */
static int verify_at(const struct hub_truststore *ts, X509 *leaf, STACK_OF(X509) *untrusted, time_t t, X509 **bad) {
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  int err = X509_V_ERR_OUT_OF_MEM;
  *bad = NULL;
  if (!ctx) return err;
  if (X509_STORE_CTX_init(ctx, ts->store, leaf, untrusted) == 1) {
    X509_STORE_CTX_set_time(ctx, 0, t);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
    err = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509 *c = X509_STORE_CTX_get_current_cert(ctx);
    if (err != X509_V_OK && c && X509_up_ref(c)) *bad = c;
  }
  X509_STORE_CTX_free(ctx);
  ERR_clear_error();
  return err;
}

hub_err_t hub_truststore_check(const struct hub_truststore *ts, X509 *leaf, STACK_OF(X509) *untrusted, time_t at,
                               char *errbuf, size_t errbuf_size) {
  time_t now = at ? at : time(NULL);
  char subj[400];
  X509 *bad = NULL;
  hub_err_t rc = HUB_OK;
  /* The policy first: a certificate that may not sign is refused whatever its chain, and this
   * costs no signature check. */
  if ((rc = check_policy(ts, leaf, errbuf, errbuf_size))) return rc;
  int err = verify_at(ts, leaf, untrusted, now, &bad);
  /* Clock skew: a certificate just expired or not quite valid yet is retried at the edge. */
  if (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID) {
    time_t t2 = err == X509_V_ERR_CERT_HAS_EXPIRED ? now - (time_t)ts->skew_s : now + (time_t)ts->skew_s;
    X509 *bad2 = NULL;
    int err2 = verify_at(ts, leaf, untrusted, t2, &bad2);
    if (err2 == X509_V_OK) {
      X509_free(bad);
      bad = NULL;
      err = X509_V_OK;
    }
    X509_free(bad2);
  }
  if (err == X509_V_OK) goto out;
  subject_of(bad ? bad : leaf, subj, sizeof subj);
  if (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID) {
    const ASN1_TIME *edge = err == X509_V_ERR_CERT_HAS_EXPIRED ? X509_get0_notAfter(bad ? bad : leaf)
                                                                : X509_get0_notBefore(bad ? bad : leaf);
    struct tm tm;
    char when[40] = "?";
    if (ASN1_TIME_to_tm(edge, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(errbuf, errbuf_size, "certificate '%s' %s %s (clock skew %llds)", subj,
             err == X509_V_ERR_CERT_HAS_EXPIRED ? "expired at" : "is not valid before", when,
             (long long)ts->skew_s);
    rc = HUB_ERR_SIG_EXPIRED;
  } else {
    snprintf(errbuf, errbuf_size, "untrusted chain: certificate '%s': %s", subj, X509_verify_cert_error_string(err));
    rc = HUB_ERR_SIG_UNTRUSTED;
  }
out:
  X509_free(bad);
  return rc;
}
