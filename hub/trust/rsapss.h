/* RSA-PSS signature methods (RFC 6931 "sha256-rsa-MGF1" and friends) as xmlsec transform
 * klasses: Debian 12's xmlsec 1.2.37 has none (they came with 1.3), and xmlsec lets an
 * application register its own. Salt length = digest length, MGF1 with the same digest. */
#ifndef HUB_TRUST_RSAPSS_H
#define HUB_TRUST_RSAPSS_H

#include <openssl/evp.h>
#include <xmlsec/transforms.h>

xmlSecTransformId hub_rsapss_sha1_klass(void);
xmlSecTransformId hub_rsapss_sha224_klass(void);
xmlSecTransformId hub_rsapss_sha256_klass(void);
xmlSecTransformId hub_rsapss_sha384_klass(void);
xmlSecTransformId hub_rsapss_sha512_klass(void);

/* Registers the klasses with xmlsec (after xmlSecCryptoInit); 0 or -1. */
int hub_rsapss_register(void);

/* Sets PSS padding on a signing or verifying context made by EVP_DigestSign/VerifyInit. */
int hub_rsapss_set_params(EVP_PKEY_CTX *pctx, const EVP_MD *md);

#endif
