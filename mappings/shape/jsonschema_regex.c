/* Regular expressions for JSON Schema (`pattern`, `patternProperties`): ECMA-262 syntax run by
 * PCRE2, with the translations that make PCRE2 behave as ECMA-262 does; and the bounded search
 * that JSON Schema and JSONPath (I-Regexp) matching share. */
#include "mappings/shape/jsonschema_regex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mappings/shape/json.h"

/* The long Unicode general-category names ECMA-262 allows in \p{..}, which PCRE2 10.42 only
 * knows by their short names. */
static const char *const gc_long[][2] = {
    {"Letter", "L"},          {"Cased_Letter", "L&"},      {"Uppercase_Letter", "Lu"},     {"Lowercase_Letter", "Ll"},
    {"Titlecase_Letter", "Lt"}, {"Modifier_Letter", "Lm"}, {"Other_Letter", "Lo"},         {"Mark", "M"},
    {"Nonspacing_Mark", "Mn"}, {"Spacing_Mark", "Mc"},     {"Enclosing_Mark", "Me"},       {"Number", "N"},
    {"Decimal_Number", "Nd"}, {"digit", "Nd"},             {"Letter_Number", "Nl"},        {"Other_Number", "No"},
    {"Punctuation", "P"},     {"Connector_Punctuation", "Pc"}, {"Dash_Punctuation", "Pd"}, {"Open_Punctuation", "Ps"},
    {"Close_Punctuation", "Pe"}, {"Initial_Punctuation", "Pi"}, {"Final_Punctuation", "Pf"}, {"Other_Punctuation", "Po"},
    {"Symbol", "S"},          {"Math_Symbol", "Sm"},       {"Currency_Symbol", "Sc"},      {"Modifier_Symbol", "Sk"},
    {"Other_Symbol", "So"},   {"Separator", "Z"},          {"Space_Separator", "Zs"},      {"Line_Separator", "Zl"},
    {"Paragraph_Separator", "Zp"}, {"Other", "C"},         {"Control", "Cc"},              {"Format", "Cf"},
    {"Unassigned", "Cn"},     {"Private_Use", "Co"},       {"Surrogate", "Cs"},
};

/* ECMA-262's \s: WhiteSpace and LineTerminator, wider than PCRE2's ASCII \s (written with
 * \uXXXX: under PCRE2_ALT_BSUX, \x takes exactly two hex digits). */
#define ECMA_SPACE \
  "\\t\\n\\x0b\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"

/* The pattern is copied with \s/\S and long \p{..} names rewritten; everything else PCRE2 reads
 * as ECMA-262 does under PCRE2_ALT_BSUX and PCRE2_DOLLAR_ENDONLY. */
pcre2_code *lt_ecma_regex_compile(const char *src, size_t len, char *msg, size_t msg_size) {
  struct lt_buf b = {0};
  int in_class = 0;
  for (size_t i = 0; i < len; i++) {
    if (src[i] == '\\' && i + 1 < len && (src[i + 1] == 's' || (src[i + 1] == 'S' && !in_class))) {
      if (in_class) lt_buf_str(&b, ECMA_SPACE);
      else lt_buf_str(&b, src[i + 1] == 's' ? "[" ECMA_SPACE "]" : "[^" ECMA_SPACE "]");
      i++;
      continue;
    }
    if (src[i] == '[' && !in_class) in_class = 1;
    else if (src[i] == ']' && in_class) in_class = 0;
    if (src[i] == '\\' && i + 2 < len && (src[i + 1] == 'p' || src[i + 1] == 'P') && src[i + 2] == '{') {
      const char *name = src + i + 3;
      const char *end = memchr(name, '}', len - (i + 3));
      if (end) {
        size_t n = (size_t)(end - name);
        const char *eq = memchr(name, '=', n);
        if (eq && ((eq - name == 16 && !memcmp(name, "General_Category", 16)) || (eq - name == 2 && !memcmp(name, "gc", 2)))) {
          n -= (size_t)(eq + 1 - name);
          name = eq + 1;
        }
        const char *shortn = NULL;
        for (size_t k = 0; k < sizeof gc_long / sizeof gc_long[0]; k++)
          if (strlen(gc_long[k][0]) == n && !memcmp(gc_long[k][0], name, n)) shortn = gc_long[k][1];
        if (shortn) {
          lt_buf_put(&b, src + i, 3);
          lt_buf_str(&b, shortn);
          lt_buf_put(&b, "}", 1);
          i = (size_t)(end - src);
          continue;
        }
      }
    }
    if (src[i] == '\\' && i + 1 < len) {
      lt_buf_put(&b, src + i, 2);
      i++;
      continue;
    }
    lt_buf_put(&b, src + i, 1);
  }
  lt_buf_put(&b, "", 0);
  pcre2_code *re = NULL;
  if (!b.oom) {
    int errcode;
    PCRE2_SIZE off;
    re = pcre2_compile((PCRE2_SPTR)b.s, b.len, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX, &errcode, &off,
                       NULL);
    if (re) pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional speed-up: without JIT it interprets */
    if (!re) {
      PCRE2_UCHAR m[200];
      pcre2_get_error_message(errcode, m, sizeof m);
      snprintf(msg, msg_size, "invalid regular expression '%s' at offset %zu: %s", src, (size_t)off, (char *)m);
    }
  } else {
    snprintf(msg, msg_size, "out of memory");
  }
  free(b.s);
  return re;
}

/* The NFA simulation (pcre2_dfa_match) does not backtrack: it runs in time linear in the
 * subject for a given pattern and has no match limit to hit, but it knows no back-references.
 * The workspace grows with the pattern's parallel states, never with the subject. */
static int dfa_search(const pcre2_code *re, const char *s, size_t len, pcre2_match_data *md, pcre2_match_context *mc) {
  int rc = PCRE2_ERROR_DFA_WSSIZE;
  for (size_t ws = 1000; rc == PCRE2_ERROR_DFA_WSSIZE && ws <= 1000000; ws *= 10) {
    int *work = malloc(ws * sizeof *work);
    if (!work) return -1;
    rc = pcre2_dfa_match(re, (PCRE2_SPTR)s, len, 0, 0, md, mc, work, ws);
    free(work);
  }
  if (rc >= 0) return 1;
  return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

/* Instance strings are untrusted. The backtracking matcher (JIT when available) runs first,
 * under limits; when it hits one, the same pattern runs again without backtracking. Only a
 * pattern the non-backtracking matcher cannot run (a back-reference) can end undecided, and
 * that is -1, never "does not match". */
int lt_regex_search(const pcre2_code *re, const char *s, size_t len) {
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
  pcre2_match_context *mc = pcre2_match_context_create(NULL);
  int rc = -1;
  if (md && mc) {
    pcre2_set_match_limit(mc, 1000000);
    pcre2_set_depth_limit(mc, 10000);
    int r = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, mc);
    if (r >= 0)
      rc = 1;
    else if (r == PCRE2_ERROR_NOMATCH)
      rc = 0;
    else
      rc = dfa_search(re, s, len, md, mc);
  }
  pcre2_match_context_free(mc);
  pcre2_match_data_free(md);
  return rc;
}

int lt_regex_search_linear(const pcre2_code *re, const char *s, size_t len) {
  pcre2_match_data *md = pcre2_match_data_create(1, NULL);
  int rc = md ? dfa_search(re, s, len, md, NULL) : -1;
  pcre2_match_data_free(md);
  return rc;
}
