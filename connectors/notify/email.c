/* Sink `email`: one e-mail per record over SMTP (libcurl), with STARTTLS required by default
 * (smtp://, CURLUSESSL_ALL) or implicit TLS (smtps://), AUTH when a user is configured. The
 * recipient, subject and body come from templates filled from the record's JSON value
 * (notify_common.h); the subject and the sender's display name are RFC 2047 encoded-words
 * (UTF-8, base64), the body is text/plain; charset=UTF-8 in base64, and the Message-ID is
 * derived from lt.id. With `journal`, an id the server accepted is written down before the
 * record is acknowledged, so a record delivered again after a crash is not mailed twice.
 * Answers: 250 OK (result record); 4xx, timeouts and connection errors RETRY; 5xx REJECT with
 * the server's reply; a recipient over its rate limit RETRY after the wait. */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/log.h"
#include "hub/core/registry.h"
#include "hub/core/stop.h"
#include "hub/engine/connector.h"
#include "hub/io/breaker.h"
#include "mappings/shape/json.h"
#include "notify_common.h"

struct cfg {
  char *url;
  int starttls;
  char *ca_file;
  char *user, *password_file;
  char *from, *from_name;
  char *to, *subject, *body, *body_file;
  struct notify_limit_cfg per_recipient;
  int64_t timeout_ms;
  int64_t breaker_failures, breaker_open_ms;
  char *journal;
  int64_t journal_max;
};

#define L(f) offsetof(struct notify_limit_cfg, f)
static const struct hub_cfg_entry limit_entries[] = {
    {"count", HUB_CFG_INT, L(count), "0", 0, "notices one recipient may get per `per` (0: no limit)", NULL, NULL, 0,
     100000},
    {"per", HUB_CFG_DURATION, L(per_ms), "1h", 0, "the window of count", NULL, NULL, 10, 86400000},
    {"recipients", HUB_CFG_INT, L(recipients), "10000", 0, "recipients remembered (as SHA-256 digests)", NULL, NULL, 1,
     10000000},
    {NULL},
};
const struct hub_cfg_map notify_limit_map = {"per_recipient", limit_entries};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"url", HUB_CFG_STR, F(url), NULL, 1, "smtp://HOST[:PORT] (STARTTLS) or smtps://HOST[:PORT] (implicit TLS)"},
    {"starttls", HUB_CFG_BOOL, F(starttls), "true", 0,
     "smtp://: require STARTTLS (false only for a relay on this machine)"},
    {"ca_file", HUB_CFG_STR, F(ca_file), NULL, 0, "PEM file of the CAs to trust (default: the system's)"},
    {"user", HUB_CFG_STR, F(user), NULL, 0, "AUTH user (with password_file)"},
    {"password_file", HUB_CFG_STR, F(password_file), NULL, 0, "file holding the AUTH password (first line)"},
    {"sender", HUB_CFG_STR, F(from), NULL, 1, "sender address (MAIL FROM and From:; `from` is the topic)"},
    {"sender_name", HUB_CFG_STR, F(from_name), NULL, 0, "sender's display name (UTF-8, RFC 2047 encoded)"},
    {"to", HUB_CFG_STR, F(to), "{{email}}", 0, "template of the recipient address"},
    {"subject", HUB_CFG_STR, F(subject), NULL, 1, "template of the subject (UTF-8, RFC 2047 encoded)"},
    {"body", HUB_CFG_STR, F(body), NULL, 0, "template of the text body (UTF-8)"},
    {"body_file", HUB_CFG_STR, F(body_file), NULL, 0, "file holding the body template, instead of body"},
    {"per_recipient", HUB_CFG_OBJECT, F(per_recipient), NULL, 0, "rate limit per recipient", NULL, &notify_limit_map},
    {"timeout", HUB_CFG_DURATION, F(timeout_ms), "30s", 0, "one SMTP exchange", NULL, NULL, 100, 600000},
    {"breaker_failures", HUB_CFG_INT, F(breaker_failures), "5", 0,
     "exchanges failing in a row (no reply, 421, TLS, timeout) that open the circuit breaker (0: never)", NULL, NULL, 0,
     1000},
    {"breaker_open_for", HUB_CFG_DURATION, F(breaker_open_ms), "30s", 0,
     "how long the breaker stays open before one probe may go", NULL, NULL, 10, 3600000},
    {"journal", HUB_CFG_STR, F(journal), NULL, 0,
     "file of ids the server accepted: a record redelivered after a crash is not mailed again"},
    {"journal_max", HUB_CFG_INT, F(journal_max), "100000", 0, "ids the journal keeps", NULL, NULL, 100, 100000000},
    {NULL},
};
static hub_err_t email_check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                             size_t errbuf_size) {
  const struct cfg *c = p;
  if (c->url && strncasecmp(c->url, "smtp://", 7) && strncasecmp(c->url, "smtps://", 8))
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size,
                          "url must start with smtp:// or smtps://");
  if (!!c->body == !!c->body_file)
    return hub_node_error(hub_cfg_value_at(node, at, c->body ? "body_file" : "body"), errbuf, errbuf_size,
                          "give one of body and body_file");
  if (!!c->user != !!c->password_file)
    return hub_node_error(hub_cfg_value_at(node, at, c->user ? "password_file" : "user"), errbuf, errbuf_size,
                          "user and password_file go together");
  if (c->from && (!strchr(c->from, '@') || strpbrk(c->from, "<>\r\n ")))
    return hub_node_error(hub_cfg_value_at(node, at, "sender"), errbuf, errbuf_size,
                          "sender must be a bare address like motcua@hanam.gov.vn");
  return HUB_OK;
}
static const struct hub_cfg_constraint rules[] = {
    {"url starts with smtp:// or smtps://", "url", "{url: 'http://x', sender: a@b, subject: s, body: b}",
     "{url: 'smtps://x', sender: a@b, subject: s, body: b}"},
    {"one of body and body_file", "body", "{url: 'smtp://x', sender: a@b, subject: s}",
     "{url: 'smtp://x', sender: a@b, subject: s, body: b}"},
    {"user and password_file go together", "user", "{url: 'smtp://x', sender: a@b, subject: s, body: b, user: u}",
     NULL},
    {"sender is a bare address", "sender", "{url: 'smtp://x', sender: 'A <a@b>', subject: s, body: b}", NULL},
    {NULL},
};
static const struct hub_cfg_map map = {"email", entries, .check = email_check, .constraints = rules};

struct state {
  const struct cfg *cfg;
  CURL *curl;                                                 /* kept: the connection is reused between records */
  char *ca_file, *password_file, *from_header, *journal_path; /* journal opened at the first delivery */
  struct notify_tpl *to, *subject, *body;
  struct notify_limit *limit;
  struct notify_journal *journal;
  struct hub_breaker *breaker;
  char errbuf[CURL_ERROR_SIZE];
};

static void em_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  if (s->curl) curl_easy_cleanup(s->curl);
  free(s->ca_file);
  free(s->password_file);
  free(s->from_header);
  free(s->journal_path);
  notify_tpl_destroy(s->to);
  notify_tpl_destroy(s->subject);
  notify_tpl_destroy(s->body);
  notify_limit_destroy(s->limit);
  notify_journal_close(s->journal);
  hub_breaker_destroy(s->breaker);
  free(s);
}

/* Appends `text` as RFC 2047 encoded-words (UTF-8, base64) of at most 39 bytes each, never
 * cutting a character, folded onto continuation lines so no line passes 76 characters. */
static void encoded_words(struct lt_buf *b, const char *text) {
  size_t len = strlen(text), i = 0;
  int ascii = 1;
  for (size_t k = 0; k < len; k++)
    if ((unsigned char)text[k] >= 0x80 || text[k] == '=' || text[k] == '?' || text[k] < 0x20) ascii = 0;
  if (ascii && len <= 60) {
    lt_buf_str(b, text);
    return;
  }
  while (i < len) {
    size_t n = len - i < 39 ? len - i : 39;
    while (n && i + n < len && ((unsigned char)text[i + n] & 0xC0) == 0x80)
      n--; /* not inside a character */
    unsigned char enc[64];
    EVP_EncodeBlock(enc, (const unsigned char *)text + i, (int)n);
    lt_buf_fmt(b, "%s=?UTF-8?B?%s?=", i ? "\r\n " : "", enc);
    i += n;
  }
}

static hub_err_t tpl(const char *text, const char *what, struct notify_tpl **t, const struct hub_plugin_env *env,
                     char *errbuf, size_t errbuf_size) {
  char e[512];
  hub_err_t rc = notify_tpl_new(text, what, t, e, sizeof e);
  if (rc == HUB_ERR_CONFIG) return hub_node_error(hub_plugin_env_at(env, what), errbuf, errbuf_size, "%s", e);
  return rc;
}

static hub_err_t em_create(const void *cfgp, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  const struct cfg *c = cfgp;
  struct state *s = calloc(1, sizeof *s);
  hub_err_t rc = HUB_ERR_NOMEM;
  char *body_text = NULL;
  *state = NULL;
  if (!s) return rc;
  s->cfg = c;
  if ((c->ca_file && !(s->ca_file = hub_plugin_env_path_new(env, c->ca_file))) ||
      (c->password_file && !(s->password_file = hub_plugin_env_path_new(env, c->password_file))))
    goto out;
  if (c->body_file) {
    char *p = hub_plugin_env_path_new(env, c->body_file);
    FILE *f = p ? fopen(p, "rb") : NULL;
    struct lt_buf b = {0};
    char chunk[4096];
    size_t n;
    while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
      lt_buf_put(&b, chunk, n);
    if (!f) {
      rc = hub_node_error(hub_plugin_env_at(env, "body_file"), errbuf, errbuf_size, "body_file: cannot read %s",
                          p ? p : c->body_file);
      free(p);
      goto out;
    }
    fclose(f);
    free(p);
    if (b.oom) goto out;
    body_text = b.s ? b.s : strdup("");
  }
  if ((rc = tpl(c->to, "to", &s->to, env, errbuf, errbuf_size)) != HUB_OK ||
      (rc = tpl(c->subject, "subject", &s->subject, env, errbuf, errbuf_size)) != HUB_OK ||
      (rc = tpl(body_text ? body_text : c->body, body_text ? "body_file" : "body", &s->body, env, errbuf,
                errbuf_size)) != HUB_OK)
    goto out;
  rc = HUB_ERR_NOMEM;
  struct lt_buf fh = {0};
  if (c->from_name) {
    encoded_words(&fh, c->from_name);
    lt_buf_str(&fh, "\r\n "); /* folded: an encoded-word line stays within 76 characters */
  }
  lt_buf_fmt(&fh, "<%s>", c->from);
  if (fh.oom) goto out;
  s->from_header = fh.s;
  if (c->per_recipient.count > 0 && !(s->limit = notify_limit_new(c->per_recipient.count, c->per_recipient.per_ms,
                                                                  (size_t)c->per_recipient.recipients)))
    goto out;
  if (c->journal && !(s->journal_path = hub_plugin_env_path_new(env, c->journal))) goto out;
  if (!(s->breaker = hub_breaker_new(env && env->owner ? env->owner : "email", c->url, (int)c->breaker_failures,
                                     c->breaker_open_ms)))
    goto out;
  rc = HUB_OK;
out:
  free(body_text);
  if (rc != HUB_OK) {
    if (rc == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "email: out of memory");
    em_destroy(s);
    return rc;
  }
  *state = s;
  return HUB_OK;
}

struct upload {
  const char *p;
  size_t left;
};
static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud) {
  struct upload *u = ud;
  size_t n = size * nitems < u->left ? size * nitems : u->left;
  memcpy(buf, u->p, n);
  u->p += n;
  u->left -= n;
  return n;
}
static int progress_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  (void)ud, (void)a, (void)b, (void)c, (void)d;
  return hub_stop_requested(); /* gives up on the exchange when the hub stops */
}

/* An address usable in RCPT TO and To: (no spaces, brackets or line breaks; one @). */
static int address_ok(const char *a) {
  const char *at = strchr(a, '@');
  return at && at != a && at[1] && !strchr(at + 1, '@') && !strpbrk(a, "<>\r\n\t ,;\"()") && strlen(a) < 255;
}

/* The whole message: headers, a blank line, the body in base64 (CRLF lines). */
static char *message_new(struct state *s, const char *to, const char *subject, const char *body, const char *id) {
  struct lt_buf b = {0};
  char date[64];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  lt_buf_fmt(&b, "Date: %s\r\nFrom: %s\r\nTo: <%s>\r\nSubject: ", date, s->from_header, to);
  encoded_words(&b, subject);
  const char *at = strchr(s->cfg->from, '@');
  lt_buf_fmt(&b,
             "\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
             id, at + 1);
  /* The body with CRLF line ends, then base64 in lines of 76. */
  struct lt_buf crlf = {0};
  for (const char *p = body; *p; p++) {
    if (*p == '\n' && (p == body || p[-1] != '\r')) lt_buf_put(&crlf, "\r", 1);
    lt_buf_put(&crlf, p, 1);
  }
  for (size_t i = 0; i < crlf.len; i += 57) {
    unsigned char enc[80];
    size_t n = crlf.len - i < 57 ? crlf.len - i : 57;
    EVP_EncodeBlock(enc, (const unsigned char *)crlf.s + i, (int)n);
    lt_buf_fmt(&b, "%s\r\n", enc);
  }
  if (crlf.oom) b.oom = 1;
  free(crlf.s);
  if (b.oom) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

static char *read_first_line(const char *path) {
  FILE *f = fopen(path, "r");
  char line[1024];
  if (!f) return NULL;
  char *r = fgets(line, sizeof line, f) ? strndup(line, strcspn(line, "\r\n")) : strdup("");
  fclose(f);
  return r;
}

static enum hub_step_result em_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                       struct hub_step_outcome *out) {
  struct state *s = p;
  const struct cfg *c = s->cfg;
  json_t *doc = NULL;
  char *to = NULL, *subject = NULL, *body = NULL, *msg = NULL, *password = NULL, e[512];
  struct curl_slist *rcpt = NULL;
  enum hub_step_result sr = HUB_STEP_OK;
  const char *id = hub_msg_header_get_str(in, HUB_H_ID);
  char idbuf[37];
  if (!id) { /* the engine gives every record one; a stable stand-in all the same */
    hub_uuid_from_bytes(in->value, in->value_len, idbuf);
    id = idbuf;
  }
  if (c->journal && !s->journal) {
    hub_err_t rc = notify_journal_open(s->journal_path, (size_t)c->journal_max, &s->journal, e, sizeof e);
    if (rc != HUB_OK) return hub_step_fail(out, HUB_STEP_RETRY, rc, "email: %s", e);
  }
  if (lt_json_parse(in->value, in->value_len, "notice", &doc, e, sizeof e) != HUB_OK) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_JSON, "email: %s", e);
    goto out;
  }
  if (!(to = notify_tpl_render(s->to, doc, e, sizeof e)) ||
      !(subject = notify_tpl_render(s->subject, doc, e, sizeof e)) ||
      !(body = notify_tpl_render(s->body, doc, e, sizeof e))) {
    sr = *e ? hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_NOT_FOUND, "email: %s", e)
            : hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "email: out of memory");
    goto out;
  }
  if (!address_ok(to)) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA, "email: recipient '%.200s' is not an e-mail address", to);
    goto out;
  }
  if (strpbrk(subject, "\r\n")) /* a line break would end the header: fold it into a space */
    for (char *q = subject; *q; q++)
      if (*q == '\r' || *q == '\n') *q = ' ';
  if (notify_journal_has(s->journal, id)) { /* accepted before a crash: not again */
    if (!(*result = notify_result_new("email", to, "already-sent", id, NULL)))
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "email: out of memory");
    goto out;
  }
  if (s->limit) {
    int64_t wait = notify_limit_take(s->limit, to);
    if (wait > 0) {
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_TIMEOUT, "email: recipient over its rate limit for %lld ms",
                         (long long)wait);
      out->retry_after_ms = wait;
      goto out;
    }
  }
  if (!(msg = message_new(s, to, subject, body, id))) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "email: out of memory");
    goto out;
  }
  if (s->password_file && !(password = read_first_line(s->password_file))) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_IO, "email: cannot read password_file %s", s->password_file);
    goto out;
  }
  if (!s->curl && !(s->curl = curl_easy_init())) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "email: curl_easy_init failed");
    goto out;
  }
  char from[320], rcpt_to[320];
  snprintf(from, sizeof from, "<%s>", c->from);
  snprintf(rcpt_to, sizeof rcpt_to, "<%s>", to);
  if (!(rcpt = curl_slist_append(NULL, rcpt_to))) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "email: out of memory");
    goto out;
  }
  int64_t wait_ms = 0;
  if (!hub_breaker_allow(s->breaker, &wait_ms)) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_UNAVAILABLE, "email: circuit breaker for %s is open", c->url);
    out->retry_after_ms = wait_ms;
    goto out;
  }
  struct upload up = {msg, strlen(msg)};
  CURL *h = s->curl;
  curl_easy_reset(h); /* options only: the connection stays in the handle's cache */
  s->errbuf[0] = 0;
  curl_easy_setopt(h, CURLOPT_URL, c->url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  if (!strncasecmp(c->url, "smtp://", 7) && c->starttls) curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
  if (s->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
  if (c->user) {
    curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
    curl_easy_setopt(h, CURLOPT_PASSWORD, password);
  }
  curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
  curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
  curl_easy_setopt(h, CURLOPT_READDATA, &up);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
  CURLcode cc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (cc == CURLE_ABORTED_BY_CALLBACK)
    hub_breaker_cancel(s->breaker); /* abandoned: says nothing about the server */
  else /* any reply but 421 (closing) says the server works, also a refusal of this message */
    hub_breaker_record(s->breaker, code > 0 && code != 421);
  if (cc == CURLE_OK) {
    /* Written down before the record is acknowledged: a crash after this sends nothing twice. */
    hub_err_t jr = notify_journal_add(s->journal, id);
    if (jr != HUB_OK)
      hub_log(HUB_LOG_WARN, "email", "journal %s: cannot record %s (%s); a redelivery would mail it again",
              s->journal_path, id, hub_err2str(jr));
    json_t *extra = json_pack("{s:i}", "smtp", (int)code);
    if (!(*result = notify_result_new("email", to, "sent", id, extra)))
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "email: out of memory");
    goto out;
  }
  if (cc == CURLE_ABORTED_BY_CALLBACK) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_STOPPED, "email: the hub is stopping");
    goto out;
  }
  /* A 5xx reply is the server's final word on this message; anything else may pass later. */
  int permanent = code >= 500 && code < 600;
  sr = hub_step_fail(out, permanent ? HUB_STEP_REJECT : HUB_STEP_RETRY, permanent ? HUB_ERR_DOWNSTREAM : HUB_ERR_IO,
                     "email to %s via %s: %s (SMTP %ld): %s", to, c->url, curl_easy_strerror(cc), code,
                     s->errbuf[0] ? s->errbuf : "-");
  if (cc == CURLE_OPERATION_TIMEDOUT) out->code = HUB_ERR_TIMEOUT;
out:
  curl_slist_free_all(rcpt);
  if (password) memset(password, 0, strlen(password));
  free(password);
  free(msg);
  free(to);
  free(subject);
  free(body);
  json_decref(doc);
  return sr;
}

static int em_health(void *p, char *why, size_t why_size) {
  struct state *s = p;
  return hub_breaker_health(s->breaker, why, why_size);
}

static const struct hub_sink_ops ops = {
    .info = {.name = "email",
             .summary = "an e-mail per record over SMTP with STARTTLS, from UTF-8 templates (RFC 2047 subject)",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = em_create,
    .deliver = em_deliver,
    .health = em_health,
    .destroy = em_destroy,
};
HUB_SINK_PLUGIN(hub_plugin_sink_email, ops);
