/* Bank statement layouts and their reader (bank_layout.h). */
#include "bank_layout.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/node.h"

/* ------------------------------------------------------------------ time */

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) { /* H. Hinnant's algorithm */
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t yy = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yy + (*m <= 2));
}

static int days_in_month(int y, int m) {
  static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 29 : dm[m - 1];
}

static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

int64_t bank_time_parse(const char *s) {
  int y, mo, d, h, mi, sec;
  if (!s || strlen(s) < 19 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
      digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != ' ') || digits(s + 11, 2, &h) || s[13] != ':' ||
      digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
    return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60) return -1;
  const char *p = s + 19;
  if (*p == '.')
    for (p++; isdigit((unsigned char)*p); p++) {
    }
  int off = 0;
  if (*p == 'Z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int oh, om;
    if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59) return -1;
    off = (oh * 60 + om) * (*p == '-' ? -1 : 1);
    p += 6;
  } else {
    return -1;
  }
  if (*p) return -1;
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (int64_t)off * 60;
}

void bank_time_format(int64_t t, int offset_min, char out[32]) {
  int64_t l = t + (int64_t)offset_min * 60;
  int64_t days = l >= 0 ? l / 86400 : (l - 86399) / 86400, sod = l - days * 86400;
  int y, m, d;
  civil_from_days(days, &y, &m, &d);
  int a = offset_min < 0 ? -offset_min : offset_min;
  snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", y, m, d, (int)(sod / 3600), (int)(sod / 60 % 60),
           (int)(sod % 60), offset_min < 0 ? '-' : '+', a / 60, a % 60);
}

/* Date and time parts read with a format; -1: not in the format. */
struct dt {
  int y, mo, d, h, mi, s;
};

/* Reads `v` with a format of yyyy yy MM dd HH mm ss and literals; 0 or -1. */
static int dt_parse(const char *v, const char *fmt, struct dt *o) {
  *o = (struct dt){-1, -1, -1, -1, -1, -1};
  size_t vi = 0, vl = strlen(v);
  static const struct {
    const char *tok;
    size_t off;
  } toks[] = {{"yyyy", offsetof(struct dt, y)}, {"yy", offsetof(struct dt, y)}, {"MM", offsetof(struct dt, mo)},
              {"dd", offsetof(struct dt, d)},   {"HH", offsetof(struct dt, h)}, {"mm", offsetof(struct dt, mi)},
              {"ss", offsetof(struct dt, s)}};
  for (const char *f = fmt; *f;) {
    size_t k;
    for (k = 0; k < sizeof toks / sizeof *toks; k++)
      if (!strncmp(f, toks[k].tok, strlen(toks[k].tok))) break;
    if (k == sizeof toks / sizeof *toks) {
      if (vi >= vl || v[vi] != *f) return -1;
      vi++, f++;
      continue;
    }
    int n = (int)strlen(toks[k].tok), val;
    if (vi + (size_t)n > vl || digits(v + vi, n, &val)) return -1;
    if (k == 1) val += 2000; /* yy: this century */
    *(int *)((char *)o + toks[k].off) = val;
    vi += (size_t)n;
    f += n;
  }
  if (vi != vl) return -1;
  if ((o->mo != -1 && (o->mo < 1 || o->mo > 12)) || (o->d != -1 && (o->d < 1 || o->d > 31)) || o->h > 23 ||
      o->mi > 59 || o->s > 59)
    return -1;
  if (o->d != -1 && o->mo != -1 && o->d > days_in_month(o->y != -1 ? o->y : 2000, o->mo)) return -1;
  return 0;
}

/* ------------------------------------------------------------------ layout */

static hub_err_t fail(char *errbuf, size_t n, const struct hub_node *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static hub_err_t fail(char *errbuf, size_t n, const struct hub_node *at, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return hub_node_error(at, errbuf, n, "%s", msg);
}

static const char *scalar(const struct hub_node *n) {
  return n && n->kind == HUB_NODE_SCALAR ? n->scalar : NULL;
}

/* Refuses keys of `map` not in `allowed`. */
static hub_err_t only_keys(const struct hub_node *map, const char *const *allowed, const char *what, char *errbuf,
                           size_t n) {
  if (!map || map->kind != HUB_NODE_MAP) return fail(errbuf, n, map, "%s: expected a mapping", what);
  for (size_t i = 0; i < map->n; i++) {
    size_t k = 0;
    while (allowed[k] && strcmp(allowed[k], map->keys[i]->scalar))
      k++;
    if (!allowed[k]) return fail(errbuf, n, map->keys[i], "%s: unknown key '%s'", what, map->keys[i]->scalar);
  }
  return HUB_OK;
}

static hub_err_t str_opt(const struct hub_node *map, const char *key, char **out, char *errbuf, size_t n) {
  const struct hub_node *v = hub_node_get(map, key);
  if (!v) return HUB_OK;
  if (!scalar(v)) return fail(errbuf, n, v, "'%s' must be a string", key);
  return (*out = strdup(v->scalar)) ? HUB_OK : HUB_ERR_NOMEM;
}

static hub_err_t load_section(const struct hub_node *sec, const char *what, int csv, struct bank_section *out,
                              char *errbuf, size_t n) {
  static const char *const keys[] = {"fields", NULL};
  static const char *const fkeys[] = {"name", "width", "type", "format", "equals", "optional", NULL};
  hub_err_t rc = only_keys(sec, keys, what, errbuf, n);
  const struct hub_node *fs = hub_node_get(sec, "fields");
  if (rc != HUB_OK) return rc;
  if (!fs || fs->kind != HUB_NODE_SEQ || !fs->n)
    return fail(errbuf, n, fs ? fs : sec, "%s: 'fields' must be a non-empty list", what);
  if (!(out->f = calloc(fs->n, sizeof *out->f))) return HUB_ERR_NOMEM;
  for (size_t i = 0; i < fs->n; i++) {
    const struct hub_node *fn = fs->items[i];
    struct bank_field *f = &out->f[i];
    out->n = i + 1; /* released with the section, also when this field is refused */
    if ((rc = only_keys(fn, fkeys, what, errbuf, n)) != HUB_OK) return rc;
    const char *name = scalar(hub_node_get(fn, "name")), *type = scalar(hub_node_get(fn, "type"));
    const char *width = scalar(hub_node_get(fn, "width")), *opt = scalar(hub_node_get(fn, "optional"));
    if (!name || !*name) return fail(errbuf, n, fn, "%s: a field needs a 'name'", what);
    for (size_t j = 0; j < i; j++)
      if (!strcmp(out->f[j].name, name)) return fail(errbuf, n, fn, "%s: field '%s' twice", what, name);
    if (!(f->name = strdup(name))) return HUB_ERR_NOMEM;
    if (!csv) {
      char *end;
      long w = width ? strtol(width, &end, 10) : 0;
      if (!width || *end || w < 1 || w > 4096)
        return fail(errbuf, n, fn, "%s: field '%s' needs a 'width' of 1..4096 bytes", what, name);
      f->width = (size_t)w;
      out->width += f->width;
    } else if (width) {
      return fail(errbuf, n, fn, "%s: field '%s': 'width' is for fixed-width layouts", what, name);
    }
    if (!type || !strcmp(type, "string"))
      f->type = BANK_STRING;
    else if (!strcmp(type, "integer"))
      f->type = BANK_INTEGER;
    else if (!strcmp(type, "date"))
      f->type = BANK_DATE;
    else
      return fail(errbuf, n, fn, "%s: field '%s': type '%s' (string, integer or date)", what, name, type);
    if ((rc = str_opt(fn, "format", &f->format, errbuf, n)) != HUB_OK ||
        (rc = str_opt(fn, "equals", &f->equals, errbuf, n)) != HUB_OK)
      return rc;
    if (f->type == BANK_DATE && !f->format)
      return fail(errbuf, n, fn, "%s: date field '%s' needs a 'format' (e.g. ddMMyy, HHmmss)", what, name);
    f->optional = opt && !strcmp(opt, "true");
  }
  return HUB_OK;
}

static const struct bank_field *field(const struct bank_section *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->f[i].name, name)) return &s->f[i];
  return NULL;
}

/* "NAME" (a detail field) or "header.NAME"; the field must be a date. */
static const struct bank_field *ts_field(const struct bank_layout *l, const char *ref) {
  if (!ref) return NULL;
  if (!strncmp(ref, "header.", 7)) return field(&l->header, ref + 7);
  return field(&l->detail, ref);
}

hub_err_t bank_layout_load(const char *path, struct bank_layout **out, char *errbuf, size_t errbuf_size) {
  static const char *const keys[] = {"name",   "format", "delimiter", "header",         "detail",
                                     "footer", "checks", "timestamp", "statement_date", NULL};
  static const char *const ckeys[] = {"count", "sum", "sum_of", NULL};
  static const char *const tkeys[] = {"date", "time", "year_from", "to", "zone", NULL};
  char *end;
  *out = NULL;
  struct hub_node *root = hub_node_load_file(path, errbuf, errbuf_size);
  if (!root) return HUB_ERR_CONFIG;
  struct bank_layout *l = calloc(1, sizeof *l);
  hub_err_t rc = l ? only_keys(root, keys, "layout", errbuf, errbuf_size) : HUB_ERR_NOMEM;
  if (rc != HUB_OK) goto out;
  const char *fmt = scalar(hub_node_get(root, "format")), *delim = scalar(hub_node_get(root, "delimiter"));
  if (!fmt || (strcmp(fmt, "fixed") && strcmp(fmt, "csv"))) {
    rc = fail(errbuf, errbuf_size, hub_node_get(root, "format") ? hub_node_get(root, "format") : root,
              "layout: 'format' must be fixed or csv");
    goto out;
  }
  l->csv = !strcmp(fmt, "csv");
  l->delimiter = ',';
  if (delim && (!l->csv || strlen(delim) != 1)) {
    rc = fail(errbuf, errbuf_size, hub_node_get(root, "delimiter"), "layout: 'delimiter' is one character, csv only");
    goto out;
  }
  if (delim) l->delimiter = delim[0];
  if ((rc = str_opt(root, "name", &l->name, errbuf, errbuf_size)) != HUB_OK) goto out;
  const char *secs[] = {"header", "detail", "footer"};
  struct bank_section *sv[] = {&l->header, &l->detail, &l->footer};
  for (int i = 0; i < 3; i++) {
    const struct hub_node *s = hub_node_get(root, secs[i]);
    if (!s) {
      rc = fail(errbuf, errbuf_size, root, "layout: '%s' is required", secs[i]);
      goto out;
    }
    if ((rc = load_section(s, secs[i], l->csv, sv[i], errbuf, errbuf_size)) != HUB_OK) goto out;
  }
  int footer_marked = 0;
  for (size_t i = 0; i < l->footer.n; i++)
    footer_marked |= l->footer.f[i].equals != NULL;
  if (!footer_marked) {
    rc = fail(errbuf, errbuf_size, hub_node_get(root, "footer"),
              "footer: at least one field needs 'equals' (how a footer line is told from a detail line)");
    goto out;
  }
  const struct hub_node *ch = hub_node_get(root, "checks"), *ts = hub_node_get(root, "timestamp");
  if (!ch || (rc = only_keys(ch, ckeys, "checks", errbuf, errbuf_size)) != HUB_OK) {
    if (!ch) rc = fail(errbuf, errbuf_size, root, "layout: 'checks' is required (at least the footer's count)");
    goto out;
  }
  if ((rc = str_opt(ch, "count", &l->count_field, errbuf, errbuf_size)) != HUB_OK ||
      (rc = str_opt(ch, "sum", &l->sum_field, errbuf, errbuf_size)) != HUB_OK ||
      (rc = str_opt(ch, "sum_of", &l->sum_of, errbuf, errbuf_size)) != HUB_OK)
    goto out;
  const struct bank_field *cf = l->count_field ? field(&l->footer, l->count_field) : NULL;
  if (!cf || cf->type != BANK_INTEGER) {
    rc = fail(errbuf, errbuf_size, ch, "checks: 'count' must name an integer field of the footer");
    goto out;
  }
  if (!l->sum_of || !field(&l->detail, l->sum_of) || field(&l->detail, l->sum_of)->type != BANK_INTEGER) {
    rc = fail(errbuf, errbuf_size, ch, "checks: 'sum_of' must name an integer field of the detail (the amount)");
    goto out;
  }
  if (l->sum_field && (!field(&l->footer, l->sum_field) || field(&l->footer, l->sum_field)->type != BANK_INTEGER)) {
    rc = fail(errbuf, errbuf_size, ch, "checks: 'sum' must name an integer field of the footer");
    goto out;
  }
  if (!ts || (rc = only_keys(ts, tkeys, "timestamp", errbuf, errbuf_size)) != HUB_OK) {
    if (!ts) rc = fail(errbuf, errbuf_size, root, "layout: 'timestamp' is required (how a line's time is read)");
    goto out;
  }
  const char *zone = scalar(hub_node_get(ts, "zone"));
  if ((rc = str_opt(ts, "date", &l->ts_date, errbuf, errbuf_size)) != HUB_OK ||
      (rc = str_opt(ts, "time", &l->ts_time, errbuf, errbuf_size)) != HUB_OK ||
      (rc = str_opt(ts, "year_from", &l->ts_year_from, errbuf, errbuf_size)) != HUB_OK ||
      (rc = str_opt(ts, "to", &l->ts_to, errbuf, errbuf_size)) != HUB_OK)
    goto out;
  if (!l->ts_to && !(l->ts_to = strdup("at"))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  l->tz_offset_min = 7 * 60;
  if (zone) {
    int64_t t = bank_time_parse("2000-01-01T00:00:00Z"), u;
    char probe[40];
    snprintf(probe, sizeof probe, "2000-01-01T00:00:00%s", zone);
    if ((u = bank_time_parse(probe)) < 0) {
      rc = fail(errbuf, errbuf_size, hub_node_get(ts, "zone"), "timestamp: zone '%s' is not +HH:MM", zone);
      goto out;
    }
    l->tz_offset_min = (int)((t - u) / 60);
  }
  const struct bank_field *df = ts_field(l, l->ts_date), *tf = l->ts_time ? ts_field(l, l->ts_time) : NULL,
                          *yf = l->ts_year_from ? ts_field(l, l->ts_year_from) : NULL;
  if (!df || df->type != BANK_DATE || (l->ts_time && (!tf || tf->type != BANK_DATE)) ||
      (l->ts_year_from && (!yf || yf->type != BANK_DATE || !strstr(yf->format, "yy")))) {
    rc = fail(errbuf, errbuf_size, ts,
              "timestamp: date, time and year_from must name date fields (NAME or header.NAME; year_from with a year)");
    goto out;
  }
  if ((rc = str_opt(root, "statement_date", &l->statement_date, errbuf, errbuf_size)) != HUB_OK) goto out;
  if (!l->statement_date && l->ts_year_from && !(l->statement_date = strdup(l->ts_year_from))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  const struct bank_field *sf = l->statement_date ? ts_field(l, l->statement_date) : NULL;
  if (l->statement_date && (!sf || sf->type != BANK_DATE || !strstr(sf->format, "yy") || !strstr(sf->format, "MM") ||
                            !strstr(sf->format, "dd"))) {
    rc = fail(errbuf, errbuf_size, hub_node_get(root, "statement_date") ? hub_node_get(root, "statement_date") : ts,
              "statement_date must name a date field with year, month and day (NAME or header.NAME)");
    goto out;
  }
  if (!strstr(df->format, "yy") && !yf) {
    rc = fail(errbuf, errbuf_size, ts, "timestamp: the date '%s' has no year: name a header date in year_from",
              l->ts_date);
    goto out;
  }
  (void)end;
out:
  hub_node_destroy(root);
  if (rc != HUB_OK) {
    bank_layout_destroy(l);
    return rc;
  }
  *out = l;
  return HUB_OK;
}

static void section_free(struct bank_section *s) {
  for (size_t i = 0; i < s->n; i++) {
    free(s->f[i].name);
    free(s->f[i].format);
    free(s->f[i].equals);
  }
  free(s->f);
}

void bank_layout_destroy(struct bank_layout *l) {
  if (!l) return;
  section_free(&l->header);
  section_free(&l->detail);
  section_free(&l->footer);
  free(l->name);
  free(l->count_field);
  free(l->sum_field);
  free(l->sum_of);
  free(l->ts_date);
  free(l->ts_time);
  free(l->ts_year_from);
  free(l->ts_to);
  free(l->statement_date);
  free(l);
}

/* ------------------------------------------------------------------ reader */

struct bank_reader {
  const struct bank_layout *l;
  char *file;
  size_t line; /* lines fed so far */
  size_t details;
  int64_t total;
  json_t *header, *footer;
  size_t footer_line;
  struct dt header_year; /* from year_from */
  struct dt stmt_date;   /* from statement_date; y = -1 until known */
  /* cells of the line being read */
  char **cell;
  size_t n_cell, cap_cell;
  char *buf;
  size_t cap_buf;
};

struct bank_reader *bank_reader_new(const struct bank_layout *l, const char *file) {
  struct bank_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->file = strdup(file ? file : "-"))) {
    free(r);
    return NULL;
  }
  r->l = l;
  r->stmt_date.y = -1;
  return r;
}

void bank_reader_destroy(struct bank_reader *r) {
  if (!r) return;
  json_decref(r->header);
  json_decref(r->footer);
  free(r->cell);
  free(r->buf);
  free(r->file);
  free(r);
}

static hub_err_t bad(struct bank_reader *r, char *errbuf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static hub_err_t bad(struct bank_reader *r, char *errbuf, size_t n, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(errbuf, n, "%s:%zu: %s", r->file, r->line, msg);
  return HUB_ERR_INVALID_ARG;
}

/* Splits the line into trimmed cells (in r->buf) for section s. */
static hub_err_t split(struct bank_reader *r, const struct bank_section *s, const char *what, const char *line,
                       size_t len, char *errbuf, size_t n) {
  if (r->cap_buf < len + s->n + 1) {
    char *b = realloc(r->buf, len + s->n + 1);
    if (!b) return HUB_ERR_NOMEM;
    r->buf = b;
    r->cap_buf = len + s->n + 1;
  }
  if (r->cap_cell < s->n + 1) {
    char **c = realloc(r->cell, (s->n + 1) * sizeof *c);
    if (!c) return HUB_ERR_NOMEM;
    r->cell = c;
    r->cap_cell = s->n + 1;
  }
  char *o = r->buf;
  r->n_cell = 0;
  if (!r->l->csv) {
    if (len < s->width)
      return bad(r, errbuf, n, "a %s line is %zu bytes, this one %zu: truncated", what, s->width, len);
    for (size_t i = s->width; i < len; i++)
      if (line[i] != ' ')
        return bad(r, errbuf, n, "a %s line is %zu bytes, this one %zu (text past the last field)", what, s->width,
                   len);
    size_t at = 0;
    for (size_t i = 0; i < s->n; i++) {
      r->cell[r->n_cell++] = o;
      memcpy(o, line + at, s->f[i].width);
      o[s->f[i].width] = 0;
      o += s->f[i].width + 1;
      at += s->f[i].width;
    }
  } else {
    size_t i = 0;
    for (;;) { /* RFC 4180: a cell in quotes may hold the delimiter and "" for a quote */
      if (r->n_cell == s->n) return bad(r, errbuf, n, "a %s line has %zu cells, this one more", what, s->n);
      r->cell[r->n_cell++] = o;
      if (i < len && line[i] == '"') {
        for (i++;; i++) {
          if (i >= len) return bad(r, errbuf, n, "a quoted cell is not closed: truncated");
          if (line[i] == '"' && i + 1 < len && line[i + 1] == '"') {
            *o++ = '"';
            i++;
          } else if (line[i] == '"') {
            i++;
            break;
          } else {
            *o++ = line[i];
          }
        }
        if (i < len && line[i] != r->l->delimiter) return bad(r, errbuf, n, "text after a quoted cell");
      } else {
        while (i < len && line[i] != r->l->delimiter)
          *o++ = line[i++];
      }
      *o++ = 0;
      if (i >= len) break;
      i++; /* the delimiter */
    }
    if (r->n_cell != s->n)
      return bad(r, errbuf, n, "a %s line has %zu cells, this one %zu: truncated", what, s->n, r->n_cell);
  }
  for (size_t i = 0; i < r->n_cell; i++) { /* trim spaces both sides (fixed fields are padded) */
    char *c = r->cell[i];
    size_t l = strlen(c);
    while (l && (c[l - 1] == ' ' || c[l - 1] == '\t'))
      c[--l] = 0;
    while (*c == ' ' || *c == '\t')
      c++;
    r->cell[i] = c;
  }
  return HUB_OK;
}

/* Whether the line is marked as a section s line by its `equals` fields. */
static int marked(struct bank_reader *r, const struct bank_section *s, const char *line, size_t len) {
  if (!r->l->csv) {
    size_t at = 0;
    for (size_t i = 0; i < s->n; at += s->f[i].width, i++) {
      if (!s->f[i].equals) continue;
      if (at + s->f[i].width > len) return 0;
      const char *c = line + at;
      size_t w = s->f[i].width;
      while (w && c[w - 1] == ' ')
        w--;
      while (w && *c == ' ')
        c++, w--;
      if (w != strlen(s->f[i].equals) || memcmp(c, s->f[i].equals, w)) return 0;
    }
    return 1;
  }
  char errbuf[8];
  if (split(r, s, "", line, len, errbuf, sizeof errbuf) != HUB_OK) return 0;
  for (size_t i = 0; i < s->n; i++)
    if (s->f[i].equals && strcmp(r->cell[i], s->f[i].equals)) return 0;
  return 1;
}

/* The cells of section s as a JSON object, checked by type and `equals`. */
static hub_err_t to_json(struct bank_reader *r, const struct bank_section *s, const char *what, json_t **out,
                         char *errbuf, size_t n) {
  json_t *o = json_object();
  hub_err_t rc = o ? HUB_OK : HUB_ERR_NOMEM;
  for (size_t i = 0; rc == HUB_OK && i < s->n; i++) {
    const struct bank_field *f = &s->f[i];
    const char *v = r->cell[i];
    json_t *jv = NULL;
    if (f->equals && strcmp(v, f->equals)) {
      rc = bad(r, errbuf, n, "%s field '%s' is '%s', expected '%s'", what, f->name, v, f->equals);
      break;
    }
    if (!*v && f->optional) {
      jv = json_null();
    } else if (!*v && f->type != BANK_STRING) {
      rc = bad(r, errbuf, n, "%s field '%s' is empty", what, f->name);
      break;
    } else if (f->type == BANK_INTEGER) {
      const char *p = v + (*v == '-');
      int ok = *p != 0;
      for (; *p && ok; p++)
        ok = isdigit((unsigned char)*p);
      char *end;
      long long x = ok ? strtoll(v, &end, 10) : 0;
      if (!ok || x == LLONG_MAX || x == LLONG_MIN) {
        rc = bad(r, errbuf, n, "%s field '%s' is '%s', not an integer", what, f->name, v);
        break;
      }
      jv = json_integer(x);
    } else {
      struct dt d;
      if (f->type == BANK_DATE && dt_parse(v, f->format, &d) != 0) {
        rc = bad(r, errbuf, n, "%s field '%s' is '%s', not a date of the form %s", what, f->name, v, f->format);
        break;
      }
      if (!(jv = json_string(v))) {
        rc = bad(r, errbuf, n, "%s field '%s' is not valid UTF-8", what, f->name);
        break;
      }
    }
    if (!jv || json_object_set_new(o, f->name, jv) != 0) rc = HUB_ERR_NOMEM;
  }
  if (rc != HUB_OK) {
    json_decref(o);
    return rc;
  }
  *out = o;
  return HUB_OK;
}

static const char *ts_value(struct bank_reader *r, json_t *detail, const char *ref, const struct bank_field **f) {
  *f = ts_field(r->l, ref);
  json_t *src = !strncmp(ref, "header.", 7) ? json_object_get(r->header, ref + 7) : json_object_get(detail, ref);
  return json_string_value(src);
}

/* The detail's time (RFC 3339, the layout's zone) into detail[ts_to]. */
static hub_err_t add_time(struct bank_reader *r, json_t *detail, char *errbuf, size_t n) {
  const struct bank_field *df, *tf = NULL;
  const char *dv = ts_value(r, detail, r->l->ts_date, &df),
             *tv = r->l->ts_time ? ts_value(r, detail, r->l->ts_time, &tf) : NULL;
  struct dt d, t = {-1, -1, -1, -1, -1, -1};
  if (!dv || dt_parse(dv, df->format, &d) != 0 || (r->l->ts_time && (!tv || dt_parse(tv, tf->format, &t) != 0)))
    return bad(r, errbuf, n, "no date/time to build '%s' from", r->l->ts_to);
  int h = t.h >= 0   ? t.h
          : d.h >= 0 ? d.h
                     : 0,
      mi = t.mi >= 0   ? t.mi
           : d.mi >= 0 ? d.mi
                       : 0,
      s = t.s >= 0   ? t.s
          : d.s >= 0 ? d.s
                     : 0;
  int64_t day;
  if (d.y >= 0) {
    day = days_from_civil(d.y, d.mo, d.d);
  } else { /* no year: the one that puts the date closest to the statement's date */
    const struct dt *y = &r->header_year;
    int64_t ref = days_from_civil(y->y, y->mo > 0 ? y->mo : 1, y->d > 0 ? y->d : 1);
    day = days_from_civil(y->y, d.mo, d.d);
    if (day - ref > 183) day = days_from_civil(y->y - 1, d.mo, d.d);
    if (ref - day > 183) day = days_from_civil(y->y + 1, d.mo, d.d);
  }
  char out[32];
  bank_time_format(day * 86400 + h * 3600 + mi * 60 + s - (int64_t)r->l->tz_offset_min * 60, r->l->tz_offset_min, out);
  return json_object_set_new(detail, r->l->ts_to, json_string(out)) == 0 ? HUB_OK : HUB_ERR_NOMEM;
}

hub_err_t bank_reader_line(struct bank_reader *r, const char *line, size_t len, json_t **detail, char *errbuf,
                           size_t errbuf_size) {
  const struct bank_layout *l = r->l;
  hub_err_t rc;
  *detail = NULL;
  r->line++;
  if (len && line[len - 1] == '\r') len--;
  if (r->footer) {
    for (size_t i = 0; i < len; i++)
      if (line[i] != ' ' && line[i] != '\t')
        return bad(r, errbuf, errbuf_size, "a line after the footer (line %zu)", r->footer_line);
    return HUB_OK;
  }
  if (r->line == 1) {
    if (len >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) { /* a UTF-8 byte order mark (spreadsheet exports) */
      line += 3;
      len -= 3;
    }
    if ((rc = split(r, &l->header, "header", line, len, errbuf, errbuf_size)) != HUB_OK ||
        (rc = to_json(r, &l->header, "header", &r->header, errbuf, errbuf_size)) != HUB_OK)
      return rc;
    if (l->ts_year_from && !strncmp(l->ts_year_from, "header.", 7)) {
      const struct bank_field *f = field(&l->header, l->ts_year_from + 7);
      dt_parse(json_string_value(json_object_get(r->header, f->name)), f->format, &r->header_year);
    }
    if (l->statement_date && !strncmp(l->statement_date, "header.", 7)) {
      const struct bank_field *f = field(&l->header, l->statement_date + 7);
      dt_parse(json_string_value(json_object_get(r->header, f->name)), f->format, &r->stmt_date);
    }
    return HUB_OK;
  }
  if (marked(r, &l->footer, line, len)) {
    if ((rc = split(r, &l->footer, "footer", line, len, errbuf, errbuf_size)) != HUB_OK ||
        (rc = to_json(r, &l->footer, "footer", &r->footer, errbuf, errbuf_size)) != HUB_OK)
      return rc;
    r->footer_line = r->line;
    return HUB_OK;
  }
  json_t *d = NULL;
  if ((rc = split(r, &l->detail, "detail", line, len, errbuf, errbuf_size)) != HUB_OK ||
      (rc = to_json(r, &l->detail, "detail", &d, errbuf, errbuf_size)) != HUB_OK)
    return rc;
  if ((rc = add_time(r, d, errbuf, errbuf_size)) != HUB_OK ||
      json_object_set_new(d, "file", json_string(r->file)) != 0 ||
      json_object_set_new(d, "line", json_integer((json_int_t)r->line)) != 0) {
    json_decref(d);
    return rc != HUB_OK ? rc : HUB_ERR_NOMEM;
  }
  if (r->stmt_date.y < 0 && l->statement_date && strncmp(l->statement_date, "header.", 7)) {
    const struct bank_field *f = field(&l->detail, l->statement_date);
    dt_parse(json_string_value(json_object_get(d, f->name)), f->format, &r->stmt_date);
  }
  r->details++;
  r->total += (int64_t)json_integer_value(json_object_get(d, l->sum_of));
  *detail = d;
  return HUB_OK;
}

hub_err_t bank_reader_finish(struct bank_reader *r, json_t **summary, char *errbuf, size_t errbuf_size) {
  *summary = NULL;
  if (!r->header) return bad(r, errbuf, errbuf_size, "an empty file: no header line");
  if (!r->footer) return bad(r, errbuf, errbuf_size, "no footer line after the last detail: the file is truncated");
  r->line = r->footer_line; /* the footer's own checks point at it */
  json_int_t count = json_integer_value(json_object_get(r->footer, r->l->count_field));
  if (count < 0 || (size_t)count != r->details)
    return bad(r, errbuf, errbuf_size, "the footer's %s says %lld detail line(s); the file has %zu", r->l->count_field,
               (long long)count, r->details);
  if (r->l->sum_field) {
    json_int_t sum = json_integer_value(json_object_get(r->footer, r->l->sum_field));
    if (sum != r->total)
      return bad(r, errbuf, errbuf_size, "the footer's %s says %lld; the %s of the details add up to %lld",
                 r->l->sum_field, (long long)sum, r->l->sum_of, (long long)r->total);
  }
  json_t *s = json_pack("{s:s, s:I, s:I, s:O, s:O}", "file", r->file, "lines", (json_int_t)r->details, "total",
                        (json_int_t)r->total, "header", r->header, "footer", r->footer);
  if (s && r->stmt_date.y > 0 && r->stmt_date.mo > 0 && r->stmt_date.d > 0) {
    /* the bank side is complete up to the end of the statement's day */
    int64_t end = (days_from_civil(r->stmt_date.y, r->stmt_date.mo, r->stmt_date.d) + 1) * 86400 - 1 -
                  (int64_t)r->l->tz_offset_min * 60;
    char out[32];
    bank_time_format(end, r->l->tz_offset_min, out);
    json_object_set_new(s, "covers_until", json_string(out));
  }
  if (!s) return HUB_ERR_NOMEM;
  *summary = s;
  return HUB_OK;
}

hub_err_t bank_parse_buffer(const struct bank_layout *l, const char *file, const char *buf, size_t len,
                            int (*on_detail)(void *ctx, json_t *detail_take), void *ctx, json_t **summary, char *errbuf,
                            size_t errbuf_size) {
  struct bank_reader *r = bank_reader_new(l, file);
  hub_err_t rc = r ? HUB_OK : HUB_ERR_NOMEM;
  size_t at = 0;
  if (rc == HUB_OK && memchr(buf, 0, len)) {
    snprintf(errbuf, errbuf_size, "%s: a NUL byte: not a text statement", file);
    rc = HUB_ERR_INVALID_ARG;
  }
  while (rc == HUB_OK && at < len) {
    const char *nl = memchr(buf + at, '\n', len - at);
    size_t ll = nl ? (size_t)(nl - (buf + at)) : len - at;
    json_t *d = NULL;
    rc = bank_reader_line(r, buf + at, ll, &d, errbuf, errbuf_size);
    if (rc == HUB_OK && d && on_detail(ctx, d) != 0) rc = HUB_ERR_NOMEM;
    at += ll + (nl ? 1 : 0);
  }
  if (rc == HUB_OK) rc = bank_reader_finish(r, summary, errbuf, errbuf_size);
  bank_reader_destroy(r);
  return rc;
}
