/* Helpers shared by the trust CLI commands (sign, verify, bench.sign). */
#include "hub/trust/cli/cli.h"

/* See cli.h. */
int hub_trust_looks_like_xml(const unsigned char *b, size_t n) {
  size_t i = 0;
  if (n >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf) i = 3;
  while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n')) i++;
  return i < n && b[i] == '<';
}
