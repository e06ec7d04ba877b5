/* XML-DSig verification against the test CA: any document ends in valid or a refusal with a
 * reason, within the parse limits. Seeds: the negative corpus (tests/trust/negative). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "hub/trust/xmldsig.h"

static struct hub_xmldsig_verifier *v;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!v) {
    char ca[1024], errbuf[1024];
    const char *cas[] = {fuzz_src("tests/trust/fixtures/keys/ca.pem", ca, sizeof ca)};
    struct hub_xmldsig_verify_opts o = {.trust_ca = cas, .n_trust_ca = 1, .clock_skew_s = -1,
                                        .max_bytes = 1 << 20};
    if (hub_xmldsig_init() != HUB_OK || hub_xmldsig_verifier_new(&o, &v, errbuf, sizeof errbuf) != HUB_OK) {
      fprintf(stderr, "fuzz_xmldsig_verify: %s\n", errbuf);
      abort();
    }
  }
  struct hub_xmldsig_result res;
  /* first byte: which element is processed (the root, or Id "doc" as the wrapping cases use) */
  const char *id = size && (data[0] & 1) ? "doc" : NULL;
  hub_xmldsig_verify(v, data, size, id, 0, &res);
  hub_xmldsig_result_release(&res);
  return 0;
}
