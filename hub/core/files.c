/* See files.h. */
#include "hub/core/files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads all of `f` (named `name` in messages); /proc files and pipes have no size up front. */
static hub_err_t read_all(FILE *f, const char *name, size_t max, char **out, size_t *len, char *errbuf,
                          size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (cap - n < 4096) {
      size_t ncap = cap ? cap * 2 : 8192;
      char *nb = realloc(buf, ncap + 1);
      if (!nb) {
        rc = HUB_ERR_NOMEM;
        snprintf(errbuf, errbuf_size, "%s: out of memory", name);
        goto out;
      }
      buf = nb;
      cap = ncap;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n > max) {
      rc = HUB_ERR_TOO_LARGE;
      snprintf(errbuf, errbuf_size, "%s: larger than %zu bytes", name, max);
      goto out;
    }
    if (got == 0) break;
  }
  if (ferror(f)) {
    rc = HUB_ERR_IO;
    snprintf(errbuf, errbuf_size, "%s: read error", name);
    goto out;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  buf = NULL;
out:
  free(buf);
  return rc;
}

hub_err_t hub_file_read(const char *path, size_t max, char **out, size_t *len, char *errbuf, size_t errbuf_size) {
  *out = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(errbuf, errbuf_size, "%s: %s", path, strerror(errno));
    return HUB_ERR_IO;
  }
  hub_err_t rc = read_all(f, path, max, out, len, errbuf, errbuf_size);
  fclose(f);
  return rc;
}

hub_err_t hub_file_read_arg(const char *path, size_t max, char **out, size_t *len, char *errbuf,
                            size_t errbuf_size) {
  if (strcmp(path, "-") != 0) return hub_file_read(path, max, out, len, errbuf, errbuf_size);
  *out = NULL;
  *len = 0;
  return read_all(stdin, "<stdin>", max, out, len, errbuf, errbuf_size);
}

hub_err_t hub_secret_read(const char *path, size_t max, size_t min, char **out, size_t *len, char *errbuf,
                          size_t errbuf_size) {
  hub_err_t rc = hub_file_read(path, max, out, len, errbuf, errbuf_size);
  if (rc != HUB_OK) return rc;
  while (*len && ((*out)[*len - 1] == '\n' || (*out)[*len - 1] == '\r'))
    (*out)[--*len] = '\0';
  if (*len < min) {
    if (min == 1)
      snprintf(errbuf, errbuf_size, "%s: the secret file is empty", path);
    else
      snprintf(errbuf, errbuf_size, "%s: the secret must have at least %zu bytes", path, min);
    hub_secret_free(*out, *len);
    *out = NULL;
    *len = 0;
    return HUB_ERR_CONFIG;
  }
  return HUB_OK;
}

void hub_secret_free(char *secret, size_t len) {
  if (!secret) return;
  volatile char *p = secret; /* volatile: the wipe must not be optimised away before free */
  for (size_t i = 0; i < len; i++)
    p[i] = 0;
  free(secret);
}

char *hub_path_resolve_new(const char *base_dir, const char *path) {
  int joined = path[0] != '/' && base_dir && *base_dir;
  size_t n = (joined ? strlen(base_dir) + 1 : 0) + strlen(path) + 1;
  char *out = malloc(n);
  if (out) snprintf(out, n, "%s%s%s", joined ? base_dir : "", joined ? "/" : "", path);
  return out;
}

char *hub_path_beside_new(const char *file, const char *path) {
  const char *slash = strrchr(file, '/');
  if (path[0] == '/' || !slash) return strdup(path);
  size_t n = (size_t)(slash - file) + 1 + strlen(path) + 1;
  char *out = malloc(n);
  if (out) snprintf(out, n, "%.*s/%s", (int)(slash - file), file, path);
  return out;
}

char *hub_path_dir_new(const char *file) {
  const char *slash = strrchr(file, '/');
  if (!slash) return strdup(".");
  if (slash == file) return strdup("/");
  return strndup(file, (size_t)(slash - file));
}
