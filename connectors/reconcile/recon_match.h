/* The reconciliation matcher: payments the platform confirmed against bank statement lines, per
 * (agency, account) stream, matched on a key within a time window, in event time only (no clock),
 * so the same input in the same order always gives the same outcomes: the step rebuilds its state
 * after a restart by feeding the committed input again (step_reconcile.c).
 *
 * An item waits (pending) until its match comes or the other side's watermark (the latest time
 * seen on that side, or a statement's end of day) passes its time + window; then it is missing.
 * A key seen again on a side that already has it pending, or after it was matched (remembered
 * until both watermarks pass the match time + `remember`, at least the window), is a duplicate. Memory is bounded by
 * the items inside the window, not by the length of the feeds. */
#ifndef LT_RECON_MATCH_H
#define LT_RECON_MATCH_H

#include <stddef.h>
#include <stdint.h>

enum recon_side { RECON_PLATFORM = 0, RECON_BANK = 1 };

enum recon_outcome {
  RECON_MATCHED,
  RECON_MISSING_IN_BANK,
  RECON_MISSING_IN_PLATFORM,
  RECON_AMOUNT_MISMATCH,
  RECON_DUPLICATE,
  RECON__COUNT
};
/* "matched", "missing-in-bank", "missing-in-platform", "amount-mismatch", "duplicate". */
extern const char *const recon_outcome_names[RECON__COUNT];

struct recon_item {
  int side;
  char *key;
  int64_t amount; /* VND */
  int64_t t;      /* Unix seconds */
  char *agency, *account;
  char *ref; /* JSON text saying where the item came from (may be NULL) */
};

/* Called for each outcome: platform and bank are the items involved (one of them NULL for a
 * missing item or a duplicate). Borrowed for the call. */
typedef void (*recon_emit_cb)(void *ctx, enum recon_outcome o, const struct recon_item *platform,
                              const struct recon_item *bank);

struct recon;

struct recon *recon_new(int64_t window_s, int64_t remember_s);
void recon_destroy(struct recon *r);
/* Takes the item (also on failure); emits what it decides now. 0, or -1 out of memory. */
int recon_feed(struct recon *r, struct recon_item *take, recon_emit_cb cb, void *ctx);
/* Raises a side's watermark for the streams of agency/account (NULL: any), e.g. a statement
 * that covers its whole day; emits what expires. */
int recon_advance(struct recon *r, const char *agency, const char *account, int side, int64_t t, recon_emit_cb cb,
                  void *ctx);
/* Everything pending becomes missing (the end of a finite run, e.g. the benchmark). */
void recon_flush(struct recon *r, recon_emit_cb cb, void *ctx);
/* Items waiting for their match now, and the most at any time. */
size_t recon_pending(const struct recon *r);
size_t recon_pending_peak(const struct recon *r);
void recon_item_destroy(struct recon_item *it);

#endif
