/* The signer certificate policy (hub_truststore_set_policy): key size, keyUsage, CA as signer,
 * extended key usage; each refusal names the certificate and the rule. The certificates are
 * made by the openssl command line, each chained to one test CA, so only the policy refuses. */
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hub/trust/truststore.h"

static char dir[] = "/tmp/lt-certpol.XXXXXX";

static int sh(const char *fmt, ...) {
  char cmd[2048], line[2200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  snprintf(line, sizeof line, "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
  int rc = system(line);
  if (rc) fprintf(stderr, "failed: %s\n", cmd);
  return rc;
}

/* A leaf NAME with key options KEYOPT and extension lines EXT, signed by the test CA. */
static void leaf(const char *name, const char *keyopt, const char *ext) {
  CHECK(sh("openssl genpkey %s -out %s.key && printf '%s' > %s.ext && "
           "openssl req -new -key %s.key -subj '/C=VN/O=So TTTT/CN=%s' -out %s.csr && "
           "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile %s.ext -out %s.pem",
           keyopt, name, ext, name, name, name, name, name, name, name) == 0);
}

static X509 *load(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s.pem", dir, name);
  FILE *f = fopen(path, "r");
  X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f) fclose(f);
  CHECK(x != NULL);
  return x;
}

static void expect(struct hub_truststore *ts, const char *name, hub_err_t want, const char *reason) {
  char errbuf[1024] = "";
  X509 *x = load(name);
  hub_err_t got = x ? hub_truststore_check(ts, x, NULL, 0, errbuf, sizeof errbuf) : HUB_ERR_IO;
  CHECK(got == want);
  if (reason) CHECK_CONTAINS(errbuf, reason);
  printf("%-12s %-28s %s\n", name, got == HUB_OK ? "accepted" : hub_err2str(got), errbuf);
  X509_free(x);
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  const char *rsa = "-algorithm RSA -pkeyopt rsa_keygen_bits:2048";
  const char *sign_ku = "basicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature,nonRepudiation\\n";
  CHECK(sh("openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 "
           "-subj '/C=VN/CN=Policy Test CA' -addext basicConstraints=critical,CA:TRUE "
           "-addext keyUsage=critical,keyCertSign,cRLSign") == 0);
  leaf("good", rsa, sign_ku);
  leaf("ec256", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256", sign_ku);
  leaf("rsa1024", "-algorithm RSA -pkeyopt rsa_keygen_bits:1024", sign_ku);
  leaf("noku", rsa, "basicConstraints=critical,CA:FALSE\\n");
  leaf("encrypt", rsa, "basicConstraints=critical,CA:FALSE\\nkeyUsage=critical,keyEncipherment\\n");
  leaf("casigner", rsa, "basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,digitalSignature,keyCertSign\\n");
  leaf("client", rsa, "basicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature\\nextendedKeyUsage=clientAuth\\n");
  leaf("email", rsa, "basicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature\\nextendedKeyUsage=emailProtection\\n");

  char ca[300], errbuf[1024];
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  const char *cas[] = {ca};
  struct hub_truststore *ts = NULL;
  CHECK(hub_truststore_new(cas, 1, NULL, 0, -1, &ts, errbuf, sizeof errbuf) == HUB_OK);
  if (!ts) return check_done();

  puts("-- default policy");
  expect(ts, "good", HUB_OK, NULL);
  expect(ts, "ec256", HUB_OK, NULL);
  expect(ts, "client", HUB_OK, NULL); /* no EKU rule by default */
  expect(ts, "rsa1024", HUB_ERR_SIG_POLICY, "'CN=rsa1024,O=So TTTT,C=VN' has a 1024-bit RSA key; the certificate policy needs at least 2048 bits");
  expect(ts, "noku", HUB_ERR_SIG_POLICY, "has no keyUsage extension; the certificate policy requires digitalSignature or nonRepudiation");
  expect(ts, "encrypt", HUB_ERR_SIG_UNTRUSTED, "key usage does not allow signing");
  expect(ts, "casigner", HUB_ERR_SIG_POLICY, "is a CA certificate (basicConstraints CA:TRUE)");

  puts("-- relaxed: 1024-bit RSA, keyUsage if present, CA signers");
  struct hub_cert_policy p;
  hub_cert_policy_default(&p);
  p.min_rsa_bits = 1024;
  p.require_key_usage = 0;
  p.allow_ca_signer = 1;
  CHECK(hub_truststore_set_policy(ts, &p, errbuf, sizeof errbuf) == HUB_OK);
  expect(ts, "rsa1024", HUB_OK, NULL);
  expect(ts, "noku", HUB_OK, NULL);
  expect(ts, "casigner", HUB_OK, NULL);
  expect(ts, "encrypt", HUB_ERR_SIG_UNTRUSTED, "key usage does not allow signing"); /* never relaxed */

  puts("-- a profile that allows only emailProtection (by name) or 1.3.6.1.5.5.7.3.36 (document signing)");
  hub_cert_policy_default(&p);
  const char *ekus[] = {"emailProtection", "1.3.6.1.5.5.7.3.36"};
  p.eku = ekus;
  p.n_eku = 2;
  CHECK(hub_truststore_set_policy(ts, &p, errbuf, sizeof errbuf) == HUB_OK);
  expect(ts, "email", HUB_OK, NULL);
  expect(ts, "client", HUB_ERR_SIG_POLICY, "names none of the allowed extended key usages; the certificate policy allows only: emailProtection, 1.3.6.1.5.5.7.3.36");
  expect(ts, "good", HUB_ERR_SIG_POLICY, "has no extendedKeyUsage");

  const char *bad[] = {"not-an-eku"};
  p.eku = bad;
  p.n_eku = 1;
  CHECK(hub_truststore_set_policy(ts, &p, errbuf, sizeof errbuf) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(errbuf, "extended key usage 'not-an-eku' is neither a known name");
  expect(ts, "email", HUB_OK, NULL); /* a refused policy leaves the previous one */

  hub_truststore_destroy(ts);
  sh("rm -rf %s", dir);
  return check_done();
}
