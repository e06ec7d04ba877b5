/* The `embedded` transport: topics in one SQLite database file (WAL), shared by every handle of
 * every lienthong process on the machine, with Kafka's semantics as the engine sees them.
 *
 * - A record gets its offset when its transaction commits: one SQLite transaction appends the
 *   produced records and stores the consumer offsets marked done, so readers only ever see
 *   committed records (read_committed) and a crash leaves all of a transaction or none of it.
 * - Consumer groups: members register in `members` and keep a heartbeat; any change of the live
 *   members bumps the group's generation. Then every member gives up all its partitions and
 *   acknowledges the generation; once all have, each takes partitions p with p % members == its
 *   rank (members sorted by id), from the committed offsets (an eager rebalance, as Kafka's). A
 *   commit whose offsets were read under an older generation is refused (Kafka's generation
 *   check), so two members never commit the same partition.
 * - A transactional id has an epoch; opening it again bumps the epoch and fences older handles.
 * - `lienthong.cursors` is compacted on write (older records of the same key are deleted),
 *   records older than `retention` are deleted now and then, and a partition that grows past
 *   its share of `retention_bytes` loses its oldest records at once (table `sizes` keeps each
 *   partition's bytes, so the check costs no scan).
 * - For `lienthong transport copy`: topics, watermarks, ranges, records written to an exact
 *   partition with their timestamp, and the groups' committed offsets.
 * Each handle owns one SQLite connection; SQLite's locking makes processes safe together. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hub/core/files.h"
#include "hub/core/log.h"
#include "hub/core/msg.h"
#include "hub/core/registry.h"
#include "hub/core/stop.h"
#include "hub/transport/transport.h"

struct embedded_cfg {
  char *path;
  int64_t partitions;
  int64_t session_timeout_ms;
  int64_t retention_ms;
  int64_t retention_bytes;
  int sync; /* 0 full, 1 normal */
  int64_t busy_timeout_ms;
};

#define ECFG(f) offsetof(struct embedded_cfg, f)
static const struct hub_cfg_entry embedded_entries[] = {
    {"path", HUB_CFG_STR, ECFG(path), "var/lienthong.db", 0,
     "the database file (relative to the configuration's folder); its folder is created if missing"},
    {"partitions", HUB_CFG_INT, ECFG(partitions), "4", 0, "partitions of the topics the hub creates", NULL, NULL, 1,
     1024},
    {"session_timeout", HUB_CFG_DURATION, ECFG(session_timeout_ms), "10s", 0,
     "a consumer that has not polled for this long leaves its group (its partitions move)", NULL, NULL, 1000,
     300000},
    {"retention", HUB_CFG_DURATION, ECFG(retention_ms), "7d", 0,
     "records older than this are deleted (the cursor topic keeps each source's latest)", NULL, NULL, 60000,
     INT64_C(315360000000)},
    {"retention_bytes", HUB_CFG_SIZE, ECFG(retention_bytes), "0", 0,
     "at most this many bytes (keys, values, headers) per topic, 0: no limit; each of a topic's P partitions keeps "
     "at most 1/P of it (as Kafka's retention.bytes, per partition) and drops its oldest records first; the "
     "cursor topic is exempt",
     NULL, NULL, 0, INT64_C(1099511627776)},
    {"sync", HUB_CFG_ENUM, ECFG(sync), "full", 0,
     "full: each commit is on disk before it returns (survives power loss); normal: survives a crash of the "
     "process, not of the machine, and commits faster",
     "full|normal"},
    {"busy_timeout", HUB_CFG_DURATION, ECFG(busy_timeout_ms), "10s", 0,
     "how long a call waits for another process's write to finish", NULL, NULL, 100, 600000},
    {NULL},
};
static const struct hub_cfg_map embedded_cfg_map = {"hub.embedded", embedded_entries};

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS topics(name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS ends(topic TEXT, part INTEGER, next INTEGER NOT NULL, PRIMARY KEY(topic, part))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS records(topic TEXT, part INTEGER, off INTEGER, ts INTEGER, key BLOB, value BLOB,"
    " headers BLOB, PRIMARY KEY(topic, part, off)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS offsets(grp TEXT, topic TEXT, part INTEGER, next INTEGER NOT NULL,"
    " PRIMARY KEY(grp, topic, part)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS groups(grp TEXT, topic TEXT, generation INTEGER NOT NULL, PRIMARY KEY(grp, topic))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS members(grp TEXT, topic TEXT, member TEXT, seen INTEGER NOT NULL, gen INTEGER,"
    " PRIMARY KEY(grp, topic, member)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS producers(txn_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sizes(topic TEXT, part INTEGER, bytes INTEGER NOT NULL, PRIMARY KEY(topic, part))"
    " WITHOUT ROWID;";

/* A record's size as retention_bytes counts it. */
#define REC_BYTES_SQL "(coalesce(length(key), 0) + length(value) + length(headers))"

#define FETCH_MAX 500        /* records read from one partition per query */
#define HEARTBEAT_MS 500     /* how often a member says it is alive (and looks at its group) */
#define RETENTION_EVERY 1000 /* commits between two retention passes */
#define SETTLE_POLL_MS 20    /* during a rebalance: how often a member looks whether all gave up */

struct part_state {
  int32_t part;
  int64_t position; /* next offset to read */
  int paused;
};

struct pending {
  char *topic;
  struct hub_msg *m;
  int exact; /* produce_exact: m->partition and m->timestamp_ms are kept */
};

/* Bytes appended to one partition by the commit under way (for retention_bytes). */
struct grown {
  char *topic;
  int32_t part;
  int64_t bytes;
};

struct hub_transport {
  const struct embedded_cfg *cfg;
  sqlite3 *db;
  char *path;
  char *group, *topic, *member, *txn_id;
  int64_t epoch, generation;
  struct part_state *parts;
  int n_parts;
  int rr;              /* next partition to read, round robin */
  uint32_t rr_produce; /* keyless records: next partition */
  struct hub_msg **buf; /* fetched, not yet returned */
  size_t n_buf, buf_pos;
  int in_txn, lost_assignment;
  int settled; /* holds its share of the current generation (else: waiting for the others) */
  struct pending *pending;
  size_t n_pending, cap_pending;
  struct {
    int32_t part;
    int64_t next;
  } *marks;
  size_t n_marks, cap_marks;
  int64_t last_heartbeat, data_version, commits;
  int lock_fd; /* held while a transactional id is open: one live process per id */
  struct grown *grown;
  size_t n_grown, cap_grown;
  int connected;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint32_t key_hash(const unsigned char *k, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a, as the memory transport */
  for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 16777619u;
  return h;
}

/* Runs SQL with no result rows; logs and returns the SQLite code. */
static int exec(struct hub_transport *t, const char *sql) {
  char *err = NULL;
  int rc = sqlite3_exec(t->db, sql, NULL, NULL, &err);
  if (rc != SQLITE_OK) hub_log(HUB_LOG_WARN, "embedded", "%s: %s", t->path, err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return rc;
}

static sqlite3_stmt *prep(struct hub_transport *t, const char *sql) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(t->db, sql, -1, &st, NULL) != SQLITE_OK) {
    hub_log(HUB_LOG_WARN, "embedded", "%s: %s", t->path, sqlite3_errmsg(t->db));
    return NULL;
  }
  return st;
}

/* Headers as one blob: per header, name length, name, value length, value (lengths u32, LE). */
static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned char *headers_encode_new(const struct hub_msg *m, size_t *len) {
  size_t n = 0;
  for (size_t i = 0; i < m->n_headers; i++) n += 8 + strlen(m->headers[i].name) + m->headers[i].value_len;
  unsigned char *b = malloc(n ? n : 1), *p = b;
  if (!b) return NULL;
  for (size_t i = 0; i < m->n_headers; i++) {
    size_t nl = strlen(m->headers[i].name), vl = m->headers[i].value_len;
    put_u32(p, (uint32_t)nl);
    memcpy(p + 4, m->headers[i].name, nl);
    put_u32(p + 4 + nl, (uint32_t)vl);
    memcpy(p + 8 + nl, m->headers[i].value, vl);
    p += 8 + nl + vl;
  }
  *len = n;
  return b;
}

static hub_err_t headers_decode(struct hub_msg *m, const unsigned char *p, size_t n) {
  while (n >= 8) {
    uint32_t nl = get_u32(p);
    if (nl > n - 8) return HUB_ERR_TRANSPORT;
    uint32_t vl = get_u32(p + 4 + nl);
    if (vl > n - 8 - nl) return HUB_ERR_TRANSPORT;
    char name[256];
    if (nl >= sizeof name) return HUB_ERR_TRANSPORT;
    memcpy(name, p + 4, nl);
    name[nl] = '\0';
    if (hub_msg_header_add(m, name, p + 8 + nl, vl) != HUB_OK) return HUB_ERR_NOMEM;
    p += 8 + nl + vl;
    n -= 8 + nl + vl;
  }
  return n ? HUB_ERR_TRANSPORT : HUB_OK;
}

/* A record from the current row of a SELECT topic, part, off, ts, key, value, headers. */
static struct hub_msg *row_to_msg(sqlite3_stmt *st) {
  const void *key = sqlite3_column_blob(st, 4), *val = sqlite3_column_blob(st, 5);
  int kl = sqlite3_column_bytes(st, 4), vl = sqlite3_column_bytes(st, 5);
  struct hub_msg *m = hub_msg_new(sqlite3_column_type(st, 4) == SQLITE_NULL ? NULL : key, (size_t)kl, val, (size_t)vl);
  if (!m) return NULL;
  m->partition = sqlite3_column_int(st, 1);
  m->offset = sqlite3_column_int64(st, 2);
  m->timestamp_ms = sqlite3_column_int64(st, 3);
  if (hub_msg_set_topic(m, (const char *)sqlite3_column_text(st, 0)) != HUB_OK ||
      headers_decode(m, sqlite3_column_blob(st, 6), (size_t)sqlite3_column_bytes(st, 6)) != HUB_OK) {
    hub_msg_destroy(m);
    return NULL;
  }
  return m;
}

static void buf_clear(struct hub_transport *t) {
  for (size_t i = t->buf_pos; i < t->n_buf; i++) hub_msg_destroy(t->buf[i]);
  free(t->buf);
  t->buf = NULL;
  t->n_buf = t->buf_pos = 0;
}

static void pending_clear(struct hub_transport *t) {
  for (size_t i = 0; i < t->n_pending; i++) {
    free(t->pending[i].topic);
    hub_msg_destroy(t->pending[i].m);
  }
  t->n_pending = 0;
}

/* Partition count of a topic (creating it with the configured count if asked); 0 if absent. */
static int topic_partitions(struct hub_transport *t, const char *topic, int create) {
  int n = 0;
  sqlite3_stmt *st = prep(t, "SELECT partitions FROM topics WHERE name = ?");
  if (!st) return 0;
  sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (n || !create) return n;
  st = prep(t, "INSERT OR IGNORE INTO topics(name, partitions) VALUES(?, ?)");
  if (!st) return 0;
  sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, (int)t->cfg->partitions);
  int ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  st = prep(t, "INSERT OR IGNORE INTO ends(topic, part, next) VALUES(?, ?, 0)");
  for (int p = 0; ok && st && p < (int)t->cfg->partitions; p++) {
    sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, p);
    ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  return ok ? (int)t->cfg->partitions : 0;
}

/* Positions of the assigned partitions from the group's committed offsets. */
static void rewind_positions(struct hub_transport *t) {
  buf_clear(t);
  sqlite3_stmt *st = prep(t, "SELECT next FROM offsets WHERE grp = ? AND topic = ? AND part = ?");
  for (int i = 0; st && i < t->n_parts; i++) {
    sqlite3_bind_text(st, 1, t->group, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, t->parts[i].part);
    t->parts[i].position = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
}

static void grown_clear(struct hub_transport *t);

static void drop_txn(struct hub_transport *t) {
  pending_clear(t);
  grown_clear(t);
  t->n_marks = 0;
  t->in_txn = 0;
}

/* Heartbeat, expiry of silent members, and the assignment for the group's current generation.
 * Returns 1 when the assignment changed (partitions were taken away or given). Called outside
 * any SQLite transaction of ours. */
static int sync_group(struct hub_transport *t, int force) {
  int64_t now = now_ms();
  int every = t->settled ? HEARTBEAT_MS : SETTLE_POLL_MS;
  if (!t->group || !t->topic || (!force && now - t->last_heartbeat < every)) return 0;
  t->last_heartbeat = now;
  int changed = 0;
  if (exec(t, "BEGIN IMMEDIATE") != SQLITE_OK) {
    t->connected = 0;
    return 0;
  }
  t->connected = 1;
  /* Register or refresh this member; a member that is new (or was expired) and a silent one
   * that expires both change the group, so the generation moves and everyone reassigns. */
  int joined = 0, expired = 0;
  sqlite3_stmt *st = prep(t, "UPDATE members SET seen = ? WHERE grp = ? AND topic = ? AND member = ?");
  if (st) {
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, t->group, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->topic, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->member, -1, SQLITE_STATIC);
    sqlite3_step(st);
    joined = sqlite3_changes(t->db) == 0;
    sqlite3_finalize(st);
  }
  if (joined && (st = prep(t, "INSERT INTO members(grp, topic, member, seen) VALUES(?, ?, ?, ?)"))) {
    sqlite3_bind_text(st, 1, t->group, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->topic, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->member, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_step(st);
    sqlite3_finalize(st);
  }
  if ((st = prep(t, "DELETE FROM members WHERE grp = ? AND topic = ? AND seen < ?"))) {
    sqlite3_bind_text(st, 1, t->group, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->topic, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now - t->cfg->session_timeout_ms);
    sqlite3_step(st);
    expired = sqlite3_changes(t->db) > 0;
    sqlite3_finalize(st);
  }
  if ((st = prep(t, "INSERT INTO groups(grp, topic, generation) VALUES(?1, ?2, 1)"
                    " ON CONFLICT(grp, topic) DO UPDATE SET generation = generation + ?3"))) {
    sqlite3_bind_text(st, 1, t->group, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, joined || expired);
    sqlite3_step(st);
    sqlite3_finalize(st);
  }
  int64_t generation = 0;
  st = prep(t, "SELECT generation FROM groups WHERE grp = ? AND topic = ?");
  if (st) {
    sqlite3_bind_text(st, 1, t->group, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->topic, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) generation = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  if (generation != t->generation) {
    /* Eager rebalancing, as Kafka's: first everyone gives up every partition and says so
     * (members.gen); only when every live member has, each takes its new share. So no
     * partition ever has two owners, even for a moment. */
    changed = t->n_parts > 0;
    t->n_parts = 0;
    t->generation = generation;
    t->settled = 0;
    if ((st = prep(t, "UPDATE members SET gen = ? WHERE grp = ? AND topic = ? AND member = ?"))) {
      sqlite3_bind_int64(st, 1, generation);
      sqlite3_bind_text(st, 2, t->group, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 3, t->topic, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 4, t->member, -1, SQLITE_STATIC);
      sqlite3_step(st);
      sqlite3_finalize(st);
    }
  }
  if (!t->settled) {
    /* My rank among the live members decides my share, once none is still on an older generation. */
    int rank = 0, members = 0, behind = 0;
    if ((st = prep(t, "SELECT member, gen FROM members WHERE grp = ? AND topic = ?"))) {
      sqlite3_bind_text(st, 1, t->group, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 2, t->topic, -1, SQLITE_STATIC);
      for (; sqlite3_step(st) == SQLITE_ROW; members++) {
        rank += strcmp((const char *)sqlite3_column_text(st, 0), t->member) < 0;
        behind += sqlite3_column_int64(st, 1) != generation;
      }
      sqlite3_finalize(st);
    }
    int n = behind ? 0 : topic_partitions(t, t->topic, 1);
    struct part_state *parts = behind ? NULL : calloc((size_t)(n ? n : 1), sizeof *parts);
    int k = 0;
    for (int p = 0; parts && members && p < n; p++)
      if (p % members == rank) parts[k++] = (struct part_state){p, 0, 0};
    if (parts) {
      changed = changed || k > 0;
      free(t->parts);
      t->parts = parts;
      t->n_parts = k;
      t->settled = 1;
    }
  }
  exec(t, "COMMIT");
  if (changed) {
    if (t->in_txn) t->lost_assignment = 1;
    drop_txn(t);
    rewind_positions(t);
    hub_log(HUB_LOG_INFO, "embedded", "group %s: %d partition(s) of %s assigned (generation %lld)", t->group,
            t->n_parts, t->topic, (long long)t->generation);
  }
  return changed;
}

static void e_close(struct hub_transport *t) {
  if (!t) return;
  if (t->db && t->group && t->topic && t->member) {
    /* Leave the group at once, so the others take the partitions without waiting. */
    if (exec(t, "BEGIN IMMEDIATE") == SQLITE_OK) {
      sqlite3_stmt *st = prep(t, "DELETE FROM members WHERE grp = ? AND topic = ? AND member = ?");
      if (st) {
        sqlite3_bind_text(st, 1, t->group, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t->topic, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, t->member, -1, SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_finalize(st);
      }
      st = prep(t, "UPDATE groups SET generation = generation + 1 WHERE grp = ? AND topic = ?");
      if (st) {
        sqlite3_bind_text(st, 1, t->group, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t->topic, -1, SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_finalize(st);
      }
      exec(t, "COMMIT");
    }
  }
  buf_clear(t);
  pending_clear(t);
  free(t->pending);
  grown_clear(t);
  free(t->grown);
  free(t->marks);
  free(t->parts);
  if (t->db) sqlite3_close(t->db);
  if (t->lock_fd >= 0) close(t->lock_fd); /* releases the lock */
  free(t->path);
  free(t->group);
  free(t->topic);
  free(t->member);
  free(t->txn_id);
  free(t);
}

/* Creates the folders leading to `file` (mkdir -p of its folder); failures show at open. */
static void make_dirs(const char *file) {
  char *dir = hub_path_dir_new(file);
  for (char *p = dir ? dir + 1 : NULL; p && *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(dir, 0750);
    *p = '/';
  }
  if (dir) mkdir(dir, 0750);
  free(dir);
}

/* Kafka fences a second producer of a transactional id; on one machine a second live process
 * with the same id is a mistake (two `run`s of one hub.instance), so it is refused while the
 * first lives. A lock file per id, held with flock: the kernel drops it when a process dies, so
 * a restart after a crash takes over at once (and fences what the dead one left open). */
static hub_err_t lock_txn_id(struct hub_transport *t, char *errbuf, size_t errbuf_size) {
  char dir[1200], path[1500];
  snprintf(dir, sizeof dir, "%s.locks", t->path);
  mkdir(dir, 0750);
  snprintf(path, sizeof path, "%s/", dir);
  size_t n = strlen(path);
  for (const char *p = t->txn_id; *p && n + 1 < sizeof path; p++) /* topic-name characters only */
    path[n++] = (*p == '/' || *p == '\0') ? '_' : *p;
  path[n] = '\0';
  if ((t->lock_fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0640)) < 0)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_TRANSPORT, "%s: %s", path, strerror(errno));
  if (flock(t->lock_fd, LOCK_EX | LOCK_NB) == 0) return HUB_OK;
  return hub_errf(errbuf, errbuf_size, HUB_ERR_CONFIG,
                  "transactional id %s is held by another live process on %s: is a second `lienthong run` of the "
                  "same hub.instance running? Stop it, or give this one another hub.instance",
                  t->txn_id, t->path);
}

static hub_err_t e_open(const void *cfg, const struct hub_transport_opts *opts, struct hub_transport **out,
                        char *errbuf, size_t errbuf_size) {
  const struct embedded_cfg *c = cfg;
  struct hub_transport *t = calloc(1, sizeof *t);
  hub_err_t rc = HUB_OK;
  *out = NULL;
  if (!t) return HUB_ERR_NOMEM;
  t->cfg = c;
  t->lock_fd = -1;
  char member[37];
  hub_uuid7(member);
  if (!(t->path = hub_path_resolve_new(opts->base_dir, c->path)) || !(t->member = strdup(member)) ||
      (opts->group_id && !(t->group = strdup(opts->group_id))) ||
      (opts->transactional_id && !(t->txn_id = strdup(opts->transactional_id)))) {
    rc = HUB_ERR_NOMEM;
    goto fail;
  }
  make_dirs(t->path);
  if (sqlite3_open_v2(t->path, &t->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
    rc = hub_errf(errbuf, errbuf_size, HUB_ERR_CONFIG, "hub.embedded.path: cannot open %s: %s", t->path,
                  t->db ? sqlite3_errmsg(t->db) : "out of memory");
    goto fail;
  }
  sqlite3_busy_timeout(t->db, (int)c->busy_timeout_ms);
  /* 16 KiB pages (for a new file; an existing one keeps its own): a record of a few KiB then
   * fits its B-tree page instead of spilling into an overflow page, which halves the pages each
   * commit writes (and then checkpoints) for 1 KiB records: measured in docs/bench.md. */
  if (exec(t, "PRAGMA page_size=16384") != SQLITE_OK || exec(t, "PRAGMA journal_mode=WAL") != SQLITE_OK ||
      exec(t, c->sync ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL") != SQLITE_OK ||
      exec(t, schema_sql) != SQLITE_OK) {
    rc = hub_errf(errbuf, errbuf_size, HUB_ERR_TRANSPORT, "%s: %s", t->path, sqlite3_errmsg(t->db));
    goto fail;
  }
  if (t->txn_id && (rc = lock_txn_id(t, errbuf, errbuf_size)) != HUB_OK) goto fail;
  if (t->txn_id) {
    /* As init_transactions: the newest handle of a transactional id fences the older ones. */
    sqlite3_stmt *st = prep(t, "INSERT INTO producers(txn_id, epoch) VALUES(?1, 1)"
                               " ON CONFLICT(txn_id) DO UPDATE SET epoch = epoch + 1 RETURNING epoch");
    if (!st || exec(t, "BEGIN IMMEDIATE") != SQLITE_OK) {
      sqlite3_finalize(st);
      rc = hub_errf(errbuf, errbuf_size, HUB_ERR_TRANSPORT, "%s: %s", t->path, sqlite3_errmsg(t->db));
      goto fail;
    }
    sqlite3_bind_text(st, 1, t->txn_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) t->epoch = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    exec(t, "COMMIT");
  }
  t->connected = 1;
  *out = t;
  return HUB_OK;
fail:
  e_close(t);
  return rc;
}

static hub_err_t e_ensure_topics(struct hub_transport *t, const char *const *topics, size_t n, char *errbuf,
                                 size_t errbuf_size) {
  if (exec(t, "BEGIN IMMEDIATE") != SQLITE_OK)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_TRANSPORT, "%s: %s", t->path, sqlite3_errmsg(t->db));
  int ok = 1;
  for (size_t i = 0; ok && i < n; i++) ok = topic_partitions(t, topics[i], 1) > 0;
  exec(t, ok ? "COMMIT" : "ROLLBACK");
  return ok ? HUB_OK : hub_errf(errbuf, errbuf_size, HUB_ERR_TRANSPORT, "%s: cannot create topics", t->path);
}

static hub_err_t e_subscribe(struct hub_transport *t, const char *topic) {
  if (!t->group) return HUB_ERR_INVALID_ARG;
  free(t->topic);
  if (!(t->topic = strdup(topic))) return HUB_ERR_NOMEM;
  t->generation = 0;
  sync_group(t, 1);
  return HUB_OK;
}

/* Reads up to FETCH_MAX records from the next partitions that have any. */
static void fetch(struct hub_transport *t) {
  buf_clear(t);
  sqlite3_stmt *st = prep(t, "SELECT topic, part, off, ts, key, value, headers FROM records"
                             " WHERE topic = ? AND part = ? AND off >= ? ORDER BY off LIMIT ?");
  for (int k = 0; st && k < t->n_parts && t->n_buf == 0; k++) {
    struct part_state *ps = &t->parts[(t->rr + k) % t->n_parts];
    if (ps->paused) continue;
    sqlite3_bind_text(st, 1, t->topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, ps->part);
    sqlite3_bind_int64(st, 3, ps->position);
    sqlite3_bind_int(st, 4, FETCH_MAX);
    while (sqlite3_step(st) == SQLITE_ROW) {
      struct hub_msg *m = row_to_msg(st);
      struct hub_msg **nb = m ? realloc(t->buf, (t->n_buf + 1) * sizeof *nb) : NULL;
      if (!nb) {
        hub_msg_destroy(m);
        break; /* read again next time */
      }
      t->buf = nb;
      t->buf[t->n_buf++] = m;
    }
    sqlite3_reset(st);
  }
  t->rr = t->n_parts ? (t->rr + 1) % t->n_parts : 0;
  sqlite3_finalize(st);
}

static struct part_state *find_part(struct hub_transport *t, int32_t part) {
  for (int i = 0; i < t->n_parts; i++)
    if (t->parts[i].part == part) return &t->parts[i];
  return NULL;
}

static hub_err_t e_poll(struct hub_transport *t, int timeout_ms, struct hub_msg **out) {
  *out = NULL;
  if (!t->group) return HUB_ERR_INVALID_ARG;
  int64_t deadline = now_ms() + (timeout_ms < 0 ? INT64_C(1) << 40 : timeout_ms);
  for (;;) {
    if (sync_group(t, 0) && t->lost_assignment) {
      t->lost_assignment = 0;
      return HUB_ERR_ABORTED;
    }
    while (t->buf_pos < t->n_buf) {
      struct hub_msg *m = t->buf[t->buf_pos++];
      struct part_state *ps = find_part(t, m->partition);
      if (!ps || ps->paused || m->offset < ps->position) { /* stale after a pause or a rewind */
        hub_msg_destroy(m);
        continue;
      }
      ps->position = m->offset + 1;
      *out = m;
      return HUB_OK;
    }
    fetch(t);
    if (t->n_buf) continue;
    int64_t left = deadline - now_ms();
    if (left <= 0 || hub_stop_requested()) return HUB_OK;
    /* Nothing new: wait for another connection to commit (data_version moves), briefly. */
    int v = 0;
    sqlite3_file_control(t->db, "main", SQLITE_FCNTL_DATA_VERSION, &v);
    for (int waited = 0; waited < left && waited < (t->settled ? HEARTBEAT_MS : SETTLE_POLL_MS) && !hub_stop_requested();
         waited += 5) {
      sleep_ms(5);
      int now_v = 0;
      sqlite3_file_control(t->db, "main", SQLITE_FCNTL_DATA_VERSION, &now_v);
      if (now_v != v) break;
    }
  }
}

static hub_err_t e_begin(struct hub_transport *t) {
  if (t->in_txn) return HUB_OK;
  drop_txn(t);
  t->in_txn = 1;
  return HUB_OK;
}

static hub_err_t e_produce(struct hub_transport *t, const char *topic, const struct hub_msg *m) {
  if (t->n_pending == t->cap_pending) {
    size_t cap = t->cap_pending ? t->cap_pending * 2 : 64;
    struct pending *p = realloc(t->pending, cap * sizeof *p);
    if (!p) return HUB_ERR_NOMEM;
    t->pending = p;
    t->cap_pending = cap;
  }
  struct pending *p = &t->pending[t->n_pending];
  p->exact = 0;
  if (!(p->topic = strdup(topic)) || !(p->m = hub_msg_dup(m))) {
    free(p->topic);
    return HUB_ERR_NOMEM;
  }
  t->n_pending++;
  return HUB_OK;
}

static hub_err_t e_produce_exact(struct hub_transport *t, const char *topic, const struct hub_msg *m) {
  if (m->partition < 0) return HUB_ERR_INVALID_ARG;
  hub_err_t rc = e_produce(t, topic, m);
  if (rc == HUB_OK) t->pending[t->n_pending - 1].exact = 1;
  return rc;
}

static void e_pause(struct hub_transport *t, const struct hub_msg *m) {
  struct part_state *ps = find_part(t, m->partition);
  if (!ps) return;
  ps->paused = 1;
  ps->position = m->offset + 1; /* buffered records after m are dropped as stale on resume */
}

static void e_resume(struct hub_transport *t, const struct hub_msg *m) {
  struct part_state *ps = find_part(t, m->partition);
  if (ps) ps->paused = 0;
}

static void e_mark_done(struct hub_transport *t, const struct hub_msg *m) {
  for (size_t i = 0; i < t->n_marks; i++)
    if (t->marks[i].part == m->partition) {
      if (m->offset + 1 > t->marks[i].next) t->marks[i].next = m->offset + 1;
      return;
    }
  if (t->n_marks == t->cap_marks) {
    size_t cap = t->cap_marks ? t->cap_marks * 2 : 16;
    void *nm = realloc(t->marks, cap * sizeof *t->marks);
    if (!nm) return; /* the offset is not committed: the record is read again, never lost */
    t->marks = nm;
    t->cap_marks = cap;
  }
  t->marks[t->n_marks].part = m->partition;
  t->marks[t->n_marks++].next = m->offset + 1;
}

/* ---- retention by size ----------------------------------------------------------------- */

/* Remembers that the commit under way added `bytes` to a partition. */
static int note_growth(struct hub_transport *t, const char *topic, int32_t part, int64_t bytes) {
  for (size_t i = 0; i < t->n_grown; i++)
    if (t->grown[i].part == part && !strcmp(t->grown[i].topic, topic)) {
      t->grown[i].bytes += bytes;
      return 1;
    }
  if (t->n_grown == t->cap_grown) {
    size_t cap = t->cap_grown ? t->cap_grown * 2 : 16;
    struct grown *g = realloc(t->grown, cap * sizeof *g);
    if (!g) return 0;
    t->grown = g;
    t->cap_grown = cap;
  }
  if (!(t->grown[t->n_grown].topic = strdup(topic))) return 0;
  t->grown[t->n_grown].part = part;
  t->grown[t->n_grown++].bytes = bytes;
  return 1;
}

static void grown_clear(struct hub_transport *t) {
  for (size_t i = 0; i < t->n_grown; i++) free(t->grown[i].topic);
  t->n_grown = 0;
}

/* Adds delta to a partition's byte count and returns the new count (-1 on error). A partition
 * without a count yet (a database from before `sizes`) is counted once, in full. */
static int64_t sizes_add(struct hub_transport *t, const char *topic, int32_t part, int64_t delta) {
  int64_t bytes = -1;
  sqlite3_stmt *st = prep(t, "UPDATE sizes SET bytes = bytes + ? WHERE topic = ? AND part = ? RETURNING bytes");
  if (!st) return -1;
  sqlite3_bind_int64(st, 1, delta);
  sqlite3_bind_text(st, 2, topic, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, part);
  if (sqlite3_step(st) == SQLITE_ROW) bytes = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (bytes >= 0) return bytes;
  st = prep(t, "INSERT INTO sizes(topic, part, bytes) SELECT ?1, ?2, coalesce(sum(" REC_BYTES_SQL "), 0)"
               " FROM records WHERE topic = ?1 AND part = ?2 RETURNING bytes");
  if (!st) return -1;
  sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, part);
  if (sqlite3_step(st) == SQLITE_ROW) bytes = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return bytes;
}

/* Drops a partition's oldest records until it holds at most `limit` bytes; its newest record
 * always stays (as Kafka keeps the active segment). Returns 0 on an SQLite error. */
static int trim_partition(struct hub_transport *t, const char *topic, int32_t part, int64_t bytes, int64_t limit) {
  int64_t excess = bytes - limit, freed = 0, last = -1;
  sqlite3_stmt *st = prep(t, "SELECT off, " REC_BYTES_SQL " FROM records WHERE topic = ? AND part = ?"
                             " AND off < (SELECT next - 1 FROM ends WHERE topic = ?1 AND part = ?2) ORDER BY off");
  if (!st) return 0;
  sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, part);
  while (freed < excess && sqlite3_step(st) == SQLITE_ROW) {
    last = sqlite3_column_int64(st, 0);
    freed += sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  if (last < 0) return 1;
  st = prep(t, "DELETE FROM records WHERE topic = ? AND part = ? AND off <= ?");
  if (!st) return 0;
  sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, part);
  sqlite3_bind_int64(st, 3, last);
  int ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  return ok && sizes_add(t, topic, part, -freed) >= 0;
}

/* After the commit's appends: counts what each partition grew by and trims what outgrew its
 * share of retention_bytes. */
static int apply_sizes(struct hub_transport *t) {
  for (size_t i = 0; i < t->n_grown; i++) {
    int64_t bytes = sizes_add(t, t->grown[i].topic, t->grown[i].part, t->grown[i].bytes);
    if (bytes < 0) return 0;
    if (t->cfg->retention_bytes <= 0) continue;
    int n = topic_partitions(t, t->grown[i].topic, 0);
    int64_t limit = t->cfg->retention_bytes / (n > 0 ? n : 1);
    if (bytes > limit && !trim_partition(t, t->grown[i].topic, t->grown[i].part, bytes, limit)) return 0;
  }
  return 1;
}

/* Deletes what is older than `retention`, keeping the byte counts right. */
static int retention_by_age(struct hub_transport *t, int64_t now) {
  sqlite3_stmt *st = prep(t, "DELETE FROM records WHERE ts < ? AND topic <> '" HUB_TOPIC_CURSORS "'"
                             " RETURNING topic, part, " REC_BYTES_SQL);
  if (!st) return 0;
  sqlite3_bind_int64(st, 1, now - t->cfg->retention_ms);
  int rc, ok = 1;
  grown_clear(t);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    ok = ok && note_growth(t, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1),
                           -sqlite3_column_int64(st, 2));
  sqlite3_finalize(st);
  for (size_t i = 0; ok && i < t->n_grown; i++) ok = sizes_add(t, t->grown[i].topic, t->grown[i].part, t->grown[i].bytes) >= 0;
  grown_clear(t);
  return ok && rc == SQLITE_DONE;
}

/* Appends one pending record (inside the open SQLite transaction). */
/* The partition count of the topic appended to last (a commit mostly writes one topic). */
struct topic_cache {
  const char *topic;
  int n;
};

static int append(struct hub_transport *t, const struct pending *p, int64_t ts, sqlite3_stmt *end, sqlite3_stmt *ins,
                  sqlite3_stmt *compact, struct topic_cache *tc) {
  if (!tc->topic || strcmp(tc->topic, p->topic)) {
    tc->n = topic_partitions(t, p->topic, 1);
    tc->topic = p->topic;
  }
  int n = tc->n;
  if (!n) return 0;
  int part = p->m->key ? (int)(key_hash(p->m->key, p->m->key_len) % (uint32_t)n) : (int)(t->rr_produce++ % (uint32_t)n);
  if (p->exact) {
    if (p->m->partition >= n) {
      hub_log(HUB_LOG_WARN, "embedded", "%s has %d partition(s), no partition %d", p->topic, n, (int)p->m->partition);
      return 0;
    }
    part = p->m->partition;
    ts = p->m->timestamp_ms;
  }
  sqlite3_bind_text(end, 1, p->topic, -1, SQLITE_STATIC);
  sqlite3_bind_int(end, 2, part);
  int64_t off = sqlite3_step(end) == SQLITE_ROW ? sqlite3_column_int64(end, 0) - 1 : -1;
  sqlite3_reset(end);
  if (off < 0) return 0;
  size_t hl = 0;
  unsigned char *h = headers_encode_new(p->m, &hl);
  if (!h) return 0;
  sqlite3_bind_text(ins, 1, p->topic, -1, SQLITE_STATIC);
  sqlite3_bind_int(ins, 2, part);
  sqlite3_bind_int64(ins, 3, off);
  sqlite3_bind_int64(ins, 4, ts);
  if (p->m->key)
    sqlite3_bind_blob(ins, 5, p->m->key, (int)p->m->key_len, SQLITE_STATIC);
  else
    sqlite3_bind_null(ins, 5);
  sqlite3_bind_blob(ins, 6, p->m->value, (int)p->m->value_len, SQLITE_STATIC);
  sqlite3_bind_blob(ins, 7, h, (int)hl, SQLITE_STATIC);
  int ok = sqlite3_step(ins) == SQLITE_DONE;
  sqlite3_reset(ins);
  free(h);
  /* size retention spares compacted topics: their latest value per key must stay */
  if (ok && !hub_topic_compacted(p->topic))
    ok = note_growth(t, p->topic, part, (int64_t)(p->m->key ? p->m->key_len : 0) + (int64_t)p->m->value_len + (int64_t)hl);
  if (ok && p->m->key && hub_topic_compacted(p->topic)) { /* compacted: the latest per key */
    sqlite3_bind_text(compact, 1, p->topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(compact, 2, part);
    sqlite3_bind_blob(compact, 3, p->m->key, (int)p->m->key_len, SQLITE_STATIC);
    sqlite3_bind_int64(compact, 4, off);
    ok = sqlite3_step(compact) == SQLITE_DONE;
    sqlite3_reset(compact);
  }
  return ok;
}

static hub_err_t e_commit(struct hub_transport *t) {
  if (t->txn_id && !t->in_txn) return HUB_OK;
  hub_err_t rc = HUB_OK;
  sqlite3_stmt *end = NULL, *ins = NULL, *compact = NULL, *off = NULL, *st = NULL;
  if (exec(t, "BEGIN IMMEDIATE") != SQLITE_OK) {
    t->connected = 0;
    rc = HUB_ERR_ABORTED;
    goto abort_only;
  }
  t->connected = 1;
  if (t->txn_id) {
    st = prep(t, "SELECT epoch FROM producers WHERE txn_id = ?");
    int64_t epoch = -1;
    if (st) {
      sqlite3_bind_text(st, 1, t->txn_id, -1, SQLITE_STATIC);
      if (sqlite3_step(st) == SQLITE_ROW) epoch = sqlite3_column_int64(st, 0);
    }
    if (epoch != t->epoch) {
      hub_log(HUB_LOG_WARN, "embedded", "transactional id %s was taken by a newer handle: transaction dropped",
              t->txn_id);
      rc = HUB_ERR_FENCED;
      goto rollback;
    }
  }
  if (t->n_marks && t->group) {
    sqlite3_finalize(st);
    st = prep(t, "SELECT generation FROM groups WHERE grp = ? AND topic = ?");
    int64_t generation = -1;
    if (st) {
      sqlite3_bind_text(st, 1, t->group, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 2, t->topic, -1, SQLITE_STATIC);
      if (sqlite3_step(st) == SQLITE_ROW) generation = sqlite3_column_int64(st, 0);
    }
    if (generation != t->generation) { /* the offsets belong to partitions handed out since */
      rc = HUB_ERR_ABORTED;
      goto rollback;
    }
  }
  end = prep(t, "UPDATE ends SET next = next + 1 WHERE topic = ? AND part = ? RETURNING next");
  ins = prep(t, "INSERT INTO records(topic, part, off, ts, key, value, headers) VALUES(?, ?, ?, ?, ?, ?, ?)");
  compact = prep(t, "DELETE FROM records WHERE topic = ? AND part = ? AND key = ? AND off < ?");
  off = prep(t, "INSERT INTO offsets(grp, topic, part, next) VALUES(?1, ?2, ?3, ?4)"
                " ON CONFLICT(grp, topic, part) DO UPDATE SET next = ?4");
  if (!end || !ins || !compact || !off) {
    rc = HUB_ERR_ABORTED;
    goto rollback;
  }
  int64_t ts = now_ms();
  struct topic_cache tc = {NULL, 0};
  for (size_t i = 0; i < t->n_pending; i++)
    if (!append(t, &t->pending[i], ts, end, ins, compact, &tc)) {
      hub_log(HUB_LOG_WARN, "embedded", "%s: appending to %s: %s", t->path, t->pending[i].topic, sqlite3_errmsg(t->db));
      rc = HUB_ERR_ABORTED;
      goto rollback;
    }
  for (size_t i = 0; t->group && i < t->n_marks; i++) {
    sqlite3_bind_text(off, 1, t->group, -1, SQLITE_STATIC);
    sqlite3_bind_text(off, 2, t->topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(off, 3, t->marks[i].part);
    sqlite3_bind_int64(off, 4, t->marks[i].next);
    int ok = sqlite3_step(off) == SQLITE_DONE;
    sqlite3_reset(off);
    if (!ok) {
      rc = HUB_ERR_ABORTED;
      goto rollback;
    }
  }
  if (!apply_sizes(t)) {
    hub_log(HUB_LOG_WARN, "embedded", "%s: retention by size: %s", t->path, sqlite3_errmsg(t->db));
    rc = HUB_ERR_ABORTED;
    goto rollback;
  }
  if (++t->commits % RETENTION_EVERY == 0 && !retention_by_age(t, ts))
    hub_log(HUB_LOG_WARN, "embedded", "%s: retention by age: %s", t->path, sqlite3_errmsg(t->db));
  if (exec(t, "COMMIT") != SQLITE_OK) {
    rc = HUB_ERR_ABORTED;
    goto rollback;
  }
  drop_txn(t);
  goto out;
rollback:
  exec(t, "ROLLBACK");
abort_only:
  drop_txn(t);
  if (t->group) rewind_positions(t);
  if (rc == HUB_ERR_ABORTED && t->group) sync_group(t, 1);
out:
  sqlite3_finalize(st);
  sqlite3_finalize(end);
  sqlite3_finalize(ins);
  sqlite3_finalize(compact);
  sqlite3_finalize(off);
  return rc;
}

static hub_err_t e_abort(struct hub_transport *t) {
  drop_txn(t);
  if (t->group) rewind_positions(t);
  return HUB_OK;
}

static int e_assigned(struct hub_transport *t) { return t->n_parts; }
static int64_t e_fetched(struct hub_transport *t) { return (int64_t)(t->n_buf - t->buf_pos); }

static int64_t e_lag(struct hub_transport *t) {
  if (!t->topic) return -1;
  int64_t lag = 0;
  sqlite3_stmt *st = prep(t, "SELECT next FROM ends WHERE topic = ? AND part = ?");
  for (int i = 0; st && i < t->n_parts; i++) {
    sqlite3_bind_text(st, 1, t->topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, t->parts[i].part);
    if (sqlite3_step(st) == SQLITE_ROW) lag += sqlite3_column_int64(st, 0) - t->parts[i].position;
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  return st ? lag : -1;
}

static int e_connected(struct hub_transport *t) { return t->connected; }

static hub_err_t e_scan(struct hub_transport *t, const char *topic, hub_scan_cb cb, void *ctx, char *errbuf,
                        size_t errbuf_size) {
  if (!topic_partitions(t, topic, 0)) return hub_errf(errbuf, errbuf_size, HUB_ERR_NOT_FOUND, "no topic '%s'", topic);
  sqlite3_stmt *st = prep(t, "SELECT topic, part, off, ts, key, value, headers FROM records WHERE topic = ?"
                             " ORDER BY part, off");
  if (!st) return hub_errf(errbuf, errbuf_size, HUB_ERR_TRANSPORT, "%s: %s", t->path, sqlite3_errmsg(t->db));
  sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
  hub_err_t rc = HUB_OK;
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    struct hub_msg *m = row_to_msg(st);
    if (!m) {
      rc = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory reading %s", topic);
      break;
    }
    int stop = cb(ctx, m);
    hub_msg_destroy(m);
    if (stop) break;
  }
  if (rc == HUB_OK && step != SQLITE_ROW && step != SQLITE_DONE)
    rc = hub_errf(errbuf, errbuf_size, HUB_ERR_TRANSPORT, "%s: %s", t->path, sqlite3_errmsg(t->db));
  sqlite3_finalize(st);
  return rc;
}

/* ---- for `lienthong transport copy` ------------------------------------------------------- */

static hub_err_t sql_error(struct hub_transport *t, char *errbuf, size_t errbuf_size) {
  return hub_errf(errbuf, errbuf_size, HUB_ERR_TRANSPORT, "%s: %s", t->path, sqlite3_errmsg(t->db));
}

static hub_err_t e_list_topics(struct hub_transport *t, struct hub_topic_desc **out, size_t *n, char *errbuf,
                               size_t errbuf_size) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st = prep(t, "SELECT name, partitions FROM topics ORDER BY name");
  if (!st) return sql_error(t, errbuf, errbuf_size);
  hub_err_t rc = HUB_OK;
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    struct hub_topic_desc *d = realloc(*out, (*n + 1) * sizeof *d);
    if (!d) {
      rc = HUB_ERR_NOMEM;
      break;
    }
    *out = d;
    d[*n].partitions = sqlite3_column_int(st, 1);
    if (!(d[*n].name = strdup((const char *)sqlite3_column_text(st, 0)))) {
      rc = HUB_ERR_NOMEM;
      break;
    }
    (*n)++;
  }
  if (rc == HUB_OK && step != SQLITE_DONE) rc = sql_error(t, errbuf, errbuf_size);
  sqlite3_finalize(st);
  if (rc != HUB_OK) {
    hub_topic_descs_free(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

static hub_err_t e_watermarks(struct hub_transport *t, const char *topic, int32_t partition, int64_t *low,
                              int64_t *high, char *errbuf, size_t errbuf_size) {
  sqlite3_stmt *st = prep(t, "SELECT next, (SELECT min(off) FROM records WHERE topic = ?1 AND part = ?2)"
                             " FROM ends WHERE topic = ?1 AND part = ?2");
  if (!st) return sql_error(t, errbuf, errbuf_size);
  sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, partition);
  hub_err_t rc = HUB_OK;
  if (sqlite3_step(st) == SQLITE_ROW) {
    *high = sqlite3_column_int64(st, 0);
    *low = sqlite3_column_type(st, 1) == SQLITE_NULL ? *high : sqlite3_column_int64(st, 1);
  } else {
    rc = hub_errf(errbuf, errbuf_size, HUB_ERR_NOT_FOUND, "%s: no topic '%s' partition %d", t->path, topic,
                  (int)partition);
  }
  sqlite3_finalize(st);
  return rc;
}

static hub_err_t e_read_range(struct hub_transport *t, const char *topic, int32_t partition, int64_t from, int64_t to,
                              hub_scan_cb cb, void *ctx, char *errbuf, size_t errbuf_size) {
  sqlite3_stmt *st = prep(t, "SELECT topic, part, off, ts, key, value, headers FROM records"
                             " WHERE topic = ? AND part = ? AND off >= ? AND off < ? ORDER BY off");
  if (!st) return sql_error(t, errbuf, errbuf_size);
  sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, partition);
  sqlite3_bind_int64(st, 3, from);
  sqlite3_bind_int64(st, 4, to);
  hub_err_t rc = HUB_OK;
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    struct hub_msg *m = row_to_msg(st);
    if (!m) {
      rc = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory reading %s[%d]", topic, (int)partition);
      break;
    }
    int stop = cb(ctx, m);
    hub_msg_destroy(m);
    if (stop) break;
  }
  if (rc == HUB_OK && step != SQLITE_ROW && step != SQLITE_DONE) rc = sql_error(t, errbuf, errbuf_size);
  sqlite3_finalize(st);
  return rc;
}

static hub_err_t e_create_topic(struct hub_transport *t, const char *topic, int partitions, char *errbuf,
                                size_t errbuf_size) {
  if (partitions < 1) return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "topic '%s': no partitions", topic);
  if (exec(t, "BEGIN IMMEDIATE") != SQLITE_OK) return sql_error(t, errbuf, errbuf_size);
  hub_err_t rc = HUB_OK;
  int have = topic_partitions(t, topic, 0);
  if (have && have != partitions) {
    rc = hub_errf(errbuf, errbuf_size, HUB_ERR_CONFIG, "%s: topic '%s' exists with %d partition(s), not %d", t->path,
                  topic, have, partitions);
  } else if (!have) {
    sqlite3_stmt *st = prep(t, "INSERT INTO topics(name, partitions) VALUES(?, ?)");
    int ok = st != NULL;
    if (st) {
      sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
      sqlite3_bind_int(st, 2, partitions);
      ok = sqlite3_step(st) == SQLITE_DONE;
      sqlite3_finalize(st);
    }
    st = ok ? prep(t, "INSERT OR IGNORE INTO ends(topic, part, next) VALUES(?, ?, 0)") : NULL;
    for (int p = 0; st && ok && p < partitions; p++) {
      sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
      sqlite3_bind_int(st, 2, p);
      ok = sqlite3_step(st) == SQLITE_DONE;
      sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (!ok || !st) rc = sql_error(t, errbuf, errbuf_size);
  }
  exec(t, rc == HUB_OK ? "COMMIT" : "ROLLBACK");
  return rc;
}

static hub_err_t e_list_offsets(struct hub_transport *t, hub_offset_cb cb, void *ctx, char *errbuf,
                                size_t errbuf_size) {
  sqlite3_stmt *st = prep(t, "SELECT grp, topic, part, next FROM offsets ORDER BY grp, topic, part");
  if (!st) return sql_error(t, errbuf, errbuf_size);
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW)
    if (cb(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           sqlite3_column_int(st, 2), sqlite3_column_int64(st, 3)))
      break;
  hub_err_t rc = step == SQLITE_ROW || step == SQLITE_DONE ? HUB_OK : sql_error(t, errbuf, errbuf_size);
  sqlite3_finalize(st);
  return rc;
}

static hub_err_t e_set_offsets(struct hub_transport *t, const char *group, const char *topic,
                               const int32_t *partitions, const int64_t *next, size_t n, char *errbuf,
                               size_t errbuf_size) {
  if (exec(t, "BEGIN IMMEDIATE") != SQLITE_OK) return sql_error(t, errbuf, errbuf_size);
  hub_err_t rc = HUB_OK;
  /* A live member would commit over what is set here (Kafka refuses it the same way). */
  sqlite3_stmt *st = prep(t, "SELECT count(*) FROM members WHERE grp = ? AND topic = ? AND seen >= ?");
  if (st) {
    sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, topic, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms() - t->cfg->session_timeout_ms);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0)
      rc = hub_errf(errbuf, errbuf_size, HUB_ERR_CONFIG,
                    "%s: group '%s' has live members on '%s': stop the hub before setting its offsets", t->path, group,
                    topic);
    sqlite3_finalize(st);
  }
  st = rc == HUB_OK ? prep(t, "INSERT INTO offsets(grp, topic, part, next) VALUES(?1, ?2, ?3, ?4)"
                              " ON CONFLICT(grp, topic, part) DO UPDATE SET next = ?4")
                    : NULL;
  for (size_t i = 0; st && rc == HUB_OK && i < n; i++) {
    sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, partitions[i]);
    sqlite3_bind_int64(st, 4, next[i]);
    if (sqlite3_step(st) != SQLITE_DONE) rc = sql_error(t, errbuf, errbuf_size);
    sqlite3_reset(st);
  }
  if (rc == HUB_OK && !st) rc = sql_error(t, errbuf, errbuf_size);
  sqlite3_finalize(st);
  if (rc == HUB_OK && exec(t, "COMMIT") != SQLITE_OK) rc = sql_error(t, errbuf, errbuf_size);
  if (rc != HUB_OK) exec(t, "ROLLBACK");
  return rc;
}

static const struct hub_transport_ops embedded_ops = {
    .info = {.name = "embedded",
             .summary = "topics in one SQLite file (WAL) on this machine: no broker, the same guarantees",
             .config_map = &embedded_cfg_map,
             .config_size = sizeof(struct embedded_cfg)},
    .open = e_open,
    .close = e_close,
    .ensure_topics = e_ensure_topics,
    .subscribe = e_subscribe,
    .poll = e_poll,
    .begin = e_begin,
    .produce = e_produce,
    .pause = e_pause,
    .resume = e_resume,
    .mark_done = e_mark_done,
    .commit = e_commit,
    .abort = e_abort,
    .assigned = e_assigned,
    .fetched = e_fetched,
    .lag = e_lag,
    .connected = e_connected,
    .scan = e_scan,
    .list_topics = e_list_topics,
    .watermarks = e_watermarks,
    .read_range = e_read_range,
    .create_topic = e_create_topic,
    .produce_exact = e_produce_exact,
    .list_offsets = e_list_offsets,
    .set_offsets = e_set_offsets,
};
HUB_TRANSPORT_PLUGIN(hub_plugin_transport_embedded, embedded_ops);
