/* Shared helpers of the paygov connectors (see paygov_common.h). */
#include "paygov_common.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/files.h"
#include "hub/core/node.h"

const char *const paygov_fields_reply[] = {"MaLoi", "MaDoiTac", "MaThamChieu", "ThoiGianGD"};
const size_t paygov_fields_reply_n = 4;
const char *const paygov_fields_refund[] = {"LoaiBanTin", "PhienBan", "MaDoiTac",  "MaThamChieu",
                                            "MaGiaoDich", "SoTien",   "ThoiGianGD"};
const size_t paygov_fields_refund_n = 7;

hub_err_t paygov_key_read(const struct hub_plugin_env *env, const char *option, const char *file, char **key,
                          size_t *key_len, char *errbuf, size_t errbuf_size) {
  char why[600];
  *key = NULL;
  *key_len = 0;
  char *path = hub_plugin_env_path_new(env, file);
  hub_err_t rc =
      path ? hub_secret_read(path, PAYGOV_KEY_MAX, PAYGOV_KEY_MIN, key, key_len, why, sizeof why) : HUB_ERR_NOMEM;
  if (rc != HUB_OK)
    rc = hub_node_error(hub_plugin_env_at(env, option), errbuf, errbuf_size, "%s: %s", option,
                        rc == HUB_ERR_NOMEM && !path ? "out of memory" : why);
  free(path);
  return rc;
}

void paygov_time(int64_t unix_ms, char out[15]) {
  time_t t = unix_ms > 0 ? (time_t)(unix_ms / 1000) : time(NULL);
  t += 7 * 3600; /* the platform's times are Vietnam time, which has no daylight saving */
  struct tm tm;
  gmtime_r(&t, &tm);
  if (strftime(out, 15, "%Y%m%d%H%M%S", &tm) != 14) out[0] = 0;
}
