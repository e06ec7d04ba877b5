/* Names and sentences for hub_err_t; the tables are indexed by the enum. */
#include "hub/core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  const char *text;
} table[HUB_ERR__COUNT] = {
    [HUB_OK] = {"ok", "success"},
    [HUB_ERR_NOMEM] = {"nomem", "out of memory"},
    [HUB_ERR_INVALID_ARG] = {"invalid-arg", "invalid argument"},
    [HUB_ERR_IO] = {"io", "input/output error"},
    [HUB_ERR_CONFIG] = {"config", "invalid configuration"},
    [HUB_ERR_USAGE] = {"usage", "invalid command-line usage"},
    [HUB_ERR_NOT_FOUND] = {"not-found", "not found"},
    [HUB_ERR_UNSUPPORTED] = {"unsupported", "not supported"},
    [HUB_ERR_TOO_LARGE] = {"too-large", "input exceeds a size or depth limit"},
    [HUB_ERR_TIMEOUT] = {"timeout", "timed out"},
    [HUB_ERR_TRANSPORT] = {"transport", "transport error"},
    [HUB_ERR_TRANSPORT_FATAL] = {"transport-fatal", "fatal transport error"},
    [HUB_ERR_FENCED] = {"fenced", "fenced by a newer instance with the same transactional id"},
    [HUB_ERR_ABORTED] = {"aborted", "transaction aborted"},
    [HUB_ERR_STOPPED] = {"stopped", "stopped by request"},
    [HUB_ERR_STEP_REJECT] = {"step-reject", "rejected by a step"},
    [HUB_ERR_STEP_RETRY] = {"retries-exhausted", "retries exhausted"},
    [HUB_ERR_JSON] = {"json", "malformed JSON"},
    [HUB_ERR_XML] = {"xml", "malformed XML"},
    [HUB_ERR_XML_HOSTILE] = {"xml-hostile", "XML construct refused (DOCTYPE, entity or limit)"},
    [HUB_ERR_SCHEMA] = {"schema", "input does not match its schema"},
    [HUB_ERR_SCHEMA_INVALID] = {"schema-invalid", "invalid schema"},
    [HUB_ERR_QUERY] = {"query", "invalid query expression"},
    [HUB_ERR_MAP] = {"map", "mapping failed"},
    [HUB_ERR_SIG_INVALID] = {"sig-invalid", "signature does not verify"},
    [HUB_ERR_SIG_DIGEST] = {"sig-digest", "reference digest mismatch"},
    [HUB_ERR_SIG_UNTRUSTED] = {"sig-untrusted", "signer certificate not trusted"},
    [HUB_ERR_SIG_EXPIRED] = {"sig-expired", "signer certificate outside its validity period"},
    [HUB_ERR_SIG_POLICY] = {"sig-policy", "signature uses something the policy does not allow"},
    [HUB_ERR_SIG_MISSING] = {"sig-missing", "no signature or more than one"},
    [HUB_ERR_CRYPTO] = {"crypto", "cryptographic operation failed"},
    [HUB_ERR_HTTP] = {"http", "HTTP error"},
    [HUB_ERR_DOWNSTREAM] = {"downstream", "refused by the downstream system"},
    [HUB_ERR_DUPLICATE] = {"duplicate", "duplicate absorbed"},
    [HUB_ERR_AUTH] = {"auth", "authentication failed"},
    [HUB_ERR_UNDECIDED] = {"undecided", "a check hit a matching limit and could not decide"},
    [HUB_ERR_UNAVAILABLE] = {"unavailable", "endpoint suspended (circuit breaker open)"},
};

const char *hub_err2name(hub_err_t err) {
  if ((unsigned)err >= HUB_ERR__COUNT || !table[err].name) return "unknown";
  return table[err].name;
}

const char *hub_err2str(hub_err_t err) {
  if ((unsigned)err >= HUB_ERR__COUNT || !table[err].text) return "unknown error";
  return table[err].text;
}

hub_err_t hub_err_from_name(const char *name) {
  for (int i = 0; i < HUB_ERR__COUNT; i++)
    if (table[i].name && name && strcmp(table[i].name, name) == 0) return (hub_err_t)i;
  return HUB_ERR__COUNT;
}

hub_err_t hub_errf(char *errbuf, size_t errbuf_size, hub_err_t err, const char *fmt, ...) {
  if (errbuf && errbuf_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errbuf_size, fmt, ap);
    va_end(ap);
  }
  return err;
}
