#include "hub/io/endpoint_list.h"

#include <stdlib.h>
#include <string.h>

int hub_endpoint_list_add(struct hub_endpoint_list *l, struct hub_endpoint_entry *e, const char *connector,
                          const char *endpoint) {
  e->connector = strdup(connector ? connector : "");
  e->endpoint = strdup(endpoint ? endpoint : "");
  if (!e->connector || !e->endpoint) {
    free(e->connector);
    free(e->endpoint);
    return -1;
  }
  pthread_mutex_lock(&l->mu);
  e->next = l->head;
  l->head = e;
  pthread_mutex_unlock(&l->mu);
  return 0;
}

void hub_endpoint_list_remove(struct hub_endpoint_list *l, struct hub_endpoint_entry *e) {
  pthread_mutex_lock(&l->mu);
  for (struct hub_endpoint_entry **p = &l->head; *p; p = &(*p)->next)
    if (*p == e) {
      *p = e->next;
      break;
    }
  pthread_mutex_unlock(&l->mu);
  free(e->connector);
  free(e->endpoint);
}
