/* ECMA-262 regular expressions (JSON Schema's dialect) on PCRE2, and a bounded search. */
#ifndef LT_JSONSCHEMA_REGEX_H
#define LT_JSONSCHEMA_REGEX_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>

/* Compiles an ECMA-262 regex for an unanchored search ("$" only at the very end, \uXXXX, ECMA's
 * Unicode \s, long property names). NULL with the reason in msg when it does not compile. */
pcre2_code *lt_ecma_regex_compile(const char *src, size_t len, char *msg, size_t msg_size);
/* 1 when `re` matches somewhere in the UTF-8 subject, 0 when it does not, -1 when it cannot be
 * decided: the subject is untrusted, so backtracking is bounded; a pattern that hits the bound
 * runs again without backtracking, and only one that needs backtracking (a back-reference)
 * stays undecided. */
int lt_regex_search(const pcre2_code *re, const char *s, size_t len);
/* The same without backtracking at all (linear in the subject): for I-Regexp, which has no
 * back-references. -1 only when out of memory. */
int lt_regex_search_linear(const pcre2_code *re, const char *s, size_t len);

#endif
