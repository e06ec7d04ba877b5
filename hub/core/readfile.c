/* See readfile.h. */
#include "hub/core/readfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hub_err_t hub_trust_read_file(const char *path, size_t max, unsigned char **out, size_t *len, char *errbuf,
                              size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  int is_stdin = !strcmp(path, "-");
  FILE *f = is_stdin ? stdin : fopen(path, "rb");
  unsigned char *buf = NULL;
  size_t n = 0, cap = 0;
  *out = NULL;
  *len = 0;
  if (!f) {
    snprintf(errbuf, errbuf_size, "%s: cannot open: %s", path, strerror(errno));
    return HUB_ERR_IO;
  }
  for (;;) {
    if (cap - n < 65536) {
      size_t ncap = cap ? cap * 2 : 65536;
      unsigned char *nb = realloc(buf, ncap + 1);
      if (!nb) {
        rc = HUB_ERR_NOMEM;
        snprintf(errbuf, errbuf_size, "%s: out of memory", path);
        goto out;
      }
      buf = nb;
      cap = ncap;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n > max) {
      rc = HUB_ERR_TOO_LARGE;
      snprintf(errbuf, errbuf_size, "%s: larger than the limit of %zu bytes", path, max);
      goto out;
    }
    if (got == 0) break;
  }
  if (ferror(f)) {
    rc = HUB_ERR_IO;
    snprintf(errbuf, errbuf_size, "%s: read error", path);
    goto out;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  buf = NULL;
out:
  free(buf);
  if (!is_stdin) fclose(f);
  return rc;
}
