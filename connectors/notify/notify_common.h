/* What the `email` and `sms` sinks share: templates filled from the record, the per-recipient
 * rate limit, the journal of notices already sent, and the result record. */
#ifndef LT_NOTIFY_COMMON_H
#define LT_NOTIFY_COMMON_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"
#include "hub/core/msg.h"

/* A template: text with {{a.b.c}} placeholders naming fields of the record's JSON value (dotted
 * object keys; a number indexes an array). Rendering fails, naming the placeholder, when a
 * field is missing or is an object or array. */
struct notify_tpl;
hub_err_t notify_tpl_new(const char *text, const char *what, struct notify_tpl **out, char *errbuf, size_t errbuf_size);
void notify_tpl_destroy(struct notify_tpl *t);
/* The filled text (malloc'd), or NULL with the reason in errbuf (NULL and errbuf "" on OOM). */
char *notify_tpl_render(const struct notify_tpl *t, json_t *doc, char *errbuf, size_t errbuf_size);

/* Per-recipient token buckets: `count` notices per `per_ms` to one recipient, at most `max`
 * recipients remembered (the fullest buckets are forgotten first). Recipients are kept as
 * SHA-256 digests, never in clear. Thread-safe. */
struct notify_limit;
/* Its options (`per_recipient:` of both sinks; the map is defined in email.c). */
struct notify_limit_cfg {
  int64_t count, per_ms, recipients;
};
extern const struct hub_cfg_map notify_limit_map;
struct notify_limit *notify_limit_new(int64_t count, int64_t per_ms, size_t max);
void notify_limit_destroy(struct notify_limit *l);
/* 0: take a token now; otherwise the milliseconds until one is due (nothing taken). */
int64_t notify_limit_take(struct notify_limit *l, const char *recipient);

/* The journal: ids (lt.id) of notices the server accepted, one a line, appended and flushed
 * after each acceptance, so a record delivered again after a crash is not sent twice. At most
 * `max` ids are kept (the oldest half dropped when full). */
struct notify_journal;
hub_err_t notify_journal_open(const char *path, size_t max, struct notify_journal **out, char *errbuf,
                              size_t errbuf_size);
void notify_journal_close(struct notify_journal *j);
int notify_journal_has(struct notify_journal *j, const char *id);
hub_err_t notify_journal_add(struct notify_journal *j, const char *id);

/* A result record {"channel", "to", "outcome", "id", ...extra} (lt.type notify.result). */
struct hub_msg *notify_result_new(const char *channel, const char *to, const char *outcome, const char *id,
                                  json_t *extra_take);
#endif
