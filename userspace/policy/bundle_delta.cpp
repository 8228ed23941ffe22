#include "policy/bundle_delta.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>
#include <unordered_map>

#include "bundle.pb.h"
#include "common/error.hpp"
#include "policy/bundle.hpp"

namespace ztseg::policy {
namespace {

// One varint at `p`; advances it. False if cut short or longer than 10 bytes.
bool readVarint(const char*& p, const char* end, uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 70 && p < end; shift += 7) {
        auto b = uint8_t(*p++);
        v |= uint64_t(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            return true;
        }
    }
    return false;
}

std::string generations(const DeltaInfo& d) {
    return "delta " + std::to_string(d.base_generation) + " -> " + std::to_string(d.generation);
}

using Edit = v1::RecordEdit;

// Myers' O((N+M)D) shortest edit script between `a` and `b` (records
// compared by bytes), as edits on `a`; nullopt when more than `max_d`
// records differ.
std::optional<std::vector<Edit>> editScript(const std::vector<std::string_view>& a,
                                            const std::vector<std::string_view>& b, size_t max_d) {
    // Common prefix and suffix first: a small change leaves a small window.
    size_t pre = 0;
    while (pre < a.size() && pre < b.size() && a[pre] == b[pre]) {
        ++pre;
    }
    size_t suf = 0;
    while (suf < a.size() - pre && suf < b.size() - pre &&
           a[a.size() - 1 - suf] == b[b.size() - 1 - suf]) {
        ++suf;
    }
    const long n = long(a.size() - pre - suf), m = long(b.size() - pre - suf);
    auto A = [&](long i) { return a[pre + size_t(i)]; };
    auto B = [&](long j) { return b[pre + size_t(j)]; };
    // Records in one window and not the other bound the script from below:
    // refuse early, in linear time, what the search would refuse slowly.
    std::unordered_map<std::string_view, long> balance;
    for (long i = 0; i < n; ++i) ++balance[A(i)];
    for (long j = 0; j < m; ++j) --balance[B(j)];
    size_t lower = 0;
    for (const auto& [r, c] : balance) lower += size_t(std::labs(c));
    if (lower > max_d) {
        return std::nullopt;
    }
    const long dmax = std::min<long>(n + m, long(max_d));
    const long off = dmax + 1;
    std::vector<long> v(size_t(2 * dmax + 3), 0);
    // trace[d]: v[-d-1 .. d+1] before round d (all a backward walk reads).
    std::vector<std::vector<long>> trace;
    long found = -1;
    for (long d = 0; d <= dmax && found < 0; ++d) {
        trace.emplace_back(v.begin() + (off - d - 1), v.begin() + (off + d + 2));
        for (long k = -d; k <= d; k += 2) {
            long x = (k == -d || (k != d && v[size_t(off + k - 1)] < v[size_t(off + k + 1)]))
                         ? v[size_t(off + k + 1)]
                         : v[size_t(off + k - 1)] + 1;
            long y = x - k;
            while (x < n && y < m && A(x) == B(y)) {
                ++x;
                ++y;
            }
            v[size_t(off + k)] = x;
            if (x >= n && y >= m) {
                found = d;
                break;
            }
        }
    }
    if (found < 0) {
        return std::nullopt;
    }
    // Walk back: round d added one deletion (a[x]) or one insertion (b[y]
    // before a[x]) in front of a diagonal run.
    struct Op {
        long x, y;
        bool deletion;
    };
    std::vector<Op> ops;
    long x = n, y = m;
    for (long d = found; d > 0; --d) {
        const std::vector<long>& pv = trace[size_t(d)];
        auto at = [&](long k) { return pv[size_t(k + d + 1)]; };
        long k = x - y;
        bool insertion = k == -d || (k != d && at(k - 1) < at(k + 1));
        long pk = insertion ? k + 1 : k - 1;
        long px = at(pk), py = px - pk;
        ops.push_back(insertion ? Op{px, py, false} : Op{px, py, true});
        x = px;
        y = py;
    }
    std::reverse(ops.begin(), ops.end());
    // Operations at one place (a run of deletions and insertions) become one
    // edit: the deleted range, replaced by the inserted records in order.
    std::vector<Edit> edits;
    for (const Op& op : ops) {
        auto pos = uint32_t(pre + size_t(op.x));
        if (edits.empty() || pos != edits.back().base_index() + edits.back().delete_count()) {
            edits.emplace_back().set_base_index(pos);
        }
        Edit& e = edits.back();
        if (op.deletion) {
            e.set_delete_count(e.delete_count() + 1);
        } else {
            e.add_insert(std::string(B(op.y)));
        }
    }
    return edits;
}

}  // namespace

std::string sha256(std::string_view bytes) {
    unsigned char out[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out);
    return std::string(reinterpret_cast<const char*>(out), sizeof(out));
}

std::vector<std::string_view> bundleRecords(std::string_view bundle) {
    std::vector<std::string_view> out;
    const char* p = bundle.data();
    const char* end = p + bundle.size();
    while (p < end) {
        const char* start = p;
        uint64_t tag = 0, len = 0;
        if (!readVarint(p, end, tag) || (tag >> 3) == 0) {
            throw Error("bundle: malformed field tag at byte " +
                        std::to_string(start - bundle.data()));
        }
        bool ok = true;
        switch (tag & 7) {
            case 0:  // varint
                ok = readVarint(p, end, len);
                break;
            case 1:  // 64-bit
                ok = end - p >= 8;
                p += ok ? 8 : 0;
                break;
            case 2:  // length-delimited
                ok = readVarint(p, end, len) && len <= uint64_t(end - p);
                p += ok ? len : 0;
                break;
            case 5:  // 32-bit
                ok = end - p >= 4;
                p += ok ? 4 : 0;
                break;
            default:
                ok = false;
        }
        if (!ok) {
            throw Error("bundle: malformed field at byte " + std::to_string(start - bundle.data()));
        }
        out.emplace_back(start, size_t(p - start));
    }
    return out;
}

std::optional<std::string> makeDelta(const std::string& base, const std::string& next,
                                     const DeltaLimits& limits) {
    std::vector<std::string_view> from = bundleRecords(base), to = bundleRecords(next);
    // The generation is the first record of a deterministic bundle: parse
    // that one, not two whole bundles (15 MB each at 100k rules).
    auto generationOf = [](const std::vector<std::string_view>& records, size_t size) {
        v1::Bundle b;
        if (records.empty() || !b.ParseFromArray(records[0].data(), int(records[0].size())) ||
            b.generation() == 0) {
            throw Error("make delta: not a valid bundle (" + std::to_string(size) + " bytes)");
        }
        return b.generation();
    };
    v1::BundleDelta d;
    d.set_base_generation(generationOf(from, base.size()));
    d.set_generation(generationOf(to, next.size()));
    d.set_base_digest(sha256(base));
    d.set_result_digest(sha256(next));
    auto edits = editScript(from, to, limits.max_changed_records);
    if (!edits) {
        return std::nullopt;
    }
    for (auto& e : *edits) {
        *d.add_edits() = std::move(e);
    }
    std::string bytes = deterministicBytes(d);
    if (applyDelta(base, bytes) != next) {  // never ship a delta that does not rebuild `next`
        throw Error("make delta: internal error: the delta does not rebuild generation " +
                    std::to_string(d.generation()));
    }
    return bytes;
}

DeltaInfo deltaInfo(const std::string& delta) {
    v1::BundleDelta d;
    if (!d.ParseFromString(delta) || d.base_digest().size() != SHA256_DIGEST_LENGTH ||
        d.result_digest().size() != SHA256_DIGEST_LENGTH || d.generation() == 0) {
        throw Error("delta: not a valid ztseg bundle delta (" + std::to_string(delta.size()) +
                    " bytes)");
    }
    DeltaInfo info{d.base_generation(), d.generation(), d.base_digest(), d.result_digest(),
                   size_t(d.edits_size())};
    for (const auto& e : d.edits()) {
        info.inserted_records += size_t(e.insert_size());
        info.deleted_records += e.delete_count();
    }
    return info;
}

std::string applyDelta(const std::string& base, const std::string& delta) {
    DeltaInfo info = deltaInfo(delta);
    if (sha256(base) != info.base_digest) {
        throw Error(generations(info) +
                    ": this host's bundle is not the delta's base (its digest differs); the full "
                    "bundle is needed");
    }
    v1::BundleDelta d;
    d.ParseFromString(delta);
    std::vector<std::string_view> records = bundleRecords(base);
    std::string out;
    out.reserve(base.size() + delta.size());
    size_t next = 0;  // first base record not yet copied
    for (const auto& e : d.edits()) {
        if (e.base_index() < next || e.base_index() > records.size() ||
            e.delete_count() > records.size() - e.base_index()) {
            throw Error(generations(info) + ": edit at record " + std::to_string(e.base_index()) +
                        " is out of order or out of range (" + std::to_string(records.size()) +
                        " records)");
        }
        for (; next < e.base_index(); ++next) {
            out.append(records[next]);
        }
        for (const auto& r : e.insert()) {
            out.append(r);
        }
        next += e.delete_count();
    }
    for (; next < records.size(); ++next) {
        out.append(records[next]);
    }
    if (sha256(out) != info.result_digest) {
        throw Error(generations(info) +
                    ": the rebuilt bundle does not match the digest the delta names");
    }
    return out;
}

}  // namespace ztseg::policy
