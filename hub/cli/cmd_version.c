/* `lienthong version`: the version and the libraries it runs on. */
#include <libxml/xmlversion.h>
#include <librdkafka/rdkafka.h>
#include <jansson.h>
#include <openssl/opensslv.h>
#include <stdio.h>
#include <xmlsec/version.h>

#include "hub/core/registry.h"

static int version_main(int argc, char **argv) {
  (void)argc, (void)argv;
  printf("lienthong %s\nlibrdkafka %s\nlibxml2 %s\nxmlsec1 %s\n%s\njansson %s\n", LT_VERSION, rd_kafka_version_str(),
         LIBXML_DOTTED_VERSION, XMLSEC_VERSION, OPENSSL_VERSION_TEXT, JANSSON_VERSION);
  return HUB_EXIT_OK;
}

static const struct hub_cmd cmd = {
    .name = "version",
    .summary = "print the version of lienthong and of the libraries it uses",
    .usage = "Usage: lienthong version\n\nPrints the version of lienthong and of librdkafka, libxml2, xmlsec1, "
             "OpenSSL and jansson.",
    .main = version_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_version, cmd);
