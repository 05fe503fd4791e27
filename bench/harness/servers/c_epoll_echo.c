/*
 * c_epoll_echo: a minimal single-threaded epoll TCP echo server, the
 * ceiling the other servers are measured against.
 *
 * Build:  gcc -O2 -Wall -Wextra -o bench/harness/build/c_epoll_echo \
 *             bench/harness/servers/c_epoll_echo.c
 * Run:    bench/harness/build/c_epoll_echo PORT
 *
 * Listens on 127.0.0.1:PORT, prints "listening PORT" and serves forever.
 * Level-triggered epoll; one shared 64 KiB read buffer. Each read is
 * written straight back; if the socket takes only part of it, the rest is
 * kept for that connection and reading stops until it has been flushed
 * (back-pressure, as every other server in the harness does).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_SIZE 65536
#define MAX_EVENTS 256

/* A connection: its socket and any bytes still to be written back. */
struct conn {
  int fd;
  unsigned char *pending;
  size_t pending_len;
  size_t pending_off;
};

static int g_epoll;
static unsigned char g_buf[READ_SIZE];

static void die(const char *what) {
  fprintf(stderr, "c_epoll_echo: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void watch(struct conn *c, int op, unsigned events) {
  struct epoll_event ev;
  ev.events = events;
  ev.data.ptr = c;
  if (epoll_ctl(g_epoll, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void drop(struct conn *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c->pending);
  free(c);
}

/* Write from buf; return how many bytes were written, or -1 on error. */
static ssize_t write_some(int fd, const unsigned char *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return -1;
    }
  }
  return (ssize_t)off;
}

static void on_readable(struct conn *c) {
  ssize_t n = recv(c->fd, g_buf, READ_SIZE, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    drop(c);
    return;
  }
  if (n < 0) return;
  ssize_t w = write_some(c->fd, g_buf, (size_t)n);
  if (w < 0) {
    drop(c);
    return;
  }
  if (w < n) {
    c->pending_len = (size_t)(n - w);
    c->pending_off = 0;
    c->pending = malloc(c->pending_len);
    if (!c->pending) die("malloc");
    memcpy(c->pending, g_buf + w, c->pending_len);
    watch(c, EPOLL_CTL_MOD, EPOLLOUT);
  }
}

static void on_writable(struct conn *c) {
  ssize_t w = write_some(c->fd, c->pending + c->pending_off,
                         c->pending_len - c->pending_off);
  if (w < 0) {
    drop(c);
    return;
  }
  c->pending_off += (size_t)w;
  if (c->pending_off == c->pending_len) {
    free(c->pending);
    c->pending = NULL;
    watch(c, EPOLL_CTL_MOD, EPOLLIN);
  }
}

static void on_accept(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EMFILE || errno == ENFILE) {
        perror("c_epoll_echo: accept4");
        return;
      }
      die("accept4");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) die("calloc");
    c->fd = fd;
    watch(c, EPOLL_CTL_ADD, EPOLLIN);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fputs("usage: c_epoll_echo PORT\n", stderr);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int port = atoi(argv[1]);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(lfd, 1024) < 0) die("listen");
  socklen_t alen = sizeof addr;
  getsockname(lfd, (struct sockaddr *)&addr, &alen);

  g_epoll = epoll_create1(EPOLL_CLOEXEC);
  if (g_epoll < 0) die("epoll_create1");
  struct epoll_event lev;
  lev.events = EPOLLIN;
  lev.data.ptr = NULL; /* NULL marks the listening socket */
  if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl");

  printf("listening %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(g_epoll, events, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int k = 0; k < n; k++) {
      struct conn *c = events[k].data.ptr;
      if (c == NULL) {
        on_accept(lfd);
      } else if (c->pending) {
        on_writable(c);
      } else {
        on_readable(c);
      }
    }
  }
}
