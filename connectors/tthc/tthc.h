/* The TTHC catalogue connector's pieces shared by its files: the field-level diff of two
 * procedures, and the hook through which `lienthong tthc sync` runs a source once. */
#ifndef LT_TTHC_H
#define LT_TTHC_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"

/* The top-level fields of two procedures that differ, leaving out `ignore`: a JSON array of
 * {"field", "old", "new"} sorted by field ("old"/"new" missing where the field is absent);
 * empty when they are equal. NULL when out of memory. */
json_t *tthc_diff_new(const json_t *old_proc, const json_t *new_proc, const struct hub_str_list *ignore);

/* What one catalogue run did. */
struct tthc_report {
  hub_err_t rc; /* HUB_OK: committed (snapshot, changes and cursor in one transaction) */
  size_t procedures, added, changed, removed;
  char why[512]; /* when rc != HUB_OK */
};

/* `lienthong tthc sync`: arms a one-shot run. While armed, every tthc source runs once (its
 * first poll), reports into the hook and runs no more. */
struct tthc_once {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t want, done; /* sources expected to report, reports so far */
  int failed;
  struct tthc_report last;
};
extern struct tthc_once *tthc_once_hook;

#endif
