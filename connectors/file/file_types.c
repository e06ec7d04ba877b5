/* Extension <-> content type for the file connectors (file_types.h). */
#include "file_types.h"

#include <string.h>
#include <strings.h>

static const struct {
  const char *ext, *type;
} types[] = {{".json", "application/json"}, {".xml", "application/xml"}, {".csv", "text/csv"}};

const char *file_content_type(const char *name) {
  const char *dot = name ? strrchr(name, '.') : NULL;
  for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
    if (!strcasecmp(dot, types[i].ext)) return types[i].type;
  return "application/octet-stream";
}

const char *file_extension(const char *content_type) {
  if (!content_type) return "";
  size_t n = strcspn(content_type, "; \t");
  for (size_t i = 0; i < sizeof types / sizeof *types; i++)
    if (n == strlen(types[i].type) && !strncasecmp(content_type, types[i].type, n)) return types[i].ext;
  if (n == 8 && !strncasecmp(content_type, "text/xml", 8)) return ".xml";
  if (n > 5 && !strncasecmp(content_type + n - 5, "+json", 5)) return ".json";
  if (n > 4 && !strncasecmp(content_type + n - 4, "+xml", 4)) return ".xml";
  return "";
}
