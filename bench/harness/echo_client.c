/*
 * echo_client: the load generator of the side-by-side harness.
 *
 * Build:  gcc -O2 -Wall -Wextra -o bench/harness/build/echo_client \
 *             bench/harness/echo_client.c
 *
 * Load mode:
 *   echo_client HOST PORT CONNECTIONS SIZE DURATION WARMUP
 *
 *   Opens CONNECTIONS TCP connections (TCP_NODELAY) and drives each as a
 *   ping-pong: send SIZE bytes, read exactly SIZE bytes back, repeat. All
 *   connections are multiplexed on one epoll instance in one thread. The
 *   first WARMUP seconds are not counted; then "measuring" is written to
 *   stderr (so a caller can sample the server at the start of the window)
 *   and round trips are counted for DURATION seconds. At the end one JSON
 *   line goes to stdout:
 *     {"requests":N,"seconds":S,"req_per_s":R,"bytes_per_s":B,...}
 *   where bytes_per_s counts echoed bytes in one direction.
 *
 * Hold mode:
 *   echo_client --hold N HOST PORT
 *
 *   Opens N connections, in batches of 100, and sends one byte on each and
 *   waits for its echo (so the server has surely accepted and served every
 *   connection), then prints "ready N" and holds them idle until stdin
 *   reaches EOF or the process gets a signal. Used to measure server
 *   memory per idle connection.
 *
 * Exit status is 0 on success and 1 on any error (message on stderr).
 * Only plain C and Linux system calls are used; no libraries.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HOLD_BATCH 100
#define MAX_EVENTS 256
#define SCRATCH_SIZE (256 * 1024)

/* One ping-pong connection: how much of the current message has gone out
 * and how much of its echo has come back. */
struct conn {
  int fd;
  size_t sent;
  size_t recvd;
  int want_out; /* EPOLLOUT is registered */
};

static void die(const char *what) {
  fprintf(stderr, "echo_client: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void fail(const char *what) {
  fprintf(stderr, "echo_client: %s\n", what);
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Lift the soft open-file limit to the hard one, for thousands of sockets. */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static long parse_long(const char *s, const char *name) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v <= 0) {
    fprintf(stderr, "echo_client: bad %s: %s\n", name, s);
    exit(2);
  }
  return v;
}

static double parse_seconds(const char *s, const char *name) {
  char *end;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0' || v < 0) {
    fprintf(stderr, "echo_client: bad %s: %s\n", name, s);
    exit(2);
  }
  return v;
}

static void parse_addr(const char *host, const char *port,
                       struct sockaddr_in *addr) {
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_port = htons((unsigned short)parse_long(port, "port"));
  if (inet_pton(AF_INET, host, &addr->sin_addr) != 1) {
    fprintf(stderr, "echo_client: bad IPv4 address: %s\n", host);
    exit(2);
  }
}

/* A blocking connect with TCP_NODELAY set. */
static int connect_to(const struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  while (connect(fd, (const struct sockaddr *)addr, sizeof *addr) < 0) {
    if (errno != EINTR) die("connect");
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* ---- load mode ---------------------------------------------------------- */

static int g_epoll;
static size_t g_size;
static unsigned char *g_msg;
static unsigned char *g_scratch;

static void set_events(struct conn *c, int idx, int want_out) {
  struct epoll_event ev;
  ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
  ev.data.u32 = (unsigned)idx;
  if (epoll_ctl(g_epoll, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
  c->want_out = want_out;
}

/* Push out the rest of the current message; arm EPOLLOUT only while the
 * socket buffer is full. */
static void try_write(struct conn *c, int idx) {
  while (c->sent < g_size) {
    ssize_t n = send(c->fd, g_msg + c->sent, g_size - c->sent, MSG_NOSIGNAL);
    if (n > 0) {
      c->sent += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c->want_out) set_events(c, idx, 1);
      return;
    } else {
      die("send");
    }
  }
  if (c->want_out) set_events(c, idx, 0);
}

/* Read what the server echoed, never past the end of the current message.
 * Returns 1 when a full round trip completed. */
static int try_read(struct conn *c, int idx) {
  for (;;) {
    size_t want = g_size - c->recvd;
    if (want > SCRATCH_SIZE) want = SCRATCH_SIZE;
    ssize_t n = recv(c->fd, g_scratch, want, 0);
    if (n > 0) {
      c->recvd += (size_t)n;
      if (c->recvd > c->sent) fail("server sent bytes it was never sent");
      if (c->recvd == g_size) {
        c->sent = 0;
        c->recvd = 0;
        try_write(c, idx);
        return 1;
      }
    } else if (n == 0) {
      fail("server closed a connection");
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return 0;
    } else {
      die("recv");
    }
  }
}

static void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl");
}

static int run_load(const struct sockaddr_in *addr, long nconns, long size,
                    double duration, double warmup) {
  g_size = (size_t)size;
  g_msg = malloc(g_size);
  g_scratch = malloc(SCRATCH_SIZE);
  struct conn *conns = calloc((size_t)nconns, sizeof *conns);
  if (!g_msg || !g_scratch || !conns) fail("out of memory");
  for (size_t i = 0; i < g_size; i++) g_msg[i] = (unsigned char)('a' + i % 26);

  g_epoll = epoll_create1(EPOLL_CLOEXEC);
  if (g_epoll < 0) die("epoll_create1");
  for (long i = 0; i < nconns; i++) {
    conns[i].fd = connect_to(addr);
    set_nonblocking(conns[i].fd);
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.u32 = (unsigned)i;
    if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) {
      die("epoll_ctl");
    }
  }

  double start = now();
  double measure_at = start + warmup;
  double end_at = measure_at + duration;
  double measure_start = 0;
  int measuring = 0;
  unsigned long long requests = 0;
  struct epoll_event events[MAX_EVENTS];

  for (long i = 0; i < nconns; i++) try_write(&conns[i], (int)i);

  for (;;) {
    double t = now();
    if (!measuring && t >= measure_at) {
      measuring = 1;
      requests = 0;
      measure_start = t;
      fputs("measuring\n", stderr);
      fflush(stderr);
    }
    if (t >= end_at) break;
    double next = measuring ? end_at : measure_at;
    int timeout_ms = (int)((next - t) * 1000.0) + 1;
    if (timeout_ms > 100) timeout_ms = 100;
    int n = epoll_wait(g_epoll, events, MAX_EVENTS, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int k = 0; k < n; k++) {
      int idx = (int)events[k].data.u32;
      struct conn *c = &conns[idx];
      if (events[k].events & EPOLLOUT) try_write(c, idx);
      if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (try_read(c, idx)) requests++;
      }
    }
  }
  double seconds = now() - measure_start;
  printf("{\"requests\":%llu,\"seconds\":%.6f,\"req_per_s\":%.1f,"
         "\"bytes_per_s\":%.1f,\"connections\":%ld,\"size\":%ld}\n",
         requests, seconds, (double)requests / seconds,
         (double)requests * (double)g_size / seconds, nconns, size);
  fflush(stdout);
  for (long i = 0; i < nconns; i++) close(conns[i].fd);
  return 0;
}

/* ---- hold mode ---------------------------------------------------------- */

static int run_hold(const struct sockaddr_in *addr, long n) {
  int *fds = calloc((size_t)n, sizeof *fds);
  if (!fds) fail("out of memory");
  struct timeval tv = {.tv_sec = 30, .tv_usec = 0};
  for (long base = 0; base < n; base += HOLD_BATCH) {
    long top = base + HOLD_BATCH < n ? base + HOLD_BATCH : n;
    for (long i = base; i < top; i++) {
      fds[i] = connect_to(addr);
      setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (send(fds[i], "x", 1, MSG_NOSIGNAL) != 1) die("send");
    }
    for (long i = base; i < top; i++) {
      char b;
      ssize_t r;
      while ((r = recv(fds[i], &b, 1, 0)) < 0 && errno == EINTR) {
      }
      if (r == 0) fail("server closed a held connection");
      if (r < 0) die("recv (waiting for the echo of a held connection)");
    }
  }
  printf("ready %ld\n", n);
  fflush(stdout);
  /* Hold until stdin closes; a signal's default action ends us too. */
  char buf[256];
  for (;;) {
    ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
    if (r == 0 || (r < 0 && errno != EINTR)) break;
  }
  for (long i = 0; i < n; i++) close(fds[i]);
  return 0;
}

static void usage(void) {
  fputs("usage: echo_client HOST PORT CONNECTIONS SIZE DURATION WARMUP\n"
        "       echo_client --hold N HOST PORT\n",
        stderr);
  exit(2);
}

int main(int argc, char **argv) {
  struct sockaddr_in addr;
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  if (argc == 5 && strcmp(argv[1], "--hold") == 0) {
    long n = parse_long(argv[2], "connection count");
    parse_addr(argv[3], argv[4], &addr);
    return run_hold(&addr, n);
  }
  if (argc != 7) usage();
  parse_addr(argv[1], argv[2], &addr);
  long nconns = parse_long(argv[3], "connection count");
  long size = parse_long(argv[4], "message size");
  double duration = parse_seconds(argv[5], "duration");
  double warmup = parse_seconds(argv[6], "warmup");
  if (duration <= 0) usage();
  return run_load(&addr, nconns, size, duration, warmup);
}
