/* Shared by the libFuzzer targets: where the repository is (fixtures), and a NUL-terminated
 * copy of the input for APIs that take C strings. */
#ifndef LT_FUZZ_COMMON_H
#define LT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline char *fuzz_cstr_new(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/* A file of the repository (LT_SOURCE_DIR is compiled in). */
static inline const char *fuzz_src(const char *rel, char *buf, size_t n) {
  const char *top = getenv("LT_SOURCE_DIR");
  snprintf(buf, n, "%s/%s", top ? top : LT_SOURCE_DIR, rel);
  return buf;
}

#endif
