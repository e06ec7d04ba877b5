/* Reading a whole file into memory with a size limit, for the trust CLI and bench. */
#ifndef HUB_TRUST_READFILE_H
#define HUB_TRUST_READFILE_H

#include <stddef.h>

#include "hub/core/err.h"

/* *out is malloc'd and NUL-terminated; "-" reads standard input. Larger than `max` bytes:
 * HUB_ERR_TOO_LARGE. */
hub_err_t hub_trust_read_file(const char *path, size_t max, unsigned char **out, size_t *len, char *errbuf,
                              size_t errbuf_size);

#endif
