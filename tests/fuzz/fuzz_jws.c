/* JWS parse and verify (compact, and detached with the input's tail as the JSON payload)
 * against the test CA (x5c) and a pinned key. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "hub/trust/jws.h"

static struct hub_jws_key *pinned;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[1024], errbuf[1024], signer[512];
  if (!pinned && hub_jws_key_load(fuzz_src("tests/trust/fixtures/keys/hub-cert.pem", path, sizeof path), "hub",
                                  &pinned, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "fuzz_jws: %s\n", errbuf);
    abort();
  }
  char ca[1024];
  const char *cas[] = {fuzz_src("tests/trust/fixtures/keys/ca.pem", ca, sizeof ca)};
  const struct hub_jws_key *pins[] = {pinned};
  /* the token, then an optional "\n" and the detached payload */
  const uint8_t *nl = memchr(data, '\n', size);
  size_t tlen = nl ? (size_t)(nl - data) : size;
  struct hub_jws_verify_opts o = {.trust_ca = cas, .n_trust_ca = 1, .clock_skew_s = 300};
  if (size && (data[0] & 1)) o.pinned = pins, o.n_pinned = 1, o.trust_ca = NULL, o.n_trust_ca = 0;
  if (nl) o.detached_payload = (const char *)nl + 1, o.detached_len = size - tlen - 1;
  char *tok = fuzz_cstr_new(data, tlen), *out = NULL;
  size_t out_len = 0;
  if (hub_jws_verify(tok, tlen, &o, &out, &out_len, signer, sizeof signer, errbuf, sizeof errbuf) == HUB_OK && !out)
    abort(); /* a verified JWS always yields its payload */
  free(out);
  free(tok);
  return 0;
}
