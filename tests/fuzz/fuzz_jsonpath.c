/* JSONPath compile and query: the first line is the expression, the rest the JSON document. */
#include <jansson.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "mappings/shape/jsonpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  size_t elen = nl ? (size_t)(nl - data) : size;
  char *expr = fuzz_cstr_new(data, elen), errbuf[512];
  struct lt_jsonpath *p = NULL;
  if (lt_jsonpath_compile(expr, &p, errbuf, sizeof errbuf) == HUB_OK) {
    json_t *doc = nl ? json_loadb((const char *)nl + 1, size - elen - 1, JSON_DECODE_ANY, NULL) : NULL;
    if (doc) {
      json_t *r = lt_jsonpath_query_new(p, doc), *paths = lt_jsonpath_paths_new(p, doc);
      if (!r || !paths || json_array_size(r) != json_array_size(paths)) abort();
      json_decref(r);
      json_decref(paths);
      json_decref(doc);
    }
    lt_jsonpath_destroy(p);
  }
  free(expr);
  return 0;
}
