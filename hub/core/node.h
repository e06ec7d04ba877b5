/* A YAML document as a tree of nodes that remember file, line and column, so every
 * configuration error can name its place. Loaded with libyaml; duplicate keys, anchors and
 * aliases, and multiple documents are refused. */
#ifndef HUB_NODE_H
#define HUB_NODE_H

#include <stddef.h>

#include "hub/core/err.h"

enum hub_node_kind { HUB_NODE_SCALAR, HUB_NODE_MAP, HUB_NODE_SEQ };

struct hub_node {
  enum hub_node_kind kind;
  const char *file; /* shared by all nodes of a document; owned by the root */
  int line, col;    /* 1-based */
  char *scalar;     /* HUB_NODE_SCALAR: the text */
  int quoted;       /* scalar was written in quotes (so "5" is a string, not a number) */
  size_t n;         /* MAP: pairs; SEQ: items */
  struct hub_node **keys;  /* MAP: key scalars */
  struct hub_node **items; /* MAP: values; SEQ: items */
};

/* Loads FILE; on error returns NULL and writes "file:line:col: message" into errbuf. */
struct hub_node *hub_node_load_file(const char *path, char *errbuf, size_t errbuf_size);
/* Loads from memory; `name` is used in messages. */
struct hub_node *hub_node_load_string(const char *name, const char *text, size_t len, char *errbuf,
                                      size_t errbuf_size);
void hub_node_destroy(struct hub_node *root);

/* MAP lookup (borrowed), NULL when absent or not a map. */
const struct hub_node *hub_node_get(const struct hub_node *map, const char *key);
/* The index of a key's pair in a map, or -1. */
int hub_node_find(const struct hub_node *map, const char *key);
const char *hub_node_kind_name(enum hub_node_kind kind);

/* "file:line:col: " + formatted message into errbuf; returns HUB_ERR_CONFIG. */
hub_err_t hub_node_error(const struct hub_node *at, char *errbuf, size_t errbuf_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
