/* Files and paths, for every library: reading a whole file into memory with a size limit, and
 * resolving a path written in the configuration against the configuration file's folder. */
#ifndef HUB_FILES_H
#define HUB_FILES_H

#include <stddef.h>

#include "hub/core/err.h"

/* Reads PATH into *out: malloc'd, NUL-terminated (*len excludes the NUL). Errors name the file:
 * "PATH: No such file or directory" (HUB_ERR_IO), "PATH: larger than MAX bytes"
 * (HUB_ERR_TOO_LARGE), out of memory (HUB_ERR_NOMEM). */
hub_err_t hub_file_read(const char *path, size_t max, char **out, size_t *len, char *errbuf, size_t errbuf_size);
/* hub_file_read, except that "-" reads standard input (for commands that take FILE arguments). */
hub_err_t hub_file_read_arg(const char *path, size_t max, char **out, size_t *len, char *errbuf,
                            size_t errbuf_size);

/* A secret (password, key, token) kept in a file: hub_file_read, then the trailing line ends
 * dropped; fewer than MIN bytes left is refused (HUB_ERR_CONFIG, "PATH: the secret must have at
 * least MIN bytes"). Free it with hub_secret_free, which wipes it. */
hub_err_t hub_secret_read(const char *path, size_t max, size_t min, char **out, size_t *len, char *errbuf,
                          size_t errbuf_size);
void hub_secret_free(char *secret, size_t len);

/* PATH as written in a file whose folder is BASE_DIR: an absolute PATH, or a NULL or empty
 * BASE_DIR, leaves it as it is; else BASE_DIR/PATH. malloc'd; NULL when out of memory. */
char *hub_path_resolve_new(const char *base_dir, const char *path);
/* PATH as written inside FILE: relative to FILE's folder (a FILE without a folder leaves PATH
 * as it is). malloc'd; NULL when out of memory. */
char *hub_path_beside_new(const char *file, const char *path);
/* The folder of FILE ("." for a bare name), malloc'd; NULL when out of memory. */
char *hub_path_dir_new(const char *file);

#endif
