/* The decoded-certificate memo behind XML-DSig and JWS verification (hub/trust/certcache.h):
 * the same bytes give the same certificate, different bytes never do, a DER with anything after
 * it is refused, and more signers than slots still decode right. Expected subjects come from
 * PEM_read_X509 on the fixture files, not from the code under test. */
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hub/trust/certcache.h"

static X509 *read_pem(const char *name) {
  char p[1024];
  snprintf(p, sizeof p, "%s/tests/trust/fixtures/keys/%s", getenv("LT_SOURCE_DIR"), name);
  FILE *f = fopen(p, "r");
  X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f) fclose(f);
  return x;
}

static int der_of(X509 *x, unsigned char **der) {
  *der = NULL;
  return i2d_X509(x, der);
}

struct race {
  const unsigned char *der;
  int n;
  X509 *got[200];
};

static void *race_run(void *arg) {
  struct race *r = arg;
  for (int i = 0; i < 200; i++) r->got[i] = hub_certcache_get_x509(r->der, (size_t)r->n);
  return NULL;
}

int main(void) {
  const char *names[] = {"agency-rsa-cert.pem", "agency-ec-cert.pem", "hub-cert.pem", "ca.pem"};
  X509 *ref[4];
  unsigned char *der[4];
  int n[4];
  for (int i = 0; i < 4; i++) {
    ref[i] = read_pem(names[i]);
    CHECK(ref[i] != NULL);
    n[i] = der_of(ref[i], &der[i]);
    CHECK(n[i] > 0);
  }
  /* the same bytes: one certificate, equal to OpenSSL's own decoding */
  X509 *a = hub_certcache_get_x509(der[0], (size_t)n[0]), *b = hub_certcache_get_x509(der[0], (size_t)n[0]);
  CHECK(a && a == b);
  CHECK(a && X509_cmp(a, ref[0]) == 0);
  X509_free(b);
  /* a copy of the bytes at another address is the same certificate too */
  unsigned char *copy = malloc((size_t)n[0]);
  memcpy(copy, der[0], (size_t)n[0]);
  b = hub_certcache_get_x509(copy, (size_t)n[0]);
  CHECK(b == a);
  X509_free(b);
  /* a one-bit change is not served from the memo: it decodes to another certificate or none */
  copy[n[0] - 5] ^= 0x01;
  b = hub_certcache_get_x509(copy, (size_t)n[0]);
  CHECK(b != a);
  CHECK(!b || X509_cmp(b, ref[0]) != 0);
  X509_free(b);
  free(copy);
  /* trailing bytes, a truncated DER and nothing at all are refused */
  unsigned char *longer = malloc((size_t)n[0] + 1);
  memcpy(longer, der[0], (size_t)n[0]);
  longer[n[0]] = 0;
  CHECK(hub_certcache_get_x509(longer, (size_t)n[0] + 1) == NULL);
  CHECK(hub_certcache_get_x509(der[0], (size_t)n[0] - 1) == NULL);
  CHECK(hub_certcache_get_x509(der[0], 0) == NULL);
  free(longer);
  /* each certificate its own; the reference held stays valid after 200 other certificates
   * have pushed it out of the memo */
  for (int i = 1; i < 4; i++) {
    X509 *x = hub_certcache_get_x509(der[i], (size_t)n[i]);
    CHECK(x && X509_cmp(x, ref[i]) == 0 && x != a);
    X509_free(x);
  }
  char kpath[1024];
  snprintf(kpath, sizeof kpath, "%s/tests/trust/fixtures/keys/agency-ec-key.pem", getenv("LT_SOURCE_DIR"));
  FILE *kf = fopen(kpath, "r");
  EVP_PKEY *key = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
  if (kf) fclose(kf);
  CHECK(key != NULL);
  for (long serial = 1; key && serial <= 200; serial++) {
    X509 *t = X509_dup(ref[1]);
    ASN1_INTEGER *sn = ASN1_INTEGER_new();
    ASN1_INTEGER_set(sn, serial);
    X509_set_serialNumber(t, sn);
    ASN1_INTEGER_free(sn);
    X509_sign(t, key, EVP_sha256()); /* signing marks the cached encoding stale */
    unsigned char *d = NULL;
    int dn = i2d_X509(t, &d);
    X509 *x = dn > 0 ? hub_certcache_get_x509(d, (size_t)dn) : NULL;
    CHECK(x && ASN1_INTEGER_get(X509_get0_serialNumber(x)) == serial);
    X509_free(x);
    OPENSSL_free(d);
    X509_free(t);
  }
  EVP_PKEY_free(key);
  CHECK(X509_cmp(a, ref[0]) == 0);
  X509 *again = hub_certcache_get_x509(der[0], (size_t)n[0]);
  CHECK(again && X509_cmp(again, ref[0]) == 0);
  X509_free(again);
  X509_free(a);
  /* two threads asking for new certificates at once get the right ones */
  struct race r[2] = {{der[2], n[2], {0}}, {der[3], n[3], {0}}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, race_run, &r[i]);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  int right = 1;
  for (int t = 0; t < 2; t++)
    for (int i = 0; i < 200; i++) {
      right = right && r[t].got[i] && X509_cmp(r[t].got[i], ref[t + 2]) == 0;
      X509_free(r[t].got[i]);
    }
  CHECK(right);
  for (int i = 0; i < 4; i++) {
    X509_free(ref[i]);
    OPENSSL_free(der[i]);
  }
  return check_done();
}
