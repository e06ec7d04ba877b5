/* The `certificate:` option of verify-xml and verify-jws: the signer certificate policy
 * (hub_cert_policy in hub/trust/truststore.h) as a config map, so both steps spell it alike. */
#ifndef HUB_TRUST_STEPS_CERT_POLICY_CFG_H
#define HUB_TRUST_STEPS_CERT_POLICY_CFG_H

#include <stdint.h>

#include "hub/core/cfgmap.h"
#include "hub/trust/truststore.h"

struct cert_policy_cfg {
  int64_t min_rsa_bits, min_ec_bits;
  int key_usage; /* 0 required, 1 if-present */
  int ca_signer;
  struct hub_str_list eku;
};

extern const struct hub_cfg_map cert_policy_map;

/* The policy the options describe; borrows cfg's strings. */
void cert_policy_from_cfg(const struct cert_policy_cfg *cfg, struct hub_cert_policy *p);

#endif
