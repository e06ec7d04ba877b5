#include "hub/transport/kafka/kafka_security.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/files.h"
#include "hub/core/node.h"

static const char *const protocols[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"};
static const char *const mechanisms[] = {"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"};

#define SCFG(f) offsetof(struct hub_kafka_security, f)
static const struct hub_cfg_entry entries[] = {
    {"protocol", HUB_CFG_ENUM, SCFG(protocol), "plaintext", 0,
     "plaintext, ssl (TLS), sasl_plaintext or sasl_ssl (SASL over TLS: what a shared cluster should use)",
     "plaintext|ssl|sasl_plaintext|sasl_ssl"},
    {"ca_file", HUB_CFG_STR, SCFG(ca_file), NULL, 0, "PEM CA certificates the brokers' certificates must chain to "
     "(ssl, sasl_ssl); default: the system's"},
    {"cert_file", HUB_CFG_STR, SCFG(cert_file), NULL, 0, "PEM client certificate, for brokers that require one (mTLS)"},
    {"key_file", HUB_CFG_STR, SCFG(key_file), NULL, 0, "PEM private key of cert_file"},
    {"key_password_file", HUB_CFG_STR, SCFG(key_password_file), NULL, 0, "file holding key_file's passphrase"},
    {"mechanism", HUB_CFG_ENUM, SCFG(mechanism), "SCRAM-SHA-512", 0, "SASL mechanism (sasl_*)",
     "SCRAM-SHA-512|SCRAM-SHA-256|PLAIN"},
    {"username", HUB_CFG_STR, SCFG(username), NULL, 0, "SASL user name (sasl_*)"},
    {"password_file", HUB_CFG_STR, SCFG(password_file), NULL, 0,
     "file holding the SASL password (sasl_*); read when the hub creates its Kafka clients"},
    {NULL},
};

static const struct hub_cfg_constraint rules[] = {
    {"sasl_plaintext and sasl_ssl need `username` and `password_file`", "password_file",
     "{protocol: sasl_ssl, username: hub}", "{protocol: sasl_ssl, username: hub, password_file: secrets/kafka.pw}"},
    {"`username`, `password_file` only with a sasl_* protocol", "username", "{protocol: ssl, username: hub}",
     "{protocol: sasl_ssl, username: hub, password_file: secrets/kafka.pw}"},
    {"`ca_file`, `cert_file`, `key_file` only with ssl or sasl_ssl", "ca_file",
     "{protocol: sasl_plaintext, username: hub, password_file: pw, ca_file: ca.pem}",
     "{protocol: sasl_ssl, username: hub, password_file: pw, ca_file: ca.pem}"},
    {"`cert_file` and `key_file` come together", "cert_file", "{protocol: ssl, cert_file: hub.pem}",
     "{protocol: ssl, cert_file: hub.pem, key_file: hub.key}"},
    {NULL},
};

static hub_err_t check(const void *cfg, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                       size_t errbuf_size) {
  const struct hub_kafka_security *s = cfg;
  int sasl = s->protocol >= 2, tls = s->protocol == 1 || s->protocol == 3;
  const char *bad = NULL, *why = NULL;
  if (sasl && (!s->username || !s->password_file))
    bad = s->username ? "password_file" : "username", why = "sasl_plaintext and sasl_ssl need `username` and `password_file`";
  else if (!sasl && (s->username || s->password_file))
    bad = s->username ? "username" : "password_file", why = "`username` and `password_file` need a sasl_* protocol";
  else if (!tls && (s->ca_file || s->cert_file || s->key_file || s->key_password_file))
    bad = s->ca_file ? "ca_file" : s->cert_file ? "cert_file" : "key_file",
    why = "TLS files need protocol ssl or sasl_ssl";
  else if (!s->cert_file != !s->key_file)
    bad = s->cert_file ? "cert_file" : "key_file", why = "`cert_file` and `key_file` come together";
  if (!bad) return HUB_OK;
  return hub_node_error(hub_cfg_value_at(node, at, bad), errbuf, errbuf_size, "security: %s", why);
}

const struct hub_cfg_map hub_kafka_security_map = {"security", entries, .check = check, .constraints = rules};

/* A secret from a file, trailing newline cut; NULL with errbuf set. */
/* The secret in FILE (resolved against the config's folder), or NULL with errbuf naming OPTION. */
static char *read_secret(const char *base_dir, const char *file, const char *option, char *errbuf, size_t errbuf_size) {
  char *path = hub_path_resolve_new(base_dir, file), *buf = NULL, why[512];
  size_t n = 0;
  if (!path || hub_secret_read(path, 4096, 1, &buf, &n, why, sizeof why) != HUB_OK)
    snprintf(errbuf, errbuf_size, "hub.kafka.security.%s: %s", option, path ? why : "out of memory");
  free(path);
  return buf;
}

static void wipe_free(char *s) {
  hub_secret_free(s, s ? strlen(s) : 0);
}

static int set(rd_kafka_conf_t *conf, const char *name, const char *value, const char *option, char *errbuf,
               size_t errbuf_size) {
  char e[512];
  if (rd_kafka_conf_set(conf, name, value, e, sizeof e) == RD_KAFKA_CONF_OK) return 0;
  snprintf(errbuf, errbuf_size, "hub.kafka.security.%s: librdkafka refuses %s: %s", option, name, e);
  return -1;
}

static int set_path(rd_kafka_conf_t *conf, const char *name, const char *base_dir, const char *file,
                    const char *option, char *errbuf, size_t errbuf_size) {
  if (!file) return 0;
  char *path = hub_path_resolve_new(base_dir, file);
  int rc = path ? set(conf, name, path, option, errbuf, errbuf_size) : -1;
  free(path);
  return rc;
}

int hub_kafka_security_apply(const struct hub_kafka_security *s, const char *base_dir, rd_kafka_conf_t *conf,
                             char *errbuf, size_t errbuf_size) {
  int lint = base_dir == NULL, sasl = s->protocol >= 2;
  if (set(conf, "security.protocol", protocols[s->protocol], "protocol", errbuf, errbuf_size) < 0) return -1;
  /* TLS files are checked by librdkafka when the client is created, so lint leaves them out */
  if (!lint && (set_path(conf, "ssl.ca.location", base_dir, s->ca_file, "ca_file", errbuf, errbuf_size) < 0 ||
                set_path(conf, "ssl.certificate.location", base_dir, s->cert_file, "cert_file", errbuf, errbuf_size) < 0 ||
                set_path(conf, "ssl.key.location", base_dir, s->key_file, "key_file", errbuf, errbuf_size) < 0))
    return -1;
  if (!lint && s->key_password_file) {
    char *pw = read_secret(base_dir, s->key_password_file, "key_password_file", errbuf, errbuf_size);
    int rc = pw ? set(conf, "ssl.key.password", pw, "key_password_file", errbuf, errbuf_size) : -1;
    wipe_free(pw);
    if (rc < 0) return -1;
  }
  if (!sasl) return 0;
  if (set(conf, "sasl.mechanisms", mechanisms[s->mechanism], "mechanism", errbuf, errbuf_size) < 0 ||
      set(conf, "sasl.username", s->username ? s->username : "", "username", errbuf, errbuf_size) < 0)
    return -1;
  char *pw = lint ? strdup("lint-placeholder") : read_secret(base_dir, s->password_file, "password_file", errbuf,
                                                              errbuf_size);
  int rc = pw ? set(conf, "sasl.password", pw, "password_file", errbuf, errbuf_size) : -1;
  wipe_free(pw);
  return rc;
}

void hub_kafka_security_login_hint(const struct hub_kafka_security *s, char *buf, size_t size) {
  int n = snprintf(buf, size, "SASL mechanism %s as user '%s': check hub.kafka.security.username and the "
                   "password in password_file", mechanisms[s->mechanism], s->username ? s->username : "");
  /* Before 2.6.1 librdkafka's SCRAM client-final nonce is refused by Kafka 4 brokers (KAFKA-18065)
   * even with the right password; only a build with LT_SYSTEM_RDKAFKA can be that old. */
  if (s->mechanism != 2 && rd_kafka_version() < 0x020601ff && n >= 0 && (size_t)n < size)
    snprintf(buf + n, size - (size_t)n, "; librdkafka %s (before 2.6.1) fails SCRAM against Kafka 4 brokers even "
             "with the right password: see docs/kafka-security.md", rd_kafka_version_str());
}
