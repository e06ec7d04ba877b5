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

/* Loads every certificate of each CA file (PEM, one or more certificates) and every CRL of
 * each CRL file. With CRLs, every certificate of the chain must have a CRL from its issuer. */
hub_err_t hub_truststore_new(const char *const *ca_files, size_t n_ca, const char *const *crl_files, size_t n_crl,
                             int64_t skew_s, struct hub_truststore **out, char *errbuf, size_t errbuf_size);
void hub_truststore_destroy(struct hub_truststore *ts);

/* Checks `leaf` (with `untrusted` intermediates, may be NULL) at time `at` (0: now).
 * Returns HUB_OK, HUB_ERR_SIG_EXPIRED (outside its validity period beyond the skew),
 * HUB_ERR_SIG_UNTRUSTED (no chain to a trusted CA, revoked, not a signing key) with the
 * reason in errbuf. */
hub_err_t hub_truststore_check(const struct hub_truststore *ts, X509 *leaf, STACK_OF(X509) *untrusted, time_t at,
                               char *errbuf, size_t errbuf_size);

/* "subject (RFC 2253); sha256=<hex of the DER>" for lt.signer. */
void hub_x509_signer_string(X509 *cert, char *out, size_t out_size);

/* Loads the certificates of a PEM file into a new stack (owned). */
STACK_OF(X509) *hub_x509_load_pem_file(const char *path, char *errbuf, size_t errbuf_size);

#endif
