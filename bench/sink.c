/* sink: the ingest ceiling. Listens on a Unix stream socket, reads every connection to its end and
 * counts newlines; nothing else (no parsing, no storage). Single-threaded epoll loop.
 *
 *   sink PATH [EXPECT_LINES [TIMEOUT_SECONDS]]
 *
 * Prints "ready" once listening. With EXPECT_LINES > 0, exits as soon as that many newlines arrived and
 * prints "lines=N bytes=B seconds=S" (S from the first accepted connection to the last newline).
 * With EXPECT_LINES = 0 it serves until killed (the one-shot `logger` listener).
 * On SIGTERM it prints what it got so far ("partial lines=N ...") and exits 3.
 * Always exits by itself after TIMEOUT_SECONDS (default 600), so a broken run can't leave it behind.
 * Built by bench/run.sh with `cc -O2`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_term(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: sink PATH [EXPECT_LINES [TIMEOUT_SECONDS]]\n");
        return 2;
    }
    const char *path = argv[1];
    long long expect = argc > 2 ? atoll(argv[2]) : 0;
    unsigned timeout = argc > 3 ? (unsigned)atoi(argv[3]) : 600;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction term = {.sa_handler = on_term}; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &term, NULL);
    alarm(timeout);

    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) {
        fprintf(stderr, "sink: socket path too long\n");
        return 2;
    }
    strcpy(address.sun_path, path);
    unlink(path);
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(listener, 512) != 0) {
        fprintf(stderr, "sink: cannot listen on %s: %s\n", path, strerror(errno));
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    printf("ready\n");
    fflush(stdout);

    static char buffer[1 << 20];
    long long lines = 0, bytes = 0;
    double first = 0, last = 0;
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(ep, events, 64, -1);
        if (stop_requested) {
            printf("partial lines=%lld bytes=%lld seconds=%.6f\n", lines, bytes, first ? now() - first : 0.0);
            return 3;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("sink: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int client;
                while ((client = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    if (first == 0) first = now();
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = client};
                    epoll_ctl(ep, EPOLL_CTL_ADD, client, &cev);
                }
                continue;
            }
            for (;;) {
                ssize_t got = read(fd, buffer, sizeof buffer);
                if (got > 0) {
                    bytes += got;
                    const char *p = buffer, *end = buffer + got;
                    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
                        lines++;
                        p++;
                    }
                    if (got < (ssize_t)sizeof buffer) break;  /* drained for now: back to epoll */
                    continue;
                }
                if (got < 0 && (errno == EAGAIN || errno == EINTR)) break;
                close(fd); /* end of stream or error; close also removes it from the epoll set */
                break;
            }
            if (expect > 0 && lines >= expect) {
                last = now();
                printf("lines=%lld bytes=%lld seconds=%.6f\n", lines, bytes, last - first);
                return 0;
            }
        }
    }
}
