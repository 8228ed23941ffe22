#include "policy/sources.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "common/error.hpp"
#include "common/file.hpp"

namespace fs = std::filesystem;

namespace ztseg::policy {

bool checkText(const SourceText& s, Diagnostics& diags) {
    int line = 1, col = 1;
    const std::string& t = s.text;
    for (size_t i = 0; i < t.size();) {
        auto c = static_cast<unsigned char>(t[i]);
        size_t len = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xe  ? 3
                     : (c >> 3) == 0x1e ? 4
                                        : 0;
        bool ok = len != 0 && i + len <= t.size();
        for (size_t k = 1; ok && k < len; ++k) {
            ok = (static_cast<unsigned char>(t[i + k]) >> 6) == 0x2;
        }
        if (!ok) {
            diags.error({s.name, line, col}, "invalid UTF-8 (policy files are UTF-8 text)");
            return false;
        }
        if (len == 1 && ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f)) {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "0x%02x", c);
            diags.error({s.name, line, col},
                        std::string("control character ") + hex + " (policy files are UTF-8 text)");
            return false;
        }
        if (c == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
        i += len;
    }
    return true;
}

std::string sourceDigest(const std::vector<SourceText>& sources) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    for (const auto& s : sources) {
        // length-prefixed so ("ab","c") and ("a","bc") differ
        std::string head = std::to_string(s.name.size()) + ":" + s.name + ":" +
                           std::to_string(s.text.size()) + ":";
        EVP_DigestUpdate(ctx, head.data(), head.size());
        EVP_DigestUpdate(ctx, s.text.data(), s.text.size());
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 15];
    }
    return out;
}

std::vector<fs::path> policyFilesIn(const fs::path& dir) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
        auto ext = it->path().extension();
        if (it->is_regular_file(ec) && (ext == ".yaml" || ext == ".yml")) {
            files.push_back(it->path());
        }
    }
    if (ec) {
        throw Error("read policy directory " + dir.string() + ": " + ec.message());
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::vector<SourceText> readPolicySources(const std::vector<std::string>& paths) {
    std::vector<SourceText> sources;
    for (const std::string& arg : paths) {
        fs::path p(arg);
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            for (const fs::path& f : policyFilesIn(p)) {
                sources.push_back({fs::relative(f, p).string(), readFile(f.string())});
            }
        } else if (fs::exists(p, ec)) {
            sources.push_back({p.filename().string(), readFile(p.string())});
        } else {
            throw Error("policy input " + arg + " does not exist");
        }
    }
    if (sources.empty()) {
        throw Error("no *.yaml policy files found in the given paths");
    }
    return sources;
}

PolicySet loadPolicies(const std::vector<std::string>& paths, Diagnostics& diags) {
    return parsePolicies(readPolicySources(paths), diags);
}

}  // namespace ztseg::policy
