// libFuzzer target for the policy front end: any bytes must end in a
// PolicySet or a PolicyError with locations, never a crash, hang, leak or any
// other exception (an escaping std::exception is a bug and aborts the run).
#include <cstdint>
#include <string>

#include "policy/compiler.hpp"
#include "policy/parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace ztseg::policy;
    Diagnostics diags;
    try {
        PolicySet ps = parsePolicies({{"fuzz.yaml", std::string(data, data + size)}}, diags);
        CompiledPolicy cp = compile(ps, 1, diags);
        (void)cp;
    } catch (const PolicyError& e) {
        if (e.diagnostics().empty()) {
            __builtin_trap();  // an error without a location is a bug too
        }
    }
    return 0;
}
