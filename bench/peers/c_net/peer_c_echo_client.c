/* peer_c_echo_client HOST PORT CONNECTIONS SECONDS SIZE [WORKERS]
 *
 * Echo load client in C for spindle's server comparison (bench/peers/servers.md).
 * CONNECTIONS connections are spread round-robin over WORKERS threads
 * (default 1); each thread runs one level-triggered epoll loop. Every
 * connection is a closed loop: send SIZE bytes, read until SIZE bytes have
 * come back, record the round trip (CLOCK_MONOTONIC), send again, until
 * SECONDS have passed. All connections are opened (blocking connect, then
 * non-blocking + TCP_NODELAY) before the clock starts; a round trip still in
 * flight when the time is up is not counted. The echoed bytes are checked
 * against what was sent; a mismatch, an early EOF or a socket error counts
 * one error and closes that connection.
 *
 * Latencies go into a per-thread log-linear histogram over nanoseconds
 * (128 sub-buckets per power of two: bucket width <= 1/128 of its value,
 * reported at the bucket's midpoint, so <= 0.4% error), merged at the end.
 * Output, one line on stdout:
 *   msgs=N seconds=S msgs_per_s=X p50_us=A p90_us=B p99_us=C p999_us=D max_us=E errors=K
 * Exit 0 if errors=0 and msgs>0, else 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- histogram ----------------------------------------------------------- */
#define SUB_BITS 7
#define SUB (1u << SUB_BITS)
#define NBUCKETS ((64 - SUB_BITS) * SUB + SUB) /* enough for any uint64 */

static unsigned bucket_of(uint64_t v) {
  if (v < SUB) return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - SUB_BITS;
  return shift * SUB + (unsigned)(v >> shift); /* v >> shift in [SUB, 2*SUB) */
}

/* Midpoint of bucket b's value range. */
static double bucket_mid(unsigned b) {
  if (b < 2 * SUB) return (double)b; /* width 1 */
  unsigned shift = b / SUB - 1;
  uint64_t lo = (uint64_t)(b - shift * SUB) << shift;
  return (double)lo + ((double)((uint64_t)1 << shift) - 1.0) / 2.0;
}

/* ---- per-thread state ---------------------------------------------------- */
struct conn {
  int fd;
  size_t sent, recvd;
  uint64_t t0; /* ns, when this round trip's first byte went out */
};

struct worker {
  pthread_t thread;
  int nconns;
  struct conn *conns;
  int epfd;
  uint64_t msgs, errors, max_ns;
  uint64_t *hist;
};

static struct sockaddr_storage server_addr;
static socklen_t server_addrlen;
static size_t msg_size;
static char *send_buf; /* the message every connection sends */
static uint64_t deadline_ns;
static pthread_barrier_t opened, go;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void conn_fail(struct worker *w, struct conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  w->errors++;
}

/* Push out the rest of the message; on a full socket wait for EPOLLOUT. */
static void conn_send(struct worker *w, struct conn *c) {
  while (c->sent < msg_size) {
    ssize_t n = write(c->fd, send_buf + c->sent, msg_size - c->sent);
    if (n > 0) {
      c->sent += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
      epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
      return;
    } else {
      conn_fail(w, c);
      return;
    }
  }
}

static void conn_start(struct worker *w, struct conn *c) {
  c->sent = c->recvd = 0;
  c->t0 = now_ns();
  conn_send(w, c);
}

static void *worker_run(void *arg) {
  struct worker *w = arg;
  w->hist = calloc(NBUCKETS, sizeof *w->hist);
  char *rbuf = malloc(msg_size < 65536 ? 65536 : msg_size);
  w->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!w->hist || !rbuf || w->epfd < 0) {
    perror("peer_c_echo_client: setup");
    exit(1);
  }

  for (int i = 0; i < w->nconns; i++) {
    struct conn *c = &w->conns[i];
    c->fd = socket(server_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&server_addr, server_addrlen) < 0) {
      perror("peer_c_echo_client: connect");
      conn_fail(w, c);
      continue;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) conn_fail(w, c);
  }
  pthread_barrier_wait(&opened); /* every thread has its connections */
  pthread_barrier_wait(&go);     /* main has set the deadline */

  for (int i = 0; i < w->nconns; i++)
    if (w->conns[i].fd >= 0) conn_start(w, &w->conns[i]);

  struct epoll_event evs[256];
  for (;;) {
    uint64_t t = now_ns();
    if (t >= deadline_ns) break;
    int timeout_ms = (int)((deadline_ns - t + 999999) / 1000000);
    int n = epoll_wait(w->epfd, evs, 256, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      exit(1);
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c->fd < 0) continue; /* failed earlier in this batch */
      if ((evs[i].events & EPOLLOUT) && c->sent < msg_size) {
        conn_send(w, c);
        if (c->fd < 0) continue;
        if (c->sent == msg_size) {
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
      if (!(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      /* Echoed bytes can only follow sent ones: read at most sent - recvd
       * (so a server that sends too much shows as a mismatch next time). */
      size_t want = c->sent - c->recvd;
      if (want == 0) {
        if (evs[i].events & (EPOLLERR | EPOLLHUP)) conn_fail(w, c);
        continue;
      }
      ssize_t r = read(c->fd, rbuf, want);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0 || memcmp(rbuf, send_buf + c->recvd, (size_t)r) != 0) {
        conn_fail(w, c);
        continue;
      }
      c->recvd += (size_t)r;
      if (c->recvd == msg_size) {
        uint64_t t1 = now_ns();
        if (t1 > deadline_ns) continue; /* finished after the bell: not counted */
        uint64_t rtt = t1 - c->t0;
        w->hist[bucket_of(rtt)]++;
        if (rtt > w->max_ns) w->max_ns = rtt;
        w->msgs++;
        conn_start(w, c);
      }
    }
  }
  for (int i = 0; i < w->nconns; i++)
    if (w->conns[i].fd >= 0) close(w->conns[i].fd);
  close(w->epfd);
  free(rbuf);
  return NULL;
}

static double percentile_us(const uint64_t *hist, uint64_t total, double q, uint64_t max_ns) {
  if (total == 0) return 0.0;
  uint64_t rank = (uint64_t)(q * (double)total + 0.999999999);
  if (rank < 1) rank = 1;
  uint64_t cum = 0;
  for (unsigned b = 0; b < NBUCKETS; b++) {
    cum += hist[b];
    if (cum >= rank) {
      double v = bucket_mid(b);
      if (v > (double)max_ns) v = (double)max_ns;
      return v / 1000.0;
    }
  }
  return (double)max_ns / 1000.0;
}

int main(int argc, char **argv) {
  if (argc != 6 && argc != 7) {
    fprintf(stderr, "usage: %s HOST PORT CONNECTIONS SECONDS SIZE [WORKERS]\n", argv[0]);
    return 2;
  }
  const char *host = argv[1], *port = argv[2];
  long nconns = atol(argv[3]);
  double seconds = atof(argv[4]);
  long size = atol(argv[5]);
  long nworkers = argc == 7 ? atol(argv[6]) : 1;
  if (nconns <= 0 || seconds <= 0 || size <= 0 || nworkers <= 0) {
    fprintf(stderr, "peer_c_echo_client: CONNECTIONS, SECONDS, SIZE, WORKERS must be > 0\n");
    return 2;
  }
  if (nworkers > nconns) nworkers = nconns;
  signal(SIGPIPE, SIG_IGN);

  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
  int gai = getaddrinfo(host, port, &hints, &ai);
  if (gai != 0) {
    fprintf(stderr, "peer_c_echo_client: %s: %s\n", host, gai_strerror(gai));
    return 1;
  }
  memcpy(&server_addr, ai->ai_addr, ai->ai_addrlen);
  server_addrlen = ai->ai_addrlen;
  freeaddrinfo(ai);

  msg_size = (size_t)size;
  send_buf = malloc(msg_size);
  if (!send_buf) return 1;
  for (size_t i = 0; i < msg_size; i++) send_buf[i] = (char)('a' + i % 26);

  struct worker *ws = calloc((size_t)nworkers, sizeof *ws);
  struct conn *conns = calloc((size_t)nconns, sizeof *conns);
  if (!ws || !conns) return 1;
  pthread_barrier_init(&opened, NULL, (unsigned)nworkers + 1);
  pthread_barrier_init(&go, NULL, (unsigned)nworkers + 1);
  long next = 0;
  for (long i = 0; i < nworkers; i++) {
    ws[i].nconns = (int)(nconns / nworkers + (i < nconns % nworkers));
    ws[i].conns = conns + next;
    next += ws[i].nconns;
    if (pthread_create(&ws[i].thread, NULL, worker_run, &ws[i]) != 0) {
      perror("pthread_create");
      return 1;
    }
  }
  pthread_barrier_wait(&opened);
  uint64_t start = now_ns();
  deadline_ns = start + (uint64_t)(seconds * 1e9);
  pthread_barrier_wait(&go);
  for (long i = 0; i < nworkers; i++) pthread_join(ws[i].thread, NULL);
  /* Only round trips finished by the deadline count, so the window is exact. */
  double elapsed = (double)(deadline_ns - start) / 1e9;

  uint64_t msgs = 0, errors = 0, max_ns = 0;
  uint64_t *hist = calloc(NBUCKETS, sizeof *hist);
  if (!hist) return 1;
  for (long i = 0; i < nworkers; i++) {
    msgs += ws[i].msgs;
    errors += ws[i].errors;
    if (ws[i].max_ns > max_ns) max_ns = ws[i].max_ns;
    for (unsigned b = 0; b < NBUCKETS; b++) hist[b] += ws[i].hist[b];
  }
  printf("msgs=%llu seconds=%.3f msgs_per_s=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
         "p999_us=%.1f max_us=%.1f errors=%llu\n",
         (unsigned long long)msgs, elapsed, (double)msgs / elapsed,
         percentile_us(hist, msgs, 0.50, max_ns), percentile_us(hist, msgs, 0.90, max_ns),
         percentile_us(hist, msgs, 0.99, max_ns), percentile_us(hist, msgs, 0.999, max_ns),
         (double)max_ns / 1000.0, (unsigned long long)errors);
  fflush(stdout);
  return (errors == 0 && msgs > 0) ? 0 : 1;
}
