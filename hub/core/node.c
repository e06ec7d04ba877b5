/* YAML → hub_node tree with positions (libyaml's event API). */
#include "hub/core/node.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "hub/core/files.h"

#define MAX_DEPTH 64
/* Configuration, mapping and test files are small; a bigger one is a mistake. */
#define HUB_NODE_MAX_FILE (16u * 1024u * 1024u)

struct loader {
  yaml_parser_t parser;
  const char *file;
  char *errbuf;
  size_t errbuf_size;
};

static void node_free(struct hub_node *n) {
  if (!n) return;
  for (size_t i = 0; i < n->n; i++) {
    if (n->keys) node_free(n->keys[i]);
    node_free(n->items[i]);
  }
  free(n->keys);
  free(n->items);
  free(n->scalar);
  free(n);
}

void hub_node_destroy(struct hub_node *root) {
  if (!root) return;
  char *file = (char *)root->file;
  node_free(root);
  free(file);
}

static void set_err(struct loader *ld, int line, int col, const char *msg) {
  snprintf(ld->errbuf, ld->errbuf_size, "%s:%d:%d: %s", ld->file, line, col, msg);
}

static struct hub_node *node_new(struct loader *ld, enum hub_node_kind kind, const yaml_mark_t *mark) {
  struct hub_node *n = calloc(1, sizeof *n);
  if (!n) {
    set_err(ld, (int)mark->line + 1, (int)mark->column + 1, "out of memory");
    return NULL;
  }
  n->kind = kind;
  n->file = ld->file;
  n->line = (int)mark->line + 1;
  n->col = (int)mark->column + 1;
  return n;
}

static int push(struct hub_node *parent, struct hub_node *key, struct hub_node *item, size_t *cap) {
  if (parent->n == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    struct hub_node **items = realloc(parent->items, nc * sizeof *items);
    if (!items) return -1;
    parent->items = items;
    if (parent->kind == HUB_NODE_MAP) {
      struct hub_node **keys = realloc(parent->keys, nc * sizeof *keys);
      if (!keys) return -1;
      parent->keys = keys;
    }
    *cap = nc;
  }
  if (parent->kind == HUB_NODE_MAP) parent->keys[parent->n] = key;
  parent->items[parent->n++] = item;
  return 0;
}

static int next_event(struct loader *ld, yaml_event_t *ev) {
  if (!yaml_parser_parse(&ld->parser, ev)) {
    const char *problem = ld->parser.problem ? ld->parser.problem : "YAML syntax error";
    char msg[256];
    if (ld->parser.context)
      snprintf(msg, sizeof msg, "%s %s", problem, ld->parser.context);
    else
      snprintf(msg, sizeof msg, "%s", problem);
    set_err(ld, (int)ld->parser.problem_mark.line + 1, (int)ld->parser.problem_mark.column + 1, msg);
    return -1;
  }
  return 0;
}

/* Builds the node that starts with `ev` (already read; this function deletes it). */
static struct hub_node *build(struct loader *ld, yaml_event_t *ev, int depth) {
  struct hub_node *n = NULL;
  yaml_mark_t mark = ev->start_mark;
  if (depth > MAX_DEPTH) {
    set_err(ld, (int)mark.line + 1, (int)mark.column + 1, "nested too deeply");
    yaml_event_delete(ev);
    return NULL;
  }
  switch (ev->type) {
  case YAML_ALIAS_EVENT:
    set_err(ld, (int)mark.line + 1, (int)mark.column + 1, "YAML aliases are not supported in configuration");
    break;
  case YAML_SCALAR_EVENT:
    if (ev->data.scalar.anchor) {
      set_err(ld, (int)mark.line + 1, (int)mark.column + 1, "YAML anchors are not supported in configuration");
      break;
    }
    if (!(n = node_new(ld, HUB_NODE_SCALAR, &mark))) break;
    n->scalar = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
    n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE ||
                ev->data.scalar.style == YAML_LITERAL_SCALAR_STYLE || ev->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
    if (!n->scalar) {
      node_free(n);
      n = NULL;
      set_err(ld, (int)mark.line + 1, (int)mark.column + 1, "out of memory");
    }
    break;
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT: {
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    if ((is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor)) {
      set_err(ld, (int)mark.line + 1, (int)mark.column + 1, "YAML anchors are not supported in configuration");
      break;
    }
    if (!(n = node_new(ld, is_map ? HUB_NODE_MAP : HUB_NODE_SEQ, &mark))) break;
    size_t cap = 0;
    for (;;) {
      yaml_event_t e;
      if (next_event(ld, &e) < 0) goto fail;
      if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
        yaml_event_delete(&e);
        break;
      }
      struct hub_node *key = NULL;
      if (is_map) {
        if (e.type != YAML_SCALAR_EVENT) {
          set_err(ld, (int)e.start_mark.line + 1, (int)e.start_mark.column + 1, "mapping keys must be plain scalars");
          yaml_event_delete(&e);
          goto fail;
        }
        if (!(key = build(ld, &e, depth + 1))) goto fail;
        if (hub_node_find(n, key->scalar) >= 0) {
          char msg[300];
          snprintf(msg, sizeof msg, "duplicate key '%s'", key->scalar);
          set_err(ld, key->line, key->col, msg);
          node_free(key);
          goto fail;
        }
        if (next_event(ld, &e) < 0) {
          node_free(key);
          goto fail;
        }
      }
      struct hub_node *item = build(ld, &e, depth + 1);
      if (!item || push(n, key, item, &cap) < 0) {
        node_free(key);
        node_free(item);
        goto fail;
      }
    }
    break;
  fail:
    node_free(n);
    n = NULL;
    break;
  }
  default:
    set_err(ld, (int)mark.line + 1, (int)mark.column + 1, "unexpected YAML event");
    break;
  }
  yaml_event_delete(ev);
  return n;
}

static struct hub_node *load(struct loader *ld) {
  struct hub_node *root = NULL;
  yaml_event_t ev;
  int done = 0;
  while (!done) {
    if (next_event(ld, &ev) < 0) goto fail;
    switch (ev.type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
      yaml_event_delete(&ev);
      break;
    case YAML_DOCUMENT_START_EVENT:
      if (root) {
        set_err(ld, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1, "only one YAML document is allowed");
        yaml_event_delete(&ev);
        goto fail;
      }
      yaml_event_delete(&ev);
      if (next_event(ld, &ev) < 0) goto fail;
      if (!(root = build(ld, &ev, 0))) goto fail;
      break;
    case YAML_STREAM_END_EVENT:
      yaml_event_delete(&ev);
      done = 1;
      break;
    default:
      yaml_event_delete(&ev);
      set_err(ld, 1, 1, "unexpected YAML structure");
      goto fail;
    }
  }
  if (!root) {
    set_err(ld, 1, 1, "the document is empty");
    goto fail;
  }
  return root;
fail:
  node_free(root);
  return NULL;
}

struct hub_node *hub_node_load_string(const char *name, const char *text, size_t len, char *errbuf,
                                      size_t errbuf_size) {
  struct loader ld = {.errbuf = errbuf, .errbuf_size = errbuf_size};
  char *file = strdup(name ? name : "<string>");
  if (!file) return NULL;
  ld.file = file;
  if (!yaml_parser_initialize(&ld.parser)) {
    snprintf(errbuf, errbuf_size, "%s: cannot initialise the YAML parser", file);
    free(file);
    return NULL;
  }
  yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
  struct hub_node *root = load(&ld);
  yaml_parser_delete(&ld.parser);
  if (!root) {
    free(file);
    return NULL;
  }
  return root;
}

struct hub_node *hub_node_load_file(const char *path, char *errbuf, size_t errbuf_size) {
  char *buf = NULL;
  size_t len = 0;
  if (hub_file_read(path, HUB_NODE_MAX_FILE, &buf, &len, errbuf, errbuf_size) != HUB_OK) return NULL;
  struct hub_node *root = hub_node_load_string(path, buf, len, errbuf, errbuf_size);
  free(buf);
  return root;
}

int hub_node_find(const struct hub_node *map, const char *key) {
  if (!map || map->kind != HUB_NODE_MAP) return -1;
  for (size_t i = 0; i < map->n; i++)
    if (strcmp(map->keys[i]->scalar, key) == 0) return (int)i;
  return -1;
}

const struct hub_node *hub_node_get(const struct hub_node *map, const char *key) {
  int i = hub_node_find(map, key);
  return i < 0 ? NULL : map->items[i];
}

const char *hub_node_kind_name(enum hub_node_kind kind) {
  switch (kind) {
  case HUB_NODE_SCALAR:
    return "a scalar";
  case HUB_NODE_MAP:
    return "a mapping";
  case HUB_NODE_SEQ:
    return "a list";
  }
  return "?";
}

hub_err_t hub_node_error(const struct hub_node *at, char *errbuf, size_t errbuf_size, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (at)
    snprintf(errbuf, errbuf_size, "%s:%d:%d: %s", at->file, at->line, at->col, msg);
  else
    snprintf(errbuf, errbuf_size, "%s", msg);
  return HUB_ERR_CONFIG;
}
