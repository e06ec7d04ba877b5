/* I-Regexp (RFC 9485) for JSONPath's match() and search(): checks a pattern against the
 * I-Regexp grammar and translates it to an equivalent PCRE2 pattern, which PCRE2 runs. */
#ifndef LT_JSONPATH_IREGEXP_H
#define LT_JSONPATH_IREGEXP_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>

/* Compiles an I-Regexp; `anchored` makes it match the whole subject (match()), otherwise it
 * may match any substring (search()). NULL when the pattern is not a valid I-Regexp. */
pcre2_code *lt_iregexp_compile(const char *pattern, size_t len, int anchored);
/* 1 when the compiled pattern matches the UTF-8 subject (as the function asks), else 0. */
int lt_iregexp_test(const pcre2_code *re, const char *subject, size_t len);

#endif
