// The policy front end's driver: text checks and YAML reading per file (in
// parallel), merge in file order, cross-document validation, rule ids.
#include "policy/parser.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

#include "common/yaml_doc.hpp"
#include "policy/document_reader.hpp"
#include "policy/sources.hpp"
#include "policy/validate.hpp"

namespace ztseg::policy {
namespace {

template <typename T>
void appendMoved(std::vector<T>& to, std::vector<T>& from) {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

// One file's share of the policy set, read on its own: documents only
// append to the set, so files can be read in any order and merged in file
// order afterwards.
struct ParsedFile {
    Diagnostics diags;
    PolicySet part;
    std::exception_ptr fatal;  // not about the input (out of memory)
};

ParsedFile parseFile(const SourceText& s) {
    ParsedFile f;
    try {
        if (!checkText(s, f.diags)) {
            return f;
        }
        try {
            for (const yaml::Node& doc : yaml::parseAll(s.text)) {
                readPolicyDocument(s.name, doc, f.diags, f.part);
            }
        } catch (const yaml::ParseError& e) {
            f.diags.error({s.name, e.mark.line, e.mark.column},
                          std::string("invalid YAML: ") + e.what());
        }
    } catch (...) {
        f.fatal = std::current_exception();
    }
    return f;
}

std::vector<ParsedFile> parseFiles(const std::vector<SourceText>& sources) {
    std::vector<ParsedFile> out(sources.size());
    size_t workers = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), 8);
    if (sources.size() < 2 || workers < 2) {
        for (size_t i = 0; i < sources.size(); ++i) {
            out[i] = parseFile(sources[i]);
        }
        return out;
    }
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t i; (i = next.fetch_add(1)) < sources.size();) {
            out[i] = parseFile(sources[i]);
        }
    };
    {
        std::vector<std::jthread> pool;
        for (size_t w = 1; w < std::min(workers, sources.size()); ++w) {
            pool.emplace_back(work);
        }
        work();
    }
    return out;
}

}  // namespace

PolicySet parsePolicies(std::vector<SourceText> sources, Diagnostics& diags) {
    std::sort(sources.begin(), sources.end(),
              [](const SourceText& a, const SourceText& b) { return a.name < b.name; });
    // Text checks, YAML parsing and reading are per file and take most of
    // the time for large policy trees: do them in parallel, then merge in
    // file order so ids and diagnostics do not depend on scheduling.
    std::vector<ParsedFile> parsed = parseFiles(sources);
    PolicySet ps;
    for (size_t i = 0; i < sources.size(); ++i) {
        ParsedFile& f = parsed[i];
        if (f.fatal) {
            std::rethrow_exception(f.fatal);
        }
        ps.files.push_back(sources[i].name);
        for (const Diagnostic& d : f.diags.all()) {
            if (d.severity == Diagnostic::Severity::Error) {
                diags.error(d.loc, d.message);
            } else {
                diags.warning(d.loc, d.message);
            }
        }
        appendMoved(ps.workloads, f.part.workloads);
        appendMoved(ps.externals, f.part.externals);
        appendMoved(ps.hosts, f.part.hosts);
        appendMoved(ps.host_locations, f.part.host_locations);
        appendMoved(ps.policies, f.part.policies);
    }
    validatePolicySet(ps, diags);
    if (diags.hasErrors()) {
        throw PolicyError(diags.all());
    }
    // Rule ids follow source order, so they are stable for unchanged files.
    uint32_t next = 1;
    for (auto& p : ps.policies) {
        std::stable_sort(p.rules.begin(), p.rules.end(), [](const RuleSpec& a, const RuleSpec& b) {
            return std::tie(a.loc.line, a.loc.column) < std::tie(b.loc.line, b.loc.column);
        });
        for (auto& r : p.rules) {
            r.id = next++;
        }
    }
    ps.source_digest = sourceDigest(sources);
    return ps;
}

}  // namespace ztseg::policy
