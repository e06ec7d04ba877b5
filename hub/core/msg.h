/* A record as routes and steps see it: key, value and ordered headers, plus where it came
 * from. Header names used by the hub are listed in README.md ("Record headers"). */
#ifndef HUB_MSG_H
#define HUB_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "hub/core/err.h"

struct hub_header {
  char *name;
  unsigned char *value; /* NUL-terminated for convenience; value_len excludes the NUL */
  size_t value_len;
};

struct hub_msg {
  unsigned char *key; /* NULL when the record has no key */
  size_t key_len;
  unsigned char *value; /* NUL-terminated; value_len excludes the NUL */
  size_t value_len;
  struct hub_header *headers;
  size_t n_headers, cap_headers;
  /* origin, when read from a topic */
  char *topic;
  int32_t partition;
  int64_t offset;
  int64_t timestamp_ms;
  int attempt; /* 1 on the first try of a route's steps, 2 on the first retry, ... */
  int value_borrowed; /* value belongs to another message (hub_msg_dup_borrow): never freed here */
};

/* Copies key and value (either may be NULL with length 0). */
struct hub_msg *hub_msg_new(const void *key, size_t key_len, const void *value, size_t value_len);
/* Deep copy. */
struct hub_msg *hub_msg_dup(const struct hub_msg *m);
/* A copy whose value is m's own buffer, borrowed until a step replaces it (hub_msg_set_value*):
 * the engine's working copy of a record, so that a 50 MB packet is not held twice while steps
 * only read it. m must outlive the copy and not change its value meanwhile; nobody writes into
 * a value's bytes (steps replace values, they never edit them in place). */
struct hub_msg *hub_msg_dup_borrow(const struct hub_msg *m);
void hub_msg_destroy(struct hub_msg *m);

/* Replaces the value with a malloc'd buffer of len bytes that the message takes over (it must
 * have room for len+1 bytes; the NUL is written here). Consumed even on failure. */
hub_err_t hub_msg_set_value_take(struct hub_msg *m, unsigned char *value, size_t len);
hub_err_t hub_msg_set_value(struct hub_msg *m, const void *value, size_t len);
hub_err_t hub_msg_set_key(struct hub_msg *m, const void *key, size_t len);
hub_err_t hub_msg_set_topic(struct hub_msg *m, const char *topic);

/* The first header with this name (borrowed), or NULL. */
const struct hub_header *hub_msg_header_get(const struct hub_msg *m, const char *name);
/* Convenience: the header's value as a C string (borrowed), or NULL. */
const char *hub_msg_header_get_str(const struct hub_msg *m, const char *name);
/* Sets (replacing every header of that name) or appends. */
hub_err_t hub_msg_header_set(struct hub_msg *m, const char *name, const void *value, size_t len);
hub_err_t hub_msg_header_set_str(struct hub_msg *m, const char *name, const char *value);
hub_err_t hub_msg_header_add(struct hub_msg *m, const char *name, const void *value, size_t len);
/* Removes every header of that name; returns how many. */
size_t hub_msg_header_del(struct hub_msg *m, const char *name);

/* Well-known header names. */
#define HUB_H_ID "lt.id"
#define HUB_H_TYPE "lt.type"
#define HUB_H_SOURCE "lt.source"
#define HUB_H_CONTENT_TYPE "content-type"
#define HUB_H_TRACEPARENT "traceparent"
#define HUB_H_SIG "lt.sig"
#define HUB_H_SIGNER "lt.signer"
#define HUB_H_PARENT "lt.parent"
#define HUB_H_ROUTE "lt.route"
#define HUB_H_ERROR_STAGE "lt.error.stage"
#define HUB_H_ERROR_CODE "lt.error.code"
#define HUB_H_ERROR_REASON "lt.error.reason"
#define HUB_H_ERROR_DETAIL "lt.error.detail"
#define HUB_H_ORIGIN "lt.origin"
#define HUB_H_ATTEMPTS "lt.attempts"
#define HUB_H_FAILED_AT "lt.error.time"
#define HUB_H_REPLAYED "lt.replayed"
#define HUB_H_REPLAY_COUNT "lt.replay.count"

/* A UUIDv7 as 36 characters + NUL. */
void hub_uuid7(char out[37]);
/* A UUIDv8 derived from where a record sits (SHA-256 of "topic/partition/offset"): the same
 * record always gets the same id, so a sink can use it as an idempotency key. */
void hub_uuid_from_origin(const char *topic, int32_t partition, int64_t offset, char out[37]);
/* A UUIDv8 from the SHA-256 of `data`: the same bytes always give the same id. */
void hub_uuid_from_bytes(const void *data, size_t len, char out[37]);
/* W3C Trace Context: GIVEN when it is a valid traceparent (VERSION-TRACEID-PARENTID-FLAGS,
 * lower-case hex, ids not all zero, version not ff; version 00 exactly 55 characters), else a
 * new sampled one with random ids written to BUF. Returns GIVEN or BUF. */
const char *hub_traceparent_or_new(const char *given, char buf[56]);
/* Lower-case hex SHA-256 of data, 64 characters + NUL. */
void hub_sha256_hex(const void *data, size_t len, char out[65]);

#endif
