/* The value functions of the mapping language (docs/mapping.md "Functions"): date and time
 * parse/format with fixed-offset time zones, number and money formatting, UTF-8 text helpers.
 * Pure functions over strings, so they are unit-testable without a mapping file. */
#ifndef LT_MAP_FN_H
#define LT_MAP_FN_H

#include <stddef.h>
#include <stdint.h>

/* A time zone as a fixed offset from UTC in minutes. Vietnam (Asia/Ho_Chi_Minh) has used
 * UTC+07:00 without daylight saving since 1975, so the zone is a fixed offset here; names
 * other than the ones below are refused rather than guessed. Accepts "Asia/Ho_Chi_Minh",
 * "Asia/Saigon", "Asia/Bangkok", "UTC", "Z", "+HH:MM", "-HH:MM". Returns 0 or -1. */
int lt_map_zone_parse(const char *name, int *offset_min);

/* Checks a date pattern: yyyy yy MM dd HH mm ss SSS XXX, one-letter M d H m s (one or two digits
 * when reading, no padding when writing), 'quoted text', other punctuation as itself; "iso8601" is
 * yyyy-MM-dd'T'HH:mm:ssXXX. Returns 0, or -1 with a reason in err. */
int lt_map_date_pattern_check(const char *pattern, char *err, size_t err_size);

/* Parses `text` exactly against `pattern`. A pattern without XXX reads the time in
 * `zone_min`. Fields are range-checked (month 1-12, real day of month, 00-23, 00-59, 00-59).
 * Writes seconds since the epoch and milliseconds; returns 0 or -1 with a reason in err. */
int lt_map_date_parse(const char *text, const char *pattern, int zone_min, int64_t *epoch_s, int *ms, char *err,
                      size_t err_size);
/* Formats an instant in zone `zone_min`. Returns the length written or -1 if out is too small. */
int lt_map_date_format(int64_t epoch_s, int ms, const char *pattern, int zone_min, char *out, size_t out_size);

/* Decimal formatting of a number given as text ("-1234.5", "50000"): rounds half away from
 * zero to `decimals` digits, groups the integer part by three with `group` ("" for none) and
 * writes `point` before the fraction. Returns 0, or -1 when `num` is not a plain decimal. */
int lt_map_number_format(const char *num, int decimals, const char *group, const char *point, char *out,
                         size_t out_size);

/* UTF-8 helpers; each returns a malloc'd string or NULL (invalid UTF-8 or no memory). */
char *lt_map_utf8_case(const char *s, int upper);
enum lt_map_text {
  LT_MAP_TITLE, /* each word's first letter upper, the rest lower: "NGUYỄN văn đức" -> "Nguyễn Văn Đức" */
  LT_MAP_UNACCENT, /* Vietnamese diacritics removed, đ -> d, case kept: "Đức" -> "Duc" */
  LT_MAP_FOLD      /* unaccented and lower case, a key for comparing names: "Nguyễn ĐỨC" -> "nguyen duc" */
};
char *lt_map_utf8_text(const char *s, enum lt_map_text how);
/* Pads to `width` code points with `fill` on the left (or right); longer text is kept whole. */
char *lt_map_pad(const char *s, size_t width, const char *fill, int left);
/* Standard base64 (RFC 4648 §4) with padding; decoding skips line breaks and refuses other
 * alphabets, data after padding and non-zero stray bits. Decoded bytes are NUL-terminated. */
char *lt_map_base64_encode(const void *data, size_t len);
unsigned char *lt_map_base64_decode(const char *s, size_t *len);
/* Reads a number written with `group` and `point` ("1.234.567,5" with "." and ",") into plain
 * decimal text ("1234567.5"); groups must be of three digits. Returns 0 or -1. */
int lt_map_number_parse(const char *text, const char *group, const char *point, char *out, size_t out_size);
/* Code points [start, start+len) (len < 0: to the end). */
char *lt_map_utf8_substring(const char *s, long start, long len);
/* Trims ASCII and Unicode spaces at both ends. */
char *lt_map_trim(const char *s);
/* 1 if s is valid UTF-8 without NUL in its first len bytes. */
int lt_map_utf8_valid(const char *s, size_t len);

#endif
