/* execsh: runs a program with its standard input taken from a file, for timing with `hyperfine -N`.
 *
 *   execsh STDIN_FILE [PROGRAM ARG...]
 *
 * Opens STDIN_FILE as descriptor 0 and replaces itself with PROGRAM (execvp, no fork). Without PROGRAM it
 * exits 0 at once: that is the baseline bench/run.sh subtracts (hyperfine's spawn of execsh plus this
 * open), so that what remains is the cost of starting and running PROGRAM itself.
 *
 * Why: Debian 12's hyperfine 1.15 has no --input option, and with -N (no shell) a command's stdin is
 * /dev/null; `telemetry send` reads its event from stdin. Running the commands through a shell instead
 * makes hyperfine subtract a shell-startup figure it calibrates once, up front: on a busy 2-core machine
 * that one figure varies by more than the ~1 ms measured here (it even drove medians to 0). A baseline
 * command timed like the others, 300 times, subtracts robustly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: execsh STDIN_FILE [PROGRAM ARG...]\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0 || dup2(fd, 0) < 0) {
        fprintf(stderr, "execsh: %s: %s\n", argv[1], strerror(errno));
        return 127;
    }
    if (fd != 0) close(fd);
    if (argc == 2) return 0;
    execvp(argv[2], argv + 2);
    fprintf(stderr, "execsh: %s: %s\n", argv[2], strerror(errno));
    return 127;
}
