/* Processes for `lienthong bench`: child processes whose peak memory (VmHWM) and CPU time
 * are measured, a throw-away Kafka broker on free ports (scripts/kafka-start/kafka-stop), and
 * the scratch directory that holds its data and the logs of a run. */
#ifndef HUB_BENCH_PROC_H
#define HUB_BENCH_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hub/core/err.h"

struct bench_child {
  pid_t pid;
  int running;
  int status;       /* wait status once it ended */
  int64_t hwm_kib;  /* highest VmHWM seen while it ran */
  double cpu_s;     /* user + system CPU: sampled while running, exact once reaped */
};

/* Starts argv[0] (searched in PATH when it has no '/'), stdin from in_fd (or /dev/null when
 * -1), stdout to out_fd (or the log when -1), stderr appended to log_path. extra_env ("N=V",
 * NULL-terminated, may be NULL) is added to the environment, replacing same-named entries. */
hub_err_t bench_child_spawn(struct bench_child *c, char *const argv[], char *const extra_env[], int in_fd, int out_fd,
                            const char *log_path, char *errbuf, size_t errbuf_size);
/* Samples VmHWM and CPU, and reaps the child if it ended; returns 1 while it runs. */
int bench_child_poll(struct bench_child *c);
/* Polls every 20 ms until the child ends or timeout_ms passes; returns 1 once it ended. */
int bench_child_wait(struct bench_child *c, int timeout_ms);
/* Sends sig, waits up to timeout_ms, then SIGKILLs and reaps. */
void bench_child_stop(struct bench_child *c, int sig, int timeout_ms);
/* "exit 0", "exit 3", "signal 9" */
void bench_child_describe(const struct bench_child *c, char *out, size_t cap);

/* Runs `script` with args and extra_env to completion (output appended to log_path); its exit
 * status, or -1 if it could not start. */
int bench_run_script(char *const argv[], char *const extra_env[], const char *log_path, int timeout_ms);

/* Removes a directory tree (no symlinks followed); 0 on success. */
int bench_rmtree(const char *path);

/* Last `lines` lines of a text file to stderr, each prefixed (for failure reports). */
void bench_print_tail(const char *path, int lines, const char *prefix);

/* The scratch directory of a run: SRC/.cache/bench/run-XXXXXX (created); 0 or -1. */
int bench_scratch_make(char *out, size_t cap);
/* A throw-away broker in SCRATCH/broker on two free ports (scripts/kafka-start); its
 * bootstrap in `bootstrap`; 0 or -1 after saying why. */
int bench_broker_start(const char *scratch, char *bootstrap, size_t cap);
void bench_broker_stop(const char *scratch);

#endif
