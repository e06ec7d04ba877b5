#include "hub/trust/certcache.h"

#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 64           /* signers in use at once; more only costs decoding again */
#define MAX_DER (64 << 10) /* a larger certificate is decoded each time, not kept */

static struct slot {
  unsigned char *der; /* owned copy: a hit needs the exact bytes, not only a hash */
  size_t n;
  X509 *x;
} slots[SLOTS];
static size_t next_slot; /* replaced on a miss: round robin, so the oldest */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* With the lock held: the cached certificate for these bytes, or NULL. */
static X509 *find(const unsigned char *der, size_t n) {
  for (size_t i = 0; i < SLOTS; i++)
    if (slots[i].x && slots[i].n == n && !memcmp(slots[i].der, der, n)) return slots[i].x;
  return NULL;
}

X509 *hub_certcache_get_x509(const unsigned char *der, size_t n) {
  pthread_mutex_lock(&mu);
  X509 *x = find(der, n);
  if (x) X509_up_ref(x);
  pthread_mutex_unlock(&mu);
  if (x) return x;
  const unsigned char *p = der; /* decoded outside the lock */
  x = n > 0 && n < (1u << 30) ? d2i_X509(NULL, &p, (long)n) : NULL;
  if (!x || p != der + n) {
    X509_free(x);
    ERR_clear_error();
    return NULL;
  }
  unsigned char *copy = n <= MAX_DER ? malloc(n) : NULL;
  if (!copy) return x; /* still the answer, just not kept */
  memcpy(copy, der, n);
  pthread_mutex_lock(&mu);
  if (find(der, n)) { /* another thread was first */
    free(copy);
  } else {
    struct slot *s = &slots[next_slot];
    next_slot = (next_slot + 1) % SLOTS;
    X509_free(s->x);
    free(s->der);
    X509_up_ref(x);
    *s = (struct slot){copy, n, x};
  }
  pthread_mutex_unlock(&mu);
  return x;
}
