/* Exponential full-jitter backoff (see backoff.h). */
#include "hub/core/backoff.h"

#include <openssl/rand.h>

int64_t hub_backoff_ceiling_ms(int64_t base_ms, int64_t cap_ms, int attempt) {
  if (base_ms <= 0) base_ms = 1;
  if (cap_ms < base_ms) cap_ms = base_ms;
  int64_t c = base_ms;
  for (int i = 1; i < attempt && c < cap_ms; i++) c = c > cap_ms / 2 ? cap_ms : c * 2;
  return c < cap_ms ? c : cap_ms;
}

int64_t hub_backoff_delay_ms(int64_t base_ms, int64_t cap_ms, int attempt, double rand01) {
  if (rand01 < 0) rand01 = 0;
  if (rand01 >= 1) rand01 = 0.999999;
  int64_t ceil = hub_backoff_ceiling_ms(base_ms, cap_ms, attempt);
  return (int64_t)(rand01 * (double)(ceil + 1));
}

double hub_backoff_random(void) {
  uint64_t r = 0;
  RAND_bytes((unsigned char *)&r, sizeof r);
  return (double)(r >> 11) / 9007199254740992.0; /* 53 bits */
}
