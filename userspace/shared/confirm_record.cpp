#include "shared/confirm_record.hpp"

#include <charconv>
#include <map>
#include <sstream>

#include "common/error.hpp"

namespace ztseg {
namespace {

constexpr const char* kHeader = "ztseg pending confirmation v1";

template <typename T>
T field(const std::map<std::string, std::string>& kv, const std::string& key) {
    auto it = kv.find(key);
    if (it == kv.end()) {
        throw Error("field '" + key + "' is missing");
    }
    T v{};
    const std::string& t = it->second;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size()) {
        throw Error("field '" + key + "' is not a number: '" + t + "'");
    }
    return v;
}

}  // namespace

std::string formatPending(const PendingConfirm& p) {
    std::ostringstream out;
    out << kHeader << "\n"
        << "generation " << p.generation << "\n"
        << "return_to " << p.return_to << "\n"
        << "deadline_unix_ms " << p.deadline_unix_ms << "\n"
        << "window_ms " << p.window_ms << "\n"
        << "end\n";
    return out.str();
}

PendingConfirm parsePending(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    if (!std::getline(in, line) || line != kHeader) {
        throw Error("not a pending confirmation record (first line '" + line.substr(0, 40) + "')");
    }
    std::map<std::string, std::string> kv;
    bool ended = false;
    while (std::getline(in, line)) {
        if (line == "end") {
            ended = true;
            break;
        }
        auto sp = line.find(' ');
        if (sp == std::string::npos ||
            !kv.emplace(line.substr(0, sp), line.substr(sp + 1)).second) {
            throw Error("bad line '" + line.substr(0, 60) + "'");
        }
    }
    if (!ended) {
        throw Error("the record is torn (no 'end' line)");
    }
    PendingConfirm p;
    p.generation = field<uint64_t>(kv, "generation");
    p.return_to = field<uint64_t>(kv, "return_to");
    p.deadline_unix_ms = field<int64_t>(kv, "deadline_unix_ms");
    p.window_ms = field<uint32_t>(kv, "window_ms");
    if (p.generation == 0 || p.return_to == 0 || p.generation == p.return_to) {
        throw Error("generation " + std::to_string(p.generation) + " returning to " +
                    std::to_string(p.return_to) + " makes no sense");
    }
    if (p.window_ms == 0 || p.window_ms > kMaxConfirmWindowMs) {
        throw Error("window_ms " + std::to_string(p.window_ms) + " is out of range");
    }
    return p;
}

}  // namespace ztseg
