/* epoll_loop.h -- shared pieces of the C server peers (peer_c_http, peer_c_echo).
 *
 * The C peers are the "physical reference" for spindle's server comparison:
 * what a careful C programmer writes by hand. Each worker thread runs one
 * level-triggered epoll loop with its own SO_REUSEPORT listener on
 * 127.0.0.1:PORT (the kernel spreads new connections over the listeners), so
 * a connection lives on one thread for its whole life and nothing is shared.
 *
 * A server includes this header and defines three functions:
 *   static void *conn_new(int fd);            // accepted fd -> state (or NULL)
 *   static void  conn_event(struct loop *, void *conn, uint32_t events);
 *   (the loop itself hands every non-listener event to conn_event)
 * and calls run_server(argc, argv, name).
 *
 * Shutdown: main() blocks SIGTERM/SIGINT in every thread before starting the
 * workers and waits for them with sigwait(); on one it exits 0 at once
 * (_exit, so no atexit handler races the worker threads).
 */
#ifndef SPINDLE_PEER_EPOLL_LOOP_H
#define SPINDLE_PEER_EPOLL_LOOP_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define ACCEPT_BATCH 64 /* accepts per listener wake-up, then serve the others */

struct loop {
  int epfd;
  int listen_fd;
  int spare_fd; /* held open so EMFILE can be answered by accept+close */
};

/* The listener's epoll data.ptr; connections carry their own state pointer. */
static char listener_tag;

static void die(const char* what) {
  perror(what);
  exit(1);
}

/* Write out[off, len); returns 1 when all is sent, 0 when the socket is full
 * (off advanced), -1 on a hard error. */
static int send_some(int fd, const char* out, size_t len, size_t* off) {
  while (*off < len) {
    ssize_t w = write(fd, out + *off, len - *off);
    if (w > 0) {
      *off += (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && errno == EAGAIN) {
      return 0;
    } else {
      return -1;
    }
  }
  return 1;
}

static int make_listener(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("SO_REUSEADDR");
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) die("SO_REUSEPORT");
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr*)&sa, sizeof sa) < 0) die("bind");
  if (listen(fd, SOMAXCONN) < 0) die("listen");
  return fd;
}

static void loop_add(struct loop* l, int fd, uint32_t events, void* ptr) {
  struct epoll_event ev = {.events = events, .data.ptr = ptr};
  if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl ADD");
}

static void loop_mod(struct loop* l, int fd, uint32_t events, void* ptr) {
  struct epoll_event ev = {.events = events, .data.ptr = ptr};
  if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl MOD");
}

/* close() removes the fd from the epoll set (we never dup() these fds). */
static void conn_close_fd(int fd) { close(fd); }

static void* conn_new(int fd);
static void conn_event(struct loop* l, void* conn, uint32_t events);

static void loop_accept(struct loop* l) {
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    int fd = accept4(l->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && l->spare_fd >= 0) {
        /* Out of fds: level-triggered epoll would spin on the listener, so
         * take the connection with the spare fd and drop it. */
        close(l->spare_fd);
        int c = accept(l->listen_fd, NULL, NULL);
        if (c >= 0) close(c);
        l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        continue;
      }
      return; /* EAGAIN, or an error the next wake-up will retry */
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    void* c = conn_new(fd);
    if (!c) {
      close(fd);
      continue;
    }
    loop_add(l, fd, EPOLLIN, c);
  }
}

static void* loop_run(void* arg) {
  struct loop* l = arg;
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(l->epfd, evs, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == &listener_tag)
        loop_accept(l);
      else
        conn_event(l, evs[i].data.ptr, evs[i].events);
    }
  }
  return NULL;
}

static int run_server(int argc, char** argv, const char* name) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s PORT WORKERS\n", name);
    return 2;
  }
  int port = atoi(argv[1]);
  int workers = atoi(argv[2]);
  if (port <= 0 || port > 65535 || workers <= 0) {
    fprintf(stderr, "%s: bad PORT or WORKERS\n", name);
    return 2;
  }

  /* Workers inherit this mask; only the main thread takes the signals. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* All listeners are bound and listening before the line is printed, so a
   * client that connects right after it lands in some listener's backlog. */
  struct loop* loops = calloc((size_t)workers, sizeof *loops);
  if (!loops) die("calloc");
  for (int i = 0; i < workers; i++) {
    loops[i].listen_fd = make_listener(port);
    loops[i].epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loops[i].epfd < 0) die("epoll_create1");
    loops[i].spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    loop_add(&loops[i], loops[i].listen_fd, EPOLLIN, &listener_tag);
  }
  for (int i = 0; i < workers; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, loop_run, &loops[i]) != 0) die("pthread_create");
    pthread_detach(t);
  }
  printf("listening on 127.0.0.1:%d\n", port);
  fflush(stdout);

  int sig;
  while (sigwait(&stop, &sig) != 0) {
  }
  _exit(0);
}

#endif
