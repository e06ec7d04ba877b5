/* Domain checksums the connectors compute and check, reproducing what the public Java code of
 * the counterparts does (see docs/jws.md "Domain checksums" for the sources and vectors):
 *   - the DVCQG payment platform's `MaXacThuc`: lower-case hex SHA-256 of the configured fields
 *     joined with `|`, then `|` and the hash key (newer PayGateUtil), or lower-case hex
 *     HMAC-SHA256(key, the fields joined with `|`) (older copy); which fields, in which order,
 *     is configuration (presets below);
 *   - the VPCP document axis (VXP): `XroadVnpt-sign-header` (a JSON object of the signed
 *     headers, written as Gson writes it), `XroadVnpt-hash-header` = lower-case hex
 *     HMAC-SHA256(secret, that JSON text), and `hash-file` = SHA-256 of the packet written byte by
 *     byte with Integer.toHexString, i.e. WITHOUT zero padding (0x0a becomes "a"), so its length
 *     varies between 32 and 64 characters.
 * Strings are hashed as their UTF-8 bytes (what Java's getBytes gives on the counterparts' Linux
 * servers). */
#ifndef HUB_TRUST_CHECKSUM_H
#define HUB_TRUST_CHECKSUM_H

#include <stddef.h>

#include <jansson.h>

#include "hub/core/err.h"

enum hub_paygov_alg {
  HUB_PAYGOV_SHA256 = 0,  /* sha256hex(f1|f2|...|fn|key) */
  HUB_PAYGOV_HMAC_SHA256, /* hmacsha256hex(key, f1|f2|...|fn) */
};

/* "sha256" or "hmac-sha256"; -1 if neither. */
int hub_paygov_alg_parse(const char *name);

/* Named field lists of the platform's messages, in checksum order:
 *   "init"     LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|SoTien|LoaiHinhThanhToan|MaKenhThanhToan|
 *              MaThietBi|NgonNgu|MaTienTe|MaNganHang|ThongTinGiaoDich|ThoiGianGD|Ip
 *   "get-bill" LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|ThoiGianGD
 *   "confirm"  LoaiBanTin|MaLoi|MaDoiTac|MaThamChieu|SoTien|MaTienTe|MaGiaoDich|MaNganHang|
 *              ThoiGianGD|ThongTinGiaoDich  (the order the Java code uses; see docs)
 * Returns HUB_ERR_NOT_FOUND for another name. The arrays are static. */
hub_err_t hub_paygov_preset(const char *name, const char *const **fields, size_t *n);

/* MaXacThuc over n field values (none may be NULL, none may contain the separator '|': nothing
 * marks where a field ends, so such a field would make the checksum ambiguous and is refused
 * with HUB_ERR_INVALID_ARG naming it) and the key; out gets 64 hex characters
 * and a NUL. */
hub_err_t hub_paygov_mac(enum hub_paygov_alg alg, const char *const *values, size_t n, const void *key,
                         size_t key_len, char out[65], char *errbuf, size_t errbuf_size);

/* The same with the values taken from a JSON object by field name: strings as they are,
 * integers in decimal, true/false as words. A missing field, null, a real number (Java would
 * print "1.5E7" or "150000.0", which no configuration can guess) or a container is refused
 * with HUB_ERR_INVALID_ARG naming the field. */
hub_err_t hub_paygov_mac_json(enum hub_paygov_alg alg, const json_t *obj, const char *const *fields, size_t n,
                              const void *key, size_t key_len, char out[65], char *errbuf, size_t errbuf_size);

/* Checks a received MaXacThuc (hex, either case) against the object's fields in constant time.
 * HUB_OK when it matches, HUB_ERR_AUTH when not (errbuf says so without the expected value). */
hub_err_t hub_paygov_mac_check_json(enum hub_paygov_alg alg, const json_t *obj, const char *const *fields, size_t n,
                                    const void *key, size_t key_len, const char *given, char *errbuf,
                                    size_t errbuf_size);

/* XroadVnpt-sign-header: {"XroadVnpt-<name>":"<value>",...} in the given order, escaped as
 * Gson's JsonWriter does (", \, control characters, U+2028, U+2029), and the matching
 * XroadVnpt-sign-header-key "name1;name2;...". Both malloc'd. Values must be valid UTF-8. */
hub_err_t hub_vxp_sign_header_new(const char *const *names, const char *const *values, size_t n, char **json_out,
                                  char **key_list_out, char *errbuf, size_t errbuf_size);

/* XroadVnpt-hash-header: lower-case hex HMAC-SHA256(secret, json). */
void hub_vxp_hash_header(const void *secret, size_t secret_len, const void *json, size_t len, char out[65]);

/* hash-file of bytes in memory: SHA-256, each byte in hex without zero padding. */
void hub_vxp_hash_file_hex(const void *data, size_t len, char out[65]);
/* The same for a file read in chunks. */
hub_err_t hub_vxp_hash_file_path(const char *path, char out[65], char *errbuf, size_t errbuf_size);

#endif
