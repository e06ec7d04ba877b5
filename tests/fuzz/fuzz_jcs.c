/* RFC 8785: any JSON canonicalises or is refused; a canonical form is a fixed point, and the
 * signed-payload check never accepts what canonicalisation refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "hub/trust/jcs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *out = NULL, *again = NULL, *exact = NULL, errbuf[512];
  size_t ol = 0, al = 0, el = 0;
  hub_err_t rc = hub_jcs_canonicalize_new(data, size, &out, &ol, errbuf, sizeof errbuf);
  hub_err_t rx = hub_jcs_canonicalize_exact_new(data, size, &exact, &el, errbuf, sizeof errbuf);
  if (rc != HUB_OK && rx == HUB_OK) abort();
  if (rx == HUB_OK && (el != ol || memcmp(exact, out, ol))) abort();
  if (rc == HUB_OK) {
    if (hub_jcs_canonicalize_new(out, ol, &again, &al, errbuf, sizeof errbuf) != HUB_OK || al != ol ||
        memcmp(out, again, ol))
      abort();
  }
  free(out);
  free(again);
  free(exact);
  return 0;
}
