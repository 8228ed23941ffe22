#include "common/etcd_bundle_ref.hpp"

#include <openssl/evp.h>

#include <charconv>

#include "common/error.hpp"

namespace ztseg {
namespace {

constexpr std::string_view kMagic{"\0ztseg-bundle-ref/1\n", 20};

// "<name>=<value>\n" at `pos`; advances pos past it.
std::string_view field(std::string_view v, size_t& pos, std::string_view name) {
    if (v.substr(pos, name.size() + 1) != std::string(name) + "=") {
        throw Error("etcd bundle reference: expected '" + std::string(name) + "=' at byte " +
                    std::to_string(pos));
    }
    pos += name.size() + 1;
    size_t nl = v.find('\n', pos);
    if (nl == std::string_view::npos) {
        throw Error("etcd bundle reference: '" + std::string(name) + "' is not terminated");
    }
    std::string_view out = v.substr(pos, nl - pos);
    pos = nl + 1;
    return out;
}

}  // namespace

std::string etcdGenerationKey(const std::string& prefix, uint64_t generation) {
    return prefix + "/generations/" + std::to_string(generation);
}

std::string sha256Hex(std::string_view bytes) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr) != 1) {
        throw Error("SHA-256 failed");
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 0xf];
    }
    return out;
}

std::string makeEtcdBundleRef(const std::string& prefix, uint64_t generation,
                              std::string_view signed_bundle) {
    return std::string(kMagic) + "generation=" + std::to_string(generation) +
           "\nsha256=" + sha256Hex(signed_bundle) +
           "\nkey=" + etcdGenerationKey(prefix, generation) + "\n";
}

bool isEtcdBundleRef(std::string_view value) {
    return value.substr(0, kMagic.size()) == kMagic;
}

EtcdBundleRef parseEtcdBundleRef(std::string_view v) {
    if (!isEtcdBundleRef(v)) {
        throw Error("etcd bundle reference: no reference header");
    }
    if (v.size() > 4096) {
        throw Error("etcd bundle reference: " + std::to_string(v.size()) + " bytes, too long");
    }
    size_t pos = kMagic.size();
    EtcdBundleRef r;
    std::string_view g = field(v, pos, "generation");
    auto [end, ec] = std::from_chars(g.data(), g.data() + g.size(), r.generation);
    if (ec != std::errc() || end != g.data() + g.size() || r.generation == 0) {
        throw Error("etcd bundle reference: bad generation '" + std::string(g) + "'");
    }
    r.sha256_hex = std::string(field(v, pos, "sha256"));
    if (r.sha256_hex.size() != 64 ||
        r.sha256_hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
        throw Error("etcd bundle reference: bad sha256 '" + r.sha256_hex + "'");
    }
    r.key = std::string(field(v, pos, "key"));
    if (pos != v.size()) {
        throw Error("etcd bundle reference: trailing bytes after the key");
    }
    return r;
}

}  // namespace ztseg
