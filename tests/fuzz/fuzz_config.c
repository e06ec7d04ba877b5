/* The configuration loader (YAML, config maps, cross-field checks) on any bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "hub/core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[64];
  if (!path[0]) snprintf(path, sizeof path, "/tmp/lt-fuzz-config-%d.yaml", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  fwrite(data, 1, size, f);
  fclose(f);
  struct hub_config *cfg = NULL;
  char errbuf[1024];
  if (hub_config_load(path, &cfg, errbuf, sizeof errbuf) == HUB_OK) hub_config_destroy(cfg);
  return 0;
}
