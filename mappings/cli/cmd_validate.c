/* `lienthong validate SCHEMA FILE...`: validates files against a JSON Schema or an XSD and
 * prints every failure as "FILE: <path>: <keyword>: <message>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/files.h"
#include "hub/core/registry.h"
#include "hub/core/xml.h"
#include "mappings/shape/json.h"
#include "mappings/shape/validator.h"

static const struct hub_cmd cmd;

static int validate_main(int argc, char **argv) {
  int quiet = 0, first = 1;
  for (; first < argc && argv[first][0] == '-' && argv[first][1]; first++) {
    if (!strcmp(argv[first], "--")) {
      first++;
      break;
    }
    if (!strcmp(argv[first], "-q") || !strcmp(argv[first], "--quiet")) quiet = 1;
    else return hub_cmd_usage_error(&cmd, "unknown option '%s'", argv[first]);
  }
  if (argc - first < 2) return hub_cmd_usage_error(&cmd, "expected a schema and at least one file");
  hub_xml_init_thread();
  const char *schema_path = argv[first];
  struct lt_validator *v = NULL;
  char err[4096];
  hub_err_t rc = lt_validator_load(schema_path, &v, err, sizeof err);
  if (rc != HUB_OK) {
    fprintf(stderr, "lienthong validate: %s\n", err);
    return HUB_EXIT_USAGE;
  }
  int exit_code = HUB_EXIT_OK;
  for (int i = first + 1; i < argc; i++) {
    char *buf = NULL, *errors = NULL;
    size_t len = 0;
    rc = hub_file_read_arg(argv[i], LT_JSON_MAX_BYTES, &buf, &len, err, sizeof err);
    if (rc != HUB_OK) {
      fprintf(stderr, "lienthong validate: %s\n", err);
      exit_code = HUB_EXIT_USAGE;
      continue;
    }
    rc = lt_validator_check(v, buf, len, &errors);
    if (rc == HUB_OK) {
      if (!quiet) printf("%s: valid\n", argv[i]);
    } else {
      /* an undecided check is no verdict on the file: it is the schema's limit (exit 2) */
      if (rc == HUB_ERR_UNDECIDED)
        exit_code = HUB_EXIT_USAGE;
      else if (exit_code == HUB_EXIT_OK)
        exit_code = HUB_EXIT_FAIL;
      for (char *line = errors; line && *line;) {
        char *end = strchr(line, '\n');
        printf("%s: %.*s\n", argv[i], (int)(end ? (size_t)(end - line) : strlen(line)), line);
        line = end ? end + 1 : line + strlen(line);
      }
      if (!errors) printf("%s: /: %s: %s\n", argv[i], hub_err2name(rc), hub_err2str(rc));
    }
    free(errors);
    free(buf);
  }
  lt_validator_destroy(v);
  return exit_code;
}

static const struct hub_cmd cmd = {
    .name = "validate",
    .summary = "validate JSON or XML files against a JSON Schema (2020-12) or an XSD",
    .usage = "Usage: lienthong validate [-q] SCHEMA FILE...\n"
             "\n"
             "Validates each FILE ('-' for standard input) against SCHEMA: a JSON Schema draft 2020-12\n"
             "(SCHEMA ends in .json; FILE is JSON) or an XML Schema (SCHEMA ends in .xsd; FILE is XML).\n"
             "Prints 'FILE: valid' for a valid file, and one line per failure for an invalid one:\n"
             "\n"
             "  FILE: /instance/path: keyword: message        (JSON Schema; a JSON pointer)\n"
             "  FILE: /Element/Path: xsd: message (line N)    (XSD; the element's path)\n"
             "  FILE: /: json: line L, column C: message      (JSON that does not parse)\n"
             "\n"
             "JSON input is refused if it has duplicate keys or a NUL byte; XML input with a DOCTYPE or\n"
             "entity declarations is refused. A JSON Schema's own $refs resolve within the schema, to\n"
             "files beside it, and to the built-in draft 2020-12 meta-schemas (never over the network);\n"
             "the schema itself is checked against the meta-schema.\n"
             "\n"
             "Options:\n"
             "  -q, --quiet   print nothing for valid files\n"
             "\n"
             "Exit status: 0 all files valid, 1 any file invalid, 2 a bad schema, an unreadable file, a\n"
             "pattern that cannot be decided on a value (a back-reference beyond the matching limit),\n"
             "or a usage error.",
    .main = validate_main,
};
HUB_CMD_PLUGIN(lt_plugin_cmd_validate, cmd);
