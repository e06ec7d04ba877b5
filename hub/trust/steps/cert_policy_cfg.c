#include "cert_policy_cfg.h"

#include <stddef.h>

static const struct hub_cfg_entry entries[] = {
    {"min_rsa_bits", HUB_CFG_INT, offsetof(struct cert_policy_cfg, min_rsa_bits), "2048", 0,
     "smallest RSA key a signer certificate may have", NULL, NULL, 1024, 16384},
    {"min_ec_bits", HUB_CFG_INT, offsetof(struct cert_policy_cfg, min_ec_bits), "256", 0,
     "smallest EC key a signer certificate may have", NULL, NULL, 160, 571},
    {"key_usage", HUB_CFG_ENUM, offsetof(struct cert_policy_cfg, key_usage), "required", 0,
     "keyUsage must allow digitalSignature or nonRepudiation; if-present also accepts a certificate without keyUsage",
     "required|if-present", NULL, 0, 0},
    {"ca_signer", HUB_CFG_BOOL, offsetof(struct cert_policy_cfg, ca_signer), "false", 0,
     "let a CA certificate (basicConstraints CA:TRUE) sign documents", NULL, NULL, 0, 0},
    {"eku", HUB_CFG_STR_LIST, offsetof(struct cert_policy_cfg, eku), NULL, 0,
     "extended key usages a signer must name one of (names such as emailProtection, or OIDs); empty: any", NULL, NULL,
     0, 0},
    {NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0, 0}};

const struct hub_cfg_map cert_policy_map = {"certificate", entries};

void cert_policy_from_cfg(const struct cert_policy_cfg *cfg, struct hub_cert_policy *p) {
  hub_cert_policy_default(p);
  p->min_rsa_bits = cfg->min_rsa_bits;
  p->min_ec_bits = cfg->min_ec_bits;
  p->require_key_usage = cfg->key_usage == 0;
  p->allow_ca_signer = cfg->ca_signer;
  p->eku = (const char *const *)cfg->eku.v;
  p->n_eku = cfg->eku.n;
}
