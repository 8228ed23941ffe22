// Appending JSON text to a reusable buffer without building a document: the
// hot path of the flow log. Strings are escaped exactly as nlohmann::json's
// dump(-1, ' ', false, error_handler_t::replace) does: '"', '\\' and control
// characters escaped (\b \t \n \f \r by name, others as \u00xx), other bytes
// copied, each maximal invalid UTF-8 subpart replaced by one U+FFFD.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace ztseg::flows {

// The escaped contents of a JSON string, without the quotes.
void appendJsonEscaped(std::string& out, std::string_view s);

inline void appendJsonString(std::string& out, std::string_view s) {
    out.push_back('"');
    appendJsonEscaped(out, s);
    out.push_back('"');
}

inline void appendUint(std::string& out, uint64_t v) {
    char buf[20];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, end);
}

inline void appendInt(std::string& out, int64_t v) {
    char buf[20];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, end);
}

}  // namespace ztseg::flows
