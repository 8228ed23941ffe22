// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The one definition of the shared lookups (identity, policy, conntrack,
 * flow events): global functions, so the verifier checks each once and every
 * program calls the same code. Their documentation is in the headers. */
#define ZTSEG_DEFINE_LOOKUPS
#include "verdict.h"
