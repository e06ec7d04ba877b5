/* Manual pages, generated from the same texts as `--help`: lienthong(1) lists the commands and
 * lienthong-NAME(1) holds each command's usage, so the installed pages never drift from the
 * binary. Called by `lienthong doc man DIR`. */
#include "hub/cli/man.h"

#include <stdio.h>
#include <string.h>

#include "hub/core/registry.h"

/* Text as roff: backslashes doubled, a line starting with '.' or '\'' protected. */
static void roff_text(FILE *f, const char *s) {
  int bol = 1;
  for (; *s; s++) {
    if (bol && (*s == '.' || *s == '\'')) fputs("\\&", f);
    if (*s == '\\')
      fputs("\\e", f);
    else if (*s == '-')
      fputs("\\-", f);
    else
      fputc(*s, f);
    bol = *s == '\n';
  }
  if (!bol) fputc('\n', f);
}

static const struct hub_cmd *cmd_at(size_t i) {
  return hub_plugins[i]->kind == HUB_PLUGIN_CMD ? (const struct hub_cmd *)hub_plugins[i]->ops : NULL;
}

static FILE *open_page(const char *dir, const char *name, char *path, size_t size) {
  snprintf(path, size, "%s/%s.1", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) fprintf(stderr, "lienthong doc man: cannot write %s\n", path);
  return f;
}

static const char *const footer = ".SH EXIT STATUS\n0 success, 1 a failed check, 2 usage or configuration error.\n"
                                  ".SH SEE ALSO\nThe configuration reference and the other documents in "
                                  "/usr/share/doc/lienthong.\n";

int hub_man_write(const char *dir) {
  char path[4096];
  FILE *f = open_page(dir, "lienthong", path, sizeof path);
  if (!f) return -1;
  fprintf(f, ".TH LIENTHONG 1 \"\" \"lienthong %s\" \"User Commands\"\n.SH NAME\nlienthong \\- "
             "message\\-integration hub for Vietnamese e\\-government exchange\n"
             ".SH SYNOPSIS\n.B lienthong\n.I COMMAND\n[\\fIARGS\\fR...]\n.SH DESCRIPTION\n"
             "Connectors bring each system's traffic onto topics; routes validate, map, sign and verify XML "
             "and JSON between topics, exactly once. Each command has its own page and its own \\fB\\-\\-help\\fR.\n"
             ".SH COMMANDS\n",
          LT_VERSION);
  int pages = 1;
  for (size_t i = 0; hub_plugins[i]; i++) {
    const struct hub_cmd *c = cmd_at(i);
    if (!c || strchr(c->name, '.')) continue;
    fprintf(f, ".TP\n.BR lienthong\\-%s (1)\n", c->name);
    roff_text(f, c->summary);
  }
  fputs(footer, f);
  int rc = fclose(f) == 0 ? 0 : -1;
  for (size_t i = 0; hub_plugins[i] && rc == 0; i++) {
    const struct hub_cmd *c = cmd_at(i);
    if (!c) continue;
    char name[128];
    snprintf(name, sizeof name, "lienthong-%s", c->name);
    for (char *p = name; *p; p++)
      if (*p == '.') *p = '-'; /* bench.map is `lienthong bench map` */
    if (!(f = open_page(dir, name, path, sizeof path))) return -1;
    char upper[128];
    snprintf(upper, sizeof upper, "%s", name);
    for (char *p = upper; *p; p++)
      if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    fprintf(f, ".TH %s 1 \"\" \"lienthong %s\" \"User Commands\"\n.SH NAME\n", upper, LT_VERSION);
    roff_text(f, name);
    fputs("\\- ", f);
    roff_text(f, c->summary);
    fputs(".SH DESCRIPTION\n.nf\n", f);
    roff_text(f, c->usage);
    fputs(".fi\n", f);
    fputs(footer, f);
    fputs(".BR lienthong (1)\n", f);
    rc = fclose(f) == 0 ? 0 : -1;
    pages++;
  }
  if (rc == 0) printf("%d manual page(s) in %s\n", pages, dir);
  return rc;
}
