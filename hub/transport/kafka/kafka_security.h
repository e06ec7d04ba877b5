/* hub.kafka.security: TLS and SASL for every connection the Kafka transport opens, with the
 * secrets read from files when a client is created (so they never sit in the configuration,
 * which is copied into logs and tickets) and wiped from memory after librdkafka took them. */
#ifndef HUB_TRANSPORT_KAFKA_SECURITY_H
#define HUB_TRANSPORT_KAFKA_SECURITY_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "hub/core/cfgmap.h"

struct hub_kafka_security {
  int protocol;  /* index into plaintext|ssl|sasl_plaintext|sasl_ssl */
  int mechanism; /* index into SCRAM-SHA-512|SCRAM-SHA-256|PLAIN */
  char *ca_file, *cert_file, *key_file, *key_password_file;
  char *username, *password_file;
};

extern const struct hub_cfg_map hub_kafka_security_map;

/* Sets security.protocol, ssl.* and sasl.* on conf. With base_dir == NULL (lint) the files are
 * not read: a placeholder stands for each secret so librdkafka can check the rest. Returns 0, or
 * -1 with errbuf naming the option or file (never a secret's value). */
int hub_kafka_security_apply(const struct hub_kafka_security *s, const char *base_dir, rd_kafka_conf_t *conf,
                             char *errbuf, size_t errbuf_size);

/* What to check when the cluster refuses the SASL login: the mechanism, the user and the options
 * (never the password), plus the librdkafka version when it cannot do SCRAM with Kafka 4. */
void hub_kafka_security_login_hint(const struct hub_kafka_security *s, char *buf, size_t size);

#endif
