/* What the `paygov` sink and the `paygov-confirm` source share: the hash key file, the time
 * format of the payment platform (yyyyMMddHHmmss, Vietnam time) and the reply/refund field lists
 * that vn-standards.md §3.4 does not give (documented in README.md as assumptions). */
#ifndef LT_CONNECTOR_PAYGOV_COMMON_H
#define LT_CONNECTOR_PAYGOV_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "hub/core/err.h"
#include "hub/core/files.h"
#include "hub/core/plugin.h"

#define PAYGOV_KEY_MIN 8
#define PAYGOV_KEY_MAX 4096

/* Reads the hash key (hub_secret_read; free it with hub_secret_free); errors name the option `option`. */
hub_err_t paygov_key_read(const struct hub_plugin_env *env, const char *option, const char *file, char **key,
                          size_t *key_len, char *errbuf, size_t errbuf_size);
/* yyyyMMddHHmmss in UTC+07:00 of a Unix time in ms (<= 0: now). */
void paygov_time(int64_t unix_ms, char out[15]);

/* Field lists (checksum order) the Java code does not show, chosen for lienthong: */
extern const char *const paygov_fields_reply[]; /* MaLoi|MaDoiTac|MaThamChieu|ThoiGianGD */
extern const size_t paygov_fields_reply_n;
extern const char
    *const paygov_fields_refund[]; /* LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|MaGiaoDich|SoTien|ThoiGianGD */
extern const size_t paygov_fields_refund_n;

#endif
