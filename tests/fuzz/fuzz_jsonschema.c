/* JSON Schema compile and validate: the input is a JSON array [schema, instance]. */
#include <jansson.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "mappings/shape/jsonschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *pair = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  if (!json_is_array(pair) || json_array_size(pair) != 2) {
    json_decref(pair);
    return 0;
  }
  struct lt_schema *s = NULL;
  char errbuf[512], *errors = NULL;
  if (lt_schema_new(json_array_get(pair, 0), "https://fuzz.invalid/schema.json", &s, errbuf, sizeof errbuf) == HUB_OK) {
    lt_schema_validate(s, json_array_get(pair, 1), &errors);
    free(errors);
    lt_schema_destroy(s);
  }
  json_decref(pair);
  return 0;
}
