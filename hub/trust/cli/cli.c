/* Helpers shared by the trust CLI commands (sign, verify, bench.sign). */
#include "hub/trust/cli/cli.h"

/* See cli.h. */
int hub_trust_looks_like_xml(const unsigned char *b, size_t n) {
  size_t i = 0;
  /* UTF-16 with a byte order mark: hub_xml_parse reads it (and pre-scans it for NUL units) */
  if (n >= 2 && ((b[0] == 0xfe && b[1] == 0xff) || (b[0] == 0xff && b[1] == 0xfe))) return 1;
  if (n >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf) i = 3;
  while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n')) i++;
  return i < n && b[i] == '<';
}
