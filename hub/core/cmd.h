/* CLI subcommands: each is a plugin with a name, a one-line summary and a main function.
 * Exit codes follow design.md: 0 success, 1 a failed check, 2 usage or configuration error. */
#ifndef HUB_CMD_H
#define HUB_CMD_H

enum { HUB_EXIT_OK = 0, HUB_EXIT_FAIL = 1, HUB_EXIT_USAGE = 2 };

struct hub_cmd {
  const char *name;    /* "run", "lint", "dlq" */
  const char *summary; /* one line for `lienthong --help` */
  const char *usage;   /* printed by `lienthong NAME --help` (and on usage errors) */
  /* argv[0] is the subcommand's name. `--help` is handled before this is called. */
  int (*main)(int argc, char **argv);
};

/* Prints "lienthong NAME: message" to stderr plus a hint to --help; returns HUB_EXIT_USAGE. */
int hub_cmd_usage_error(const struct hub_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
