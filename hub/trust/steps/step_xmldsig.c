/* Steps `sign-xml` and `verify-xml`: XML-DSig on the record's value (hub/trust/xmldsig.h).
 * Keys come from the step's arguments or else from the config's `keys:` section
 * (`keys: {hub: {key, cert}, trust: {ca: [...], crl: [...]}}`). Success sets lt.sig and
 * lt.signer; a verify failure is a REJECT with the precise code and reason, and on a digest
 * mismatch the canonical bytes that were digested as the outcome's detail. verify-xml never
 * changes the value: downstream steps read exactly the bytes whose tree was verified. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/cfgmap.h"
#include "hub/core/registry.h"
#include "hub/trust/truststore.h"
#include "hub/trust/xmldsig.h"
#include "cert_policy_cfg.h"

/* ---- shared: config paths ---- */

/* A scalar at keys.<a>.<b>, or NULL. */
static const struct hub_node *key_node(const struct hub_plugin_env *env, const char *a, const char *b) {
  const struct hub_node *n = env && env->keys ? hub_node_get(hub_node_get(env->keys, a), b) : NULL;
  return n;
}

/* Paths from a list option, else from keys.<a>.<b> (a scalar or a list of scalars). Owned. */
static hub_err_t paths_from(const struct hub_plugin_env *env, const struct hub_str_list *opt, const char *a,
                            const char *b, char ***out, size_t *n, char *errbuf, size_t errbuf_size) {
  const struct hub_node *kn = opt->n ? NULL : key_node(env, a, b);
  size_t cnt = opt->n ? opt->n : !kn ? 0 : kn->kind == HUB_NODE_SEQ ? kn->n : 1;
  *out = NULL;
  *n = 0;
  if (!cnt) return HUB_OK;
  char **v = calloc(cnt, sizeof *v);
  if (!v) return HUB_ERR_NOMEM;
  for (size_t i = 0; i < cnt; i++) {
    const char *s = opt->n ? opt->v[i] : NULL;
    if (!s) {
      const struct hub_node *it = kn->kind == HUB_NODE_SEQ ? kn->items[i] : kn;
      if (it->kind != HUB_NODE_SCALAR) {
        for (size_t j = 0; j < i; j++) free(v[j]);
        free(v);
        return hub_node_error(it, errbuf, errbuf_size, "keys.%s.%s must be a file name or a list of them", a, b);
      }
      s = it->scalar;
    }
    if (!(v[i] = hub_plugin_env_path_new(env, s))) {
      for (size_t j = 0; j < i; j++) free(v[j]);
      free(v);
      return HUB_ERR_NOMEM;
    }
  }
  *out = v;
  *n = cnt;
  return HUB_OK;
}

static void free_paths(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* ---- sign-xml ---- */

struct sign_cfg {
  char *key, *cert;
  int profile, c14n, alg, digest;
};

/* As in the ENUM choices; what hub_xmldsig_signer_new accepts for signing. */
static const char *const profiles[] = {"auto", "edxml", "generic"};
static const char *const c14ns[] = {"exclusive", "inclusive", "inclusive-1.1"};
static const char *const algs[] = {NULL, /* auto: by key type */
                                   "rsa-sha256",     "rsa-sha384",     "rsa-sha512",   "rsa-sha224",
                                   "rsa-pss-sha256", "rsa-pss-sha384", "rsa-pss-sha512", "rsa-pss-sha224",
                                   "ecdsa-sha256",   "ecdsa-sha384",   "ecdsa-sha512", "ecdsa-sha224"};
static const char *const digests[] = {"sha256", "sha384", "sha512", "sha224"};

static const struct hub_cfg_entry sign_entries[] = {
    {"key", HUB_CFG_STR, offsetof(struct sign_cfg, key), NULL, 0, "private key (PEM); default keys.hub.key", NULL,
     NULL, 0, 0},
    {"cert", HUB_CFG_STR, offsetof(struct sign_cfg, cert), NULL, 0,
     "signer certificate (PEM), written into KeyInfo/X509Data; default keys.hub.cert", NULL, NULL, 0, 0},
    {"profile", HUB_CFG_ENUM, offsetof(struct sign_cfg, profile), "auto", 0,
     "where the signature goes: edxml (in edXMLHeader after TraceHeaderList), generic (last child of the root), "
     "auto (edxml for edXML documents)", "auto|edxml|generic", NULL, 0, 0},
    {"alg", HUB_CFG_ENUM, offsetof(struct sign_cfg, alg), "auto", 0,
     "signature algorithm; auto: rsa-sha256 for RSA keys, ecdsa-sha256 or ecdsa-sha384 by the EC key's size; it "
     "must fit the key",
     "auto|rsa-sha256|rsa-sha384|rsa-sha512|rsa-sha224|rsa-pss-sha256|rsa-pss-sha384|rsa-pss-sha512|rsa-pss-sha224|"
     "ecdsa-sha256|ecdsa-sha384|ecdsa-sha512|ecdsa-sha224",
     NULL, 0, 0},
    {"c14n", HUB_CFG_ENUM, offsetof(struct sign_cfg, c14n), "exclusive", 0, "canonicalization",
     "exclusive|inclusive|inclusive-1.1", NULL, 0, 0},
    {"digest", HUB_CFG_ENUM, offsetof(struct sign_cfg, digest), "sha256", 0, "digest of the signed content",
     "sha256|sha384|sha512|sha224", NULL, 0, 0},
    {NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0, 0}};

static const struct hub_cfg_map sign_map = {"sign-xml", sign_entries, .usage = "`- sign-xml: {profile: edxml}`"};

/* Where an error about the step as a whole points: its options, else the keys it fell back to. */
static const struct hub_node *step_at(const struct hub_plugin_env *env) {
  return env->node ? env->node : env->keys;
}

static hub_err_t sign_create(const void *opts, const struct hub_plugin_env *env, void **state, char *errbuf,
                             size_t errbuf_size) {
  const struct sign_cfg *cfg = opts;
  char *key = NULL, *cert = NULL;
  struct hub_xmldsig_signer *s = NULL;
  char why[1024];
  hub_err_t rc = HUB_OK;
  const struct hub_node *kk = key_node(env, "hub", "key"), *kc = key_node(env, "hub", "cert");
  const char *k = cfg->key ? cfg->key : kk && kk->kind == HUB_NODE_SCALAR ? kk->scalar : NULL;
  const char *c = cfg->cert ? cfg->cert : kc && kc->kind == HUB_NODE_SCALAR ? kc->scalar : NULL;
  if (!k || !c) {
    rc = hub_node_error(step_at(env), errbuf, errbuf_size,
                        "sign-xml needs a key and a certificate: give key/cert or keys.hub.key/keys.hub.cert");
    goto out;
  }
  if (!(key = hub_plugin_env_path_new(env, k)) || !(cert = hub_plugin_env_path_new(env, c))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  struct hub_xmldsig_sign_opts o = {.alg = algs[cfg->alg], .c14n = c14ns[cfg->c14n],
                                    .profile = cfg->profile ? profiles[cfg->profile] : NULL,
                                    .digest = digests[cfg->digest]};
  if ((rc = hub_xmldsig_signer_new(key, cert, &o, &s, why, sizeof why)) != HUB_OK) {
    rc = hub_node_error(step_at(env), errbuf, errbuf_size, "sign-xml: %s", why);
    goto out;
  }
  *state = s;
out:
  free(key);
  free(cert);
  return rc;
}

static enum hub_step_result sign_process(void *state, struct hub_msg *msg, struct hub_step_outcome *out) {
  const struct hub_xmldsig_signer *s = state;
  unsigned char *signed_doc = NULL;
  size_t len = 0;
  char why[1024], parent[65];
  hub_err_t rc = hub_xmldsig_sign(s, msg->value, msg->value_len, &signed_doc, &len, why, sizeof why);
  if (rc == HUB_ERR_NOMEM) return hub_step_fail(out, HUB_STEP_RETRY, rc, "sign-xml: %s", why);
  if (rc) return hub_step_fail(out, HUB_STEP_REJECT, rc, "sign-xml: %s", why);
  hub_sha256_hex(msg->value, msg->value_len, parent);
  if (hub_msg_set_value_take(msg, signed_doc, len) || hub_msg_header_set_str(msg, HUB_H_SIG, "signed") ||
      hub_msg_header_set_str(msg, HUB_H_SIGNER, hub_xmldsig_signer_get_identity(s)) ||
      hub_msg_header_set_str(msg, HUB_H_PARENT, parent))
    return hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "sign-xml: out of memory");
  return HUB_STEP_OK;
}

static void sign_destroy(void *state) {
  hub_xmldsig_signer_destroy(state);
}

static const struct hub_step_ops sign_ops = {
    .info = {.name = "sign-xml",
             .summary = "sign the XML value with an enveloped XML-DSig signature (edXML placement); see docs/trust.md",
             .config_map = &sign_map,
             .config_size = sizeof(struct sign_cfg)},
    .create = sign_create,
    .process = sign_process,
    .destroy = sign_destroy,
};
HUB_STEP_PLUGIN(hub_plugin_step_sign_xml, sign_ops);

/* ---- verify-xml ---- */

struct verify_cfg {
  struct hub_str_list trust, crl, pinned;
  int policy;
  int64_t skew_ms, max_size, max_depth;
  struct cert_policy_cfg cert;
  int64_t max_attrs, max_refs, max_transforms, cost_per_byte;
};

static const char *const policies[] = {"default", "legacy-sha1"};

static const struct hub_cfg_entry verify_entries[] = {
    {"trust", HUB_CFG_STR_LIST, offsetof(struct verify_cfg, trust), NULL, 0,
     "trusted CA certificates (PEM files); default keys.trust.ca", NULL, NULL, 0, 0},
    {"crl", HUB_CFG_STR_LIST, offsetof(struct verify_cfg, crl), NULL, 0,
     "certificate revocation lists (PEM files); default keys.trust.crl", NULL, NULL, 0, 0},
    {"pinned", HUB_CFG_STR_LIST, offsetof(struct verify_cfg, pinned), NULL, 0,
     "public keys or certificates (PEM) to verify with instead of KeyInfo", NULL, NULL, 0, 0},
    {"policy", HUB_CFG_ENUM, offsetof(struct verify_cfg, policy), "default", 0,
     "legacy-sha1 also accepts rsa-sha1, ecdsa-sha1 and sha1 digests (legacy edXML producers)",
     "default|legacy-sha1", NULL, 0, 0},
    {"clock_skew", HUB_CFG_DURATION, offsetof(struct verify_cfg, skew_ms), "5m", 0,
     "tolerance for certificate validity periods", NULL, NULL, 0, 86400000},
    {"certificate", HUB_CFG_OBJECT, offsetof(struct verify_cfg, cert), NULL, 0,
     "what a signer's certificate must be (key size, keyUsage, CA, extended key usage); see docs/trust.md", NULL,
     &cert_policy_map, 0, 0},
    {"max_size", HUB_CFG_SIZE, offsetof(struct verify_cfg, max_size), NULL, 0,
     "largest document accepted; default: the route's xml.max_size (16MiB unless set)", NULL, NULL, 1,
     (int64_t)1 << 31},
    {"max_depth", HUB_CFG_INT, offsetof(struct verify_cfg, max_depth), NULL, 0,
     "deepest element nesting accepted; default: the route's xml.max_depth (128 unless set)", NULL, NULL, 1, 10000},
    {"max_attrs", HUB_CFG_INT, offsetof(struct verify_cfg, max_attrs), NULL, 0,
     "most attributes (namespace declarations included) on one element, checked before libxml2 parses; default: "
     "the route's xml.max_attrs (256 unless set)", NULL, NULL, 1, 100000},
    {"max_references", HUB_CFG_INT, offsetof(struct verify_cfg, max_refs), "16", 0,
     "most References in SignedInfo", NULL, NULL, 1, 1000},
    {"max_transforms", HUB_CFG_INT, offsetof(struct verify_cfg, max_transforms), "8", 0,
     "most Transforms in one Reference", NULL, NULL, 1, 100},
    {"c14n_cost_per_byte", HUB_CFG_INT, offsetof(struct verify_cfg, cost_per_byte), "8", 0,
     "estimated canonicalization work allowed per input byte (see docs/trust.md, Limits)", NULL, NULL, 1, 1000000},
    {NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0, 0}};

static const struct hub_cfg_map verify_map = {"verify-xml", verify_entries,
                                              .usage = "`- verify-xml: {trust: [keys/ca.pem]}`"};

static hub_err_t verify_create(const void *opts, const struct hub_plugin_env *env, void **state, char *errbuf,
                               size_t errbuf_size) {
  const struct verify_cfg *cfg = opts;
  char **ca = NULL, **crl = NULL, **pin = NULL;
  size_t n_ca = 0, n_crl = 0, n_pin = 0;
  struct hub_xmldsig_verifier *v = NULL;
  char why[1024];
  hub_err_t rc;
  if ((rc = paths_from(env, &cfg->trust, "trust", "ca", &ca, &n_ca, errbuf, errbuf_size)) ||
      (rc = paths_from(env, &cfg->crl, "trust", "crl", &crl, &n_crl, errbuf, errbuf_size)))
    goto out;
  if (cfg->pinned.n && (rc = paths_from(env, &cfg->pinned, "-", "-", &pin, &n_pin, errbuf, errbuf_size))) goto out;
  if (!n_ca && !n_pin) {
    rc = hub_node_error(step_at(env), errbuf, errbuf_size,
                        "verify-xml needs a trust store: give trust or keys.trust.ca (or pinned keys)");
    goto out;
  }
  struct hub_xmldsig_verify_opts o = {.trust_ca = (const char *const *)ca, .n_trust_ca = n_ca,
                                      .crl = (const char *const *)crl, .n_crl = n_crl,
                                      .pinned = (const char *const *)pin, .n_pinned = n_pin,
                                      .policy = policies[cfg->policy], .clock_skew_s = cfg->skew_ms / 1000,
                                      .max_bytes = (size_t)cfg->max_size, .max_depth = (int)cfg->max_depth,
                                      .max_attrs = (int)cfg->max_attrs, .max_references = (int)cfg->max_refs,
                                      .max_transforms = (int)cfg->max_transforms,
                                      .c14n_cost_per_byte = (int)cfg->cost_per_byte};
  struct hub_cert_policy cp;
  cert_policy_from_cfg(&cfg->cert, &cp);
  o.cert_policy = &cp;
  if ((rc = hub_xmldsig_verifier_new(&o, &v, why, sizeof why)) != HUB_OK) {
    rc = hub_node_error(step_at(env), errbuf, errbuf_size, "verify-xml: %s", why);
    goto out;
  }
  *state = v;
out:
  free_paths(ca, n_ca);
  free_paths(crl, n_crl);
  free_paths(pin, n_pin);
  return rc;
}

static enum hub_step_result verify_process(void *state, struct hub_msg *msg, struct hub_step_outcome *out) {
  const struct hub_xmldsig_verifier *v = state;
  struct hub_xmldsig_result res;
  enum hub_step_result r = HUB_STEP_OK;
  hub_err_t rc = hub_xmldsig_verify(v, msg->value, msg->value_len, NULL, 0, &res);
  if (rc) {
    r = hub_step_fail(out, rc == HUB_ERR_NOMEM ? HUB_STEP_RETRY : HUB_STEP_REJECT, rc, "verify-xml: %s", res.reason);
    free(out->detail);
    out->detail = res.detail; /* taken over by the outcome */
    out->detail_len = res.detail_len;
    res.detail = NULL;
    res.detail_len = 0;
  } else if (hub_msg_header_set_str(msg, HUB_H_SIG, "verified") ||
             hub_msg_header_set_str(msg, HUB_H_SIGNER, res.signer)) {
    r = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "verify-xml: out of memory");
  }
  hub_xmldsig_result_release(&res);
  return r;
}

static void verify_destroy(void *state) {
  hub_xmldsig_verifier_destroy(state);
}

static const struct hub_step_ops verify_ops = {
    .info = {.name = "verify-xml",
             .summary = "verify the XML value's XML-DSig signature against the trust store; see docs/trust.md",
             .config_map = &verify_map,
             .config_size = sizeof(struct verify_cfg)},
    .create = verify_create,
    .process = verify_process,
    .destroy = verify_destroy,
};
HUB_STEP_PLUGIN(hub_plugin_step_verify_xml, verify_ops);
