/* A tiny test harness: CHECK records a failure with file and line and goes on; a test
 * program ends with `return check_done();` which prints "N passed, N failed". */
#ifndef LT_TEST_CHECK_H
#define LT_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      check_passed++;                                                      \
    } else {                                                               \
      check_failed++;                                                      \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                      \
  } while (0)

#define CHECK_STR(a, b)                                                                    \
  do {                                                                                     \
    const char *a_ = (a), *b_ = (b);                                                       \
    if (a_ && b_ && strcmp(a_, b_) == 0) {                                                 \
      check_passed++;                                                                      \
    } else {                                                                               \
      check_failed++;                                                                      \
      fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__, __LINE__, b_ ? b_ : "(null)", \
              a_ ? a_ : "(null)");                                                         \
    }                                                                                      \
  } while (0)

#define CHECK_CONTAINS(hay, needle)                                                          \
  do {                                                                                       \
    const char *h_ = (hay), *n_ = (needle);                                                  \
    if (h_ && strstr(h_, n_)) {                                                              \
      check_passed++;                                                                        \
    } else {                                                                                 \
      check_failed++;                                                                        \
      fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, h_ ? h_ : "(null)", n_); \
    }                                                                                        \
  } while (0)

static inline int check_done(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed ? 1 : 0;
}

#endif
