/* `lienthong sign`: XML-DSig (hub/trust/xmldsig.h) or JWS (hub/trust/jws.h) from the command
 * line, the format told by the content or --profile. */
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

static int sign_main(int argc, char **argv) {
  const char *key = NULL, *cert = NULL, *profile = NULL, *kid = NULL, *alg = NULL, *c14n = NULL, *file = NULL;
  char err[1024];
  int rc = HUB_EXIT_FAIL;
  char *in = NULL;
  unsigned char *out = NULL;
  size_t in_len = 0, out_len = 0;
  char *jws = NULL;
  struct hub_xmldsig_signer *signer = NULL;
  struct hub_jws_key *jkey = NULL;
  for (int i = 1; i < argc; i++) {
    const char **slot = !strcmp(argv[i], "--key")       ? &key
                        : !strcmp(argv[i], "--cert")    ? &cert
                        : !strcmp(argv[i], "--profile") ? &profile
                        : !strcmp(argv[i], "--kid")     ? &kid
                        : !strcmp(argv[i], "--alg")     ? &alg
                        : !strcmp(argv[i], "--c14n")    ? &c14n
                                                        : NULL;
    if (slot) {
      if (i + 1 >= argc) return hub_cmd_usage_error(&cmd, "%s needs a value", argv[i]);
      *slot = argv[++i];
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return hub_cmd_usage_error(&cmd, "unknown option '%s'", argv[i]);
    } else if (file) {
      return hub_cmd_usage_error(&cmd, "only one FILE may be given");
    } else {
      file = argv[i];
    }
  }
  if (!file) return hub_cmd_usage_error(&cmd, "missing FILE");
  if (!key) return hub_cmd_usage_error(&cmd, "missing --key KEY.pem");
  if (profile && strcmp(profile, "edxml") && strcmp(profile, "generic") && strcmp(profile, "jws-compact") &&
      strcmp(profile, "jws-detached"))
    return hub_cmd_usage_error(&cmd, "--profile must be edxml, generic, jws-compact or jws-detached");
  if (hub_file_read_arg(file, TRUST_MAX_INPUT, &in, &in_len, err, sizeof err) != HUB_OK) {
    fprintf(stderr, "lienthong sign: %s\n", err);
    return HUB_EXIT_FAIL;
  }
  int xml = profile ? strncmp(profile, "jws", 3) != 0 : hub_trust_looks_like_xml((const unsigned char *)in, in_len);
  if (xml) {
    if (!cert) {
      free(in);
      return hub_cmd_usage_error(&cmd, "XML signing needs --cert CERT.pem (it goes into X509Data)");
    }
    struct hub_xmldsig_sign_opts o = {.alg = alg, .c14n = c14n, .profile = profile};
    hub_err_t e = hub_xmldsig_signer_new(key, cert, &o, &signer, err, sizeof err);
    if (e) {
      fprintf(stderr, "lienthong sign: %s\n", err);
      rc = e == HUB_ERR_CONFIG ? HUB_EXIT_USAGE : HUB_EXIT_FAIL;
      goto out;
    }
    if (hub_xmldsig_sign(signer, in, in_len, &out, &out_len, err, sizeof err) != HUB_OK) {
      fprintf(stderr, "lienthong sign: %s: %s\n", file, err);
      goto out;
    }
    fwrite(out, 1, out_len, stdout);
  } else {
    if (hub_jws_key_load(key, kid, &jkey, err, sizeof err) != HUB_OK) {
      fprintf(stderr, "lienthong sign: %s\n", err);
      rc = HUB_EXIT_USAGE;
      goto out;
    }
    int detached = profile && !strcmp(profile, "jws-detached");
    if (hub_jws_sign_new(jkey, cert, alg, in, in_len, detached, &jws, err, sizeof err) != HUB_OK) {
      fprintf(stderr, "lienthong sign: %s: %s\n", file, err);
      goto out;
    }
    printf("%s\n", jws);
  }
  rc = fflush(stdout) == 0 ? HUB_EXIT_OK : HUB_EXIT_FAIL;
out:
  hub_xmldsig_signer_destroy(signer);
  hub_jws_key_destroy(jkey);
  free(jws);
  free(out);
  free(in);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "sign",
    .summary = "sign an XML document (XML-DSig) or a payload (JWS)",
    .usage =
        "Usage: lienthong sign --key KEY.pem [--cert CERT.pem] [--profile edxml|generic|jws-compact|jws-detached]\n"
        "                      [--kid ID] [--alg ALG] [--c14n exclusive|inclusive|inclusive-1.1] FILE\n\n"
        "Writes the signed document to standard output (FILE '-' reads standard input).\n"
        "Without --profile, XML (first character '<') gets an enveloped XML-DSig signature, placed\n"
        "inside edXMLHeader after TraceHeaderList for edXML and as the last child of the root\n"
        "otherwise; anything else is signed as a compact JWS.\n\n"
        "Options:\n"
        "  --key KEY.pem     private key (PEM, RSA or EC)\n"
        "  --cert CERT.pem   signer certificate; required for XML (X509Data), optional for JWS (x5c)\n"
        "  --profile P       edxml | generic (XML-DSig), jws-compact | jws-detached (RFC 7515; the\n"
        "                    detached payload is JSON canonicalised with RFC 8785)\n"
        "  --kid ID          JWS key id\n"
        "  --alg ALG         XML: rsa-sha256 (default for RSA), rsa-sha384, rsa-sha512, rsa-pss-sha256,\n"
        "                    rsa-pss-sha384, rsa-pss-sha512, ecdsa-sha256 (default for P-256), ecdsa-sha384\n"
        "                    (default for P-384), ecdsa-sha512; JWS: RS256, PS256, ES256\n"
        "  --c14n C          XML canonicalization: exclusive (default), inclusive, inclusive-1.1\n\n"
        "Exit codes: 0 signed, 1 the input cannot be signed, 2 usage or key error.",
    .main = sign_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_sign, cmd);

