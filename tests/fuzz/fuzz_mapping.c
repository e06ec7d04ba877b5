/* The mapping engine on hostile input: shipped mappings (JSON and XML inputs) run on the
 * fuzzer's bytes; the first byte picks the mapping. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "mappings/shape/map.h"

static const char *const files[] = {"mappings/dvcqg/dong-bo-ho-so.yaml", "mappings/edxml/document-to-json.yaml",
                                    "mappings/paygov/confirm-to-event.yaml", "mappings/dvcqg/cap-nhat-tien-do.yaml"};
#define N_MAPS (sizeof files / sizeof *files)
static struct lt_map *maps[N_MAPS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!maps[0]) {
    char path[1024], errbuf[1024];
    lt_map_set_fixed_clock(1767225600000LL);
    for (size_t i = 0; i < N_MAPS; i++)
      if (lt_map_load_file(fuzz_src(files[i], path, sizeof path), &maps[i], errbuf, sizeof errbuf) != HUB_OK) {
        fprintf(stderr, "fuzz_mapping: %s\n", errbuf);
        abort();
      }
  }
  if (!size) return 0;
  unsigned char *out = NULL;
  size_t out_len = 0;
  char errbuf[1024];
  lt_map_run(maps[data[0] % N_MAPS], data + 1, size - 1, 0, &out, &out_len, errbuf, sizeof errbuf);
  free(out);
  return 0;
}
