/* peer_c_http PORT WORKERS -- hand-written epoll HTTP server, "plain" work.
 *
 * The physical reference for spindle's server comparison (bench/peers,
 * bench/peers/servers.md): WORKERS level-triggered epoll loops, each with its own
 * SO_REUSEPORT listener (epoll_loop.h). Per connection: a 16 KiB read buffer.
 * Every read is scanned for complete requests (a request ends at
 * "\r\n\r\n"; plain work has no bodies), the same fixed 78-byte reply is
 * queued for each, and all replies of one read go out with one write(). A
 * partial request stays at the front of the buffer for the next read. If the
 * write is short, the rest is kept and the connection waits for EPOLLOUT
 * alone (it stops reading, so a client that does not read cannot make us
 * buffer without bound), then goes back to EPOLLIN.
 */
#include "epoll_loop.h"

#define RBUF 16384

static const char reply[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";
#define REPLY_LEN (sizeof reply - 1)
_Static_assert(REPLY_LEN == 78, "reply is 78 bytes");

/* Most replies a single read can need: the shortest request is "\r\n\r\n". */
#define MAX_REPLIES (RBUF / 4)

struct conn {
  int fd;
  uint32_t len;       /* bytes in buf (a partial request, then new input) */
  uint32_t scan_from; /* where the search for "\r\n\r\n" resumes */
  char *out;          /* unsent tail of a short write, or NULL */
  size_t out_len, out_off;
  char buf[RBUF];
};

/* Replies are assembled here (per thread) before the one write. */
static __thread char *scratch;

static void *conn_new(int fd) {
  struct conn *c = malloc(sizeof *c);
  if (!c) return NULL;
  c->fd = fd;
  c->len = 0;
  c->scan_from = 0;
  c->out = NULL;
  c->out_len = c->out_off = 0;
  return c;
}

static void conn_free(struct conn *c) {
  conn_close_fd(c->fd);
  free(c->out);
  free(c);
}

static void conn_event(struct loop *l, void *p, uint32_t events) {
  struct conn *c = p;

  if (c->out) { /* waiting to finish a short write */
    if (events & (EPOLLERR | EPOLLHUP)) {
      conn_free(c);
      return;
    }
    int r = send_some(c->fd, c->out, c->out_len, &c->out_off);
    if (r < 0) {
      conn_free(c);
    } else if (r > 0) {
      free(c->out);
      c->out = NULL;
      loop_mod(l, c->fd, EPOLLIN, c);
    }
    return;
  }

  ssize_t n = read(c->fd, c->buf + c->len, RBUF - c->len);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    conn_free(c); /* EOF or error */
    return;
  }
  c->len += (uint32_t)n;

  size_t done = 0; /* end of the last complete request */
  size_t nreq = 0;
  size_t search = c->scan_from;
  for (;;) {
    const char *e = memmem(c->buf + search, c->len - search, "\r\n\r\n", 4);
    if (!e) break;
    done = (size_t)(e - c->buf) + 4;
    search = done;
    nreq++;
  }

  if (nreq) {
    if (!scratch) {
      scratch = malloc(MAX_REPLIES * REPLY_LEN);
      if (!scratch) die("malloc");
    }
    size_t out_len = nreq * REPLY_LEN;
    for (size_t i = 0; i < nreq; i++) memcpy(scratch + i * REPLY_LEN, reply, REPLY_LEN);
    size_t off = 0;
    int r = send_some(c->fd, scratch, out_len, &off);
    if (r < 0) {
      conn_free(c);
      return;
    }
    if (r == 0) { /* keep the rest, wait for EPOLLOUT */
      c->out_len = out_len - off;
      c->out_off = 0;
      c->out = malloc(c->out_len);
      if (!c->out) {
        conn_free(c);
        return;
      }
      memcpy(c->out, scratch + off, c->out_len);
      loop_mod(l, c->fd, EPOLLOUT, c);
    }
    /* Keep the partial request (if any) at the front. */
    c->len -= (uint32_t)done;
    if (c->len) memmove(c->buf, c->buf + done, c->len);
  }
  if (c->len == RBUF) { /* a request head larger than the buffer */
    conn_free(c);
    return;
  }
  c->scan_from = c->len >= 3 ? c->len - 3 : 0;
}

int main(int argc, char **argv) { return run_server(argc, argv, "peer_c_http"); }
