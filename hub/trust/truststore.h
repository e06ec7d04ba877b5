/* A trust store for signature verification: CA certificates and optional CRLs loaded once,
 * and the one place that decides whether a signer's certificate is trusted (chain, validity
 * period with a clock skew, key usage, revocation). Shared by XML-DSig and JWS verification.
 * Read-only after creation, so one store may serve several threads. */
#ifndef HUB_TRUST_TRUSTSTORE_H
#define HUB_TRUST_TRUSTSTORE_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hub/core/err.h"

struct hub_truststore;

#define HUB_TRUST_DEFAULT_SKEW_S 300

/* What a signer's (leaf) certificate must be, beyond a valid chain. hub_cert_policy_default():
 * RSA keys of at least 2048 bits, EC keys of at least 256, a keyUsage that allows signing when
 * the certificate has one, no CA certificate as a signer, any extended key usage. */
struct hub_cert_policy {
  int64_t min_rsa_bits, min_ec_bits;
  int require_key_usage;      /* 1: a certificate without keyUsage is refused too */
  int allow_ca_signer;        /* 1: basicConstraints CA:TRUE may sign */
  const char *const *eku;     /* when n_eku > 0: the leaf must name one of these extended key */
  size_t n_eku;               /* usages (OpenSSL short names such as emailProtection, or OIDs) */
};
void hub_cert_policy_default(struct hub_cert_policy *p);

/* Loads every certificate of each CA file (PEM, one or more certificates) and every CRL of
 * each CRL file. With CRLs, every certificate of the chain must have a CRL from its issuer. */
hub_err_t hub_truststore_new(const char *const *ca_files, size_t n_ca, const char *const *crl_files, size_t n_crl,
                             int64_t skew_s, struct hub_truststore **out, char *errbuf, size_t errbuf_size);
void hub_truststore_destroy(struct hub_truststore *ts);
/* Replaces the store's certificate policy (a new store has the default). HUB_ERR_CONFIG when an
 * extended key usage is neither a known name nor an OID. Call before the store is shared. */
hub_err_t hub_truststore_set_policy(struct hub_truststore *ts, const struct hub_cert_policy *p, char *errbuf,
                                    size_t errbuf_size);

/* Checks `leaf` (with `untrusted` intermediates, may be NULL) at time `at` (0: now).
 * Returns HUB_OK, HUB_ERR_SIG_EXPIRED (outside its validity period beyond the skew),
 * HUB_ERR_SIG_UNTRUSTED (no chain to a trusted CA, revoked, not a signing key), or
 * HUB_ERR_SIG_POLICY (the certificate policy refuses it: key size, keyUsage, CA, EKU), with the
 * reason in errbuf. The policy is checked first: it is the cheapest refusal. */
hub_err_t hub_truststore_check(const struct hub_truststore *ts, X509 *leaf, STACK_OF(X509) *untrusted, time_t at,
                               char *errbuf, size_t errbuf_size);

/* "subject (RFC 2253); sha256=<hex of the DER>" for lt.signer. */
void hub_x509_signer_string(X509 *cert, char *out, size_t out_size);

/* Loads the certificates of a PEM file into a new stack (owned). */
STACK_OF(X509) *hub_x509_load_pem_file(const char *path, char *errbuf, size_t errbuf_size);

#endif
