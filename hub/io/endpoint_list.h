/* The per-endpoint objects of one kind (circuit breakers, rate limits) that /metrics lists:
 * each names its connector and endpoint. Put a `struct hub_endpoint_entry` FIRST in the object;
 * the list's mutex also guards iterating it while rendering. */
#ifndef HUB_IO_ENDPOINT_LIST_H
#define HUB_IO_ENDPOINT_LIST_H

#include <pthread.h>

struct hub_endpoint_entry {
  struct hub_endpoint_entry *next;
  char *connector, *endpoint;
};

struct hub_endpoint_list {
  pthread_mutex_t mu;
  struct hub_endpoint_entry *head;
};

#define HUB_ENDPOINT_LIST_INIT {PTHREAD_MUTEX_INITIALIZER, NULL}

/* Copies the names (NULL: "") and links e in. -1 when out of memory (nothing linked). */
int hub_endpoint_list_add(struct hub_endpoint_list *l, struct hub_endpoint_entry *e, const char *connector,
                          const char *endpoint);
/* Unlinks e and frees its names. */
void hub_endpoint_list_remove(struct hub_endpoint_list *l, struct hub_endpoint_entry *e);

#endif
