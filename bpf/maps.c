// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The one definition of every map; see include/bpf_maps.h. */
#define ZTSEG_DEFINE_MAPS
#include "bpf_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
