/* Manual pages for the binary's commands (see man.c). */
#ifndef HUB_CLI_MAN_H
#define HUB_CLI_MAN_H

/* Writes lienthong.1 and lienthong-NAME.1 for every command into DIR (which must exist).
 * Returns 0, or -1 after saying on stderr what could not be written. */
int hub_man_write(const char *dir);

#endif
