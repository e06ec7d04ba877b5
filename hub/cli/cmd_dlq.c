/* `lienthong dlq list|show|replay`: inspect a route's dead-letter topic and send chosen
 * records back through the route. Replayed records lose the error headers, gain
 * lt.replayed=true, lt.replay.count and lt.replay.of (the DLQ position), and are written to the
 * route's input in one transaction (all or none). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/config.h"
#include "hub/core/log.h"
#include "hub/core/registry.h"
#include "hub/transport/transport.h"

static const struct hub_cmd cmd;

struct pos {
  int32_t partition;
  int64_t offset;
  int seen;
};

struct scan_ctx {
  int mode; /* 0 list, 1 show, 2 replay */
  int json;
  int all;
  struct pos *want;
  size_t n_want;
  struct hub_msg **picked;
  size_t n_picked;
  size_t total;
};

static const char *hdr(const struct hub_msg *m, const char *name) {
  const char *v = hub_msg_header_get_str(m, name);
  return v ? v : "";
}

static int wanted(struct scan_ctx *c, const struct hub_msg *m) {
  if (c->all) return 1;
  for (size_t i = 0; i < c->n_want; i++)
    if (c->want[i].partition == m->partition && c->want[i].offset == m->offset) {
      c->want[i].seen = 1;
      return 1;
    }
  return 0;
}

static void print_json_line(const struct hub_msg *m, int with_value) {
  json_t *o = json_object(), *h = json_object();
  json_object_set_new(o, "partition", json_integer(m->partition));
  json_object_set_new(o, "offset", json_integer(m->offset));
  json_object_set_new(o, "key", m->key ? json_stringn((const char *)m->key, m->key_len) : json_null());
  for (size_t i = 0; i < m->n_headers; i++)
    json_object_set_new(h, m->headers[i].name, json_stringn((const char *)m->headers[i].value, m->headers[i].value_len));
  json_object_set_new(o, "headers", h);
  if (with_value) json_object_set_new(o, "value", json_stringn((const char *)m->value, m->value_len));
  json_object_set_new(o, "size", json_integer((json_int_t)m->value_len));
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
  if (s) puts(s);
  free(s);
  json_decref(o);
}

static int on_record(void *ctx, const struct hub_msg *m) {
  struct scan_ctx *c = ctx;
  c->total++;
  if (c->mode == 0) {
    if (c->json) {
      print_json_line(m, 0);
    } else {
      printf("%d:%lld\tkey=%.*s\t%s\t%s\tattempts=%s\torigin=%s\t%s\n", (int)m->partition, (long long)m->offset,
             (int)(m->key ? m->key_len : 0), m->key ? (const char *)m->key : "", hdr(m, HUB_H_ERROR_STAGE),
             hdr(m, HUB_H_ERROR_CODE), hdr(m, HUB_H_ATTEMPTS), hdr(m, HUB_H_ORIGIN), hdr(m, HUB_H_ERROR_REASON));
    }
    return 0;
  }
  if (!wanted(c, m)) return 0;
  if (c->mode == 1) {
    if (c->json) {
      print_json_line(m, 1);
    } else {
      printf("position: %d:%lld\nkey: %.*s\n", (int)m->partition, (long long)m->offset, (int)(m->key ? m->key_len : 0),
             m->key ? (const char *)m->key : "");
      for (size_t i = 0; i < m->n_headers; i++)
        printf("header %s: %.*s\n", m->headers[i].name, (int)m->headers[i].value_len,
               (const char *)m->headers[i].value);
      printf("value (%zu bytes):\n", m->value_len);
      fwrite(m->value, 1, m->value_len, stdout);
      printf("\n");
    }
    return 0;
  }
  struct hub_msg *r = hub_msg_dup(m);
  struct hub_msg **np = realloc(c->picked, (c->n_picked + 1) * sizeof *np);
  if (!r || !np) {
    hub_msg_destroy(r);
    free(np ? np : c->picked);
    c->picked = NULL;
    return 1;
  }
  c->picked = np;
  c->picked[c->n_picked++] = r;
  return 0;
}

/* Turns a DLQ record back into an input record. */
static hub_err_t make_replay(struct hub_msg *r, const char *dlq_topic) {
  static const char *const drop[] = {HUB_H_ERROR_STAGE, HUB_H_ERROR_CODE, HUB_H_ERROR_REASON, HUB_H_ERROR_DETAIL,
                                     HUB_H_ORIGIN,      HUB_H_ATTEMPTS,   HUB_H_FAILED_AT,    HUB_H_ROUTE};
  char of[400], count[32];
  const char *prev = hub_msg_header_get_str(r, HUB_H_REPLAY_COUNT);
  snprintf(count, sizeof count, "%ld", (prev ? strtol(prev, NULL, 10) : 0) + 1);
  snprintf(of, sizeof of, "%s/%d/%lld", dlq_topic, (int)r->partition, (long long)r->offset);
  for (size_t i = 0; i < sizeof drop / sizeof *drop; i++) hub_msg_header_del(r, drop[i]);
  if (hub_msg_header_set_str(r, HUB_H_REPLAYED, "true") != HUB_OK ||
      hub_msg_header_set_str(r, HUB_H_REPLAY_COUNT, count) != HUB_OK ||
      hub_msg_header_set_str(r, "lt.replay.of", of) != HUB_OK)
    return HUB_ERR_NOMEM;
  return HUB_OK;
}

static int parse_pos(const char *s, struct pos *p) {
  char *end;
  long part = strtol(s, &end, 10);
  if (end == s || *end != ':' || part < 0) return -1;
  const char *o = end + 1;
  long long off = strtoll(o, &end, 10);
  if (end == o || *end || off < 0) return -1;
  p->partition = (int32_t)part;
  p->offset = off;
  p->seen = 0;
  return 0;
}

static int dlq_main(int argc, char **argv) {
  struct scan_ctx c = {0};
  const char *verb = NULL, *path = NULL, *route_name = NULL;
  int rc = HUB_EXIT_USAGE;
  struct hub_config *cfg = NULL;
  struct hub_transport *t = NULL;
  const struct hub_transport_ops *tops = NULL;
  char errbuf[2048];
  c.want = calloc((size_t)argc, sizeof *c.want);
  if (!c.want) return HUB_EXIT_FAIL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--json"))
      c.json = 1;
    else if (!strcmp(a, "--all"))
      c.all = 1;
    else if (a[0] == '-' && a[1]) {
      rc = hub_cmd_usage_error(&cmd, "unknown option '%s'", a);
      goto out;
    } else if (!verb)
      verb = a;
    else if (!path)
      path = a;
    else if (!route_name)
      route_name = a;
    else if (parse_pos(a, &c.want[c.n_want++]) < 0) {
      rc = hub_cmd_usage_error(&cmd, "'%s' is not a PARTITION:OFFSET position", a);
      goto out;
    }
  }
  if (!verb || !path || !route_name) {
    rc = hub_cmd_usage_error(&cmd, "expected: dlq list|show|replay CONFIG ROUTE [POSITION...]");
    goto out;
  }
  if (!strcmp(verb, "list"))
    c.mode = 0;
  else if (!strcmp(verb, "show"))
    c.mode = 1;
  else if (!strcmp(verb, "replay"))
    c.mode = 2;
  else {
    rc = hub_cmd_usage_error(&cmd, "unknown action '%s' (list, show or replay)", verb);
    goto out;
  }
  if (c.mode != 0 && !c.all && c.n_want == 0) {
    rc = hub_cmd_usage_error(&cmd, "%s needs PARTITION:OFFSET positions or --all", verb);
    goto out;
  }
  if (hub_config_load(path, &cfg, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "%s\n", errbuf);
    goto out;
  }
  const struct hub_route_cfg *route = hub_config_get_route(cfg, route_name);
  if (!route) {
    fprintf(stderr, "lienthong dlq: no route named '%s' in %s\n", route_name, path);
    goto out;
  }
  char txn[300];
  snprintf(txn, sizeof txn, "lienthong.dlq-replay.%s", route->name);
  struct hub_transport_opts opts = {"lienthong-dlq", NULL, NULL, c.mode == 2 ? txn : NULL, cfg->base_dir};
  tops = hub_transport_get(cfg->hub.transport);
  if (tops->open(cfg->transport_cfg, &opts, &t, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "lienthong dlq: %s\n", errbuf);
    rc = HUB_EXIT_FAIL;
    goto out;
  }
  if (tops->scan(t, route->errors.dlq, on_record, &c, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "lienthong dlq: %s\n", errbuf);
    rc = HUB_EXIT_FAIL;
    goto out;
  }
  rc = HUB_EXIT_OK;
  for (size_t i = 0; i < c.n_want; i++)
    if (!c.want[i].seen) {
      fprintf(stderr, "lienthong dlq: no record at %d:%lld in %s\n", (int)c.want[i].partition,
              (long long)c.want[i].offset, route->errors.dlq);
      rc = HUB_EXIT_FAIL;
    }
  if (c.mode == 0 && !c.json) fprintf(stderr, "%zu record(s) in %s\n", c.total, route->errors.dlq);
  if (c.mode == 2 && rc == HUB_EXIT_OK) {
    hub_err_t e = tops->begin(t);
    for (size_t i = 0; e == HUB_OK && i < c.n_picked; i++) {
      if ((e = make_replay(c.picked[i], route->errors.dlq)) == HUB_OK)
        e = tops->produce(t, route->from, c.picked[i]);
    }
    if (e == HUB_OK) e = tops->commit(t);
    if (e != HUB_OK) {
      tops->abort(t);
      fprintf(stderr, "lienthong dlq: replay failed (%s); nothing was replayed\n", hub_err2str(e));
      rc = HUB_EXIT_FAIL;
    } else {
      printf("replayed %zu record(s) from %s to %s\n", c.n_picked, route->errors.dlq, route->from);
    }
  }
out:
  for (size_t i = 0; i < c.n_picked; i++) hub_msg_destroy(c.picked[i]);
  free(c.picked);
  free(c.want);
  if (t) tops->close(t);
  hub_config_destroy(cfg);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "dlq",
    .summary = "list, show and replay a route's dead-letter records",
    .usage = "Usage: lienthong dlq list CONFIG ROUTE [--json]\n"
             "       lienthong dlq show CONFIG ROUTE (PARTITION:OFFSET... | --all) [--json]\n"
             "       lienthong dlq replay CONFIG ROUTE (PARTITION:OFFSET... | --all)\n\n"
             "list    one line per DLQ record: position, key, failing stage, error code, attempts, origin, reason\n"
             "show    the chosen records with every header and the original value\n"
             "replay  writes the chosen records back to the route's input topic in one transaction, without\n"
             "        the error headers and with lt.replayed=true, lt.replay.count and lt.replay.of added;\n"
             "        the DLQ itself is not changed (it is an append-only log)\n\n"
             "Exit codes: 0 done, 1 a position was not found or the cluster failed, 2 usage or config error.",
    .main = dlq_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_dlq, cmd);
