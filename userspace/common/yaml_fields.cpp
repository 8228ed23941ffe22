#include "common/yaml_fields.hpp"

#include <map>

namespace ztseg::yaml {

std::set<std::string> checkFields(const Node& n, const std::string& what,
                                  const std::set<std::string>& allowed, const std::string& file,
                                  const FieldReport& report) {
    std::set<std::string> readable;
    std::map<std::string, Mark> seen;
    for (const auto& [key, value] : n.entries()) {
        std::string k = key.isScalar() ? key.scalar() : "?";
        if (auto [it, fresh] = seen.emplace(k, key.mark()); !fresh) {
            report(key, "duplicate field '" + k + "' in " + what + " (first at " + file + ":" +
                            std::to_string(it->second.line) + ":" +
                            std::to_string(it->second.column) + ")");
        } else if (!allowed.count(k)) {
            std::string list;
            for (const auto& a : allowed) {
                list += (list.empty() ? "" : ", ") + a;
            }
            report(key,
                   "unknown field '" + k + "' in " + what + " (expected one of: " + list + ")");
        } else {
            readable.insert(k);
        }
    }
    return readable;
}

}  // namespace ztseg::yaml
