/* `lienthong bench passthrough --transport embedded`: the hub on the embedded transport beside
 * the hub on the Kafka transport, in the same run (bench_transports.c). */
#ifndef HUB_BENCH_TRANSPORTS_H
#define HUB_BENCH_TRANSPORTS_H

#include "hub/core/cmd.h"

/* argv as bench.passthrough's (argv[0] its name); `cmd` for usage errors. Returns the exit code. */
int bench_transports_main(const struct hub_cmd *cmd, int argc, char **argv);

#endif
