// Does sendfile(2) from a memory file cost a server less CPU than writev(2) from user
// memory, for tile-sized responses over loopback TCP? A client process keeps CONNECTIONS
// connections; on each it sends a 16-byte request and reads the 100-byte header and
// 30,000-byte body back, all connections in step (as wrk's, or a map's tile requests).
// The server, one thread on epoll, answers from 1,800 distinct bodies (59 MB, beyond the
// CPU's caches, as a tile cache's bodies are), either with one writev (header and body,
// as hyper does) or with a write of the header and sendfile of the body from a memfd.
// Prints the server's CPU time (user + system) and the wall time per response.
// (benches/sendfile_copy.py measures a stream of bodies to a reader thread instead.)
//
//   gcc -O2 -o .data/sendfile_pingpong benches/sendfile_pingpong.c
//   .data/sendfile_pingpong 0 100000 [CONNECTIONS]   # writev
//   .data/sendfile_pingpong 1 100000 [CONNECTIONS]   # sendfile from a memfd
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SIZE 30000
#define HEADER 100
#define BODIES 1800
#define SLOT 32768
#define MAX_CONNECTIONS 64

static double cpu_seconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

// The client: `rounds` requests on each connection, all connections in step.
static void client(struct sockaddr_in *addr, int connections, long rounds) {
  int one = 1, c[MAX_CONNECTIONS];
  for (int i = 0; i < connections; i++) {
    c[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c[i], (void *)addr, sizeof *addr) != 0) die("connect");
    setsockopt(c[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  char *buf = malloc(1 << 16), req[16] = {0};
  for (long r = 0; r < rounds; r++) {
    for (int i = 0; i < connections; i++)
      if (write(c[i], req, sizeof req) != sizeof req) die("client write");
    for (int i = 0; i < connections; i++) {
      long need = HEADER + SIZE;
      while (need > 0) {
        long got = read(c[i], buf, 1 << 16);
        if (got <= 0) die("client read");
        need -= got;
      }
    }
  }
  exit(0);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODE(0 writev, 1 sendfile) RESPONSES [CONNECTIONS]\n", argv[0]);
    return 2;
  }
  int mode = atoi(argv[1]);
  long n = atol(argv[2]);
  int connections = argc > 3 ? atoi(argv[3]) : 1;
  if (connections < 1 || connections > MAX_CONNECTIONS) connections = 1;
  long rounds = n / connections;
  n = rounds * connections;

  char *heap = malloc((size_t)BODIES * SLOT);
  for (size_t i = 0; i < (size_t)BODIES * SLOT; i++) heap[i] = (char)rand();
  int memfd = memfd_create("tiles", 0);
  if (ftruncate(memfd, (off_t)BODIES * SLOT) != 0) die("ftruncate");
  if (pwrite(memfd, heap, (size_t)BODIES * SLOT, 0) != (ssize_t)BODIES * SLOT) die("pwrite");

  int one = 1, listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len = sizeof addr;
  if (bind(listener, (void *)&addr, sizeof addr) != 0 || getsockname(listener, (void *)&addr, &len) != 0 ||
      listen(listener, MAX_CONNECTIONS) != 0)
    die("listen");
  if (fork() == 0) client(&addr, connections, rounds);

  int epoll = epoll_create1(0);
  for (int i = 0; i < connections; i++) {
    int s = accept(listener, 0, 0);
    if (s < 0) die("accept");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
    epoll_ctl(epoll, EPOLL_CTL_ADD, s, &ev);
  }
  char header[HEADER], req[16];
  memset(header, 'h', sizeof header);
  double cpu0 = cpu_seconds();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long served = 0;
  struct epoll_event events[MAX_CONNECTIONS];
  while (served < n) {
    int ready = epoll_wait(epoll, events, MAX_CONNECTIONS, -1);
    for (int e = 0; e < ready; e++) {
      int s = events[e].data.fd;
      long got = 0;
      while (got < (long)sizeof req) {
        long r = read(s, req + got, sizeof req - got);
        if (r <= 0) die("server read");
        got += r;
      }
      size_t k = ((size_t)served * 7919) % BODIES;
      if (mode == 0) {
        struct iovec v[2] = {{header, HEADER}, {heap + k * SLOT, SIZE}};
        long left = HEADER + SIZE, w;
        while (left > 0 && (w = writev(s, v, 2)) > 0) {
          left -= w;
          if (left > 0) break; // (not seen: blocking sockets write whole buffers)
        }
        if (left > 0) die("short writev");
      } else {
        if (write(s, header, HEADER) != HEADER) die("write");
        off_t off = (off_t)(k * SLOT);
        long left = SIZE;
        while (left > 0) {
          long w = sendfile(s, memfd, &off, left);
          if (w <= 0) die("sendfile");
          left -= w;
        }
      }
      served++;
    }
  }
  double cpu = cpu_seconds() - cpu0;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  wait(0);
  double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("%s, %d connection(s): server CPU %.2f us/response, wall %.2f us/response\n",
         mode ? "sendfile from a memfd" : "writev", connections, cpu / n * 1e6, wall / n * 1e6);
  return 0;
}
