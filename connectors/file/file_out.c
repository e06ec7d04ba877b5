/* Sink `file-out`: writes each record's value to a file in a folder, atomically: a temp name in
 * the same folder (a dot-file, which file-in and most pollers skip), write, fsync the file,
 * rename over the final name, fsync the folder. A reader sees the old file or the whole new
 * one, never a part; after a crash a file is there whole or not at all. The name comes from a
 * template; with ${lt.id} (the default) a record delivered again overwrites its own file, so
 * redelivery is idempotent.
 *
 * Answers: a name that is not a safe single file name, or a permission error, is REJECT (to the
 * DLQ, naming the template and the value); a full or failing disk is RETRY. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file_types.h"
#include "hub/core/log.h"
#include "hub/core/registry.h"
#include "hub/engine/connector.h"

#define NAME_MAX_BYTES 255

struct cfg {
  char *path;
  char *name;
  char *mode;
  int fsync;
};

/* What expanding a template gave. */
enum expand_rc { EXPAND_OK, EXPAND_BAD_TEMPLATE, EXPAND_MISSING, EXPAND_TOO_LONG };

struct out {
  char *buf;
  size_t n, cap;
};

static int put(struct out *o, const char *s, size_t n) {
  if (o->n + n + 1 > o->cap) return -1;
  memcpy(o->buf + o->n, s, n);
  o->n += n;
  o->buf[o->n] = 0;
  return 0;
}

/* ${date:FMT}: yyyy MM dd HH mm ss in the hub's local time; other characters as they are. */
static int put_date(struct out *o, const char *fmt, size_t n, const struct tm *tm) {
  static const struct {
    const char *tok;
    const char *strf;
  } toks[] = {{"yyyy", "%Y"}, {"MM", "%m"}, {"dd", "%d"}, {"HH", "%H"}, {"mm", "%M"}, {"ss", "%S"}};
  for (size_t i = 0; i < n;) {
    size_t t = 0;
    while (t < sizeof toks / sizeof *toks && strncmp(fmt + i, toks[t].tok, strlen(toks[t].tok))) t++;
    if (t == sizeof toks / sizeof *toks || i + strlen(toks[t].tok) > n) {
      if (put(o, fmt + i, 1)) return -1;
      i++;
      continue;
    }
    char v[16];
    size_t len = tm ? strftime(v, sizeof v, toks[t].strf, tm) : 2;
    if (!tm) memcpy(v, "00", 2);
    if (put(o, v, len)) return -1;
    i += strlen(toks[t].tok);
  }
  return 0;
}

/* Expands `tmpl` for record m into o; m NULL only checks the template. *what names the
 * placeholder that failed. */
static enum expand_rc expand(const char *tmpl, const struct hub_msg *m, struct out *o, char *what, size_t what_size) {
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  o->n = 0;
  o->buf[0] = 0;
  for (const char *p = tmpl; *p;) {
    if (p[0] != '$' || p[1] != '{') {
      if (put(o, p++, 1)) return EXPAND_TOO_LONG;
      continue;
    }
    const char *end = strchr(p, '}');
    if (!end) {
      snprintf(what, what_size, "'${' without '}'");
      return EXPAND_BAD_TEMPLATE;
    }
    const char *ph = p + 2;
    size_t len = (size_t)(end - ph);
    snprintf(what, what_size, "${%.*s}", (int)len, ph);
    const char *v = NULL;
    size_t vlen = 0;
    int rc = 0;
    if (len == 3 && !memcmp(ph, "key", 3)) {
      if (m && !m->key) return EXPAND_MISSING;
      v = m ? (const char *)m->key : "k", vlen = m ? m->key_len : 1;
    } else if (len == 5 && !memcmp(ph, "lt.id", 5)) {
      v = m ? hub_msg_header_get_str(m, HUB_H_ID) : "id";
      if (!v) return EXPAND_MISSING;
      vlen = strlen(v);
    } else if (len == 3 && !memcmp(ph, "ext", 3)) {
      v = m ? file_extension(hub_msg_header_get_str(m, HUB_H_CONTENT_TYPE)) : "", vlen = strlen(v);
    } else if (len > 7 && !memcmp(ph, "header:", 7)) {
      char name[256];
      snprintf(name, sizeof name, "%.*s", (int)(len - 7), ph + 7);
      const struct hub_header *h = m ? hub_msg_header_get(m, name) : NULL;
      if (m && !h) return EXPAND_MISSING;
      v = h ? (const char *)h->value : "h", vlen = h ? h->value_len : 1;
    } else if (len > 5 && !memcmp(ph, "date:", 5)) {
      rc = put_date(o, ph + 5, len - 5, m ? &tm : NULL);
    } else {
      return EXPAND_BAD_TEMPLATE;
    }
    if (rc || (v && put(o, v, vlen))) return EXPAND_TOO_LONG;
    p = end + 1;
  }
  return EXPAND_OK;
}

/* Empty when the expanded name is one safe file name, else why not. */
static const char *unsafe(const struct out *o) {
  if (o->n == 0) return "it is empty";
  if (o->n > NAME_MAX_BYTES) return "it is longer than 255 bytes";
  if (!strcmp(o->buf, ".") || !strcmp(o->buf, "..")) return "it is '.' or '..'";
  for (size_t i = 0; i < o->n; i++) {
    unsigned char c = (unsigned char)o->buf[i];
    if (c == '/') return "it contains '/'";
    if (c < 0x20 || c == 0x7f) return "it contains a control character";
  }
  if (o->buf[0] == '.') return "it starts with '.' (hidden, and the temp names' prefix)";
  return "";
}

static int parse_mode(const char *s, mode_t *mode) {
  if (!s || !*s || strlen(s) > 4 || strspn(s, "01234567") != strlen(s)) return -1;
  *mode = (mode_t)strtol(s, NULL, 8);
  return *mode <= 0777 ? 0 : -1;
}

static hub_err_t fo_check(const void *cfg, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                          size_t errbuf_size) {
  const struct cfg *c = cfg;
  mode_t mode;
  if (parse_mode(c->mode, &mode) != 0)
    return hub_node_error(hub_cfg_value_at(node, at, "mode"), errbuf, errbuf_size,
                          "mode '%s' is not octal file permissions such as 0640 (at most 0777)", c->mode);
  char buf[1024], what[300];
  struct out o = {buf, 0, sizeof buf};
  if (c->name && expand(c->name, NULL, &o, what, sizeof what) == EXPAND_BAD_TEMPLATE)
    return hub_node_error(hub_cfg_value_at(node, at, "filename"), errbuf, errbuf_size,
                          "filename template '%s': %s is not ${key}, ${lt.id}, ${ext}, ${header:NAME} or ${date:FORMAT}",
                          c->name, what);
  return HUB_OK;
}

static const struct hub_cfg_constraint constraints[] = {
    {"`mode` is octal permissions, at most 0777", "mode", "{mode: '0800'}", "{mode: '0777'}"},
    {"`filename` uses only ${key}, ${lt.id}, ${ext}, ${header:NAME} and ${date:FORMAT}", "filename", "{filename: '${value}'}",
     "{filename: '${header:x}-${date:yyyyMMdd}'}"},
    {NULL},
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"path", HUB_CFG_STR, F(path), NULL, 1, "folder the files are written to (relative: to the config's folder)"},
    {"filename", HUB_CFG_STR, F(name), "${lt.id}${ext}", 0,
     "file name template: ${key}, ${lt.id}, ${header:NAME}, ${date:yyyyMMdd} (HH mm ss too; local time), ${ext} "
     "(.json, .xml or .csv from content-type)"},
    {"mode", HUB_CFG_STR, F(mode), "0640", 0, "permissions of the files written (octal)"},
    {"fsync", HUB_CFG_BOOL, F(fsync), "true", 0, "fsync each file and the folder before answering OK"},
    {NULL},
};
static const struct hub_cfg_map map = {"file-out", entries, .check = fo_check, .constraints = constraints};

struct state {
  const struct cfg *cfg;
  char *dir;
  char tmp_prefix[80]; /* ".lt-CONNECTOR-": this connector's temp names */
  int swept;
  mode_t mode;
};

/* Before the first write: removes temp files this connector left when the hub was killed
 * mid-write. Another instance running the same connector on other partitions may lose an
 * in-flight temp: its rename fails, which is RETRY, and it writes the file again. */
static void sweep(struct state *s) {
  DIR *d = opendir(s->dir);
  struct dirent *de;
  size_t n = strlen(s->tmp_prefix);
  s->swept = d != NULL;
  while (d && (de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (strncmp(de->d_name, s->tmp_prefix, n) || len < 4 || strcmp(de->d_name + len - 4, ".tmp")) continue;
    if (unlinkat(dirfd(d), de->d_name, 0) == 0)
      hub_log(HUB_LOG_INFO, "file-out", "removed %s/%s, left by an interrupted write", s->dir, de->d_name);
  }
  if (d) closedir(d);
}

static enum hub_step_result io_fail(struct hub_step_outcome *out, int err, const char *what, const char *path) {
  int perm = err == EACCES || err == EPERM;
  return hub_step_fail(out, perm ? HUB_STEP_REJECT : HUB_STEP_RETRY, HUB_ERR_IO, "%s %s: %s", what, path,
                       strerror(err));
}

static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static enum hub_step_result fo_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                       struct hub_step_outcome *out) {
  struct state *s = p;
  char name[NAME_MAX_BYTES * 4 + 2], what[300], shown[NAME_MAX_BYTES * 4 + 2];
  struct out o = {name, 0, sizeof name};
  enum expand_rc xr = expand(s->cfg->name, in, &o, what, sizeof what);
  if (xr == EXPAND_MISSING)
    return hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_INVALID_ARG, "filename template '%s': the record has no %s",
                         s->cfg->name, what);
  const char *why = xr == EXPAND_TOO_LONG ? "it is longer than 255 bytes" : unsafe(&o);
  if (*why) {
    hub_json_escape(shown, sizeof shown, o.buf, o.n); /* control characters shown escaped */
    return hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_INVALID_ARG,
                         "filename template '%s' gave \"%s\", not a safe file name: %s", s->cfg->name, shown, why);
  }
  if (!s->swept) sweep(s);
  size_t plen = strlen(s->dir) + 1 + o.n + 1, tlen = strlen(s->dir) + sizeof s->tmp_prefix + 16;
  char *path = malloc(plen), *tmp = malloc(tlen);
  enum hub_step_result r = HUB_STEP_OK;
  int fd = -1;
  if (!path || !tmp) {
    r = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  snprintf(path, plen, "%s/%s", s->dir, o.buf);
  snprintf(tmp, tlen, "%s/%sXXXXXX.tmp", s->dir, s->tmp_prefix);
  if ((fd = mkostemps(tmp, 4, O_CLOEXEC)) < 0) {
    r = io_fail(out, errno, "cannot create a temp file in", s->dir);
    tmp[0] = 0;
    goto out;
  }
  if (fchmod(fd, s->mode) != 0 || write_all(fd, in->value, in->value_len) != 0 || (s->cfg->fsync && fsync(fd) != 0)) {
    r = io_fail(out, errno, "cannot write", tmp);
    goto out;
  }
  int rc = close(fd);
  fd = -1;
  if (rc != 0) {
    r = io_fail(out, errno, "cannot write", tmp);
    goto out;
  }
  if (rename(tmp, path) != 0) {
    r = io_fail(out, errno, "cannot rename to", path);
    goto out;
  }
  tmp[0] = 0; /* renamed: nothing to clean up */
  if (s->cfg->fsync) {
    int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) r = io_fail(out, errno, "cannot fsync the folder", s->dir);
    if (dfd >= 0) close(dfd);
    if (r != HUB_STEP_OK) goto out;
  }
  char sha[65];
  hub_sha256_hex(in->value, in->value_len, sha);
  json_t *j = json_pack("{s:s, s:I, s:s}", "path", path, "bytes", (json_int_t)in->value_len, "sha256", sha);
  char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!body || !(*result = hub_msg_new(NULL, 0, body, strlen(body))) ||
      hub_msg_header_set_str(*result, HUB_H_CONTENT_TYPE, "application/json") != HUB_OK ||
      hub_msg_header_set_str(*result, HUB_H_TYPE, "file.written") != HUB_OK)
    r = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory building the result");
  free(body);
out:
  if (fd >= 0) close(fd);
  if (tmp && tmp[0]) unlink(tmp);
  free(tmp);
  free(path);
  return r;
}

static int fo_health(void *p, char *why, size_t why_size) {
  struct state *s = p;
  if (access(s->dir, W_OK | X_OK) == 0) return 1;
  snprintf(why, why_size, "cannot write to %s: %s", s->dir, strerror(errno));
  return 0;
}

static void fo_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  free(s->dir);
  free(s);
}

static hub_err_t fo_create(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  (void)errbuf, (void)errbuf_size;
  struct state *s = calloc(1, sizeof *s);
  if (!s) return HUB_ERR_NOMEM;
  s->cfg = cfg;
  parse_mode(s->cfg->mode, &s->mode); /* checked by the map */
  snprintf(s->tmp_prefix, sizeof s->tmp_prefix, ".lt-%.64s-", env->owner ? env->owner : "file-out");
  for (char *c = s->tmp_prefix; *c; c++)
    if (*c == '/') *c = '_';
  if (!(s->dir = hub_plugin_env_path_new(env, s->cfg->path))) {
    fo_destroy(s);
    return HUB_ERR_NOMEM;
  }
  *state = s;
  return HUB_OK;
}

static const struct hub_sink_ops ops = {
    .info = {.name = "file-out",
             .summary = "writes each record to a file in a folder, atomically (temp, fsync, rename)",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = fo_create,
    .deliver = fo_deliver,
    .health = fo_health,
    .destroy = fo_destroy,
};
HUB_SINK_PLUGIN(lt_plugin_sink_file_out, ops);
