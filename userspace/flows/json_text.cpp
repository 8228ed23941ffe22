#include "flows/json_text.hpp"

namespace ztseg::flows {
namespace {

// Length of the well-formed UTF-8 sequence starting at p (lead byte >= 0x80),
// or, when it is ill-formed, minus the length of its maximal subpart (the
// bytes a U+FFFD replaces; at least the lead byte). Unicode Table 3-7.
int utf8Sequence(const unsigned char* p, const unsigned char* end) {
    const unsigned char c = p[0];
    int need = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return -1;  // continuation byte, C0/C1, F5..FF: never starts a sequence
    }
    int have = 1;
    for (int i = 1; i <= need; ++i) {
        if (p + i >= end) {
            return -have;  // truncated at the end of the string
        }
        const unsigned char b = p[i];
        const unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
        if (b < min || b > max) {
            return -have;
        }
        ++have;
    }
    return have;
}

constexpr bool plainAscii(unsigned char c) {
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

}  // namespace

void appendJsonEscaped(std::string& out, std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    const auto* run = p;  // start of bytes still to copy unchanged
    while (p < end) {
        const unsigned char c = *p;
        if (plainAscii(c)) {
            ++p;
            continue;
        }
        if (c >= 0x80) {
            int n = utf8Sequence(p, end);
            if (n > 0) {
                p += n;  // well-formed: copied with the run
                continue;
            }
            out.append(reinterpret_cast<const char*>(run), size_t(p - run));
            out.append("\xEF\xBF\xBD");
            p += -n;
            run = p;
            continue;
        }
        out.append(reinterpret_cast<const char*>(run), size_t(p - run));
        switch (c) {
            case '"':
                out.append("\\\"");
                break;
            case '\\':
                out.append("\\\\");
                break;
            case '\b':
                out.append("\\b");
                break;
            case '\t':
                out.append("\\t");
                break;
            case '\n':
                out.append("\\n");
                break;
            case '\f':
                out.append("\\f");
                break;
            case '\r':
                out.append("\\r");
                break;
            default: {
                static constexpr char kHex[] = "0123456789abcdef";
                const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
                out.append(esc, sizeof(esc));
                break;
            }
        }
        ++p;
        run = p;
    }
    out.append(reinterpret_cast<const char*>(run), size_t(p - run));
}

}  // namespace ztseg::flows
