/* RFC 8785 JSON Canonicalization Scheme: the one canonical byte form of a JSON value, used for
 * detached JWS payloads. Owns number serialisation (ECMAScript Number.prototype.toString:
 * the shortest decimal that round-trips the IEEE-754 double), string escaping (only `"`, `\`
 * and control characters; \b \t \n \f \r short forms, other controls \u00xx lower-case) and
 * member ordering (by UTF-16 code units). Input with duplicate member names, non-finite or
 * out-of-range numbers, or invalid UTF-8 is refused. */
#ifndef HUB_TRUST_JCS_H
#define HUB_TRUST_JCS_H

#include <stddef.h>

#include <jansson.h>

#include "hub/core/err.h"

/* Parses JSON text (duplicates refused; every number read as a double) and writes its
 * canonical form into a malloc'd NUL-terminated *out of *out_len bytes.
 * HUB_ERR_JSON with "line L column C: ..." in errbuf on bad input. */
hub_err_t hub_jcs_canonicalize_new(const void *json, size_t len, char **out, size_t *out_len, char *errbuf,
                                   size_t errbuf_size);

/* The canonical form of a jansson value. Integers are written as the double they denote and
 * refused (HUB_ERR_JSON) beyond +-2^53 where that would change them; reals must be finite. */
hub_err_t hub_jcs_dump_new(const json_t *value, char **out, size_t *out_len, char *errbuf, size_t errbuf_size);

/* As hub_jcs_canonicalize_new, for a payload that is signed or verified: also refuses any number
 * whose text is not exactly the value its double denotes (1234567890123456789, 150000.00000000001,
 * 1e-400: a signature over the double would cover another number than the one forwarded) and any
 * integer beyond 2^53. The error names line, column and the number. */
hub_err_t hub_jcs_canonicalize_exact_new(const void *json, size_t len, char **out, size_t *out_len, char *errbuf,
                                         size_t errbuf_size);
/* Only the number check of hub_jcs_canonicalize_exact_new, over valid JSON text. */
hub_err_t hub_jcs_check_exact(const void *json, size_t len, char *errbuf, size_t errbuf_size);

/* ECMAScript Number.prototype.toString of a finite double into buf (at least 32 bytes).
 * Returns the length, or -1 if d is NaN or infinite. */
int hub_jcs_number(double d, char *buf, size_t size);

#endif
