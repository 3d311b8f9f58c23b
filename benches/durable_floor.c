/* durable_floor: the disk's share of the small-file case. Writes the given files into OUT
 * the way ohreq's publishers make a finished download durable (an unnamed O_TMPFILE file,
 * writeback started for a batch of 64, then per file fdatasync and a link to its name, then
 * one fsync of the directory per batch), from J threads like ohreq's publishers, with no
 * network and no bookkeeping, and prints the seconds that took. The sources are read into
 * memory first, untimed.
 *
 *   durable_floor J OUT FILE...    (OUT must exist; names are the sources' basenames) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *arg) {
    fprintf(stderr, "durable_floor: ");
    perror(arg ? arg : what);
    exit(1);
}

typedef struct {
    int first, step, n, dir;
    const char *out;
    char **names, **data;
    size_t *len;
} job;

/* Files first, first + step, ... of the job, in batches. */
static void *publish(void *arg) {
    job *j = arg;
    int fds[BATCH], idx[BATCH];
    int i = j->first;
    while (i < j->n) {
        int count = 0;
        for (; count < BATCH && i < j->n; count++, i += j->step) {
            idx[count] = i;
            fds[count] = open(j->out, O_TMPFILE | O_RDWR, 0644);
            if (fds[count] < 0) die("O_TMPFILE", j->out);
            if (write(fds[count], j->data[i], j->len[i]) != (ssize_t)j->len[i]) die("write", NULL);
        }
        for (int k = 0; count > 1 && k < count; k++) sync_file_range(fds[k], 0, 0, SYNC_FILE_RANGE_WRITE);
        for (int k = 0; k < count; k++) {
            if (fdatasync(fds[k]) != 0) die("fdatasync", NULL);
            char from[64];
            snprintf(from, sizeof from, "/proc/self/fd/%d", fds[k]);
            const char *name = strrchr(j->names[idx[k]], '/');
            name = name ? name + 1 : j->names[idx[k]];
            if (linkat(AT_FDCWD, from, j->dir, name, AT_SYMLINK_FOLLOW) != 0) die("linkat", name);
            close(fds[k]);
        }
        if (fsync(j->dir) != 0) die("fsync", j->out);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4 || atoi(argv[1]) < 1 || atoi(argv[1]) > 64) {
        fprintf(stderr, "usage: durable_floor J OUT FILE...\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    const char *out = argv[2];
    int n = argc - 3;
    char **names = argv + 3;
    char **data = calloc((size_t)n, sizeof *data);
    size_t *len = calloc((size_t)n, sizeof *len);
    if (!data || !len) die("calloc", NULL);
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(names[i], "rb");
        if (!f) die("open", names[i]);
        fseek(f, 0, SEEK_END);
        len[i] = (size_t)ftell(f);
        rewind(f);
        data[i] = malloc(len[i] ? len[i] : 1);
        if (!data[i] || fread(data[i], 1, len[i], f) != len[i]) die("read", names[i]);
        fclose(f);
    }
    int dir = open(out, O_RDONLY | O_DIRECTORY);
    if (dir < 0) die("open", out);

    pthread_t tid[64];
    job jobs[64];
    double t0 = now_s();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){t, threads, n, dir, out, names, data, len};
        if (pthread_create(&tid[t], NULL, publish, &jobs[t]) != 0) die("pthread_create", NULL);
    }
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    printf("%.3f\n", now_s() - t0);
    return 0;
}
