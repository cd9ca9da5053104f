// Software prefetch for the GEMM kernels: Swift has no spelling for it. Inline, so it compiles to one
// prefetcht0 instruction in the caller.
#ifndef EX2_CPREFETCH_H
#define EX2_CPREFETCH_H

static inline __attribute__((always_inline)) void ex2_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

#endif
