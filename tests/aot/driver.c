/* Runs an rnnc object file on raw files (float32, or int64 where the header says
 * 8 bytes an element): the test driver of tests/aot.rs.
 * Usage: driver IN_0.raw ... IN_n.raw OUT_0.raw ... OUT_m.raw
 * Built with -DMODEL_HEADER='"model.h"' -DPREFIX=model -DUPPER=MODEL. */
#include <stdio.h>
#include <stdlib.h>
#include MODEL_HEADER

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

#ifdef GUARD_PAGES
/* With -DGUARD_PAGES every buffer ends right where an inaccessible page starts,
 * so a read or write past its end in the generated code (which AddressSanitizer
 * does not instrument) stops the program. */
#include <sys/mman.h>
#include <unistd.h>
static void *alloc_zeroed(size_t bytes) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t body = (bytes + page - 1) / page * page;
    char *base = mmap(NULL, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED || mprotect(base + body, page, PROT_NONE) != 0) {
        perror("guard page");
        exit(1);
    }
    return base + body - bytes;
}
#else
static void *alloc_zeroed(size_t bytes) { return calloc(bytes ? bytes : 1, 1); }
#endif

/* n elements of `size` bytes (4: float32, 8: int64 token ids). */
static void *read_elements(const char *path, size_t n, size_t size) {
    void *p = alloc_zeroed(n * size);
    FILE *f = fopen(path, "rb");
    if (!p || !f || fread(p, size, n, f) != n) {
        fprintf(stderr, "cannot read %zu elements from %s\n", n, path);
        exit(1);
    }
    fclose(f);
    return p;
}

int main(int argc, char **argv) {
    enum { N_IN = CAT(UPPER, _N_INPUTS), N_OUT = CAT(UPPER, _N_OUTPUTS) };
    if (argc != 1 + N_IN + N_OUT) {
        fprintf(stderr, "expected %d input and %d output files\n", N_IN, N_OUT);
        return 1;
    }
    const float *inputs[N_IN];
    float *outputs[N_OUT];
    for (int i = 0; i < N_IN; i++)
        inputs[i] = read_elements(argv[1 + i], CAT(PREFIX, _input_len)[i],
                                  CAT(PREFIX, _input_elem_bytes)[i]);
    for (int i = 0; i < N_OUT; i++)
        outputs[i] = alloc_zeroed(CAT(PREFIX, _output_len)[i] * CAT(PREFIX, _output_elem_bytes)[i]);
    float *workspace = alloc_zeroed(CAT(UPPER, _WORKSPACE_FLOATS) * sizeof(float));
    CAT(PREFIX, _run)(inputs, outputs, workspace);
    for (int i = 0; i < N_OUT; i++) {
        FILE *f = fopen(argv[1 + N_IN + i], "wb");
        size_t n = CAT(PREFIX, _output_len)[i];
        if (!f || fwrite(outputs[i], CAT(PREFIX, _output_elem_bytes)[i], n, f) != n) {
            fprintf(stderr, "cannot write %s\n", argv[1 + N_IN + i]);
            return 1;
        }
        fclose(f);
    }
    return 0;
}
