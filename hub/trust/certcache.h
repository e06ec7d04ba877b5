/* Certificates as signers present them (DER in X509Data or a JWS x5c), decoded once per
 * process. OpenSSL 3 decodes a certificate's public key through its provider framework: about
 * half the CPU of verifying a 4 KB document, while the same few signers send every document.
 * A pure memo of a pure function (bytes to certificate), bounded and thread-safe. */
#ifndef HUB_TRUST_CERTCACHE_H
#define HUB_TRUST_CERTCACHE_H

#include <openssl/x509.h>
#include <stddef.h>

/* A new reference (X509_free it) to the certificate encoded by exactly these n bytes, or NULL
 * when they are not one DER certificate (nothing after it). */
X509 *hub_certcache_get_x509(const unsigned char *der, size_t n);

#endif
