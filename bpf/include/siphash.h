/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* SipHash-2-4 (Aumasson, Bernstein 2012) over a message of whole 64-bit
 * words: the keyed PRF of wire proofs (abi.h). Straight-line code, no
 * tables: about 14 instructions per SipRound, 2 rounds per word and 4 to
 * finish. Words are read as little-endian numbers, as the specification
 * says, which is how a little-endian host loads them. */
#ifndef ZTSEG_SIPHASH_H
#define ZTSEG_SIPHASH_H

#include <linux/types.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "wire proofs read SipHash words in host order: little-endian hosts only"
#endif

#define ZTSEG_ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define ZTSEG_SIPROUND(v0, v1, v2, v3) \
    do {                               \
        v0 += v1;                      \
        v1 = ZTSEG_ROTL64(v1, 13);     \
        v1 ^= v0;                      \
        v0 = ZTSEG_ROTL64(v0, 32);     \
        v2 += v3;                      \
        v3 = ZTSEG_ROTL64(v3, 16);     \
        v3 ^= v2;                      \
        v0 += v3;                      \
        v3 = ZTSEG_ROTL64(v3, 21);     \
        v3 ^= v0;                      \
        v2 += v1;                      \
        v1 = ZTSEG_ROTL64(v1, 17);     \
        v1 ^= v2;                      \
        v2 = ZTSEG_ROTL64(v2, 32);     \
    } while (0)

/* SipHash-2-4 of six 64-bit words (48 bytes), passed in registers so the
 * message needs no stack (a hook's call chain has 512 bytes in all). */
static __always_inline __u64 ztseg_siphash6(__u64 k0, __u64 k1, __u64 m0, __u64 m1, __u64 m2,
                                            __u64 m3, __u64 m4, __u64 m5) {
    __u64 v0 = k0 ^ 0x736f6d6570736575ull;
    __u64 v1 = k1 ^ 0x646f72616e646f6dull;
    __u64 v2 = k0 ^ 0x6c7967656e657261ull;
    __u64 v3 = k1 ^ 0x7465646279746573ull;
    const __u64 b = (__u64)48 << 56; /* the length byte; no partial last word */

#define ZTSEG_SIP_WORD(m)               \
    do {                                \
        v3 ^= (m);                      \
        ZTSEG_SIPROUND(v0, v1, v2, v3); \
        ZTSEG_SIPROUND(v0, v1, v2, v3); \
        v0 ^= (m);                      \
    } while (0)
    ZTSEG_SIP_WORD(m0);
    ZTSEG_SIP_WORD(m1);
    ZTSEG_SIP_WORD(m2);
    ZTSEG_SIP_WORD(m3);
    ZTSEG_SIP_WORD(m4);
    ZTSEG_SIP_WORD(m5);
    ZTSEG_SIP_WORD(b);
#undef ZTSEG_SIP_WORD
    v2 ^= 0xff;
    ZTSEG_SIPROUND(v0, v1, v2, v3);
    ZTSEG_SIPROUND(v0, v1, v2, v3);
    ZTSEG_SIPROUND(v0, v1, v2, v3);
    ZTSEG_SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

#endif /* ZTSEG_SIPHASH_H */
