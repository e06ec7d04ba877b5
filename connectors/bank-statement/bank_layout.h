/* A bank statement layout (a YAML file under mappings/bank/) and the table-driven reader that
 * applies it: fixed-width or CSV lines, a header line, detail lines and a footer line whose
 * count (and optionally a total) must agree with the details. A bank's format is data, not code.
 *
 * The reader works a line at a time, so the step (a whole file in memory) and the benchmark (a
 * file of a million lines read as a stream) share it. Every error names the line. */
#ifndef LT_BANK_LAYOUT_H
#define LT_BANK_LAYOUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/core/err.h"

enum bank_field_type { BANK_STRING, BANK_INTEGER, BANK_DATE };

struct bank_field {
  char *name;
  size_t width; /* fixed: bytes */
  enum bank_field_type type;
  char *format; /* BANK_DATE: yyyy yy MM dd HH mm ss and literal characters */
  char *equals; /* the trimmed value must be this (record type codes, CSV titles) */
  int optional; /* an empty value is allowed (integers: null) */
};

struct bank_section {
  struct bank_field *f;
  size_t n;
  size_t width; /* fixed: the sum of the widths */
};

struct bank_layout {
  char *name;
  int csv;
  char delimiter;
  struct bank_section header, detail, footer;
  char *count_field; /* footer field holding the number of detail lines */
  char *sum_field;   /* footer field holding the sum of sum_of over the details (optional) */
  char *sum_of;      /* detail integer field summed */
  /* The line's time: a date field and an optional time field of the detail (or "header.NAME");
   * a date without a year takes the year of year_from (a header date), the closest one. */
  char *ts_date, *ts_time, *ts_year_from, *ts_to;
  int tz_offset_min; /* the statement's local time zone (Vietnam: +07:00) */
  /* The day the statement covers ("header.NAME" or a detail field, read from the first detail):
   * the summary's covers_until is its end. Default: year_from. */
  char *statement_date;
};

/* Loads and checks a layout file; errors name file:line:col. */
hub_err_t bank_layout_load(const char *path, struct bank_layout **out, char *errbuf, size_t errbuf_size);
void bank_layout_destroy(struct bank_layout *l);

/* One statement being read. */
struct bank_reader;

/* `file` names the statement in errors and in each line record. */
struct bank_reader *bank_reader_new(const struct bank_layout *l, const char *file);
void bank_reader_destroy(struct bank_reader *r);
/* Feeds the next line (without its line end; a trailing \r is dropped). When it is a detail
 * line, *detail is set to a new JSON object (owned by the caller): the layout's fields, plus
 * "file", "line" and the time (ts_to) as RFC 3339. HUB_ERR_INVALID_ARG with "FILE:LINE: why". */
hub_err_t bank_reader_line(struct bank_reader *r, const char *line, size_t len, json_t **detail, char *errbuf,
                           size_t errbuf_size);
/* After the last line: checks that a footer came and that its count and total agree. *summary
 * (owned) is {"file", "lines", "total", "header": {...}, "footer": {...}, "covers_until"}. */
hub_err_t bank_reader_finish(struct bank_reader *r, json_t **summary, char *errbuf, size_t errbuf_size);
/* Parses one whole file in memory: calls on_detail for each detail in order (a nonzero return
 * stops with HUB_ERR_NOMEM), then returns the summary. Empty lines at the end are ignored. */
hub_err_t bank_parse_buffer(const struct bank_layout *l, const char *file, const char *buf, size_t len,
                            int (*on_detail)(void *ctx, json_t *detail_take), void *ctx, json_t **summary, char *errbuf,
                            size_t errbuf_size);

/* RFC 3339 with an offset ("2026-12-05T10:11:12+07:00", 'Z', fractions ignored) to Unix
 * seconds; -1 when malformed. Shared with reconciliation, which reads both sides' times. */
int64_t bank_time_parse(const char *s);
/* Unix seconds to RFC 3339 in the given offset. */
void bank_time_format(int64_t t, int offset_min, char out[32]);

#endif
