/* What the document-axis connectors (vxp-*, lgsp-edoc-*) share: a look into an edXML packet
 * (its kind, recipients and document id) and the receiving side's inbox logic, written once
 * over a small table of calls that each axis implements (list, fetch, confirm).
 *
 * The inbox's exactly-once rests on its cursor, committed with the records: the axis ids and
 * the packet digests emitted lately (a bounded window) and the confirmations not yet sent. A
 * packet is confirmed (`done`, or `fail` with the reason) only after the transaction holding
 * its record committed; a packet listed again whose id or digest is in the window is not
 * emitted again, only confirmed again (the axis lists a packet until it is confirmed, and a
 * sender that re-sent after a lost answer produces a second axis id for the same bytes). */
#ifndef LT_CONNECTOR_EDOC_H
#define LT_CONNECTOR_EDOC_H

#include <stddef.h>
#include <stdint.h>

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"
#include "hub/core/plugin.h"
#include "hub/engine/connector.h"

/* ---- a packet ---- */

enum edoc_kind { EDOC_DOCUMENT, EDOC_STATUS };

struct edoc_info {
  enum edoc_kind kind;
  char *document_id; /* MessageHeader/DocumentId, or ResponseFor/DocumentId of a status; NULL if none */
  char *from;        /* From/OrganId, or NULL */
  char **to;         /* document: To/OrganId; status: ResponseFor/OrganId */
  size_t n_to;
  char *status_code; /* status: StatusCode */
};

/* Parses the packet with the hub's one XML parse (max_bytes 0: its default) and reads the
 * fields above, namespace-aware but prefix-agnostic (status fields under Status or under
 * MessageHeader, as published packets have them). HUB_ERR_XML* with the reason otherwise. */
hub_err_t edoc_inspect(const void *xml, size_t len, size_t max_bytes, struct edoc_info *info, char *errbuf,
                       size_t errbuf_size);
void edoc_info_release(struct edoc_info *info);
/* `to` as a compact JSON array of strings (malloc'd). */
char *edoc_to_json_new(const struct edoc_info *info);
/* An outgoing sink's result record (type edoc.sent, JSON): {axis, docId, messagetype, documentId,
 * statusCode, to}. NULL when out of memory. */
struct hub_msg *edoc_result_new(const struct edoc_info *info, const char *axis, const char *messagetype,
                                const char *doc_id);

/* ---- the receiving side ---- */

struct edoc_item {
  char *id;          /* the axis's id of the packet */
  char *messagetype; /* "edoc" or "status" (NULL: unknown) */
  char *from;        /* sender OrganId as the axis lists it, or NULL */
};
void edoc_items_free(struct edoc_item *v, size_t n);

enum edoc_fetch { EDOC_FETCH_OK, EDOC_FETCH_RETRY, EDOC_FETCH_FAIL };

struct edoc_axis_ops {
  const char *name; /* for logs and reasons: "vxp", "lgsp-edoc" */
  /* The packets waiting for this agency (any kind; the inbox filters). */
  hub_err_t (*list)(void *axis, struct edoc_item **items, size_t *n, char *errbuf, size_t errbuf_size);
  /* One packet's bytes. RETRY: try at a later poll; FAIL: the axis cannot give it (reason). */
  enum edoc_fetch (*fetch)(void *axis, const struct edoc_item *it, unsigned char **data, size_t *len, char *errbuf,
                           size_t errbuf_size);
  /* Receipt: ok 1 = done, 0 = fail with reason. */
  hub_err_t (*confirm)(void *axis, const char *id, int ok, const char *reason, char *errbuf, size_t errbuf_size);
};

/* The inbox options every receiving axis connector has (config map entries below). */
struct edoc_inbox_cfg {
  int messagetype; /* 0 edoc, 1 status */
  int64_t max_per_poll;
  int64_t dedupe_window;
  struct hub_str_list verify_trust; /* CA files: check the signature before confirming */
  int verify_policy;                /* 0 default, 1 legacy-sha1 */
  int64_t max_size;
};

/* clang-format off */
#define EDOC_INBOX_ENTRIES(T, f)                                                                                      \
  {"messagetype", HUB_CFG_ENUM, offsetof(T, f.messagetype), "edoc", 0,                                               \
   "which packets this source lists and takes: documents (edoc) or status packets (status)", "edoc|status"},    \
      {"max_per_poll", HUB_CFG_INT, offsetof(T, f.max_per_poll), "50", 0,                                             \
       "packets fetched per poll (one transaction)", NULL, NULL, 1, 1000},                                            \
      {"dedupe_window", HUB_CFG_INT, offsetof(T, f.dedupe_window), "4096", 0,                                         \
       "axis ids and packet digests remembered (in the cursor, ~100 bytes each) to absorb a packet listed or "   \
       "sent twice", NULL, NULL, 16, 8000},                                                                                                  \
      {"verify_trust", HUB_CFG_STR_LIST, offsetof(T, f.verify_trust), NULL, 0,                                        \
       "CA files (PEM): the packet's XML-DSig is checked before the receipt, and a failure is confirmed `fail` "     \
       "with the reason (the record is still emitted: the route's verify-xml puts it in its DLQ); default keys.trust.ca"}, \
      {"verify_policy", HUB_CFG_ENUM, offsetof(T, f.verify_policy), "default", 0,                                     \
       "algorithm policy of that check (legacy-sha1 also allows the SDK's rsa-sha1)", "default|legacy-sha1"},                                                     \
  {                                                                                                                   \
    "max_size", HUB_CFG_SIZE, offsetof(T, f.max_size), "64MiB", 0,                                              \
        "largest packet accepted (keep it at the xml.max_size of the route that reads the topic); the answer "   \
        "carrying it base64 may be 4/3 of it plus 1 MiB", NULL, NULL, 1024,       \
        1024LL * 1024 * 1024                                                                                          \
  }
/* clang-format on */

struct edoc_inbox;

hub_err_t edoc_inbox_new(const struct edoc_inbox_cfg *cfg, const struct hub_plugin_env *env,
                         const struct edoc_axis_ops *ops, void *axis, struct hub_source_ctx *ctx,
                         struct edoc_inbox **out, char *errbuf, size_t errbuf_size);
void edoc_inbox_destroy(struct edoc_inbox *in);
/* Reads the committed cursor and sends the confirmations it still lists. */
hub_err_t edoc_inbox_start(struct edoc_inbox *in, char *errbuf, size_t errbuf_size);
/* One round: list, fetch, emit with the cursor, confirm. */
hub_err_t edoc_inbox_poll(struct edoc_inbox *in);
int edoc_inbox_health(struct edoc_inbox *in, char *why, size_t why_size);

#endif
