/* `lienthong verify`: XML-DSig (hub/trust/xmldsig.h) or JWS (hub/trust/jws.h), told apart by
 * the content; exit 0 valid, 1 invalid (malformed and hostile input included), 2 usage. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/err.h"
#include "hub/core/registry.h"
#include "hub/trust/jws.h"
#include "hub/trust/cli/cli.h"
#include "hub/core/files.h"
#include "hub/trust/truststore.h"
#include "hub/trust/xmldsig.h"

#define TRUST_MAX_INPUT (64u * 1024u * 1024u)
#define MAX_LIST 32

static const struct hub_cmd cmd;

static int write_detail(const char *path, const unsigned char *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(d, 1, n, f);
  return fclose(f) == 0 && w == n ? 0 : -1;
}

/* --limit NAME=N: the verifier's bounds against denial of service (docs/trust.md, "Limits"). */
static int set_limit(struct hub_xmldsig_verify_opts *o, const char *arg) {
  static const struct {
    const char *name;
    size_t off;
  } t[] = {{"max_attrs", offsetof(struct hub_xmldsig_verify_opts, max_attrs)},
           {"max_references", offsetof(struct hub_xmldsig_verify_opts, max_references)},
           {"max_transforms", offsetof(struct hub_xmldsig_verify_opts, max_transforms)},
           {"c14n_cost_per_byte", offsetof(struct hub_xmldsig_verify_opts, c14n_cost_per_byte)},
           {"max_depth", offsetof(struct hub_xmldsig_verify_opts, max_depth)}};
  const char *eq = strchr(arg, '=');
  char *end;
  long n = eq ? strtol(eq + 1, &end, 10) : 0;
  for (size_t i = 0; eq && i < sizeof t / sizeof t[0]; i++)
    if (strlen(t[i].name) == (size_t)(eq - arg) && !strncmp(arg, t[i].name, (size_t)(eq - arg))) {
      if (!eq[1] || *end || n < 1 || n > 1000000) return -1;
      *(int *)((char *)o + t[i].off) = (int)n;
      return 0;
    }
  return -1;
}

static int verify_main(int argc, char **argv) {
  const char *trust[MAX_LIST], *crl[MAX_LIST], *pin[MAX_LIST];
  size_t n_trust = 0, n_crl = 0, n_pin = 0;
  const char *policy = NULL, *file = NULL, *element_id = NULL, *detail_path = NULL, *payload_path = NULL;
  int64_t skew = -1;
  char err[1024];
  int rc = HUB_EXIT_FAIL;
  char *in = NULL, *payload = NULL;
  size_t in_len = 0, payload_len = 0;
  struct hub_xmldsig_verifier *v = NULL;
  struct hub_xmldsig_result res = {0};
  struct hub_jws_key *jpins[MAX_LIST] = {0};
  struct hub_xmldsig_verify_opts o = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int takes = !strcmp(a, "--trust") || !strcmp(a, "--crl") || !strcmp(a, "--pin") || !strcmp(a, "--policy") ||
                !strcmp(a, "--skew") || !strcmp(a, "--element-id") || !strcmp(a, "--detail") ||
                !strcmp(a, "--payload") || !strcmp(a, "--limit") || !strcmp(a, "--engine");
    if (takes && i + 1 >= argc) return hub_cmd_usage_error(&cmd, "%s needs a value", a);
    if (takes && (n_trust == MAX_LIST || n_crl == MAX_LIST || n_pin == MAX_LIST))
      return hub_cmd_usage_error(&cmd, "too many files (at most %d each)", MAX_LIST);
    if (!strcmp(a, "--trust")) trust[n_trust++] = argv[++i];
    else if (!strcmp(a, "--crl")) crl[n_crl++] = argv[++i];
    else if (!strcmp(a, "--pin")) pin[n_pin++] = argv[++i];
    else if (!strcmp(a, "--policy")) policy = argv[++i];
    else if (!strcmp(a, "--element-id")) element_id = argv[++i];
    else if (!strcmp(a, "--detail")) detail_path = argv[++i];
    else if (!strcmp(a, "--payload")) payload_path = argv[++i];
    else if (!strcmp(a, "--engine")) {
      o.engine = argv[++i];
      if (strcmp(o.engine, "direct") && strcmp(o.engine, "xmlsec"))
        return hub_cmd_usage_error(&cmd, "--engine must be direct or xmlsec");
    }
    else if (!strcmp(a, "--limit")) {
      if (set_limit(&o, argv[++i]) < 0)
        return hub_cmd_usage_error(&cmd, "--limit takes NAME=N (1..1000000) with NAME one of max_attrs, "
                                   "max_references, max_transforms, c14n_cost_per_byte, max_depth; got '%s'", argv[i]);
    }
    else if (!strcmp(a, "--skew")) {
      char *end;
      long long s = strtoll(argv[++i], &end, 10);
      if (*end || s < 0) return hub_cmd_usage_error(&cmd, "--skew takes seconds (>= 0)");
      skew = s;
    } else if (a[0] == '-' && a[1]) return hub_cmd_usage_error(&cmd, "unknown option '%s'", a);
    else if (file) return hub_cmd_usage_error(&cmd, "only one FILE may be given");
    else file = a;
  }
  if (!file) return hub_cmd_usage_error(&cmd, "missing FILE");
  if (!n_trust && !n_pin) return hub_cmd_usage_error(&cmd, "give --trust CA.pem (or --pin KEY.pem)");
  if (policy && strcmp(policy, "default") && strcmp(policy, "legacy-sha1"))
    return hub_cmd_usage_error(&cmd, "--policy must be default or legacy-sha1");
  hub_err_t e = hub_file_read_arg(file, TRUST_MAX_INPUT, &in, &in_len, err, sizeof err);
  if (e) {
    fprintf(stderr, "lienthong verify: invalid (%s): %s\n", hub_err2name(e), err);
    return e == HUB_ERR_IO ? HUB_EXIT_USAGE : HUB_EXIT_FAIL;
  }
  if (hub_trust_looks_like_xml((const unsigned char *)in, in_len)) {
    o.trust_ca = trust, o.n_trust_ca = n_trust, o.crl = crl, o.n_crl = n_crl;
    o.pinned = pin, o.n_pinned = n_pin, o.policy = policy, o.clock_skew_s = skew;
    if ((e = hub_xmldsig_verifier_new(&o, &v, err, sizeof err)) != HUB_OK) {
      fprintf(stderr, "lienthong verify: %s\n", err);
      rc = HUB_EXIT_USAGE;
      goto out;
    }
    e = hub_xmldsig_verify(v, in, in_len, element_id, 0, &res);
    if (e) {
      fprintf(stderr, "lienthong verify: %s: invalid (%s): %s\n", file, hub_err2name(e), res.reason);
      if (res.detail && detail_path && write_detail(detail_path, res.detail, res.detail_len) < 0)
        fprintf(stderr, "lienthong verify: cannot write %s\n", detail_path);
      goto out;
    }
    printf("valid: %s\n", res.signer);
    rc = HUB_EXIT_OK;
  } else {
    struct hub_jws_verify_opts jo = {.trust_ca = trust, .n_trust_ca = n_trust, .clock_skew_s = skew < 0 ? 300 : skew};
    for (size_t i = 0; i < n_pin; i++)
      if (hub_jws_key_load(pin[i], NULL, &jpins[i], err, sizeof err) != HUB_OK) {
        fprintf(stderr, "lienthong verify: %s\n", err);
        rc = HUB_EXIT_USAGE;
        goto out;
      }
    jo.pinned = (const struct hub_jws_key *const *)jpins;
    jo.n_pinned = n_pin;
    if (payload_path) {
      if (hub_file_read_arg(payload_path, TRUST_MAX_INPUT, &payload, &payload_len, err, sizeof err) != HUB_OK) {
        fprintf(stderr, "lienthong verify: %s\n", err);
        rc = HUB_EXIT_USAGE;
        goto out;
      }
      jo.detached_payload = payload;
      jo.detached_len = payload_len;
    }
    char signer[512] = "";
    e = hub_jws_verify(in, in_len, &jo, NULL, NULL, signer, sizeof signer, err, sizeof err);
    if (e) {
      fprintf(stderr, "lienthong verify: %s: invalid (%s): %s\n", file, hub_err2name(e), err);
      goto out;
    }
    printf("valid: %s\n", signer);
    rc = HUB_EXIT_OK;
  }
out:
  for (size_t i = 0; i < n_pin; i++) hub_jws_key_destroy(jpins[i]);
  hub_xmldsig_result_release(&res);
  hub_xmldsig_verifier_destroy(v);
  free(payload);
  free(in);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "verify",
    .summary = "verify an XML-DSig signed document or a JWS",
    .usage = "Usage: lienthong verify --trust CA.pem [--trust CA2.pem ...] [--crl CRL.pem ...]\n"
             "                        [--policy default|legacy-sha1] [--skew SECONDS] [--pin KEY.pem ...]\n"
             "                        [--detail OUT] [--payload JSON] [--element-id ID] [--limit NAME=N ...]\n"
             "                        [--engine direct|xmlsec] FILE\n\n"
             "Verifies FILE: XML-DSig when it starts with '<', otherwise a JWS (compact, or detached with\n"
             "--payload). Prints 'valid: SUBJECT; sha256=THUMBPRINT' on success; on failure prints\n"
             "'invalid (CODE): REASON' on standard error. Malformed or hostile input is invalid.\n\n"
             "Options:\n"
             "  --trust CA.pem    trusted CA certificates (PEM); the signer's chain must end in one\n"
             "  --crl CRL.pem     certificate revocation lists; then every chain certificate needs one\n"
             "  --policy P        legacy-sha1 also accepts rsa-sha1, ecdsa-sha1 and sha1 digests\n"
             "  --skew SECONDS    tolerance for certificate validity periods (default 300)\n"
             "  --pin KEY.pem     verify with this public key or certificate only; KeyInfo is ignored\n"
             "  --detail OUT      on a digest mismatch, write the canonical bytes that were digested\n"
             "  --payload JSON    the payload of a detached JWS\n"
             "  --element-id ID   XML: the processed element is the one with this Id (default: the root)\n"
             "  --limit NAME=N    XML: a bound against denial of service (docs/trust.md, Limits): max_attrs\n"
             "                    (per element, 256), max_references (16), max_transforms (per reference, 8),\n"
             "                    c14n_cost_per_byte (8), max_depth (128)\n"
             "  --engine E        XML: direct (default) digests the usual reference shapes by canonicalising\n"
             "                    straight into the digest; xmlsec runs xmlsec's own verification for every\n"
             "                    shape (the reference the direct path is tested against; slower)\n\n"
             "Exit codes: 0 valid, 1 invalid, 2 usage error.",
    .main = verify_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_verify, cmd);
