/* A loopback port for a server the hub itself starts (demo stand-ins, benchmarks, fuzz targets). */
#ifndef HUB_FREEPORT_H
#define HUB_FREEPORT_H

/* A TCP port on 127.0.0.1 that nothing listens on right now, other than `avoid` and its
 * neighbours (pass -1 for none); -1 on error. The kernel picks it for a socket bound to port 0. */
int hub_free_port(int avoid);

#endif
