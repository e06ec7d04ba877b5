/* Loopback port picking (see freeport.h). */
#include "hub/core/freeport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

int hub_free_port(int avoid) {
  for (int attempt = 0; attempt < 20; attempt++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
      port = ntohs(a.sin_port);
    close(fd);
    if (port > 0 && (avoid < 0 || (port != avoid && port != avoid + 1 && port + 1 != avoid))) return port;
  }
  return -1;
}
