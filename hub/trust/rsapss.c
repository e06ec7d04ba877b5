/* RSA-PSS transform klasses for xmlsec 1.2 (see rsapss.h). The transform digests what the
 * SignedInfo canonicalisation pushes into it and signs or verifies at the end, with
 * OpenSSL's EVP_DigestSign / EVP_DigestVerify. */
#include "hub/trust/rsapss.h"

#include <openssl/rsa.h>
#include <xmlsec/keys.h>
#include <xmlsec/openssl/crypto.h>
#include <xmlsec/openssl/evp.h>
#include <xmlsec/xmlsec.h>

struct pss {
  const EVP_MD *(*md)(void);
  EVP_PKEY *pkey;
  EVP_MD_CTX *mdctx;
};

#define PSS(t) ((struct pss *)(((xmlSecByte *)(t)) + sizeof(xmlSecTransform)))

int hub_rsapss_set_params(EVP_PKEY_CTX *pctx, const EVP_MD *md) {
  return pctx && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
                 EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0 &&
                 EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0
             ? 0
             : -1;
}

static int pss_initialize(xmlSecTransformPtr t);

static void pss_finalize(xmlSecTransformPtr t) {
  struct pss *c = PSS(t);
  EVP_MD_CTX_free(c->mdctx);
  EVP_PKEY_free(c->pkey);
  c->mdctx = NULL;
  c->pkey = NULL;
}

static int pss_set_key_req(xmlSecTransformPtr t, xmlSecKeyReqPtr req) {
  req->keyId = xmlSecOpenSSLKeyDataRsaId;
  req->keyType = t->operation == xmlSecTransformOperationSign ? xmlSecKeyDataTypePrivate : xmlSecKeyDataTypePublic;
  req->keyUsage = t->operation == xmlSecTransformOperationSign ? xmlSecKeyUsageSign : xmlSecKeyUsageVerify;
  return 0;
}

static int pss_set_key(xmlSecTransformPtr t, xmlSecKeyPtr key) {
  struct pss *c = PSS(t);
  EVP_PKEY *pk = xmlSecOpenSSLKeyDataRsaGetEvp(xmlSecKeyGetValue(key));
  if (!pk || EVP_PKEY_up_ref(pk) != 1) return -1;
  EVP_PKEY_free(c->pkey);
  c->pkey = pk;
  return 0;
}

static int pss_execute(xmlSecTransformPtr t, int last, xmlSecTransformCtxPtr tctx) {
  (void)tctx;
  struct pss *c = PSS(t);
  xmlSecBufferPtr in = &t->inBuf, out = &t->outBuf;
  int sign = t->operation == xmlSecTransformOperationSign;
  if (t->status == xmlSecTransformStatusNone) {
    EVP_PKEY_CTX *pctx = NULL;
    if (!c->pkey || !(c->mdctx = EVP_MD_CTX_new())) return -1;
    int ok = sign ? EVP_DigestSignInit(c->mdctx, &pctx, c->md(), NULL, c->pkey)
                  : EVP_DigestVerifyInit(c->mdctx, &pctx, c->md(), NULL, c->pkey);
    if (ok != 1 || hub_rsapss_set_params(pctx, c->md()) < 0) return -1;
    t->status = xmlSecTransformStatusWorking;
  }
  if (t->status != xmlSecTransformStatusWorking) return t->status == xmlSecTransformStatusFinished ? 0 : -1;
  xmlSecSize n = xmlSecBufferGetSize(in);
  if (n > 0) {
    if (EVP_DigestUpdate(c->mdctx, xmlSecBufferGetData(in), n) != 1) return -1;
    if (xmlSecBufferRemoveHead(in, n) < 0) return -1;
  }
  if (last) {
    if (sign) {
      size_t sl = 0;
      if (EVP_DigestSignFinal(c->mdctx, NULL, &sl) != 1 || xmlSecBufferSetMaxSize(out, (xmlSecSize)sl) < 0 ||
          EVP_DigestSignFinal(c->mdctx, xmlSecBufferGetData(out), &sl) != 1 ||
          xmlSecBufferSetSize(out, (xmlSecSize)sl) < 0)
        return -1;
    }
    t->status = xmlSecTransformStatusFinished;
  }
  return 0;
}

static int pss_verify(xmlSecTransformPtr t, const xmlSecByte *data, xmlSecSize size, xmlSecTransformCtxPtr tctx) {
  (void)tctx;
  struct pss *c = PSS(t);
  if (t->operation != xmlSecTransformOperationVerify || t->status != xmlSecTransformStatusFinished || !c->mdctx)
    return -1;
  t->status = EVP_DigestVerifyFinal(c->mdctx, data, size) == 1 ? xmlSecTransformStatusOk : xmlSecTransformStatusFail;
  return 0;
}

#define PSS_KLASS(var, nm, hash)                                                                                  \
  static xmlSecTransformKlass var = {sizeof(xmlSecTransformKlass),                                              \
                                     sizeof(xmlSecTransform) + sizeof(struct pss),                               \
                                     (const xmlChar *)nm "-rsa-MGF1",                                            \
                                     (const xmlChar *)"http://www.w3.org/2007/05/xmldsig-more#" nm "-rsa-MGF1", \
                                     xmlSecTransformUsageSignatureMethod,                                        \
                                     pss_initialize,                                                             \
                                     pss_finalize,                                                               \
                                     NULL,                                                                       \
                                     NULL,                                                                       \
                                     pss_set_key_req,                                                            \
                                     pss_set_key,                                                                \
                                     pss_verify,                                                                 \
                                     xmlSecTransformDefaultGetDataType,                                          \
                                     xmlSecTransformDefaultPushBin,                                              \
                                     xmlSecTransformDefaultPopBin,                                               \
                                     NULL,                                                                       \
                                     NULL,                                                                       \
                                     pss_execute,                                                                \
                                     NULL,                                                                       \
                                     NULL};                                                                      \
  xmlSecTransformId hub_rsapss_##hash##_klass(void) {                                                           \
    return &var;                                                                                                 \
  }

PSS_KLASS(pss_sha1, "sha1", sha1)
PSS_KLASS(pss_sha224, "sha224", sha224)
PSS_KLASS(pss_sha256, "sha256", sha256)
PSS_KLASS(pss_sha384, "sha384", sha384)
PSS_KLASS(pss_sha512, "sha512", sha512)

static int pss_initialize(xmlSecTransformPtr t) {
  struct pss *c = PSS(t);
  c->pkey = NULL;
  c->mdctx = NULL;
  c->md = t->id == &pss_sha1 ? EVP_sha1 : t->id == &pss_sha224 ? EVP_sha224 : t->id == &pss_sha256 ? EVP_sha256
          : t->id == &pss_sha384 ? EVP_sha384 : t->id == &pss_sha512 ? EVP_sha512 : NULL;
  return c->md ? 0 : -1;
}

int hub_rsapss_register(void) {
  xmlSecTransformId ids[] = {&pss_sha1, &pss_sha224, &pss_sha256, &pss_sha384, &pss_sha512};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
    if (xmlSecTransformIdsRegister(ids[i]) < 0) return -1;
  return 0;
}
