/* `lienthong demo`'s parts (hub/cli/cmd_demo.c plays them): the in-process stand-ins for the
 * systems around a province hub, and what the demo sends into the hub. */
#ifndef LT_CLI_DEMO_H
#define LT_CLI_DEMO_H

#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>

double demo_now(void);

/* ------------------------------------------------------------ an in-process HTTP stand-in */
/* One line per request received ("SERVICE KEY detail"), with its time: what the journeys print
 * and the test reads back (the demo prints every one). */
struct demo_call {
  double at;
  char what[200];
};

struct demo_standin;
/* Answers one complete request: *status and a malloc'd JSON body in *answer. */
typedef void (*demo_handler)(struct demo_standin *s, struct MHD_Connection *c, const char *method, const char *url,
                             const char *body, size_t len, int *status, char **answer);

struct demo_standin {
  const char *name;
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu;
  struct demo_call calls[128];
  int n;
  demo_handler handle;
  void *state;
};

/* Listens on 127.0.0.1:port (a free one) in its own thread; 0 or -1. */
int demo_standin_start(struct demo_standin *s, int port, demo_handler h, void *state);
void demo_standin_stop(struct demo_standin *s);
void demo_standin_record(struct demo_standin *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first call whose line starts with `prefix` (its line into what), its time or 0. */
double demo_standin_find(struct demo_standin *s, const char *prefix, char *what, size_t what_size);
int demo_standin_count(struct demo_standin *s, const char *prefix);

/* ------------------------------------------------------------ the national portal (DVCQG) */
/* vn-standards.md §3.1, OpenCPS variant: POST /api/auth {username, password} -> session; POST
 * /api/integration {session, madonvi, service, ...} for TraCuuHoSo, DongBoHoSoMC and
 * CapNhatTienDoHoSoMC, refusing a call without the session it issued. */
struct demo_portal {
  const char *username, *password;
  char session[40];
  char known[8][64]; /* dossiers it holds */
  int nknown;
};
void demo_portal_handle(struct demo_standin *s, struct MHD_Connection *c, const char *method, const char *url,
                        const char *body, size_t len, int *status, char **answer);

/* ------------------------------------------------------------ VNPost (through the LGSP) */
/* vn-standards.md §4.1, LGSP variant: POST /token (OAuth2 client credentials), then POST
 * /vnpost?service=orderTracking {pagesize, lastId} with the bearer token: the entries after
 * lastId. The entries of one order appear when the demo releases them. */
struct demo_vnpost {
  const char *client_id, *client_secret;
  char token[40];
  char order[64];
  struct {
    char oid[25];
    int code;
    const char *message;
  } entries[8];
  int nentries, released;
};
void demo_vnpost_init(struct demo_vnpost *v, const char *order);
void demo_vnpost_handle(struct demo_standin *s, struct MHD_Connection *c, const char *method, const char *url,
                        const char *body, size_t len, int *status, char **answer);

/* ------------------------------------------------------------ a fee paid */
/* Posts the payment platform's confirm callback for (ref, txn, amount) to url, MaXacThuc
 * computed with the hub's own function over the key (forge: then the amount changed, as a
 * forger would); the hub's reply MaLoi into maloi. Returns the HTTP status (0: no answer).
 * paid_at gets ThoiGianGD (yyyyMMddHHmmss, +07:00). */
/* An HTTP answer body the demo's clients keep (cut at 2 KiB), and their curl write callback. */
struct demo_reply {
  char buf[2048];
  size_t n;
};
size_t demo_reply_keep(char *p, size_t s, size_t n, void *reply);

long demo_pay_confirm(const char *url, const char *partner, const char *key, const char *ref, const char *txn,
                      long amount, const char *dossier, int forge, char paid_at[15], char *maloi, size_t maloi_size);
/* Writes the bank's fixed-width statement (mappings/bank/vnpay-fixed.yaml) for today with one
 * line for txn into folder/name, under a temporary name first; 0 or -1. */
int demo_bank_statement(const char *folder, const char *name, const char *account, const char *txn, const char *ref,
                        long amount);

#endif
