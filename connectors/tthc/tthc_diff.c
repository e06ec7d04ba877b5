/* The field-level diff of two TTHC procedures (tthc.h): what a "changed" record carries. */
#include <stdlib.h>
#include <string.h>

#include "connectors/tthc/tthc.h"

static int ignored(const char *field, const struct hub_str_list *ignore) {
  for (size_t i = 0; ignore && i < ignore->n; i++)
    if (!strcmp(ignore->v[i], field)) return 1;
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

json_t *tthc_diff_new(const json_t *old_proc, const json_t *new_proc, const struct hub_str_list *ignore) {
  size_t n = json_object_size(old_proc) + json_object_size(new_proc), k = 0;
  const char **fields = malloc((n ? n : 1) * sizeof *fields);
  json_t *diff = json_array();
  if (!fields || !diff) goto fail;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)old_proc, key, v) fields[k++] = key;
  json_object_foreach((json_t *)new_proc, key, v) if (!json_object_get(old_proc, key)) fields[k++] = key;
  qsort(fields, k, sizeof *fields, cmp_str);
  for (size_t i = 0; i < k; i++) {
    if (ignored(fields[i], ignore)) continue;
    json_t *a = json_object_get(old_proc, fields[i]), *b = json_object_get(new_proc, fields[i]);
    if (a && b && json_equal(a, b)) continue;
    json_t *e = json_object();
    if (!e || json_array_append_new(diff, e) != 0) goto fail;
    json_object_set_new(e, "field", json_string(fields[i]));
    if (a) json_object_set(e, "old", a);
    if (b) json_object_set(e, "new", b);
  }
  free(fields);
  return diff;
fail:
  free(fields);
  json_decref(diff);
  return NULL;
}
