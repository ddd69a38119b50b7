/* rawsend: the cheapest possible client. Connects to a Unix stream socket and writes a file to it in
 * 64 KiB chunks (the read size of `telemetry send`), with no validation; then closes.
 * Separates the daemon's cost from the client's in bench/run.sh.
 *
 *   rawsend PATH FILE
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: rawsend PATH FILE\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int in = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        fprintf(stderr, "rawsend: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, argv[1], sizeof address.sun_path - 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        fprintf(stderr, "rawsend: cannot connect to %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    static char buffer[65536];
    ssize_t got;
    while ((got = read(in, buffer, sizeof buffer)) > 0) {
        for (ssize_t off = 0; off < got;) {
            ssize_t put = write(fd, buffer + off, (size_t)(got - off));
            if (put < 0) {
                if (errno == EINTR) continue;
                fprintf(stderr, "rawsend: write: %s\n", strerror(errno));
                return 1;
            }
            off += put;
        }
    }
    if (got < 0) {
        fprintf(stderr, "rawsend: read: %s\n", strerror(errno));
        return 1;
    }
    close(fd);
    return 0;
}
