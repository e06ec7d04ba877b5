/* Steps `sign-jws` and `verify-jws`: JWS (hub/trust/jws.h) on the record's value.
 *   compact:  sign-jws replaces the value with `h.p.s`; verify-jws checks the value and (unwrap,
 *             the default) replaces it with the exact payload bytes that were signed, keeping the
 *             token in the `lt.jws` header and its SHA-256 in lt.parent.
 *   detached: the value stays the JSON payload; the `h..s` token travels in a header (lt.jws);
 *             the signature covers the RFC 8785 canonical form of the value.
 * Keys come from the step's arguments, else from the config's `keys:` section
 * (keys.hub.key/cert for signing, keys.trust.ca/crl for verifying). Success sets lt.sig
 * (signed|verified) and lt.signer. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/cfgmap.h"
#include "hub/core/registry.h"
#include "hub/trust/jws.h"
#include "hub/trust/truststore.h"
#include "cert_policy_cfg.h"

#define DEFAULT_HEADER "lt.jws"

static const char *const algs[] = {NULL, "RS256", "PS256", "ES256"}; /* index 0: by key type */

/* keys.<section>.<name> as a scalar, or NULL. */
static const char *keys_scalar(const struct hub_plugin_env *env, const char *section, const char *name) {
  const struct hub_node *n = env->keys ? hub_node_get(hub_node_get(env->keys, section), name) : NULL;
  return n && n->kind == HUB_NODE_SCALAR ? n->scalar : NULL;
}

/* Where an error about the step as a whole points: its options, else the keys it fell back to.
 * (`- sign-jws:` with nothing after it is all defaults.) */
static const struct hub_node *step_at(const struct hub_plugin_env *env) {
  const struct hub_node *n = env->node;
  return n && !(n->kind == HUB_NODE_SCALAR && !*n->scalar) ? n : env->keys;
}

/* ---- sign-jws ---- */

struct sign_cfg {
  char *key, *cert, *kid, *header;
  int alg, mode, x5c;
};

static const struct hub_cfg_entry sign_entries[] = {
    {"key", HUB_CFG_STR, offsetof(struct sign_cfg, key), NULL, 0, "private key (PEM); default keys.hub.key", NULL, NULL,
     0, 0},
    {"cert", HUB_CFG_STR, offsetof(struct sign_cfg, cert), NULL, 0,
     "signer certificate chain (PEM, leaf first) carried in the x5c header; default keys.hub.cert", NULL, NULL, 0, 0},
    {"x5c", HUB_CFG_BOOL, offsetof(struct sign_cfg, x5c), "true", 0,
     "carry the certificate chain in x5c (false: receivers must pin the key by kid)", NULL, NULL, 0, 0},
    {"kid", HUB_CFG_STR, offsetof(struct sign_cfg, kid), NULL, 0, "key id written into the header", NULL, NULL, 0, 0},
    {"alg", HUB_CFG_ENUM, offsetof(struct sign_cfg, alg), "auto", 0,
     "auto (RS256 for RSA keys, ES256 for EC P-256 keys), RS256, PS256 or ES256", "auto|RS256|PS256|ES256", NULL, 0, 0},
    {"mode", HUB_CFG_ENUM, offsetof(struct sign_cfg, mode), "compact", 0,
     "compact: the value becomes the JWS; detached: the value stays, the JWS goes into `header`", "compact|detached",
     NULL, 0, 0},
    {"header", HUB_CFG_STR, offsetof(struct sign_cfg, header), DEFAULT_HEADER, 0,
     "header that carries the detached JWS", NULL, NULL, 0, 0},
    {NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0, 0}};

static const struct hub_cfg_map sign_map = {"sign-jws", sign_entries, .usage = "`- sign-jws: {mode: detached}`"};

struct signer {
  struct hub_jws_signer *jws;
  char *header;
  int detached;
};

static void sign_destroy(void *state) {
  struct signer *s = state;
  if (!s) return;
  hub_jws_signer_destroy(s->jws);
  free(s->header);
  free(s);
}

static hub_err_t sign_create(const void *opts, const struct hub_plugin_env *env, void **state, char *errbuf,
                             size_t errbuf_size) {
  const struct sign_cfg *cfg = opts;
  struct signer *s = calloc(1, sizeof *s);
  char *key_path = NULL, *cert_path = NULL, why[1024];
  struct hub_jws_key *key = NULL;
  const struct hub_node *at = step_at(env);
  hub_err_t rc = HUB_OK;
  if (!s) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  const char *k = cfg->key ? cfg->key : keys_scalar(env, "hub", "key");
  const char *c = cfg->cert ? cfg->cert : keys_scalar(env, "hub", "cert");
  if (!k) {
    rc = hub_node_error(at, errbuf, errbuf_size, "sign-jws needs a private key: give key or keys.hub.key");
    goto out;
  }
  s->detached = cfg->mode == 1;
  if (!(key_path = hub_plugin_env_path_new(env, k)) ||
      (c && cfg->x5c && !(cert_path = hub_plugin_env_path_new(env, c))) || !(s->header = strdup(cfg->header))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  /* the key, alg and certificate are checked here, once, not on every record */
  if ((rc = hub_jws_key_load(key_path, cfg->kid, &key, why, sizeof why)) ||
      (rc = hub_jws_signer_new(key, cert_path, algs[cfg->alg], &s->jws, why, sizeof why))) {
    rc = hub_node_error(at, errbuf, errbuf_size, "sign-jws: %s", why);
    goto out;
  }
  *state = s;
  s = NULL;
out:
  free(key_path);
  free(cert_path);
  hub_jws_key_destroy(key);
  sign_destroy(s);
  return rc;
}

static enum hub_step_result sign_process(void *state, struct hub_msg *msg, struct hub_step_outcome *out) {
  const struct signer *s = state;
  char *jws = NULL, why[1024], parent[65];
  hub_err_t rc = hub_jws_signer_sign(s->jws, msg->value, msg->value_len, s->detached, &jws, why, sizeof why);
  if (rc == HUB_ERR_NOMEM) return hub_step_fail(out, HUB_STEP_RETRY, rc, "sign-jws: %s", why);
  if (rc) return hub_step_fail(out, HUB_STEP_REJECT, rc, "sign-jws: %s", why);
  size_t len = strlen(jws);
  if (s->detached) {
    rc = hub_msg_header_set(msg, s->header, jws, len);
    free(jws);
  } else {
    hub_sha256_hex(msg->value, msg->value_len, parent);
    rc = hub_msg_set_value_take(msg, (unsigned char *)jws, len);
    if (!rc) rc = hub_msg_header_set_str(msg, HUB_H_PARENT, parent);
    if (!rc) rc = hub_msg_header_set_str(msg, HUB_H_CONTENT_TYPE, "application/jose");
  }
  if (!rc) rc = hub_msg_header_set_str(msg, HUB_H_SIG, "signed");
  if (!rc) rc = hub_msg_header_set_str(msg, HUB_H_SIGNER, hub_jws_signer_get_identity(s->jws));
  if (rc) return hub_step_fail(out, HUB_STEP_RETRY, rc, "sign-jws: out of memory");
  return HUB_STEP_OK;
}

static const struct hub_step_ops sign_ops = {
    .info = {.name = "sign-jws",
             .summary = "sign the value as a JWS (RS256/PS256/ES256), compact or detached with RFC 8785; see docs/jws.md",
             .config_map = &sign_map,
             .config_size = sizeof(struct sign_cfg)},
    .create = sign_create,
    .process = sign_process,
    .destroy = sign_destroy,
};
HUB_STEP_PLUGIN(hub_plugin_step_sign_jws, sign_ops);

/* ---- verify-jws ---- */

struct verify_cfg {
  struct hub_str_list trust, crl;
  struct hub_str_map keys;
  char *header;
  int mode, unwrap;
  int64_t skew_ms;
  struct cert_policy_cfg cert;
};

static const struct hub_cfg_entry verify_entries[] = {
    {"keys", HUB_CFG_STR_MAP, offsetof(struct verify_cfg, keys), NULL, 0,
     "pinned keys, a mapping of kid to PEM file (public key, certificate or private key); the header's kid selects one",
     NULL, NULL, 0, 0},
    {"trust", HUB_CFG_STR_LIST, offsetof(struct verify_cfg, trust), NULL, 0,
     "trusted CA certificates (PEM) for the x5c chain; default keys.trust.ca", NULL, NULL, 0, 0},
    {"crl", HUB_CFG_STR_LIST, offsetof(struct verify_cfg, crl), NULL, 0,
     "certificate revocation lists (PEM); default keys.trust.crl", NULL, NULL, 0, 0},
    {"mode", HUB_CFG_ENUM, offsetof(struct verify_cfg, mode), "compact", 0,
     "compact: the value is the JWS; detached: the value is the JSON payload and the JWS is in `header`",
     "compact|detached", NULL, 0, 0},
    {"header", HUB_CFG_STR, offsetof(struct verify_cfg, header), DEFAULT_HEADER, 0,
     "header with the detached JWS; in compact mode the header that keeps the token after unwrapping", NULL, NULL, 0,
     0},
    {"unwrap", HUB_CFG_BOOL, offsetof(struct verify_cfg, unwrap), "true", 0,
     "compact mode: replace the value with the verified payload bytes", NULL, NULL, 0, 0},
    {"clock_skew", HUB_CFG_DURATION, offsetof(struct verify_cfg, skew_ms), "5m", 0,
     "tolerance for certificate validity periods", NULL, NULL, 0, 86400000},
    {"certificate", HUB_CFG_OBJECT, offsetof(struct verify_cfg, cert), NULL, 0,
     "what an x5c signer's certificate must be (key size, keyUsage, CA, extended key usage); see docs/trust.md", NULL,
     &cert_policy_map, 0, 0},
    {NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0, 0}};

static const struct hub_cfg_map verify_map = {"verify-jws", verify_entries,
                                              .usage = "`- verify-jws: {keys: {KID: keys/KID.pem}}`"};

struct verifier {
  struct hub_jws_key **pinned;
  size_t n_pinned;
  struct hub_truststore *ts;
  char *header;
  int detached, unwrap;
};

static void verify_destroy(void *state) {
  struct verifier *v = state;
  if (!v) return;
  for (size_t i = 0; i < v->n_pinned; i++) hub_jws_key_destroy(v->pinned[i]);
  free(v->pinned);
  hub_truststore_destroy(v->ts);
  free(v->header);
  free(v);
}

/* Paths from the option, else keys.trust.<name> (a scalar or a list). Owned, relative to the config. */
static hub_err_t trust_paths(const struct hub_plugin_env *env, const struct hub_str_list *opt, const char *name,
                             struct hub_str_list *out, char *errbuf, size_t errbuf_size) {
  const struct hub_node *kn = opt->n || !env->keys ? NULL : hub_node_get(hub_node_get(env->keys, "trust"), name);
  size_t n = opt->n ? opt->n : !kn ? 0 : kn->kind == HUB_NODE_SEQ ? kn->n : 1;
  out->v = NULL;
  out->n = 0;
  if (!n) return HUB_OK;
  if (!(out->v = calloc(n, sizeof *out->v))) return HUB_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    const struct hub_node *it = opt->n ? NULL : kn->kind == HUB_NODE_SEQ ? kn->items[i] : kn;
    if (it && it->kind != HUB_NODE_SCALAR)
      return hub_node_error(it, errbuf, errbuf_size, "keys.trust.%s must be a file name or a list of them", name);
    if (!(out->v[i] = hub_plugin_env_path_new(env, it ? it->scalar : opt->v[i]))) return HUB_ERR_NOMEM;
    out->n = i + 1;
  }
  return HUB_OK;
}

static hub_err_t verify_create(const void *opts, const struct hub_plugin_env *env, void **state, char *errbuf,
                               size_t errbuf_size) {
  const struct verify_cfg *cfg = opts;
  struct hub_str_list ca = {0}, crl = {0};
  struct verifier *v = calloc(1, sizeof *v);
  char why[1024], *path = NULL;
  const struct hub_node *at = step_at(env);
  hub_err_t rc = HUB_OK;
  if (!v || !(v->header = strdup(cfg->header))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  v->detached = cfg->mode == 1;
  v->unwrap = cfg->unwrap;
  if (cfg->keys.n && !(v->pinned = calloc(cfg->keys.n, sizeof *v->pinned))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  for (size_t i = 0; i < cfg->keys.n; i++) {
    free(path);
    if (!(path = hub_plugin_env_path_new(env, cfg->keys.values[i]))) {
      rc = HUB_ERR_NOMEM;
      goto out;
    }
    if ((rc = hub_jws_key_load(path, cfg->keys.keys[i], &v->pinned[i], why, sizeof why))) {
      /* the place of that key's file name */
      const struct hub_node *kn = hub_node_get(hub_plugin_env_at(env, "keys"), cfg->keys.keys[i]);
      rc = hub_node_error(kn ? kn : at, errbuf, errbuf_size, "verify-jws: %s", why);
      goto out;
    }
    v->n_pinned = i + 1;
  }
  if ((rc = trust_paths(env, &cfg->trust, "ca", &ca, errbuf, errbuf_size)) ||
      (rc = trust_paths(env, &cfg->crl, "crl", &crl, errbuf, errbuf_size)))
    goto out;
  if (ca.n && (rc = hub_truststore_new((const char *const *)ca.v, ca.n, (const char *const *)crl.v, crl.n,
                                       cfg->skew_ms / 1000, &v->ts, why, sizeof why))) {
    rc = hub_node_error(at, errbuf, errbuf_size, "verify-jws: %s", why);
    goto out;
  }
  struct hub_cert_policy cp;
  cert_policy_from_cfg(&cfg->cert, &cp);
  if (v->ts && (rc = hub_truststore_set_policy(v->ts, &cp, why, sizeof why))) {
    const struct hub_node *pn = hub_plugin_env_at(env, "certificate");
    rc = hub_node_error(pn ? pn : at, errbuf, errbuf_size, "verify-jws: %s", why);
    goto out;
  }
  if (!v->n_pinned && !v->ts) {
    rc = hub_node_error(at, errbuf, errbuf_size,
                        "verify-jws needs pinned keys (keys: {KID: FILE}) or trusted CAs (trust, or keys.trust.ca)");
    goto out;
  }
  *state = v;
  v = NULL;
out:
  free(path);
  hub_str_list_release(&ca);
  hub_str_list_release(&crl);
  verify_destroy(v);
  return rc;
}

static enum hub_step_result verify_process(void *state, struct hub_msg *msg, struct hub_step_outcome *out) {
  const struct verifier *v = state;
  char why[1024], signer[700], parent[65];
  char *payload = NULL;
  size_t payload_len = 0;
  struct hub_jws_verify_opts o = {.pinned = (const struct hub_jws_key *const *)v->pinned, .n_pinned = v->n_pinned,
                                  .truststore = v->ts};
  const char *jws = (const char *)msg->value;
  size_t jws_len = msg->value_len;
  if (v->detached) {
    const struct hub_header *h = hub_msg_header_get(msg, v->header);
    if (!h) return hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SIG_MISSING, "verify-jws: no %s header with the detached JWS", v->header);
    jws = (const char *)h->value;
    jws_len = h->value_len;
    o.detached_payload = msg->value;
    o.detached_len = msg->value_len;
  }
  hub_err_t rc = hub_jws_verify(jws, jws_len, &o, v->detached || !v->unwrap ? NULL : &payload, &payload_len, signer,
                                sizeof signer, why, sizeof why);
  if (rc == HUB_ERR_NOMEM) return hub_step_fail(out, HUB_STEP_RETRY, rc, "verify-jws: %s", why);
  if (rc) return hub_step_fail(out, HUB_STEP_REJECT, rc, "verify-jws: %s", why);
  if (payload) {
    /* the token stays with the record; the value becomes exactly the signed bytes */
    hub_sha256_hex(msg->value, msg->value_len, parent);
    rc = hub_msg_header_set(msg, v->header, msg->value, msg->value_len);
    if (!rc) rc = hub_msg_header_set_str(msg, HUB_H_PARENT, parent);
    if (!rc) rc = hub_msg_set_value_take(msg, (unsigned char *)payload, payload_len);
    else free(payload);
  }
  if (!rc) rc = hub_msg_header_set_str(msg, HUB_H_SIG, "verified");
  if (!rc) rc = hub_msg_header_set_str(msg, HUB_H_SIGNER, signer);
  if (rc) return hub_step_fail(out, HUB_STEP_RETRY, rc, "verify-jws: out of memory");
  return HUB_STEP_OK;
}

static const struct hub_step_ops verify_ops = {
    .info = {.name = "verify-jws",
             .summary = "verify a compact or detached (RFC 8785) JWS against pinned keys or trusted CAs; see docs/jws.md",
             .config_map = &verify_map,
             .config_size = sizeof(struct verify_cfg)},
    .create = verify_create,
    .process = verify_process,
    .destroy = verify_destroy,
};
HUB_STEP_PLUGIN(hub_plugin_step_verify_jws, verify_ops);
