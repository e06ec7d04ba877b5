/* Helpers shared by the trust CLI commands (sign, verify, bench.sign). */
#ifndef HUB_TRUST_CLI_H
#define HUB_TRUST_CLI_H

#include <stddef.h>

/* XML when the first non-blank byte (after a UTF-8 BOM) is '<'; otherwise JWS. */
int hub_trust_looks_like_xml(const unsigned char *b, size_t n);

#endif
