/* The folder watcher connectors share: reports the complete regular files that appear in one
 * folder. A thread follows inotify (IN_CLOSE_WRITE, IN_MOVED_TO: a file closed after writing or
 * renamed in is complete at once) and rescans the folder periodically, on start, when inotify
 * overflows and when it is unavailable; a file only a rescan saw counts as complete once its
 * size and mtime have not changed for `settle`. Dot-files, temp names, names the `include` glob
 * does not match, subfolders (done/, failed/), symlinks and other non-regular files are never
 * reported.
 *
 * Reports are level-triggered: a complete file still in the folder at a later rescan is
 * reported again, so a consumer that could not handle a file (a failed commit) gets it back
 * without bookkeeping; a consumer moves or deletes what it has handled. */
#ifndef HUB_IO_FOLDER_WATCH_H
#define HUB_IO_FOLDER_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "hub/core/err.h"

struct hub_folder_watch_opts {
  const char *dir;                 /* the folder (must exist when started) */
  const char *include;             /* glob (fnmatch) of names to report; NULL: every name */
  const char *const *temp_names;   /* globs of temp names never reported; may be NULL */
  size_t n_temp_names;
  int64_t settle_ms;               /* a rescanned file must keep size and mtime this long */
  int64_t rescan_ms;               /* time between two rescans */
  int use_inotify;                 /* 0: rescans only (tests, file systems without inotify) */
};

struct hub_folder_watch;

/* Copies the options; does not touch the folder. */
hub_err_t hub_folder_watch_create(const struct hub_folder_watch_opts *opts, struct hub_folder_watch **out,
                                  char *errbuf, size_t errbuf_size);
/* Starts the thread: inotify watch, then a first rescan. HUB_ERR_IO naming the folder when it
 * cannot be read. Inotify that cannot be set up is not an error: rescans carry on alone. */
hub_err_t hub_folder_watch_start(struct hub_folder_watch *w, char *errbuf, size_t errbuf_size);
/* Takes up to `max` names of complete files reported since the last take, oldest first: *names
 * is a malloc'd array of malloc'd names (free each with free(), then the array); *n may be 0.
 * Waits up to timeout_ms for the first one (0: does not wait). Thread-safe. */
hub_err_t hub_folder_watch_take(struct hub_folder_watch *w, size_t max, int timeout_ms, char ***names, size_t *n);
/* Asks for a rescan now (after a consumer left files behind, e.g. while it was paused). */
void hub_folder_watch_rescan(struct hub_folder_watch *w);
/* 1 while the folder can be read, else 0 with why. Thread-safe. */
int hub_folder_watch_health(struct hub_folder_watch *w, char *why, size_t why_size);
/* 1 while an inotify watch is on the folder (0: rescans only, e.g. inotify unavailable). */
int hub_folder_watch_inotify(struct hub_folder_watch *w);
/* Stops and joins the thread; takes return nothing afterwards. Idempotent. */
void hub_folder_watch_stop(struct hub_folder_watch *w);
void hub_folder_watch_destroy(struct hub_folder_watch *w);

#endif
