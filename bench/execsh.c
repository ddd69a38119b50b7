/* execsh: a minimal "shell" for hyperfine (`hyperfine --shell=execsh`), so that a command can get its
 * standard input from a file without paying for a real shell.
 *
 * Why: Debian 12's hyperfine 1.15 has no --input option, and with -N (no shell) the command's stdin is
 * /dev/null. `telemetry send` reads its event from stdin, so hyperfine must run it through a shell; but
 * on a busy 2-core machine, dash's startup (which hyperfine measures and subtracts) varies by more than
 * the ~1 ms being measured. execsh starts in a fraction of that and replaces itself with the command
 * (execvp, no fork), exactly like `sh -c 'cmd < file'` does for a single simple command.
 *
 *   execsh -c "PROGRAM ARG... [< FILE]"
 *
 * Words are separated by blanks; no quoting, variables or globbing. `-c ""` exits 0 at once (hyperfine
 * runs that to measure the shell's own startup).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3 || strcmp(argv[1], "-c") != 0) {
        fprintf(stderr, "usage: execsh -c \"PROGRAM ARG... [< FILE]\"\n");
        return 2;
    }
    char *words[256];
    int count = 0;
    char *input = NULL;
    int redirect = 0;
    for (char *word = strtok(argv[2], " \t\n"); word; word = strtok(NULL, " \t\n")) {
        if (redirect) {
            input = word;
            redirect = 0;
        } else if (strcmp(word, "<") == 0) {
            redirect = 1;
        } else if (word[0] == '<') {
            input = word + 1;
        } else if (count < 255) {
            words[count++] = word;
        }
    }
    words[count] = NULL;
    if (count == 0) return 0;
    if (input) {
        int fd = open(input, O_RDONLY);
        if (fd < 0 || dup2(fd, 0) < 0) {
            fprintf(stderr, "execsh: %s: %s\n", input, strerror(errno));
            return 127;
        }
        if (fd != 0) close(fd);
    }
    execvp(words[0], words);
    fprintf(stderr, "execsh: %s: %s\n", words[0], strerror(errno));
    return 127;
}
