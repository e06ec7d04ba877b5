/* The hub's one XML parse (hub_xml_parse): any bytes end in a tree or a clean error. */
#include <stdio.h>

#include "fuzz_common.h"
#include "hub/core/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  xmlDocPtr doc = NULL;
  char errbuf[512];
  struct hub_xml_limits lim = {.max_bytes = 1 << 20, .max_depth = 64};
  if (hub_xml_parse(data, size, &lim, "fuzz", &doc, errbuf, sizeof errbuf) == HUB_OK) xmlFreeDoc(doc);
  return 0;
}
