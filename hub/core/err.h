/* The hub's one error enum. 0 is success; append new codes at the end, never renumber:
 * codes are written into DLQ headers (lt.error.code) and must stay stable. */
#ifndef HUB_ERR_H
#define HUB_ERR_H

#include <stddef.h>

typedef enum hub_err {
  HUB_OK = 0,
  HUB_ERR_NOMEM,           /* out of memory */
  HUB_ERR_INVALID_ARG,     /* a caller passed something unusable */
  HUB_ERR_IO,              /* file or socket I/O failed */
  HUB_ERR_CONFIG,          /* configuration is invalid */
  HUB_ERR_USAGE,           /* command-line usage */
  HUB_ERR_NOT_FOUND,       /* a named thing does not exist */
  HUB_ERR_UNSUPPORTED,     /* valid but not supported here */
  HUB_ERR_TOO_LARGE,       /* input exceeds a size or depth limit */
  HUB_ERR_TIMEOUT,         /* a deadline passed */
  HUB_ERR_TRANSPORT,       /* the transport (Kafka, SQLite) failed; retriable */
  HUB_ERR_TRANSPORT_FATAL, /* the transport instance is unusable and must be recreated */
  HUB_ERR_FENCED,          /* another instance took over our transactional id */
  HUB_ERR_ABORTED,         /* the open transaction was aborted; rewind and redo */
  HUB_ERR_STOPPED,         /* shutdown was requested */
  HUB_ERR_STEP_REJECT,     /* a step rejected the message (test-fault and generic) */
  HUB_ERR_STEP_RETRY,      /* a step asked for a retry and the retries ran out */
  HUB_ERR_JSON,            /* malformed JSON */
  HUB_ERR_XML,             /* malformed XML */
  HUB_ERR_XML_HOSTILE,     /* XML with a DOCTYPE, entities or other refused constructs */
  HUB_ERR_SCHEMA,          /* input does not satisfy its schema */
  HUB_ERR_SCHEMA_INVALID,  /* the schema itself is invalid */
  HUB_ERR_QUERY,           /* an invalid JSONPath or XPath expression */
  HUB_ERR_MAP,             /* a mapping rule failed */
  HUB_ERR_SIG_INVALID,     /* a signature does not verify */
  HUB_ERR_SIG_DIGEST,      /* a reference digest does not match */
  HUB_ERR_SIG_UNTRUSTED,   /* the signer's certificate is not trusted */
  HUB_ERR_SIG_EXPIRED,     /* the signer's certificate is outside its validity period */
  HUB_ERR_SIG_POLICY,      /* an algorithm, transform, reference or key source is not allowed */
  HUB_ERR_SIG_MISSING,     /* no signature, or more than one */
  HUB_ERR_CRYPTO,          /* a crypto library call failed */
  HUB_ERR_HTTP,            /* an HTTP peer answered with an error */
  HUB_ERR_DOWNSTREAM,      /* a downstream system refused the message */
  HUB_ERR_DUPLICATE,       /* a duplicate was absorbed */
  HUB_ERR_AUTH,            /* authentication failed */
  HUB_ERR_UNDECIDED,       /* a check hit a matching limit: neither passed nor failed */
  HUB_ERR_UNAVAILABLE,     /* an endpoint is suspended: its circuit breaker is open */
  HUB_ERR__COUNT
} hub_err_t;

/* A short stable name ("sig-digest") for headers and metrics labels. */
const char *hub_err2name(hub_err_t err);
/* A readable sentence for humans. Never NULL. */
const char *hub_err2str(hub_err_t err);
/* The code for a name written by hub_err2name, or HUB_ERR__COUNT if unknown. */
hub_err_t hub_err_from_name(const char *name);
/* Writes the formatted message into errbuf (when there is one) and returns err. */
hub_err_t hub_errf(char *errbuf, size_t errbuf_size, hub_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
