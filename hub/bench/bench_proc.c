/* Child processes and scratch directories for the bench (see bench_proc.h). */
#include "hub/bench/bench_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hub/core/files.h"

extern char **environ;

/* environ plus extra ("N=V"), extra winning; the strings are borrowed. */
static char **env_merge(char *const extra[]) {
  size_t n = 0, m = 0;
  while (environ[n]) n++;
  while (extra && extra[m]) m++;
  char **env = calloc(n + m + 1, sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int replaced = 0;
    for (size_t j = 0; j < m && !replaced; j++) {
      const char *eq = strchr(extra[j], '=');
      size_t len = eq ? (size_t)(eq - extra[j]) + 1 : strlen(extra[j]);
      replaced = !strncmp(environ[i], extra[j], len);
    }
    if (!replaced) env[k++] = environ[i];
  }
  for (size_t j = 0; j < m; j++) env[k++] = extra[j];
  return env;
}

hub_err_t bench_child_spawn(struct bench_child *c, char *const argv[], char *const extra_env[], int in_fd, int out_fd,
                            const char *log_path, char *errbuf, size_t errbuf_size) {
  posix_spawn_file_actions_t fa;
  hub_err_t rc = HUB_OK;
  char **env = env_merge(extra_env);
  memset(c, 0, sizeof *c);
  c->pid = -1;
  if (!env) return HUB_ERR_NOMEM;
  posix_spawn_file_actions_init(&fa);
  if (in_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  else
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  else
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
  int err = strchr(argv[0], '/') ? posix_spawn(&c->pid, argv[0], &fa, NULL, argv, env)
                                 : posix_spawnp(&c->pid, argv[0], &fa, NULL, argv, env);
  if (err) {
    snprintf(errbuf, errbuf_size, "cannot start %s: %s", argv[0], strerror(err));
    c->pid = -1;
    rc = HUB_ERR_IO;
  } else {
    c->running = 1;
  }
  posix_spawn_file_actions_destroy(&fa);
  free(env);
  return rc;
}

static void sample(struct bench_child *c) {
  char path[64], why[128], *buf = NULL;
  size_t n;
  snprintf(path, sizeof path, "/proc/%d/status", (int)c->pid);
  if (hub_file_read(path, 65536, &buf, &n, why, sizeof why) == HUB_OK) {
    const char *hwm = strstr(buf, "VmHWM:");
    long long kib;
    if (hwm && sscanf(hwm, "VmHWM: %lld kB", &kib) == 1 && kib > c->hwm_kib) c->hwm_kib = kib;
    free(buf);
  }
  snprintf(path, sizeof path, "/proc/%d/stat", (int)c->pid);
  if (hub_file_read(path, 65536, &buf, &n, why, sizeof why) != HUB_OK) return;
  /* Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15. */
  char *p = strrchr(buf, ')');
  unsigned long long ut, st;
  if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) {
    long hz = sysconf(_SC_CLK_TCK);
    c->cpu_s = (double)(ut + st) / (double)(hz > 0 ? hz : 100);
  }
  free(buf);
}

int bench_child_poll(struct bench_child *c) {
  if (!c->running) return 0;
  sample(c);
  struct rusage ru;
  int status;
  pid_t r = wait4(c->pid, &status, WNOHANG, &ru);
  if (r == c->pid || (r < 0 && errno == ECHILD)) {
    c->running = 0;
    c->status = r == c->pid ? status : 0;
    if (r == c->pid)
      c->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
  }
  return c->running;
}

int bench_child_wait(struct bench_child *c, int timeout_ms) {
  for (int waited = 0;; waited += 20) {
    if (!bench_child_poll(c)) return 1;
    if (waited >= timeout_ms) return 0;
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
  }
}

void bench_child_stop(struct bench_child *c, int sig, int timeout_ms) {
  if (!c->running) return;
  kill(c->pid, sig);
  if (bench_child_wait(c, timeout_ms)) return;
  kill(c->pid, SIGKILL);
  bench_child_wait(c, 10000);
}

void bench_child_describe(const struct bench_child *c, char *out, size_t cap) {
  if (c->running)
    snprintf(out, cap, "running");
  else if (WIFSIGNALED(c->status))
    snprintf(out, cap, "signal %d", WTERMSIG(c->status));
  else
    snprintf(out, cap, "exit %d", WEXITSTATUS(c->status));
}

int bench_run_script(char *const argv[], char *const extra_env[], const char *log_path, int timeout_ms) {
  struct bench_child c;
  char errbuf[256];
  if (bench_child_spawn(&c, argv, extra_env, -1, -1, log_path, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "bench: %s\n", errbuf);
    return -1;
  }
  if (!bench_child_wait(&c, timeout_ms)) {
    fprintf(stderr, "bench: %s did not finish within %d s\n", argv[0], timeout_ms / 1000);
    bench_child_stop(&c, SIGTERM, 5000);
    return -1;
  }
  return WIFEXITED(c.status) ? WEXITSTATUS(c.status) : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)ftw;
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int bench_rmtree(const char *path) { return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

void bench_print_tail(const char *path, int lines, const char *prefix) {
  char *buf = NULL, why[256];
  size_t n = 0;
  if (hub_file_read(path, 64u * 1024u * 1024u, &buf, &n, why, sizeof why) != HUB_OK) return;
  /* back from the end over `lines` line breaks (a final one ends the last line, it starts none) */
  size_t start = n && buf[n - 1] == '\n' ? n - 1 : n;
  for (int k = 0; start > 0; start--)
    if (buf[start - 1] == '\n' && ++k == lines) break;
  for (char *l = buf + start, *e; l < buf + n; l = e + 1) {
    if (!(e = strchr(l, '\n'))) e = buf + n;
    fprintf(stderr, "%s%.*s\n", prefix, (int)(e - l), l);
  }
  free(buf);
}
