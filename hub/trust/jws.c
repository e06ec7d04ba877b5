/* JWS (RFC 7515) signing and verification on OpenSSL 3, with the hub's policy: RS256, PS256
 * and ES256 only, strict base64url, duplicate header members and unknown `crit` refused, keys
 * from configuration (pinned) or from an `x5c` chain checked against trust CAs. See jws.h.
 * libcjose (Debian 0.6.2) was not used: it has no detached payloads, no x5c chain checks, no
 * duplicate-member refusal and no reasons precise enough for a DLQ. */
#include "hub/trust/jws.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hub/trust/jcs.h"
#include "hub/core/files.h"
#include "hub/trust/certcache.h"
#include "hub/trust/truststore.h"

#define JWS_MAX_LEN (64u * 1024 * 1024) /* a whole token; records are far smaller */
#define RSA_MIN_BITS 2048

struct hub_jws_key {
  EVP_PKEY *pkey;
  X509 *cert; /* when loaded from a certificate */
  int is_private;
  char *kid;
};

enum alg { ALG_RS256, ALG_PS256, ALG_ES256 };
static const char *const alg_names[] = {"RS256", "PS256", "ES256"};


/* The most recent OpenSSL error as text (for crypto failures), clearing the queue. */
static const char *ossl_reason(char *buf, size_t size) {
  unsigned long e = ERR_peek_last_error();
  if (!e) {
    snprintf(buf, size, "no OpenSSL detail");
  } else {
    ERR_error_string_n(e, buf, size);
  }
  ERR_clear_error();
  return buf;
}

/* ---- base64 ---- */

static const char b64url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b64std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const unsigned char *in, size_t len, int url) {
  const char *a = url ? b64url_alpha : b64std_alpha;
  char *out = malloc(len / 3 * 4 + 5);
  if (!out) return NULL;
  size_t o = 0, i = 0;
  for (; i + 3 <= len; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    out[o++] = a[v >> 18], out[o++] = a[(v >> 12) & 63], out[o++] = a[(v >> 6) & 63], out[o++] = a[v & 63];
  }
  if (len - i == 1) {
    unsigned v = (unsigned)in[i] << 16;
    out[o++] = a[v >> 18], out[o++] = a[(v >> 12) & 63];
    if (!url) out[o++] = '=', out[o++] = '=';
  } else if (len - i == 2) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
    out[o++] = a[v >> 18], out[o++] = a[(v >> 12) & 63], out[o++] = a[(v >> 6) & 63];
    if (!url) out[o++] = '=';
  }
  out[o] = 0;
  return out;
}

static int b64_value(char c, int url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == (url ? '-' : '+')) return 62;
  if (c == (url ? '_' : '/')) return 63;
  return -1;
}

/* Strict decoding: base64url without padding (RFC 7515 section 2), or standard base64 with
 * padding (x5c); in both the unused low bits of the last character must be zero, so each
 * byte string has exactly one accepted encoding. `what` names the part for messages. */
static hub_err_t b64_decode(const char *in, size_t len, int url, const char *what, unsigned char **out,
                            size_t *out_len, char *errbuf, size_t errbuf_size) {
  *out = NULL;
  *out_len = 0;
  size_t data = len;
  if (!url) {
    if (len % 4)
      return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "%s: base64 length %zu is not a multiple of 4", what, len);
    while (data > 0 && len - data < 2 && in[data - 1] == '=') data--;
  }
  for (size_t i = 0; i < data; i++) {
    if (b64_value(in[i], url) < 0) {
      unsigned char c = (unsigned char)in[i];
      const char *hint = "";
      if (url && c == '=') hint = " (padding is not allowed in base64url)";
      else if (url && (c == '+' || c == '/')) hint = " (standard base64, not base64url)";
      if (isprint(c))
        return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "%s: character '%c' at offset %zu is not %s%s", what, c, i,
                    url ? "base64url" : "base64", hint);
      return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "%s: byte 0x%02x at offset %zu is not %s", what, c, i,
                  url ? "base64url" : "base64");
    }
  }
  if (data % 4 == 1)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "%s: %zu base64url characters cannot be a whole number of bytes (truncated?)",
                what, data);
  unsigned char *buf = malloc(data / 4 * 3 + 3);
  if (!buf) return hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
  size_t o = 0;
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < data; i++) {
    acc = (acc << 6) | (unsigned)b64_value(in[i], url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) {
    free(buf);
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "%s: non-canonical base64%s (unused bits in the last character are not zero)",
                what, url ? "url" : "");
  }
  if (!url && (len - data) != (3 - o % 3) % 3) {
    free(buf);
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "%s: wrong base64 padding", what);
  }
  *out = buf;
  *out_len = o;
  return HUB_OK;
}

/* ---- keys ---- */

/* Never prompt on a terminal for a passphrase: encrypted keys are an error. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf, (void)size, (void)rwflag, (void)u;
  return -1;
}

static int is_p256(EVP_PKEY *pkey) {
  char group[64];
  size_t len = 0;
  if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) return 0;
  if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len)) return 0;
  return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

static const char *key_type_name(EVP_PKEY *pkey, char *buf, size_t size) {
  int id = EVP_PKEY_get_base_id(pkey);
  if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) {
    snprintf(buf, size, "RSA-%d", EVP_PKEY_get_bits(pkey));
  } else if (id == EVP_PKEY_EC) {
    char group[64];
    size_t len = 0;
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len))
      snprintf(group, sizeof group, "unknown curve");
    snprintf(buf, size, "EC %s", group);
  } else {
    const char *n = OBJ_nid2sn(id);
    snprintf(buf, size, "%s", n ? n : "unknown key type");
  }
  return buf;
}

/* Whether `pkey` may be used with `alg`; if not, why (for SIG_POLICY). */
static int key_fits(EVP_PKEY *pkey, enum alg alg, char *why, size_t why_size) {
  char t[64];
  int id = EVP_PKEY_get_base_id(pkey);
  switch (alg) {
  case ALG_RS256:
  case ALG_PS256:
    if (id != EVP_PKEY_RSA && !(alg == ALG_PS256 && id == EVP_PKEY_RSA_PSS)) {
      snprintf(why, why_size, "alg %s needs an RSA key, the key is %s", alg_names[alg], key_type_name(pkey, t, sizeof t));
      return 0;
    }
    if (EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS) {
      snprintf(why, why_size, "RSA key of %d bits is below the %d-bit minimum", EVP_PKEY_get_bits(pkey), RSA_MIN_BITS);
      return 0;
    }
    return 1;
  case ALG_ES256:
    if (!is_p256(pkey)) {
      snprintf(why, why_size, "alg ES256 needs an EC P-256 key, the key is %s", key_type_name(pkey, t, sizeof t));
      return 0;
    }
    return 1;
  }
  return 0;
}

hub_err_t hub_jws_key_load_mem(const void *pem, size_t len, const char *kid, struct hub_jws_key **out, char *errbuf,
                               size_t errbuf_size) {
  hub_err_t err = HUB_OK;
  char ebuf[256];
  *out = NULL;
  struct hub_jws_key *k = calloc(1, sizeof *k);
  BIO *bio = NULL;
  if (!k || len > INT32_MAX) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  if (kid && !(k->kid = strdup(kid))) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  /* a PEM file may hold any of the three; try each from the start */
  bio = BIO_new_mem_buf(pem, (int)len);
  if (bio && (k->pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL))) {
    k->is_private = 1;
  } else if (bio && BIO_reset(bio) == 1 && (k->cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL))) {
    k->pkey = X509_get_pubkey(k->cert);
  } else if (bio && BIO_reset(bio) == 1) {
    k->pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
  }
  if (!k->pkey) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_CRYPTO,
               "no private key, certificate or public key in PEM (an encrypted key is not supported): %s",
               ossl_reason(ebuf, sizeof ebuf));
    goto out;
  }
  ERR_clear_error();
  *out = k;
  k = NULL;
out:
  BIO_free(bio);
  hub_jws_key_destroy(k);
  return err;
}

hub_err_t hub_jws_key_load(const char *pem_path, const char *kid, struct hub_jws_key **out, char *errbuf,
                           size_t errbuf_size) {
  char *data;
  size_t len;
  *out = NULL;
  hub_err_t err = hub_file_read(pem_path, 1u << 20, &data, &len, errbuf, errbuf_size);
  if (err) return err;
  char inner[400];
  err = hub_jws_key_load_mem(data, len, kid, out, inner, sizeof inner);
  if (err) hub_errf(errbuf, errbuf_size, err, "%s: %s", pem_path, inner);
  free(data);
  return err;
}

void hub_jws_key_destroy(struct hub_jws_key *k) {
  if (!k) return;
  EVP_PKEY_free(k->pkey);
  X509_free(k->cert);
  free(k->kid);
  free(k);
}

const char *hub_jws_key_get_kid(const struct hub_jws_key *k) { return k ? k->kid : NULL; }

const char *hub_jws_key_get_default_alg(const struct hub_jws_key *k) {
  if (!k) return NULL;
  int id = EVP_PKEY_get_base_id(k->pkey);
  if (id == EVP_PKEY_RSA) return "RS256";
  if (id == EVP_PKEY_RSA_PSS) return "PS256";
  if (is_p256(k->pkey)) return "ES256";
  return NULL;
}

/* Parses an alg name under the policy. Returns 0 and sets *alg, or a SIG_POLICY reason. */
static hub_err_t parse_alg(const char *name, enum alg *alg, char *errbuf, size_t errbuf_size) {
  for (int i = 0; i < 3; i++)
    if (strcmp(name, alg_names[i]) == 0) {
      *alg = (enum alg)i;
      return HUB_OK;
    }
  if (strcmp(name, "none") == 0 || strcasecmp(name, "none") == 0)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "alg \"%s\" (unsecured JWS) is not allowed", name);
  if (strncmp(name, "HS", 2) == 0)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY,
                "alg %s is not allowed: HS* needs a shared secret and the hub verifies only with asymmetric keys "
                "(an RSA or EC public key is never used as an HMAC secret)",
                name);
  return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "alg \"%s\" is not supported (allowed: RS256, PS256, ES256)",
              name);
}

/* ---- raw signatures ---- */

static hub_err_t raw_sign(EVP_PKEY *pkey, enum alg alg, const void *data, size_t len, unsigned char **sig,
                          size_t *sig_len, char *errbuf, size_t errbuf_size) {
  hub_err_t err = HUB_OK;
  char ebuf[256];
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  unsigned char *der = NULL;
  size_t der_len = 0;
  ECDSA_SIG *es = NULL;
  *sig = NULL;
  *sig_len = 0;
  if (!md || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, pkey) != 1) goto crypto;
  if (alg == ALG_PS256 && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1))
    goto crypto;
  if (alg == ALG_RS256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) goto crypto;
  if (EVP_DigestSign(md, NULL, &der_len, data, len) != 1) goto crypto;
  if (!(der = malloc(der_len))) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  if (EVP_DigestSign(md, der, &der_len, data, len) != 1) goto crypto;
  if (alg == ALG_ES256) { /* JWS wants R||S, 32 bytes each (RFC 7518 3.4) */
    const unsigned char *p = der;
    const BIGNUM *r, *s;
    if (!(es = d2i_ECDSA_SIG(NULL, &p, (long)der_len))) goto crypto;
    ECDSA_SIG_get0(es, &r, &s);
    unsigned char *rs = malloc(64);
    if (!rs) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
      goto out;
    }
    if (BN_bn2binpad(r, rs, 32) != 32 || BN_bn2binpad(s, rs + 32, 32) != 32) {
      free(rs);
      goto crypto;
    }
    *sig = rs;
    *sig_len = 64;
  } else {
    *sig = der;
    *sig_len = der_len;
    der = NULL;
  }
  goto out;
crypto:
  err = hub_errf(errbuf, errbuf_size, HUB_ERR_CRYPTO, "%s signing failed: %s", alg_names[alg], ossl_reason(ebuf, sizeof ebuf));
out:
  ECDSA_SIG_free(es);
  free(der);
  EVP_MD_CTX_free(md);
  return err;
}

/* 1 verified, 0 not; -1 with errbuf on a malformed signature or a crypto failure. */
static int raw_verify(EVP_PKEY *pkey, enum alg alg, const void *data, size_t len, const unsigned char *sig,
                      size_t sig_len, char *errbuf, size_t errbuf_size) {
  int ok = -1;
  char ebuf[256];
  EVP_MD_CTX *md = NULL;
  EVP_PKEY_CTX *pctx = NULL;
  ECDSA_SIG *es = NULL;
  BIGNUM *r = NULL, *s = NULL;
  unsigned char *der = NULL;
  const unsigned char *vsig = sig;
  size_t vlen = sig_len;
  if (alg == ALG_ES256) {
    if (sig_len != 64) {
      hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "ES256 signature is %zu bytes, expected 64 (R||S)%s", sig_len,
           sig_len > 64 && sig[0] == 0x30 ? "; it looks like DER, which JWS does not use" : "");
      goto out;
    }
    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, 32, NULL);
    s = BN_bin2bn(sig + 32, 32, NULL);
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) goto crypto;
    r = s = NULL; /* owned by es */
    int n = i2d_ECDSA_SIG(es, &der);
    if (n <= 0) goto crypto;
    vsig = der;
    vlen = (size_t)n;
  } else if (sig_len != (size_t)EVP_PKEY_get_size(pkey)) {
    hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "%s signature is %zu bytes, the %d-bit key needs %d (truncated?)",
         alg_names[alg], sig_len, EVP_PKEY_get_bits(pkey), EVP_PKEY_get_size(pkey));
    goto out;
  }
  if (!(md = EVP_MD_CTX_new()) || EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pkey) != 1) goto crypto;
  if (alg == ALG_PS256 && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1))
    goto crypto;
  if (alg == ALG_RS256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) goto crypto;
  ok = EVP_DigestVerify(md, vsig, vlen, data, len) == 1;
  ERR_clear_error(); /* a mismatch leaves errors queued */
  goto out;
crypto:
  hub_errf(errbuf, errbuf_size, HUB_ERR_CRYPTO, "%s verification failed: %s", alg_names[alg], ossl_reason(ebuf, sizeof ebuf));
out:
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(es);
  OPENSSL_free(der);
  EVP_MD_CTX_free(md);
  return ok;
}

/* ---- certificates ---- */

static void hex_sha256(const unsigned char *data, size_t len, char out[65]) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void signer_text(const struct hub_jws_key *k, X509 *cert, EVP_PKEY *pkey, char *signer, size_t size) {
  char hex[65] = "";
  unsigned char *der = NULL;
  if (!signer || !size) return;
  if (cert) {
    hub_x509_signer_string(cert, signer, size);
  } else {
    int n = i2d_PUBKEY(pkey, &der);
    if (n > 0) hex_sha256(der, (size_t)n, hex);
    if (k && k->kid) snprintf(signer, size, "kid=%s; sha256=%s", k->kid, hex);
    else snprintf(signer, size, "public key; sha256=%s", hex);
  }
  OPENSSL_free(der);
}

void hub_jws_key_get_identity(const struct hub_jws_key *k, char *out, size_t size) {
  if (!k) {
    if (out && size) out[0] = 0;
    return;
  }
  signer_text(k, k->cert, k->pkey, out, size);
}

/* ---- signing ---- */

struct hub_jws_signer {
  EVP_PKEY *pkey; /* a reference */
  enum alg alg;
  char *h64; /* the protected header, encoded once */
  char identity[700];
};

void hub_jws_signer_destroy(struct hub_jws_signer *s) {
  if (!s) return;
  EVP_PKEY_free(s->pkey);
  free(s->h64);
  free(s);
}

const char *hub_jws_signer_get_identity(const struct hub_jws_signer *s) { return s ? s->identity : NULL; }

hub_err_t hub_jws_signer_new(const struct hub_jws_key *key, const char *cert_pem_path_or_NULL, const char *alg_or_NULL,
                             struct hub_jws_signer **out, char *errbuf, size_t errbuf_size) {
  hub_err_t err = HUB_OK;
  char why[256];
  json_t *hdr = NULL, *x5c = NULL;
  char *hdr_json = NULL;
  STACK_OF(X509) *chain = NULL;
  struct hub_jws_signer *s = NULL;
  *out = NULL;
  if (!key || !key->pkey) return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "no key");
  if (!key->is_private) return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "signing needs a private key; this key is public only");
  const char *alg_name = alg_or_NULL ? alg_or_NULL : hub_jws_key_get_default_alg(key);
  if (!alg_name)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "no JWS algorithm for a %s key", key_type_name(key->pkey, why, sizeof why));
  if (!(s = calloc(1, sizeof *s))) return hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
  if ((err = parse_alg(alg_name, &s->alg, errbuf, errbuf_size))) goto out;
  if (!key_fits(key->pkey, s->alg, why, sizeof why)) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "%s", why);
    goto out;
  }
  if (!(hdr = json_object()) || json_object_set_new(hdr, "alg", json_string(alg_names[s->alg])) ||
      (key->kid && json_object_set_new(hdr, "kid", json_string(key->kid)))) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  if (cert_pem_path_or_NULL) {
    if (!(chain = hub_x509_load_pem_file(cert_pem_path_or_NULL, errbuf, errbuf_size))) {
      err = HUB_ERR_CRYPTO;
      goto out;
    }
    EVP_PKEY *leaf_key = X509_get0_pubkey(sk_X509_value(chain, 0));
    if (!leaf_key || EVP_PKEY_eq(leaf_key, key->pkey) != 1) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "%s: the first certificate does not hold the signing key's public half",
                 cert_pem_path_or_NULL);
      goto out;
    }
    if (!(x5c = json_array()) || json_object_set(hdr, "x5c", x5c)) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
      goto out;
    }
    for (int i = 0; i < sk_X509_num(chain); i++) {
      unsigned char *der = NULL;
      int n = i2d_X509(sk_X509_value(chain, i), &der);
      char *b = n > 0 ? b64_encode(der, (size_t)n, 0) : NULL;
      OPENSSL_free(der);
      if (!b || json_array_append_new(x5c, json_string(b))) {
        free(b);
        err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
        goto out;
      }
      free(b);
    }
    hub_x509_signer_string(sk_X509_value(chain, 0), s->identity, sizeof s->identity);
  } else {
    signer_text(key, key->cert, key->pkey, s->identity, sizeof s->identity);
  }
  if (!(hdr_json = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER)) ||
      !(s->h64 = b64_encode((const unsigned char *)hdr_json, strlen(hdr_json), 1)) || EVP_PKEY_up_ref(key->pkey) != 1) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  s->pkey = key->pkey;
  *out = s;
  s = NULL;
out:
  hub_jws_signer_destroy(s);
  json_decref(x5c);
  json_decref(hdr);
  free(hdr_json);
  sk_X509_pop_free(chain, X509_free);
  return err;
}

hub_err_t hub_jws_signer_sign(const struct hub_jws_signer *s, const void *payload, size_t len, int detached, char **out,
                              char *errbuf, size_t errbuf_size) {
  hub_err_t err = HUB_OK;
  char *p64 = NULL, *s64 = NULL, *canon = NULL, *input = NULL;
  unsigned char *sig = NULL;
  size_t sig_len = 0;
  *out = NULL;
  if (!s || (!payload && len)) return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "no signer or payload");
  if (detached) {
    size_t canon_len;
    char inner[300];
    if ((err = hub_jcs_canonicalize_exact_new(payload, len, &canon, &canon_len, inner, sizeof inner)))
      return hub_errf(errbuf, errbuf_size, err, "detached payload is not JSON: %s", inner);
    p64 = b64_encode((const unsigned char *)canon, canon_len, 1);
  } else {
    p64 = b64_encode(payload, len, 1);
  }
  size_t h_len = strlen(s->h64), in_len = p64 ? h_len + 1 + strlen(p64) : 0;
  if (!p64 || !(input = malloc(in_len + 1))) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  snprintf(input, in_len + 1, "%s.%s", s->h64, p64);
  if ((err = raw_sign(s->pkey, s->alg, input, in_len, &sig, &sig_len, errbuf, errbuf_size))) goto out;
  if (!(s64 = b64_encode(sig, sig_len, 1))) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  size_t total = h_len + 2 + (detached ? 0 : strlen(p64)) + strlen(s64) + 1;
  if (!(*out = malloc(total))) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  snprintf(*out, total, "%s.%s.%s", s->h64, detached ? "" : p64, s64);
out:
  free(p64);
  free(s64);
  free(canon);
  free(input);
  free(sig);
  return err;
}

hub_err_t hub_jws_sign_new(const struct hub_jws_key *key, const char *cert_pem_path_or_NULL, const char *alg_or_NULL,
                           const void *payload, size_t len, int detached, char **out, char *errbuf,
                           size_t errbuf_size) {
  struct hub_jws_signer *s = NULL;
  *out = NULL;
  hub_err_t err = hub_jws_signer_new(key, cert_pem_path_or_NULL, alg_or_NULL, &s, errbuf, errbuf_size);
  if (!err) err = hub_jws_signer_sign(s, payload, len, detached, out, errbuf, errbuf_size);
  hub_jws_signer_destroy(s);
  return err;
}

/* ---- verification ---- */

struct parsed {
  json_t *hdr;
  enum alg alg;
  const char *kid;
  STACK_OF(X509) *x5c; /* leaf first */
};

static void parsed_clear(struct parsed *p) {
  json_decref(p->hdr);
  sk_X509_pop_free(p->x5c, X509_free);
  memset(p, 0, sizeof *p);
}

/* The protected header: JSON object, no duplicate members, policy on alg and crit, types of
 * kid and x5c. */
static hub_err_t parse_header(const unsigned char *json, size_t len, struct parsed *p, char *errbuf,
                              size_t errbuf_size) {
  json_error_t jerr;
  hub_err_t err;
  p->hdr = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!p->hdr) {
    if (json_error_code(&jerr) == json_error_duplicate_key)
      return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "protected header has duplicate members: %s", jerr.text);
    return hub_errf(errbuf, errbuf_size, HUB_ERR_JSON, "protected header is not a JSON object: line %d column %d: %s",
                jerr.line, jerr.column, jerr.text);
  }
  if (!json_is_object(p->hdr))
    return hub_errf(errbuf, errbuf_size, HUB_ERR_JSON, "protected header is not a JSON object but a JSON %s",
                json_is_array(p->hdr) ? "array" : "value");
  json_t *alg = json_object_get(p->hdr, "alg");
  if (!alg) return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "protected header has no \"alg\"");
  if (!json_is_string(alg)) return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "protected header \"alg\" is not a string");
  if ((err = parse_alg(json_string_value(alg), &p->alg, errbuf, errbuf_size))) return err;
  json_t *crit = json_object_get(p->hdr, "crit");
  if (crit) {
    /* RFC 7515 4.1.11: a non-empty array of names this verifier must understand; this one
     * implements no extension, so every name is refused */
    if (!json_is_array(crit) || json_array_size(crit) == 0)
      return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "protected header \"crit\" must be a non-empty array of names");
    json_t *name = json_array_get(crit, 0);
    if (!json_is_string(name))
      return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "protected header \"crit\" holds a non-string");
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY,
                "protected header \"crit\" names extension \"%s\" which this verifier does not understand",
                json_string_value(name));
  }
  json_t *kid = json_object_get(p->hdr, "kid");
  if (kid && !json_is_string(kid))
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "protected header \"kid\" is not a string");
  p->kid = kid ? json_string_value(kid) : NULL;
  json_t *x5c = json_object_get(p->hdr, "x5c");
  if (x5c) {
    if (!json_is_array(x5c) || json_array_size(x5c) == 0)
      return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "protected header \"x5c\" must be a non-empty array");
    if (!(p->x5c = sk_X509_new_null())) return hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(x5c); i++) {
      json_t *e = json_array_get(x5c, i);
      char what[32];
      snprintf(what, sizeof what, "x5c[%zu]", i);
      if (!json_is_string(e)) return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "%s is not a string", what);
      unsigned char *der;
      size_t der_len;
      if ((err = b64_decode(json_string_value(e), json_string_length(e), 0, what, &der, &der_len, errbuf, errbuf_size)))
        return err;
      X509 *x = hub_certcache_get_x509(der, der_len);
      free(der);
      if (!x) {
        return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "%s is not a DER X.509 certificate", what);
      }
      if (!sk_X509_push(p->x5c, x)) {
        X509_free(x);
        return hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
      }
    }
  }
  return HUB_OK;
}

/* The x5c leaf and its intermediates against the trust store: the hub's one trust decision
 * (hub/trust/truststore.h: chain, validity with clock skew, key usage, CRLs), shared with
 * XML-DSig. A store given in the options is reused; otherwise one is built from trust_ca. */
static hub_err_t check_chain(STACK_OF(X509) *x5c, const struct hub_jws_verify_opts *o, char *errbuf, size_t errbuf_size) {
  hub_err_t err;
  char inner[600];
  struct hub_truststore *own = NULL;
  const struct hub_truststore *ts = o->truststore;
  STACK_OF(X509) *untrusted = NULL;
  if (!ts) {
    if ((err = hub_truststore_new(o->trust_ca, o->n_trust_ca, NULL, 0, o->clock_skew_s, &own, inner, sizeof inner)))
      return hub_errf(errbuf, errbuf_size, err, "trust CA: %s", inner);
    ts = own;
  }
  if (!(untrusted = sk_X509_new_null())) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  for (int i = 1; i < sk_X509_num(x5c); i++) sk_X509_push(untrusted, sk_X509_value(x5c, i));
  if ((err = hub_truststore_check(ts, sk_X509_value(x5c, 0), untrusted, (time_t)o->now_s, inner, sizeof inner)))
    hub_errf(errbuf, errbuf_size, err, "x5c: %s", inner);
out:
  sk_X509_free(untrusted); /* the certificates belong to x5c */
  hub_truststore_destroy(own);
  return err;
}

hub_err_t hub_jws_verify(const char *jws, size_t len, const struct hub_jws_verify_opts *opts, char **payload_out,
                         size_t *payload_len, char *signer, size_t signer_size, char *errbuf, size_t errbuf_size) {
  static const struct hub_jws_verify_opts no_opts;
  const struct hub_jws_verify_opts *o = opts ? opts : &no_opts;
  hub_err_t err = HUB_OK;
  struct parsed p = {0};
  unsigned char *hdr_raw = NULL, *payload = NULL, *sig = NULL;
  size_t hdr_len = 0, pl_len = 0, sig_len = 0;
  char *canon = NULL, *p64_owned = NULL, *input = NULL;
  const struct hub_jws_key *used = NULL;
  char why[300] = "";
  if (payload_out) *payload_out = NULL;
  if (payload_len) *payload_len = 0;
  if (signer && signer_size) signer[0] = 0;
  if (!jws) return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "no JWS");
  if (len > JWS_MAX_LEN) return hub_errf(errbuf, errbuf_size, HUB_ERR_TOO_LARGE, "JWS of %zu bytes exceeds the %u-byte limit", len, JWS_MAX_LEN);
  while (len && isspace((unsigned char)*jws)) jws++, len--;
  while (len && isspace((unsigned char)jws[len - 1])) len--;
  if (len == 0) return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "JWS is empty");
  if (jws[0] == '{')
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "JWS JSON serialisation is not supported; use the compact form");

  /* exactly three segments */
  const char *d1 = memchr(jws, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jws)) : NULL;
  if (!d1 || !d2)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "JWS compact serialisation needs 3 dot-separated segments, found %d (truncated?)",
                d1 ? 2 : 1);
  if (memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jws)))
    return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "JWS has more than 3 segments (JWE or concatenated tokens are not accepted)");
  size_t h_len = (size_t)(d1 - jws), p_len = (size_t)(d2 - d1 - 1), s_len = len - (size_t)(d2 + 1 - jws);
  if (h_len == 0) return hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "JWS header segment is empty");

  /* the header first, so `alg: none` is refused as such and not as a missing signature */
  if ((err = b64_decode(jws, h_len, 1, "header segment", &hdr_raw, &hdr_len, errbuf, errbuf_size))) goto out;
  if ((err = parse_header(hdr_raw, hdr_len, &p, errbuf, errbuf_size))) goto out;
  if (s_len == 0) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "JWS signature segment is empty (truncated?)");
    goto out;
  }
  if ((err = b64_decode(d2 + 1, s_len, 1, "signature segment", &sig, &sig_len, errbuf, errbuf_size))) goto out;

  /* the payload: inline, or detached and canonicalised */
  const char *p64 = d1 + 1;
  size_t p64_len = p_len;
  if (p_len == 0) {
    if (!o->detached_payload) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "JWS payload segment is empty (detached) but no detached payload was given");
      goto out;
    }
    size_t canon_len;
    char inner[300];
    if ((err = hub_jcs_canonicalize_exact_new(o->detached_payload, o->detached_len, &canon, &canon_len, inner, sizeof inner))) {
      hub_errf(errbuf, errbuf_size, err, "detached payload is not canonicalisable JSON: %s", inner);
      goto out;
    }
    if (!(p64_owned = b64_encode((const unsigned char *)canon, canon_len, 1))) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
      goto out;
    }
    p64 = p64_owned;
    p64_len = strlen(p64_owned);
    payload = (unsigned char *)canon;
    pl_len = canon_len;
    canon = NULL;
  } else {
    if (o->detached_payload) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "JWS carries its payload inline, yet a detached payload was given");
      goto out;
    }
    if ((err = b64_decode(p64, p64_len, 1, "payload segment", &payload, &pl_len, errbuf, errbuf_size))) goto out;
  }
  if (!(input = malloc(h_len + 1 + p64_len + 1))) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  memcpy(input, jws, h_len);
  input[h_len] = '.';
  memcpy(input + h_len + 1, p64, p64_len);
  size_t in_len = h_len + 1 + p64_len;
  input[in_len] = 0;

  /* the key: pinned by configuration (kid selects), else the x5c leaf checked against trust */
  X509 *leaf = p.x5c ? sk_X509_value(p.x5c, 0) : NULL;
  int verified = 0, tried = 0;
  if (o->n_pinned) {
    int kid_matched = 0;
    for (size_t i = 0; i < o->n_pinned && !verified; i++) {
      const struct hub_jws_key *k = o->pinned[i];
      if (!k || !k->pkey) continue;
      if (p.kid && (!k->kid || strcmp(k->kid, p.kid) != 0)) continue;
      kid_matched = 1;
      if (!key_fits(k->pkey, p.alg, why, sizeof why)) {
        if (p.kid) {
          err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "key \"%s\": %s", p.kid, why);
          goto out;
        }
        continue;
      }
      if (leaf && EVP_PKEY_eq(X509_get0_pubkey(leaf), k->pkey) != 1) {
        if (p.kid) {
          err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "x5c certificate does not hold the public key pinned as \"%s\"", p.kid);
          goto out;
        }
        continue;
      }
      tried++;
      int r = raw_verify(k->pkey, p.alg, input, in_len, sig, sig_len, errbuf, errbuf_size);
      if (r < 0) {
        err = HUB_ERR_SIG_INVALID;
        goto out;
      }
      if (r == 1) {
        verified = 1;
        used = k;
      }
    }
    if (p.kid && !kid_matched) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_UNTRUSTED, "no configured key has kid \"%s\"", p.kid);
      goto out;
    }
    if (!tried) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "no configured key fits alg %s%s%s", alg_names[p.alg],
                 why[0] ? ": " : "", why);
      goto out;
    }
  } else {
    if (!leaf) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_UNTRUSTED, "no verification key: no key is configured and the header has no x5c");
      goto out;
    }
    if (!o->n_trust_ca && !o->truststore) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_UNTRUSTED, "header has x5c but no trust CA is configured");
      goto out;
    }
    if ((err = check_chain(p.x5c, o, errbuf, errbuf_size))) goto out;
    EVP_PKEY *pk = X509_get0_pubkey(leaf);
    if (!pk || !key_fits(pk, p.alg, why, sizeof why)) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_POLICY, "x5c signer certificate: %s", pk ? why : "no public key");
      goto out;
    }
    int r = raw_verify(pk, p.alg, input, in_len, sig, sig_len, errbuf, errbuf_size);
    if (r < 0) {
      err = HUB_ERR_SIG_INVALID;
      goto out;
    }
    verified = r;
  }
  if (!verified) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_SIG_INVALID, "%s signature does not verify%s (header or payload altered, or signed by another key)",
               alg_names[p.alg], p_len == 0 ? " over the canonicalised detached payload" : "");
    goto out;
  }
  /* a pinned key names itself: an x5c beside it was only compared by key, not trusted */
  if (used) signer_text(used, used->cert, used->pkey, signer, signer_size);
  else signer_text(NULL, leaf, NULL, signer, signer_size);
  if (payload_out) {
    unsigned char *cp = malloc(pl_len + 1);
    if (!cp) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
      goto out;
    }
    if (pl_len) memcpy(cp, payload, pl_len);
    cp[pl_len] = 0;
    *payload_out = (char *)cp;
    if (payload_len) *payload_len = pl_len;
  }
out:
  parsed_clear(&p);
  free(hdr_raw);
  free(payload);
  free(sig);
  free(canon);
  free(p64_owned);
  free(input);
  return err;
}
