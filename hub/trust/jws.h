/* JSON Web Signature (RFC 7515) on OpenSSL 3: compact and detached serialisations, RS256, PS256
 * and ES256. Owns the JWS key object (a private key, a public key or a certificate, with an
 * optional `kid`) and the signing and verification policy:
 *   - only RS256, PS256 and ES256; `alg: none` and every HS* (shared-secret HMAC) are refused:
 *     the hub never verifies with a shared secret, so a public key can never be abused as one;
 *   - the protected header is parsed with duplicate members refused; an unknown `crit` entry is
 *     refused; base64url must be canonical (no padding, no stray bits, no other alphabet);
 *   - the key must match the algorithm's key type (RSA for RS256/PS256, EC P-256 for ES256);
 *   - ES256 signatures are R||S (64 bytes), never DER.
 * Detached payloads are JSON canonicalised with RFC 8785 (hub/trust/jcs.h); the serialisation
 * is `header..signature` and the signing input is header "." base64url(JCS(payload)). */
#ifndef HUB_TRUST_JWS_H
#define HUB_TRUST_JWS_H

#include <stddef.h>
#include <stdint.h>

#include "hub/core/err.h"

struct hub_jws_key;
struct hub_truststore;

struct hub_jws_verify_opts {
  /* PEM files of trusted CA certificates; an `x5c` chain must end in one of them. */
  const char *const *trust_ca;
  size_t n_trust_ca;
  /* Keys configured by name. When any is given, the verifying key comes from this set (the
   * header's `kid` selects it; without `kid` each key of the right type is tried), and an
   * `x5c` in the header, if present, must carry the same public key. Without pinned keys the
   * key comes from `x5c`, checked against trust_ca. */
  const struct hub_jws_key *const *pinned;
  size_t n_pinned;
  /* The payload of a detached JWS (`header..signature`), as JSON; it is canonicalised with
   * RFC 8785 before verification. NULL for a compact JWS with its payload inline. */
  const void *detached_payload;
  size_t detached_len;
  /* Tolerance for certificate validity periods, in seconds (>= 0). */
  int64_t clock_skew_s;
  /* Unix time used for validity checks; 0 means now. For tests and replays. */
  int64_t now_s;
  /* A trust store loaded once (hub/trust/truststore.h, with CRLs if configured); when set it
   * is used instead of trust_ca and clock_skew_s. */
  const struct hub_truststore *truststore;
};

/* Loads a private key, a public key or a certificate from a PEM file (the first object found;
 * a certificate file may hold more certificates after the first, which are ignored here).
 * `kid` may be NULL. */
hub_err_t hub_jws_key_load(const char *pem_path, const char *kid, struct hub_jws_key **out, char *errbuf,
                           size_t errbuf_size);
/* The same from PEM text in memory. */
hub_err_t hub_jws_key_load_mem(const void *pem, size_t len, const char *kid, struct hub_jws_key **out, char *errbuf,
                               size_t errbuf_size);
void hub_jws_key_destroy(struct hub_jws_key *k);
/* The key's kid (borrowed) or NULL. */
const char *hub_jws_key_get_kid(const struct hub_jws_key *k);
/* The key's lt.signer text: "SUBJECT; sha256=HEX" for a certificate, else "kid=KID; sha256=HEX"
 * (or "public key; sha256=HEX") over the SubjectPublicKeyInfo DER, as hub_jws_verify reports. */
void hub_jws_key_get_identity(const struct hub_jws_key *k, char *out, size_t size);
/* "RS256" for RSA, "ES256" for EC P-256, NULL for key types no supported algorithm uses. */
const char *hub_jws_key_get_default_alg(const struct hub_jws_key *k);

/* Signs `payload` with a private key. alg NULL: the key's default (RS256 or ES256). If
 * cert_pem_path is given, its certificates (leaf first, then intermediates) go into `x5c`
 * and the leaf must hold the key's public half. The header carries `alg`, `kid` (when the key
 * has one) and `x5c`. detached = 0: compact `h.p.s` with the payload bytes as given;
 * detached = 1: the payload must be JSON, it is canonicalised with RFC 8785 and the result
 * is `h..s`. *out is a malloc'd NUL-terminated string. */
hub_err_t hub_jws_sign_new(const struct hub_jws_key *key, const char *cert_pem_path_or_NULL, const char *alg_or_NULL,
                           const void *payload, size_t len, int detached, char **out, char *errbuf,
                           size_t errbuf_size);

/* The same in two halves, for signing many payloads with one key: the signer checks the key
 * against alg, reads the certificate chain and encodes the header once. Read-only after
 * creation, so one signer may serve several threads. Identity: the lt.signer text of the
 * certificate (or of the key when there is none). */
struct hub_jws_signer;
hub_err_t hub_jws_signer_new(const struct hub_jws_key *key, const char *cert_pem_path_or_NULL, const char *alg_or_NULL,
                             struct hub_jws_signer **out, char *errbuf, size_t errbuf_size);
hub_err_t hub_jws_signer_sign(const struct hub_jws_signer *s, const void *payload, size_t len, int detached, char **out,
                              char *errbuf, size_t errbuf_size);
const char *hub_jws_signer_get_identity(const struct hub_jws_signer *s);
void hub_jws_signer_destroy(struct hub_jws_signer *s);

/* Verifies a compact (`h.p.s`) or detached (`h..s`, with opts->detached_payload) JWS.
 * Leading and trailing ASCII whitespace around the whole token is ignored; nothing else is.
 * On success, HUB_OK; *payload_out (if not NULL) gets a malloc'd copy of the signed payload
 * bytes (for a detached JWS: the canonical JSON that was verified), NUL-terminated, with its
 * length in *payload_len; `signer` gets "SUBJECT; sha256=HEX" where SUBJECT is the RFC 2253
 * subject of the signing certificate (or "kid=KID" / "public key" for a bare key) and HEX the
 * SHA-256 of the certificate's DER (or of the key's SubjectPublicKeyInfo DER).
 * Errors (errbuf says which part and why):
 *   HUB_ERR_SIG_INVALID    malformed serialisation or base64url, signature mismatch (tampered
 *                          header or payload), detached payload mismatch;
 *   HUB_ERR_JSON           the header (or a detached payload) is not JSON / not an object;
 *   HUB_ERR_SIG_POLICY     alg none, HS* or unknown, duplicate header members, unknown or malformed
 *                          crit, key type does not fit alg, x5c key differs from the pinned key;
 *   HUB_ERR_SIG_UNTRUSTED  no key for the kid, no key source, x5c chain not trusted, x5c
 *                          certificate whose key usage does not allow signing;
 *   HUB_ERR_SIG_EXPIRED    a certificate in the x5c chain is outside its validity period;
 *   HUB_ERR_TOO_LARGE      input over the size limit; HUB_ERR_NOMEM, HUB_ERR_IO. */
hub_err_t hub_jws_verify(const char *jws, size_t len, const struct hub_jws_verify_opts *opts, char **payload_out,
                         size_t *payload_len, char *signer, size_t signer_size, char *errbuf, size_t errbuf_size);

#endif
