/* JWS (RFC 7515): the RFC's Appendix A examples, sign/verify round trips for RS256, PS256 and
 * ES256 in compact and detached form (keys and certificates made by the openssl command line
 * in a temporary folder), signatures checked by `openssl dgst` as an independent verifier,
 * and a negative corpus where each case must fail with its code and a reason substring. */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "check.h"
#include "hub/core/registry.h"
#include "hub/core/step_chain.h"
#include "hub/trust/jws.h"
#include "hub/trust/truststore.h"

static char tmp[64];
static const char *fixtures;
static char ca_path[128]; /* trust CA for x5c checks */

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  if (p && fread(p, 1, (size_t)n, f) != (size_t)n) n = 0;
  fclose(f);
  if (p) p[n] = 0;
  if (len) *len = (size_t)n;
  return p;
}

static void spit(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(data, 1, len, f);
    fclose(f);
  }
}

static const char *tpath(const char *name) {
  static char bufs[8][256];
  static int i;
  char *b = bufs[i++ % 8];
  snprintf(b, 256, "%s/%s", tmp, name);
  return b;
}

static const char *fpath(const char *name) {
  static char bufs[4][512];
  static int i;
  char *b = bufs[i++ % 4];
  snprintf(b, 512, "%s/%s", fixtures, name);
  return b;
}

static int sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char full[2300];
  snprintf(full, sizeof full, "cd %s && (%s) >>openssl.log 2>&1", tmp, cmd);
  int rc = system(full);
  if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
  return rc;
}

/* ---- independent base64url (test side) ---- */

static char *b64url(const void *data, size_t len) {
  size_t cap = 4 * ((len + 2) / 3) + 1;
  char *out = malloc(cap);
  int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
  for (int i = 0; i < n; i++) {
    if (out[i] == '+') out[i] = '-';
    if (out[i] == '/') out[i] = '_';
  }
  while (n > 0 && out[n - 1] == '=') n--;
  out[n] = 0;
  return out;
}

static unsigned char *unb64url(const char *s, size_t *len) {
  size_t n = strlen(s);
  char *t = malloc(n + 4);
  memcpy(t, s, n);
  for (size_t i = 0; i < n; i++) {
    if (t[i] == '-') t[i] = '+';
    if (t[i] == '_') t[i] = '/';
  }
  size_t pad = (4 - n % 4) % 4;
  for (size_t i = 0; i < pad; i++) t[n + i] = '=';
  t[n + pad] = 0;
  unsigned char *out = malloc(n + 4);
  int r = EVP_DecodeBlock(out, (unsigned char *)t, (int)(n + pad));
  free(t);
  *len = r > 0 ? (size_t)r - pad : 0;
  return out;
}

/* ---- RFC JWK fixtures to PEM ---- */

static BIGNUM *jwk_bn(json_t *jwk, const char *name) {
  size_t len;
  unsigned char *b = unb64url(json_string_value(json_object_get(jwk, name)), &len);
  BIGNUM *bn = BN_bin2bn(b, (int)len, NULL);
  free(b);
  return bn;
}

static int jwk_to_pem(const char *jwk_file, const char *priv_out, const char *pub_out) {
  json_t *jwk = json_load_file(jwk_file, 0, NULL);
  if (!jwk) return -1;
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  BIGNUM *bns[8] = {0};
  unsigned char pub[65];
  EVP_PKEY_CTX *ctx = NULL;
  EVP_PKEY *pkey = NULL;
  int rc = -1;
  const char *kty = json_string_value(json_object_get(jwk, "kty"));
  if (strcmp(kty, "RSA") == 0) {
    static const char *jn[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    static const char *pn[] = {OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,         OSSL_PKEY_PARAM_RSA_D,
                               OSSL_PKEY_PARAM_RSA_FACTOR1,   OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                               OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    for (int i = 0; i < 8; i++) {
      bns[i] = jwk_bn(jwk, jn[i]);
      OSSL_PARAM_BLD_push_BN(bld, pn[i], bns[i]);
    }
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
  } else {
    size_t xl, yl;
    unsigned char *x = unb64url(json_string_value(json_object_get(jwk, "x")), &xl);
    unsigned char *y = unb64url(json_string_value(json_object_get(jwk, "y")), &yl);
    pub[0] = 4;
    memcpy(pub + 1, x, 32);
    memcpy(pub + 33, y, 32);
    free(x);
    free(y);
    bns[0] = jwk_bn(jwk, "d");
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bns[0]);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  }
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  if (ctx && EVP_PKEY_fromdata_init(ctx) == 1 && EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) == 1) {
    FILE *f = fopen(priv_out, "w");
    FILE *g = fopen(pub_out, "w");
    if (f && g && PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) && PEM_write_PUBKEY(g, pkey)) rc = 0;
    if (f) fclose(f);
    if (g) fclose(g);
  }
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  for (int i = 0; i < 8; i++) BN_free(bns[i]);
  EVP_PKEY_free(pkey);
  EVP_PKEY_CTX_free(ctx);
  json_decref(jwk);
  return rc;
}

/* ---- keys and certificates by openssl ---- */

static int make_pki(void) {
  int rc = 0;
  rc |= sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key");
  rc |= sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key");
  rc |= sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ec384.key");
  rc |= sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.key");
  rc |= sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-other.key");
  rc |= sh("for k in rsa ec ec384 rsa1024 rsa-other; do openssl pkey -in $k.key -pubout -out $k.pub; done");
  rc |= sh("openssl pkey -in ec.key -aes256 -passout pass:secret -out ec-encrypted.key");
  /* a CA, a second CA nobody trusts, leaves for both keys; extensions as a real CA sets them */
  rc |= sh("printf 'basicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature,nonRepudiation\\n' > leaf.ext");
  rc |= sh("printf 'basicConstraints=critical,CA:FALSE\\nkeyUsage=critical,keyEncipherment\\n' > enc.ext");
  rc |= sh("openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 "
           "-subj '/C=VN/O=Lien Thong Test/CN=Test Root CA' -addext basicConstraints=critical,CA:TRUE "
           "-addext keyUsage=critical,keyCertSign,cRLSign");
  rc |= sh("openssl req -x509 -new -newkey rsa:2048 -nodes -keyout evil-ca.key -out evil-ca.pem -days 3650 "
           "-subj '/CN=Evil CA' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign");
  rc |= sh("openssl req -new -key rsa.key -subj '/C=VN/O=So TTTT/CN=hub-rsa' -out rsa.csr && "
           "openssl x509 -req -in rsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile leaf.ext -out rsa.crt");
  rc |= sh("openssl req -new -key ec.key -subj '/C=VN/O=So TTTT/CN=hub-ec' -out ec.csr && "
           "openssl x509 -req -in ec.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile leaf.ext -out ec.crt");
  rc |= sh("openssl x509 -req -in rsa.csr -CA evil-ca.pem -CAkey evil-ca.key -CAcreateserial -days 365 "
           "-extfile leaf.ext -out rsa-evil.crt");
  rc |= sh("openssl x509 -req -in rsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile enc.ext "
           "-out rsa-enc.crt");
  return rc;
}

/* An RSA leaf for rsa.key signed by the test CA, valid from two years ago until a year ago. */
static int make_expired_cert(void) {
  FILE *f = fopen(tpath("ca.key"), "r");
  EVP_PKEY *ca_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
  if (f) fclose(f);
  f = fopen(tpath("ca.pem"), "r");
  X509 *ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f) fclose(f);
  f = fopen(tpath("rsa.pub"), "r");
  EVP_PKEY *pub = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
  if (f) fclose(f);
  X509 *x = X509_new();
  int rc = -1;
  if (ca_key && ca && pub && x) {
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"hub-expired", -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_NAME_free(n);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    X509_gmtime_adj(X509_getm_notBefore(x), -2L * 365 * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), -1L * 365 * 86400);
    X509_set_pubkey(x, pub);
    X509_EXTENSION *ku = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "critical,digitalSignature");
    if (ku) X509_add_ext(x, ku, -1);
    X509_EXTENSION_free(ku);
    if (X509_sign(x, ca_key, EVP_sha256()) > 0 && (f = fopen(tpath("rsa-expired.crt"), "w"))) {
      if (PEM_write_X509(f, x)) rc = 0;
      fclose(f);
    }
  }
  X509_free(x);
  X509_free(ca);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(pub);
  return rc;
}

static struct hub_jws_key *load(const char *path, const char *kid) {
  struct hub_jws_key *k = NULL;
  char errbuf[512] = "";
  if (hub_jws_key_load(path, kid, &k, errbuf, sizeof errbuf) != HUB_OK) fprintf(stderr, "load %s: %s\n", path, errbuf);
  CHECK(k != NULL);
  return k;
}

/* ---- test-side signer for crafted headers (independent of the library's) ---- */

static char *forge(const char *header_json, const void *payload, size_t plen, const char *keyfile, const char *how) {
  char *h = b64url(header_json, strlen(header_json));
  char *p = b64url(payload, plen);
  size_t in_len = strlen(h) + 1 + strlen(p);
  char *input = malloc(in_len + 1);
  snprintf(input, in_len + 1, "%s.%s", h, p);
  unsigned char sig[1024];
  size_t sig_len = sizeof sig;
  if (strcmp(how, "hmac-file") == 0) { /* the classic confusion: the key file's bytes as an HMAC secret */
    size_t klen;
    char *secret = slurp(keyfile, &klen);
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret, (int)klen, (unsigned char *)input, in_len, sig, &n);
    sig_len = n;
    free(secret);
  } else if (strcmp(how, "none") == 0) {
    sig_len = 0;
  } else { /* "rs256" or "es256-der": EVP_DigestSign with the PEM private key */
    FILE *f = fopen(keyfile, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!k || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) != 1 ||
        EVP_DigestSign(md, sig, &sig_len, (unsigned char *)input, in_len) != 1)
      sig_len = 0;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
  }
  char *s = b64url(sig, sig_len);
  size_t total = in_len + 2 + strlen(s);
  char *out = malloc(total);
  snprintf(out, total, "%s.%s", input, s);
  free(h);
  free(p);
  free(input);
  free(s);
  return out;
}

/* ---- the checks ---- */

static int negatives;

static void expect_fail(const char *name, const char *jws, const struct hub_jws_verify_opts *o, hub_err_t code,
                        const char *reason) {
  char errbuf[1024] = "", signer[512] = "";
  char *payload = (char *)"untouched";
  size_t plen = 0;
  hub_err_t err = hub_jws_verify(jws, strlen(jws), o, &payload, &plen, signer, sizeof signer, errbuf, sizeof errbuf);
  int ok = err == code && strstr(errbuf, reason) != NULL && payload == NULL;
  CHECK(err == code);
  CHECK_CONTAINS(errbuf, reason);
  CHECK(payload == NULL);
  CHECK(signer[0] == 0);
  printf("negative %-28s %-14s %s  [%s]\n", name, hub_err2name(err), ok ? "ok" : "WRONG", errbuf);
  negatives++;
}

static void rfc_examples(void) {
  char errbuf[512] = "", signer[512] = "";
  CHECK(jwk_to_pem(fpath("rfc7515-a2-key.jwk.json"), tpath("a2.key"), tpath("a2.pub")) == 0);
  CHECK(jwk_to_pem(fpath("rfc7515-a3-key.jwk.json"), tpath("a3.key"), tpath("a3.pub")) == 0);
  struct hub_jws_key *a2 = load(tpath("a2.pub"), NULL), *a3 = load(tpath("a3.pub"), NULL);
  struct hub_jws_key *a2priv = load(tpath("a2.key"), NULL);
  const char *want_payload = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
  struct {
    const char *file;
    struct hub_jws_key *key;
  } ok[] = {{"rfc7515-a2.jws", a2}, {"rfc7515-a3.jws", a3}};
  for (int i = 0; i < 2; i++) {
    size_t len;
    char *jws = slurp(fpath(ok[i].file), &len);
    const struct hub_jws_key *pin[] = {ok[i].key};
    struct hub_jws_verify_opts o = {.pinned = pin, .n_pinned = 1};
    char *payload = NULL;
    size_t plen = 0;
    hub_err_t err = jws ? hub_jws_verify(jws, len, &o, &payload, &plen, signer, sizeof signer, errbuf, sizeof errbuf)
                        : HUB_ERR_IO;
    CHECK(err == HUB_OK);
    CHECK_STR(payload, want_payload);
    CHECK(plen == strlen(want_payload));
    CHECK_CONTAINS(signer, "public key; sha256=");
    printf("RFC 7515 %s: %s %s\n", ok[i].file, err ? hub_err2name(err) : "verified", err ? errbuf : signer);
    free(payload);
    /* the other example's key must not verify it */
    const struct hub_jws_key *wrong[] = {i == 0 ? a3 : a2};
    o.pinned = wrong;
    CHECK(hub_jws_verify(jws, len, &o, NULL, NULL, NULL, 0, errbuf, sizeof errbuf) == HUB_ERR_SIG_POLICY);
    free(jws);
  }
  /* RS256 is deterministic: signing the A.2 payload with the A.2 key reproduces the RFC's JWS */
  char *mine = NULL, *rfc = slurp(fpath("rfc7515-a2.jws"), NULL);
  CHECK(hub_jws_sign_new(a2priv, NULL, "RS256", want_payload, strlen(want_payload), 0, &mine, errbuf, sizeof errbuf) ==
        HUB_OK);
  if (rfc) rfc[strcspn(rfc, "\n")] = 0;
  CHECK_STR(mine, rfc);
  printf("RFC 7515 A.2 re-signed: %s\n", mine && rfc && strcmp(mine, rfc) == 0 ? "identical to the RFC" : "DIFFERENT");
  free(mine);
  free(rfc);
  /* A.1 (HS256) is refused by policy whatever key is offered */
  size_t len;
  char *a1 = slurp(fpath("rfc7515-a1.jws"), &len);
  const struct hub_jws_key *pin[] = {a2};
  struct hub_jws_verify_opts o = {.pinned = pin, .n_pinned = 1};
  if (a1) a1[strcspn(a1, "\n")] = 0;
  expect_fail("rfc7515-a1-hs256", a1 ? a1 : "", &o, HUB_ERR_SIG_POLICY, "alg HS256 is not allowed");
  free(a1);
  char *a5 = slurp(fpath("rfc7515-a5.jws"), &len);
  if (a5) a5[strcspn(a5, "\n")] = 0;
  expect_fail("rfc7515-a5-unsecured", a5 ? a5 : "", &o, HUB_ERR_SIG_POLICY, "alg \"none\" (unsecured JWS) is not allowed");
  free(a5);
  hub_jws_key_destroy(a2);
  hub_jws_key_destroy(a3);
  hub_jws_key_destroy(a2priv);
}

/* openssl dgst as an independent verifier of our RS256 / PS256 signature bytes */
static void openssl_cross_check(const char *jws, const char *alg) {
  const char *d2 = strrchr(jws, '.');
  size_t sig_len;
  unsigned char *sig = unb64url(d2 + 1, &sig_len);
  spit(tpath("x.sig"), sig, sig_len);
  spit(tpath("x.in"), jws, (size_t)(d2 - jws));
  free(sig);
  int rc = sh("openssl dgst -sha256 -verify rsa.pub %s -signature x.sig x.in",
              strcmp(alg, "PS256") == 0 ? "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest" : "");
  CHECK(rc == 0);
  printf("openssl dgst verifies our %s signature: %s\n", alg, rc == 0 ? "yes" : "NO");
}

static void round_trips(void) {
  const char *payload = "{\"maHoSo\":\"000.00.00.H01-260101-0001\",\"soTien\":150000.50,\"ten\":\"Nguy\xe1\xbb\x85n V\xc4\x83n A\"}";
  const char *reordered = "{ \"ten\":\"Nguy\\u1ec5n V\\u0103n A\", \"soTien\": 1.5000050e5,\n \"maHoSo\":\"000.00.00.H01-260101-0001\" }";
  struct {
    const char *alg, *key, *pub, *crt;
  } t[] = {{"RS256", "rsa.key", "rsa.pub", "rsa.crt"}, {"PS256", "rsa.key", "rsa.pub", "rsa.crt"}, {"ES256", "ec.key", "ec.pub", "ec.crt"}};
  const char *ca[] = {ca_path};
  for (int i = 0; i < 3; i++) {
    struct hub_jws_key *priv = load(tpath(t[i].key), "hub-2026"), *pub = load(tpath(t[i].pub), "hub-2026");
    struct hub_jws_key *cert = load(tpath(t[i].crt), "hub-2026");
    char id_pub[700], id_cert[700];
    hub_jws_key_get_identity(pub, id_pub, sizeof id_pub);
    hub_jws_key_get_identity(cert, id_cert, sizeof id_cert);
    CHECK_STR(hub_jws_key_get_kid(pub), "hub-2026");
    CHECK_STR(hub_jws_key_get_default_alg(priv), t[i].alg[0] == 'E' ? "ES256" : "RS256");
    CHECK_CONTAINS(id_pub, "kid=hub-2026; sha256=");
    CHECK_CONTAINS(id_cert, "CN=hub-");
    for (int detached = 0; detached < 2; detached++) {
      char errbuf[512] = "", signer[512] = "", *jws = NULL, *out = NULL;
      size_t out_len = 0;
      hub_err_t err = hub_jws_sign_new(priv, tpath(t[i].crt), t[i].alg, payload, strlen(payload), detached, &jws, errbuf,
                                       sizeof errbuf);
      CHECK(err == HUB_OK);
      if (err) {
        fprintf(stderr, "sign %s: %s\n", t[i].alg, errbuf);
        continue;
      }
      CHECK((strstr(jws, "..") != NULL) == detached);
      /* 1. pinned public key, kid selects it */
      const struct hub_jws_key *pin[] = {pub};
      struct hub_jws_verify_opts o = {.pinned = pin, .n_pinned = 1};
      if (detached) o.detached_payload = reordered, o.detached_len = strlen(reordered); /* same JSON, other bytes */
      err = hub_jws_verify(jws, strlen(jws), &o, &out, &out_len, signer, sizeof signer, errbuf, sizeof errbuf);
      CHECK(err == HUB_OK);
      if (err) fprintf(stderr, "verify %s: %s\n", t[i].alg, errbuf);
      CHECK_STR(signer, id_pub); /* the private and public halves name the same key */
      if (detached)
        CHECK_STR(out, "{\"maHoSo\":\"000.00.00.H01-260101-0001\",\"soTien\":150000.5,\"ten\":\"Nguy\xe1\xbb\x85n V\xc4\x83n A\"}");
      else
        CHECK_STR(out, payload);
      free(out);
      /* 2. no pinned key: the x5c chain against the trust CA */
      struct hub_jws_verify_opts o2 = {.trust_ca = ca, .n_trust_ca = 1, .clock_skew_s = 300};
      if (detached) o2.detached_payload = payload, o2.detached_len = strlen(payload);
      err = hub_jws_verify(jws, strlen(jws), &o2, NULL, NULL, signer, sizeof signer, errbuf, sizeof errbuf);
      CHECK(err == HUB_OK);
      if (err) fprintf(stderr, "verify x5c %s: %s\n", t[i].alg, errbuf);
      CHECK_CONTAINS(signer, "CN=hub-");
      CHECK_CONTAINS(signer, "O=So TTTT");
      /* 3. pinned certificate: the signer names the certificate */
      const struct hub_jws_key *pinc[] = {cert};
      o.pinned = pinc;
      err = hub_jws_verify(jws, strlen(jws), &o, NULL, NULL, signer, sizeof signer, errbuf, sizeof errbuf);
      CHECK(err == HUB_OK);
      CHECK_CONTAINS(signer, "CN=hub-");
      printf("round trip %s %-8s: %s  signer \"%s\"\n", t[i].alg, detached ? "detached" : "compact", err ? errbuf : "ok", signer);
      if (!detached && t[i].alg[0] != 'E') openssl_cross_check(jws, t[i].alg);
      if (!detached && t[i].alg[0] == 'E') { /* R||S, 64 bytes; openssl dgst wants DER */
        size_t sl;
        unsigned char *rs = unb64url(strrchr(jws, '.') + 1, &sl);
        CHECK(sl == 64);
        ECDSA_SIG *es = ECDSA_SIG_new();
        unsigned char *der = NULL;
        int dl = 0;
        if (es && sl == 64 && ECDSA_SIG_set0(es, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL)) == 1)
          dl = i2d_ECDSA_SIG(es, &der);
        spit(tpath("x.sig"), der, dl > 0 ? (size_t)dl : 0);
        spit(tpath("x.in"), jws, (size_t)(strrchr(jws, '.') - jws));
        int rc = sh("openssl dgst -sha256 -verify ec.pub -signature x.sig x.in");
        CHECK(rc == 0);
        printf("openssl dgst verifies our ES256 signature (R||S as DER): %s\n", rc == 0 ? "yes" : "NO");
        OPENSSL_free(der);
        ECDSA_SIG_free(es);
        free(rs);
      }
      free(jws);
    }
    hub_jws_key_destroy(priv);
    hub_jws_key_destroy(pub);
    hub_jws_key_destroy(cert);
  }
  /* signing refusals */
  char errbuf[512], *jws = NULL;
  struct hub_jws_key *pub = load(tpath("rsa.pub"), NULL), *ec = load(tpath("ec.key"), NULL);
  CHECK(hub_jws_sign_new(pub, NULL, NULL, "x", 1, 0, &jws, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "private key");
  CHECK(hub_jws_sign_new(ec, NULL, "RS256", "x", 1, 0, &jws, errbuf, sizeof errbuf) == HUB_ERR_SIG_POLICY);
  CHECK_CONTAINS(errbuf, "needs an RSA key");
  CHECK(hub_jws_sign_new(ec, NULL, "HS256", "x", 1, 0, &jws, errbuf, sizeof errbuf) == HUB_ERR_SIG_POLICY);
  CHECK(hub_jws_sign_new(ec, NULL, "none", "x", 1, 0, &jws, errbuf, sizeof errbuf) == HUB_ERR_SIG_POLICY);
  CHECK(hub_jws_sign_new(ec, tpath("rsa.crt"), NULL, "x", 1, 0, &jws, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "does not hold");
  CHECK(hub_jws_sign_new(ec, NULL, NULL, "not json", 8, 1, &jws, errbuf, sizeof errbuf) == HUB_ERR_JSON);
  CHECK_CONTAINS(errbuf, "detached payload is not JSON");
  CHECK(jws == NULL);
  struct hub_jws_key *bad = NULL, *mem = NULL;
  size_t pem_len;
  char *pem = slurp(tpath("rsa.pub"), &pem_len);
  CHECK(pem && hub_jws_key_load_mem(pem, pem_len, "m", &mem, errbuf, sizeof errbuf) == HUB_OK);
  CHECK_STR(hub_jws_key_get_kid(mem), "m");
  CHECK(hub_jws_key_load_mem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 58, NULL, &bad, errbuf,
                             sizeof errbuf) == HUB_ERR_CRYPTO);
  hub_jws_key_destroy(mem);
  free(pem);
  /* an encrypted key is an error, never a passphrase prompt */
  CHECK(hub_jws_key_load(tpath("ec-encrypted.key"), NULL, &bad, errbuf, sizeof errbuf) == HUB_ERR_CRYPTO);
  CHECK_CONTAINS(errbuf, "encrypted key is not supported");
  CHECK(hub_jws_key_load(tpath("leaf.ext"), NULL, &bad, errbuf, sizeof errbuf) == HUB_ERR_CRYPTO);
  CHECK_CONTAINS(errbuf, "leaf.ext");
  CHECK(hub_jws_key_load(tpath("missing.pem"), NULL, &bad, errbuf, sizeof errbuf) == HUB_ERR_IO);
  CHECK(bad == NULL);
  hub_jws_key_destroy(pub);
  hub_jws_key_destroy(ec);
}

static char *swap_header(const char *jws, const char *new_header_json) {
  char *h = b64url(new_header_json, strlen(new_header_json));
  const char *d1 = strchr(jws, '.');
  size_t n = strlen(h) + strlen(d1) + 1;
  char *out = malloc(n);
  snprintf(out, n, "%s%s", h, d1);
  free(h);
  return out;
}

static void negative_corpus(void) {
  const char *payload = "{\"maHoSo\":\"H01-0001\"}";
  struct hub_jws_key *rsa = load(tpath("rsa.key"), "hub-rsa"), *rsapub = load(tpath("rsa.pub"), "hub-rsa");
  struct hub_jws_key *ecpub = load(tpath("ec.pub"), "hub-ec"), *ec = load(tpath("ec.key"), "hub-ec");
  struct hub_jws_key *ec384 = load(tpath("ec384.pub"), "hub-384"), *small = load(tpath("rsa1024.pub"), "small");
  const struct hub_jws_key *pins[] = {rsapub, ecpub, ec384, small};
  struct hub_jws_verify_opts o = {.pinned = pins, .n_pinned = 4};
  const char *ca[] = {ca_path};
  struct hub_jws_verify_opts tr = {.trust_ca = ca, .n_trust_ca = 1};
  char errbuf[512], *good = NULL, *good_ec = NULL, *t;

  CHECK(hub_jws_sign_new(rsa, NULL, "RS256", payload, strlen(payload), 0, &good, errbuf, sizeof errbuf) == HUB_OK);
  CHECK(hub_jws_sign_new(ec, NULL, "ES256", payload, strlen(payload), 0, &good_ec, errbuf, sizeof errbuf) == HUB_OK);
  if (!good || !good_ec) return;
  CHECK(hub_jws_verify(good, strlen(good), &o, NULL, NULL, NULL, 0, errbuf, sizeof errbuf) == HUB_OK);
  size_t gl = strlen(good);

  t = forge("{\"alg\":\"none\"}", payload, strlen(payload), NULL, "none");
  expect_fail("alg-none", t, &o, HUB_ERR_SIG_POLICY, "alg \"none\" (unsecured JWS) is not allowed");
  free(t);
  t = forge("{\"alg\":\"None\",\"kid\":\"hub-rsa\"}", payload, strlen(payload), tpath("rsa.key"), "rs256");
  expect_fail("alg-None-with-signature", t, &o, HUB_ERR_SIG_POLICY, "unsecured JWS");
  free(t);
  t = forge("{\"alg\":\"HS256\",\"kid\":\"hub-rsa\"}", payload, strlen(payload), tpath("rsa.pub"), "hmac-file");
  expect_fail("hs256-rsa-public-key-secret", t, &o, HUB_ERR_SIG_POLICY, "never used as an HMAC secret");
  free(t);
  t = forge("{\"alg\":\"RS256\",\"kid\":\"hub-rsa\",\"alg\":\"none\"}", payload, strlen(payload), tpath("rsa.key"), "rs256");
  expect_fail("duplicate-header-member", t, &o, HUB_ERR_SIG_POLICY, "duplicate members");
  free(t);
  t = forge("{\"alg\":\"RS256\",\"kid\":\"hub-rsa\",\"\\u006bid\":\"x\"}", payload, strlen(payload), tpath("rsa.key"), "rs256");
  expect_fail("duplicate-member-escaped", t, &o, HUB_ERR_SIG_POLICY, "duplicate members");
  free(t);
  t = forge("{\"alg\":\"RS256\",\"kid\":\"hub-rsa\",\"crit\":[\"exp\"],\"exp\":1363284000}", payload, strlen(payload),
            tpath("rsa.key"), "rs256");
  expect_fail("unknown-crit", t, &o, HUB_ERR_SIG_POLICY, "\"crit\" names extension \"exp\"");
  free(t);
  t = forge("{\"alg\":\"RS256\",\"crit\":[]}", payload, strlen(payload), tpath("rsa.key"), "rs256");
  expect_fail("empty-crit", t, &o, HUB_ERR_SIG_POLICY, "non-empty array");
  free(t);

  /* truncated */
  t = strndup(good, gl - 2); /* 340 characters: 255 whole bytes, one short */
  expect_fail("truncated-signature", t, &o, HUB_ERR_SIG_INVALID, "signature is 255 bytes, the 2048-bit key needs 256 (truncated?)");
  free(t);
  t = strndup(good, (size_t)(strrchr(good, '.') - good));
  expect_fail("truncated-two-segments", t, &o, HUB_ERR_SIG_INVALID, "3 dot-separated segments, found 2");
  free(t);
  t = strndup(good, gl - 1); /* 341 characters: not a whole number of bytes */
  expect_fail("truncated-one-char", t, &o, HUB_ERR_SIG_INVALID, "cannot be a whole number of bytes");
  free(t);
  /* re-encoded */
  size_t n = gl + 3;
  t = malloc(n);
  snprintf(t, n, "%s==", good);
  expect_fail("padded-base64url", t, &o, HUB_ERR_SIG_INVALID, "padding is not allowed");
  free(t);
  t = strdup(good);
  for (char *c = t; *c; c++) {
    if (*c == '-') *c = '+';
    if (*c == '_') *c = '/';
  }
  if (strcmp(t, good) != 0) expect_fail("standard-base64-alphabet", t, &o, HUB_ERR_SIG_INVALID, "not base64url");
  else negatives++; /* a signature without - or _ cannot be re-encoded this way; the next case covers it */
  free(t);
  {
    /* the last signature character carries 4 unused bits for 256 bytes; set one */
    t = strdup(good);
    char *last = t + gl - 1;
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alpha, *last) - alpha);
    *last = alpha[v | 1];
    if ((v & 1) == 0) expect_fail("non-canonical-base64url", t, &o, HUB_ERR_SIG_INVALID, "non-canonical");
    else {
      *last = alpha[v & ~1]; /* v had the bit set: then the original was non-canonical, impossible */
      CHECK(!"signature ended in a non-canonical character");
    }
    free(t);
  }
  t = malloc(gl + 8);
  snprintf(t, gl + 8, "%s.extra", good);
  expect_fail("four-segments", t, &o, HUB_ERR_SIG_INVALID, "more than 3 segments");
  free(t);
  expect_fail("empty-input", "  \n", &o, HUB_ERR_SIG_INVALID, "empty");

  /* key type and kid */
  t = forge("{\"alg\":\"ES256\",\"kid\":\"hub-rsa\"}", payload, strlen(payload), tpath("rsa.key"), "rs256");
  expect_fail("wrong-key-type-es256-rsa", t, &o, HUB_ERR_SIG_POLICY, "needs an EC P-256 key, the key is RSA-2048");
  free(t);
  t = forge("{\"alg\":\"RS256\",\"kid\":\"hub-ec\"}", payload, strlen(payload), tpath("rsa.key"), "rs256");
  expect_fail("wrong-key-type-rs256-ec", t, &o, HUB_ERR_SIG_POLICY, "needs an RSA key");
  free(t);
  t = forge("{\"alg\":\"ES256\",\"kid\":\"hub-384\"}", payload, strlen(payload), tpath("ec384.key"), "es256-der");
  expect_fail("es256-with-p384-key", t, &o, HUB_ERR_SIG_POLICY, "EC P-256 key, the key is EC secp384r1");
  free(t);
  t = forge("{\"alg\":\"RS256\",\"kid\":\"small\"}", payload, strlen(payload), tpath("rsa1024.key"), "rs256");
  expect_fail("rsa-1024-too-small", t, &o, HUB_ERR_SIG_POLICY, "below the 2048-bit minimum");
  free(t);
  t = forge("{\"alg\":\"ES256\",\"kid\":\"hub-ec\"}", payload, strlen(payload), tpath("ec.key"), "es256-der");
  expect_fail("es256-der-signature", t, &o, HUB_ERR_SIG_INVALID, "DER");
  free(t);
  t = forge("{\"alg\":\"RS512\",\"kid\":\"hub-rsa\"}", payload, strlen(payload), tpath("rsa.key"), "rs256");
  expect_fail("unsupported-alg", t, &o, HUB_ERR_SIG_POLICY, "not supported (allowed: RS256, PS256, ES256)");
  free(t);
  t = forge("{\"alg\":\"RS256\",\"kid\":\"hub-unknown\"}", payload, strlen(payload), tpath("rsa.key"), "rs256");
  expect_fail("kid-not-found", t, &o, HUB_ERR_SIG_UNTRUSTED, "no configured key has kid \"hub-unknown\"");
  free(t);
  t = forge("{\"alg\":\"RS256\",\"kid\":\"hub-rsa\"}", payload, strlen(payload), tpath("rsa-other.key"), "rs256");
  expect_fail("signed-by-other-key", t, &o, HUB_ERR_SIG_INVALID, "does not verify");
  free(t);

  /* tampering */
  {
    const char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
    char *p64 = b64url("{\"maHoSo\":\"H01-0002\"}", 21);
    size_t m = gl + 64;
    t = malloc(m);
    snprintf(t, m, "%.*s.%s%s", (int)(d1 - good), good, p64, d2);
    expect_fail("tampered-payload", t, &o, HUB_ERR_SIG_INVALID, "does not verify");
    free(t);
    free(p64);
    t = swap_header(good, "{\"alg\":\"RS256\",\"kid\":\"hub-rsa\",\"typ\":\"JOSE\"}");
    expect_fail("tampered-header", t, &o, HUB_ERR_SIG_INVALID, "does not verify");
    free(t);
    t = swap_header(good, "{ \"alg\":\"RS256\",\"kid\":\"hub-rsa\"}"); /* same members, other bytes */
    expect_fail("re-encoded-header-json", t, &o, HUB_ERR_SIG_INVALID, "does not verify");
    free(t);
    t = swap_header(good, "not json");
    expect_fail("non-json-header", t, &o, HUB_ERR_JSON, "protected header is not a JSON object");
    free(t);
    t = swap_header(good, "[\"alg\",\"RS256\"]");
    expect_fail("header-json-array", t, &o, HUB_ERR_JSON, "protected header is not a JSON object but a JSON array");
    free(t);
    t = swap_header(good, "{\"kid\":\"hub-rsa\"}");
    expect_fail("header-without-alg", t, &o, HUB_ERR_SIG_POLICY, "no \"alg\"");
    free(t);
  }

  /* x5c chains */
  {
    struct hub_jws_key *rsa_nokid = load(tpath("rsa.key"), NULL);
    const char *certs[] = {"rsa-evil.crt", "rsa-expired.crt", "rsa-enc.crt", "rsa.crt"};
    char *x[4] = {0};
    for (int i = 0; i < 4; i++)
      CHECK(hub_jws_sign_new(rsa_nokid, tpath(certs[i]), NULL, payload, strlen(payload), 0, &x[i], errbuf, sizeof errbuf) ==
            HUB_OK);
    if (x[0]) expect_fail("untrusted-x5c", x[0], &tr, HUB_ERR_SIG_UNTRUSTED, "x5c: untrusted chain");
    if (x[1]) expect_fail("expired-x5c", x[1], &tr, HUB_ERR_SIG_EXPIRED, "certificate 'CN=hub-expired' expired at");
    if (x[2]) expect_fail("x5c-key-usage-encipherment", x[2], &tr, HUB_ERR_SIG_UNTRUSTED, "key usage does not allow signing");
    struct hub_jws_verify_opts early = tr;
    early.now_s = (int64_t)time(NULL) - 86400 * 2;
    early.clock_skew_s = 3600;
    if (x[3]) expect_fail("x5c-not-yet-valid", x[3], &early, HUB_ERR_SIG_EXPIRED, "is not valid before");
    early.now_s = (int64_t)time(NULL) + 2L * 365 * 86400;
    if (x[3]) expect_fail("x5c-expired-in-future", x[3], &early, HUB_ERR_SIG_EXPIRED, "expired at");
    { /* a trust store loaded once, as the step does */
      struct hub_truststore *ts = NULL;
      CHECK(hub_truststore_new(ca, 1, NULL, 0, 300, &ts, errbuf, sizeof errbuf) == HUB_OK);
      struct hub_jws_verify_opts ots = {.truststore = ts};
      if (x[3]) CHECK(hub_jws_verify(x[3], strlen(x[3]), &ots, NULL, NULL, NULL, 0, errbuf, sizeof errbuf) == HUB_OK);
      if (x[0]) expect_fail("untrusted-x5c-truststore", x[0], &ots, HUB_ERR_SIG_UNTRUSTED, "untrusted chain");
      hub_truststore_destroy(ts);
    }
    struct hub_jws_verify_opts none = {0};
    if (x[3]) expect_fail("x5c-without-trust-ca", x[3], &none, HUB_ERR_SIG_UNTRUSTED, "no trust CA");
    if (x[3]) { /* the skew tolerates a clock one hour behind the notBefore */
      struct hub_jws_verify_opts skew = tr;
      skew.now_s = (int64_t)time(NULL) - 1800;
      skew.clock_skew_s = 3600;
      CHECK(hub_jws_verify(x[3], strlen(x[3]), &skew, NULL, NULL, NULL, 0, errbuf, sizeof errbuf) == HUB_OK);
    }
    /* an x5c whose key differs from the pinned key with that kid */
    if (x[3]) {
      /* take x[3]'s header (x5c of rsa.crt), add kid of another RSA key pinned, re-sign in the test */
      const char *d1 = strchr(x[3], '.');
      char *h64 = strndup(x[3], (size_t)(d1 - x[3]));
      size_t hl;
      unsigned char *h = unb64url(h64, &hl);
      json_t *hj = json_loadb((char *)h, hl, 0, NULL);
      json_object_set_new(hj, "kid", json_string("other"));
      char *hs = json_dumps(hj, JSON_COMPACT);
      t = forge(hs, payload, strlen(payload), tpath("rsa-other.key"), "rs256");
      struct hub_jws_key *other = load(tpath("rsa-other.pub"), "other");
      const struct hub_jws_key *po[] = {other};
      struct hub_jws_verify_opts oo = {.pinned = po, .n_pinned = 1};
      expect_fail("x5c-differs-from-pinned", t, &oo, HUB_ERR_SIG_POLICY, "does not hold the public key pinned as \"other\"");
      free(t);
      free(hs);
      json_decref(hj);
      free(h);
      free(h64);
      hub_jws_key_destroy(other);
    }
    t = forge("{\"alg\":\"RS256\",\"x5c\":[\"bm90IGEgY2VydA==\"]}", payload, strlen(payload), tpath("rsa.key"), "rs256");
    expect_fail("x5c-not-a-certificate", t, &tr, HUB_ERR_SIG_INVALID, "x5c[0] is not a DER X.509 certificate");
    free(t);
    t = forge("{\"alg\":\"RS256\"}", payload, strlen(payload), tpath("rsa.key"), "rs256");
    expect_fail("no-key-source", t, &tr, HUB_ERR_SIG_UNTRUSTED, "no key is configured and the header has no x5c");
    free(t);
    for (int i = 0; i < 4; i++) free(x[i]);
    hub_jws_key_destroy(rsa_nokid);
  }

  /* detached */
  {
    char *d = NULL;
    CHECK(hub_jws_sign_new(rsa, NULL, NULL, payload, strlen(payload), 1, &d, errbuf, sizeof errbuf) == HUB_OK);
    struct hub_jws_verify_opts od = o;
    od.detached_payload = "{\"maHoSo\":\"H01-0003\"}";
    od.detached_len = strlen(od.detached_payload);
    if (d) expect_fail("detached-payload-mismatch", d, &od, HUB_ERR_SIG_INVALID, "over the canonicalised detached payload");
    if (d) expect_fail("detached-without-payload", d, &o, HUB_ERR_SIG_INVALID, "no detached payload was given");
    od.detached_payload = "{\"maHoSo\":\"H01-0001\",\"maHoSo\":\"H01-0003\"}";
    od.detached_len = strlen(od.detached_payload);
    if (d) expect_fail("detached-duplicate-keys", d, &od, HUB_ERR_JSON, "duplicate");
    od.detached_payload = payload;
    od.detached_len = strlen(payload);
    expect_fail("inline-and-detached", good, &od, HUB_ERR_SIG_INVALID, "inline");
    if (d) CHECK(hub_jws_verify(d, strlen(d), &od, NULL, NULL, NULL, 0, errbuf, sizeof errbuf) == HUB_OK);
    free(d);
    /* numbers that read as another double: the signature would cover digits nobody sent */
    const char *over = "{\"SoTien\":150000,\"x\":0}";
    CHECK(hub_jws_sign_new(rsa, NULL, NULL, over, strlen(over), 1, &d, errbuf, sizeof errbuf) == HUB_OK);
    const char *sent[] = {"{\"SoTien\":150000.00000000001,\"x\":0}", "{\"SoTien\":150000,\"x\":1e-400}",
                          "{\"SoTien\":150000,\"x\":0,\"MaGiaoDich\":1234567890123456700}"};
    const char *why[] = {"number 150000.00000000001 does not survive the IEEE-754 round trip",
                         "number 1e-400 does not survive", "number 1234567890123456700 does not survive the IEEE-754 round trip (it reads as 1234567890123456800)"};
    for (int k = 0; k < 3 && d; k++) {
      od.detached_payload = sent[k];
      od.detached_len = strlen(sent[k]);
      expect_fail(why[k], d, &od, HUB_ERR_JSON, why[k]);
    }
    od.detached_payload = "{\"x\":0.0,\"SoTien\":1.5e5}"; /* other spellings of the same values */
    od.detached_len = strlen(od.detached_payload);
    if (d) CHECK(hub_jws_verify(d, strlen(d), &od, NULL, NULL, NULL, 0, errbuf, sizeof errbuf) == HUB_OK);
    free(d);
    d = NULL;
    const char *big = "{\"MaGiaoDich\":1234567890123456789}";
    CHECK(hub_jws_sign_new(rsa, NULL, NULL, big, strlen(big), 1, &d, errbuf, sizeof errbuf) == HUB_ERR_JSON);
    CHECK_CONTAINS(errbuf, "send it as a string");
    CHECK(d == NULL);
  }
  printf("negative corpus: %d cases\n", negatives);
  CHECK(negatives >= 30);
  free(good);
  free(good_ec);
  hub_jws_key_destroy(rsa);
  hub_jws_key_destroy(rsapub);
  hub_jws_key_destroy(ec);
  hub_jws_key_destroy(ecpub);
  hub_jws_key_destroy(ec384);
  hub_jws_key_destroy(small);
}

/* Random damage to valid tokens: every variant must be refused (never crash, never accepted
 * unless it is byte-for-byte the original after trimming). Run under ASan by the sanitizer build. */
static void mutations(void) {
  char errbuf[512], *good = NULL, *det = NULL;
  struct hub_jws_key *rsa = load(tpath("rsa.key"), "m"), *pub = load(tpath("rsa.pub"), "m");
  const char *payload = "{\"a\":[1,2,{\"b\":\"c\"}]}";
  const struct hub_jws_key *pin[] = {pub};
  struct hub_jws_verify_opts o = {.pinned = pin, .n_pinned = 1};
  CHECK(hub_jws_sign_new(rsa, NULL, NULL, payload, strlen(payload), 0, &good, errbuf, sizeof errbuf) == HUB_OK);
  CHECK(hub_jws_sign_new(rsa, NULL, NULL, payload, strlen(payload), 1, &det, errbuf, sizeof errbuf) == HUB_OK);
  if (!good || !det) return;
  const char *alphabet = "A-_=.+/ \x00\xff{}\"";
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  int refused = 0, accepted_changed = 0;
  for (int i = 0; i < 3000; i++) {
    const char *base = i % 2 ? det : good;
    size_t n = strlen(base);
    char *t = malloc(n + 8);
    memcpy(t, base, n + 1);
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t at = (size_t)(x % n);
    switch ((x >> 32) % 4) {
    case 0: t[at] = alphabet[(x >> 40) % 14]; break;      /* replace */
    case 1: t[at] = 0, n = at; break;                      /* truncate */
    case 2: memmove(t + at + 1, t + at, n - at + 1), t[at] = alphabet[(x >> 40) % 14], n++; break; /* insert */
    case 3: memmove(t + at, t + at + 1, n - at), n--; break; /* delete */
    }
    struct hub_jws_verify_opts oo = o;
    if (i % 2) oo.detached_payload = payload, oo.detached_len = strlen(payload);
    hub_err_t err = hub_jws_verify(t, n, &oo, NULL, NULL, NULL, 0, errbuf, sizeof errbuf);
    if (err != HUB_OK) refused++;
    else if (n != strlen(base) || memcmp(t, base, n) != 0) {
      /* only an edit that leaves the same bytes (e.g. 'A' for 'A') or surrounding white space is acceptable */
      int ws = (t[0] == ' ' || t[n - 1] == ' ');
      if (!ws) accepted_changed++;
    }
    free(t);
  }
  printf("mutations: 3000 damaged tokens, %d refused, %d changed tokens accepted\n", refused, accepted_changed);
  CHECK(accepted_changed == 0);
  CHECK(refused > 2500);
  free(good);
  free(det);
  hub_jws_key_destroy(rsa);
  hub_jws_key_destroy(pub);
}

/* Rates with a signer made once (as the step does) and pinned-key verification; printed for
 * docs/jws.md, asserted only to be non-zero. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void rates(void) {
  const char *payload = "{\"maHoSo\":\"000.00.18.H47-260101-0007\",\"trangThai\":2,\"ghiChu\":\"\xc4\x91\xc3\xa3 ti\xe1\xba\xbfp nh\xe1\xba\xadn\"}";
  struct {
    const char *alg, *key, *pub;
  } t[] = {{"RS256", "rsa.key", "rsa.pub"}, {"PS256", "rsa.key", "rsa.pub"}, {"ES256", "ec.key", "ec.pub"}};
  char errbuf[512];
  for (int i = 0; i < 3; i++) {
    struct hub_jws_key *k = load(tpath(t[i].key), "r"), *p = load(tpath(t[i].pub), "r");
    struct hub_jws_signer *s = NULL;
    CHECK(hub_jws_signer_new(k, NULL, t[i].alg, &s, errbuf, sizeof errbuf) == HUB_OK);
    const struct hub_jws_key *pin[] = {p};
    struct hub_jws_verify_opts o = {.pinned = pin, .n_pinned = 1, .detached_payload = payload, .detached_len = strlen(payload)};
    int ns = 0, nv = 0, ok = 1;
    char *jws = NULL;
    double t0 = now_s();
    while (s && now_s() - t0 < 0.3) {
      free(jws);
      ok &= hub_jws_signer_sign(s, payload, strlen(payload), 1, &jws, errbuf, sizeof errbuf) == HUB_OK;
      ns++;
    }
    double t1 = now_s();
    while (jws && now_s() - t1 < 0.3) {
      ok &= hub_jws_verify(jws, strlen(jws), &o, NULL, NULL, NULL, 0, errbuf, sizeof errbuf) == HUB_OK;
      nv++;
    }
    double t2 = now_s();
    CHECK(ok && ns > 0 && nv > 0);
    printf("rate %s detached: sign %.0f/s, verify %.0f/s (one thread)\n", t[i].alg, ns / (t1 - t0), nv / (t2 - t1));
    free(jws);
    hub_jws_signer_destroy(s);
    hub_jws_key_destroy(k);
    hub_jws_key_destroy(p);
  }
}

/* ---- the sign-jws and verify-jws steps, through the plugin registry ---- */

static hub_err_t step_new(const char *name, const char *yaml, const struct hub_step_env *env, struct hub_step **state,
                          struct hub_node **doc, char *errbuf, size_t errbuf_size) {
  const struct hub_step_ops *ops = hub_registry_get_step(name);
  CHECK(ops != NULL);
  *doc = hub_node_load_string("step.yaml", yaml, strlen(yaml), errbuf, errbuf_size);
  CHECK(*doc != NULL);
  if (!ops || !*doc) return HUB_ERR_CONFIG;
  return hub_step_create(ops, *doc, env, state, errbuf, errbuf_size);
}

static enum hub_step_result step_run(const char *name, struct hub_step *state, struct hub_msg *m,
                                     struct hub_step_outcome *o) {
  (void)name;
  hub_step_outcome_clear(o);
  return hub_step_process(state, m, o);
}

static void step_tests(void) {
  char errbuf[1024];
  const char *keys_yaml = "hub: {key: rsa.key, cert: rsa.crt}\ntrust: {ca: [ca.pem]}\n";
  struct hub_node *keys = hub_node_load_string("keys.yaml", keys_yaml, strlen(keys_yaml), errbuf, sizeof errbuf);
  struct hub_step_env env = {.base_dir = tmp, .keys = keys, .route = "test"};
  struct hub_node *d1 = NULL, *d2 = NULL, *d3 = NULL, *d4 = NULL;
  struct hub_step *sign = NULL, *verify = NULL, *sign_d = NULL, *verify_d = NULL, *bad = NULL;
  struct hub_step_outcome out = {0};
  const char *payload = "{\"maHoSo\":\"000.00.18.H47-260101-0007\",\"trangThai\":2}";
  char sha[65];

  /* compact, keys from the config's keys: section */
  CHECK(step_new("sign-jws", "\"\"", &env, &sign, &d1, errbuf, sizeof errbuf) == HUB_OK); /* `- sign-jws:` */
  CHECK(step_new("verify-jws", "{}", &env, &verify, &d2, errbuf, sizeof errbuf) == HUB_OK);
  struct hub_msg *m = hub_msg_new("k", 1, payload, strlen(payload));
  if (sign && verify && m) {
    CHECK(step_run("sign-jws", sign, m, &out) == HUB_STEP_OK);
    CHECK_STR(hub_msg_header_get_str(m, HUB_H_SIG), "signed");
    CHECK_CONTAINS(hub_msg_header_get_str(m, HUB_H_SIGNER), "CN=hub-rsa,O=So TTTT,C=VN; sha256=");
    hub_sha256_hex(payload, strlen(payload), sha);
    CHECK_STR(hub_msg_header_get_str(m, HUB_H_PARENT), sha);
    CHECK(strncmp((char *)m->value, "eyJ", 3) == 0 && strchr((char *)m->value, '.') != NULL);
    char signed_by[700];
    snprintf(signed_by, sizeof signed_by, "%s", hub_msg_header_get_str(m, HUB_H_SIGNER));
    char *token = strdup((char *)m->value);
    CHECK(step_run("verify-jws", verify, m, &out) == HUB_STEP_OK);
    if (out.code) fprintf(stderr, "verify-jws: %s\n", out.reason);
    CHECK_STR((char *)m->value, payload);
    CHECK(m->value_len == strlen(payload));
    CHECK_STR(hub_msg_header_get_str(m, HUB_H_SIG), "verified");
    CHECK_STR(hub_msg_header_get_str(m, HUB_H_SIGNER), signed_by);
    CHECK_STR(hub_msg_header_get_str(m, "lt.jws"), token);
    printf("step sign-jws -> verify-jws (compact): %s, signer \"%s\"\n", out.code ? out.reason : "ok", signed_by);
    /* the same step refuses alg none */
    char *none = forge("{\"alg\":\"none\"}", payload, strlen(payload), NULL, "none");
    hub_msg_set_value(m, none, strlen(none));
    CHECK(step_run("verify-jws", verify, m, &out) == HUB_STEP_REJECT);
    CHECK(out.code == HUB_ERR_SIG_POLICY);
    CHECK_CONTAINS(out.reason, "verify-jws: alg \"none\"");
    free(none);
    /* a tampered token */
    token[strlen(token) - 5] ^= 1;
    hub_msg_set_value(m, token, strlen(token));
    CHECK(step_run("verify-jws", verify, m, &out) == HUB_STEP_REJECT);
    CHECK(out.code == HUB_ERR_SIG_INVALID);
    free(token);
  }
  hub_msg_destroy(m);

  /* detached ES256 with a kid, verified with a pinned key */
  char yaml[512];
  snprintf(yaml, sizeof yaml, "{key: ec.key, cert: ec.crt, x5c: false, kid: hub-ec, mode: detached}");
  CHECK(step_new("sign-jws", yaml, &env, &sign_d, &d3, errbuf, sizeof errbuf) == HUB_OK);
  if (!sign_d) fprintf(stderr, "%s\n", errbuf);
  CHECK(step_new("verify-jws", "{keys: {hub-ec: ec.pub, hub-rsa: rsa.pub}, mode: detached, trust: []}", &env, &verify_d,
                 &d4, errbuf, sizeof errbuf) == HUB_OK);
  if (!verify_d) fprintf(stderr, "%s\n", errbuf);
  m = hub_msg_new(NULL, 0, payload, strlen(payload));
  if (sign_d && verify_d && m) {
    CHECK(step_run("sign-jws", sign_d, m, &out) == HUB_STEP_OK);
    CHECK_STR((char *)m->value, payload);
    const char *jws = hub_msg_header_get_str(m, "lt.jws");
    CHECK(jws && strstr(jws, "..") != NULL);
    CHECK(step_run("verify-jws", verify_d, m, &out) == HUB_STEP_OK);
    CHECK_STR((char *)m->value, payload); /* detached: the value is never re-serialised */
    CHECK_CONTAINS(hub_msg_header_get_str(m, HUB_H_SIGNER), "kid=hub-ec; sha256=");
    printf("step sign-jws -> verify-jws (detached ES256): %s, signer \"%s\"\n", out.code ? out.reason : "ok",
           hub_msg_header_get_str(m, HUB_H_SIGNER));
    /* the same JSON written differently still verifies (JCS); other content does not */
    const char *same = "{ \"trangThai\": 2.0, \"maHoSo\": \"000.00.18.H47-260101-0007\" }";
    hub_msg_set_value(m, same, strlen(same));
    CHECK(step_run("verify-jws", verify_d, m, &out) == HUB_STEP_OK);
    const char *other = "{\"maHoSo\":\"000.00.18.H47-260101-0007\",\"trangThai\":3}";
    hub_msg_set_value(m, other, strlen(other));
    CHECK(step_run("verify-jws", verify_d, m, &out) == HUB_STEP_REJECT);
    CHECK(out.code == HUB_ERR_SIG_INVALID);
    CHECK_CONTAINS(out.reason, "detached payload");
    hub_msg_header_del(m, "lt.jws");
    CHECK(step_run("verify-jws", verify_d, m, &out) == HUB_STEP_REJECT);
    CHECK(out.code == HUB_ERR_SIG_MISSING);
    CHECK_CONTAINS(out.reason, "no lt.jws header");
  }
  hub_msg_destroy(m);
  hub_step_outcome_clear(&out);

  /* configuration errors name the place */
  struct hub_step_env bare = {.base_dir = tmp};
  static const struct {
    const char *step, *yaml, *want;
    int bare;
  } cfg_errors[] = {
      {"sign-jws", "{kye: rsa.key}", "step.yaml:1:2: unknown key 'kye'", 0},
      {"sign-jws", "{key: rsa.key, alg: ES256}", "needs an EC P-256 key", 0},
      {"sign-jws", "{key: ec.key, cert: rsa.crt}", "does not hold", 0},
      {"verify-jws", "{mode: detached}", "needs pinned keys", 1},
      {"verify-jws", "{keys: [ec.pub]}", "mapping of kid to PEM file", 1},
      {"verify-jws", "{keys: {a: missing.pem}}", "missing.pem", 1},
  };
  for (size_t i = 0; i < sizeof cfg_errors / sizeof cfg_errors[0]; i++) {
    struct hub_node *d = NULL;
    CHECK(step_new(cfg_errors[i].step, cfg_errors[i].yaml, cfg_errors[i].bare ? &bare : &env, &bad, &d, errbuf,
                   sizeof errbuf) == HUB_ERR_CONFIG);
    CHECK_CONTAINS(errbuf, cfg_errors[i].want);
    hub_node_destroy(d);
  }
  CHECK(bad == NULL);

  hub_step_destroy(sign);
  hub_step_destroy(verify);
  hub_step_destroy(sign_d);
  hub_step_destroy(verify_d);
  hub_node_destroy(d1);
  hub_node_destroy(d2);
  hub_node_destroy(d3);
  hub_node_destroy(d4);
  hub_node_destroy(keys);
}

int main(void) {
  fixtures = getenv("LT_FIXTURES");
  if (!fixtures) {
    fprintf(stderr, "LT_FIXTURES is not set: run through ctest\n");
    return 1;
  }
  snprintf(tmp, sizeof tmp, "/tmp/lt-jws.XXXXXX");
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 1;
  }
  if (make_pki() != 0 || make_expired_cert() != 0) {
    fprintf(stderr, "could not make test keys with openssl (see %s/openssl.log)\n", tmp);
    return 1;
  }
  snprintf(ca_path, sizeof ca_path, "%s/ca.pem", tmp);
  rfc_examples();
  round_trips();
  negative_corpus();
  step_tests();
  mutations();
  rates();
  int rc = check_done();
  if (rc == 0) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
  } else {
    fprintf(stderr, "keys and logs kept in %s\n", tmp);
  }
  return rc;
}
