/* Name comparison for QCVN 109 look-ups (name_match.h), on ICU: UTF-8 -> UTF-16, collapse white
 * space, NFC, full case folding, compare. */
#include "connectors/population/name_match.h"

#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

/* The canonical form of a name in UTF-16 (malloc'd, *n units), or NULL. */
static UChar *canonical_new(const char *s, int32_t *n) {
  UErrorCode e = U_ZERO_ERROR;
  int32_t len = 0;
  u_strFromUTF8(NULL, 0, &len, s, -1, &e);
  if (e != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(e)) return NULL;
  e = U_ZERO_ERROR;
  UChar *raw = malloc(((size_t)len + 1) * sizeof *raw), *sp = malloc(((size_t)len + 1) * sizeof *sp);
  UChar *nfc = NULL, *fold = NULL;
  if (!raw || !sp) goto fail;
  u_strFromUTF8(raw, len + 1, NULL, s, -1, &e);
  if (U_FAILURE(e)) goto fail;
  int32_t k = 0, pending_space = 0;
  for (int32_t i = 0; i < len; i++) {
    if (u_isUWhiteSpace(raw[i])) {
      pending_space = k > 0;
      continue;
    }
    if (pending_space) sp[k++] = 0x20;
    pending_space = 0;
    sp[k++] = raw[i];
  }
  const UNormalizer2 *nz = unorm2_getNFCInstance(&e);
  if (U_FAILURE(e)) goto fail;
  int32_t cap = k * 3 + 1;
  if (!(nfc = malloc((size_t)cap * sizeof *nfc))) goto fail;
  int32_t nn = unorm2_normalize(nz, sp, k, nfc, cap, &e);
  if (U_FAILURE(e)) goto fail;
  if (!(fold = malloc((size_t)cap * sizeof *fold))) goto fail;
  int32_t fn = u_strFoldCase(fold, cap, nfc, nn, U_FOLD_CASE_DEFAULT, &e);
  if (U_FAILURE(e)) goto fail;
  /* Folding may decompose (e.g. ẞ -> ss); normalise once more so the two sides meet. */
  int32_t n2 = unorm2_normalize(nz, fold, fn, nfc, cap, &e);
  if (U_FAILURE(e)) goto fail;
  free(raw);
  free(sp);
  free(fold);
  *n = n2;
  return nfc;
fail:
  free(raw);
  free(sp);
  free(nfc);
  free(fold);
  return NULL;
}

int lt_name_equal(const char *a, const char *b) {
  int32_t na = 0, nb = 0;
  UChar *ca = canonical_new(a, &na), *cb = canonical_new(b, &nb);
  int r = ca && cb ? na == nb && !memcmp(ca, cb, (size_t)na * sizeof *ca) : -1;
  free(ca);
  free(cb);
  return r;
}
