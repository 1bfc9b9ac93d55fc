/* peer_c_echo PORT WORKERS -- hand-written epoll echo server.
 *
 * The physical reference for spindle's server comparison (bench/peers,
 * bench/peers/servers.md): WORKERS level-triggered epoll loops, each with its own
 * SO_REUSEPORT listener (epoll_loop.h). Per connection: one 16 KiB buffer.
 * Read up to 16 KiB, write it all back; if the write is short, keep the rest
 * in the buffer and wait for EPOLLOUT alone (no reading meanwhile, so the
 * buffer never overflows), then go back to EPOLLIN. EOF closes.
 */
#include "epoll_loop.h"

#define BUF 16384

struct conn {
  int fd;
  uint32_t off, len; /* unsent bytes are buf[off, len) */
  char buf[BUF];
};

static void *conn_new(int fd) {
  struct conn *c = malloc(sizeof *c);
  if (!c) return NULL;
  c->fd = fd;
  c->off = c->len = 0;
  return c;
}

static void conn_free(struct conn *c) {
  conn_close_fd(c->fd);
  free(c);
}

/* Send buf[off, len): 1 = all sent, 0 = socket full, -1 = error. */
static int flush(struct conn *c) {
  size_t off = c->off;
  int r = send_some(c->fd, c->buf, c->len, &off);
  c->off = (uint32_t)off;
  if (r == 1) c->off = c->len = 0;
  return r;
}

static void conn_event(struct loop *l, void *p, uint32_t events) {
  struct conn *c = p;

  if (c->len) { /* waiting to finish a short write */
    if (events & (EPOLLERR | EPOLLHUP)) {
      conn_free(c);
      return;
    }
    int r = flush(c);
    if (r < 0)
      conn_free(c);
    else if (r > 0)
      loop_mod(l, c->fd, EPOLLIN, c);
    return;
  }

  ssize_t n = read(c->fd, c->buf, BUF);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    conn_free(c);
    return;
  }
  c->off = 0;
  c->len = (uint32_t)n;
  int r = flush(c);
  if (r < 0)
    conn_free(c);
  else if (r == 0)
    loop_mod(l, c->fd, EPOLLOUT, c);
}

int main(int argc, char **argv) { return run_server(argc, argv, "peer_c_echo"); }
