#include "common/config_reader.hpp"

#include <charconv>
#include <set>

#include "common/error.hpp"
#include "common/yaml_fields.hpp"

namespace ztseg {

yaml::Node ConfigReader::parse(const std::string& text) {
    std::vector<yaml::Node> docs;
    try {
        docs = yaml::parseAll(text);
    } catch (const yaml::ParseError& e) {
        throw Error(file_ + ":" + std::to_string(e.mark.line) + ":" +
                    std::to_string(e.mark.column) + ": invalid YAML: " + e.what());
    }
    if (docs.size() > 1) {
        throw Error(file_ + ": expected one YAML document, found " + std::to_string(docs.size()));
    }
    return docs.empty() ? yaml::Node{} : docs[0];
}

void ConfigReader::error(const yaml::Node& n, const std::string& msg) {
    errors_ += (errors_.empty() ? "" : "\n") + file_ + ":" + std::to_string(n.mark().line) + ":" +
               std::to_string(n.mark().column) + ": " + msg;
}

void ConfigReader::throwIfErrors() const {
    if (!errors_.empty()) {
        throw Error(errors_);
    }
}

void ConfigReader::fields(const yaml::Node& n, const std::string& what,
                          const std::map<std::string, Handler>& handlers) {
    if (!n.isMap()) {
        error(n, "expected " + what + " to be a mapping");
        return;
    }
    std::set<std::string> allowed;
    for (const auto& [name, h] : handlers) {
        allowed.insert(name);
    }
    std::set<std::string> readable = yaml::checkFields(
        n, what, allowed, file_,
        [this](const yaml::Node& key, const std::string& msg) { error(key, msg); });
    std::set<std::string> done;
    for (const auto& [k, v] : n.entries()) {
        std::string key = k.isScalar() ? k.scalar() : "?";
        if (readable.count(key) && done.insert(key).second) {
            handlers.at(key)(v);
        }
    }
}

ConfigReader::Handler ConfigReader::str(std::string& out) {
    return [this, &out](const yaml::Node& v) {
        if (v.isNull()) {
            out.clear();
        } else if (!v.isScalar()) {
            error(v, "expected a single value");
        } else {
            out = v.scalar();
        }
    };
}

ConfigReader::Handler ConfigReader::flag(bool& out) {
    return [this, &out](const yaml::Node& v) {
        if (v.isScalar() && (v.scalar() == "true" || v.scalar() == "false")) {
            out = v.scalar() == "true";
        } else {
            error(v, "expected true or false");
        }
    };
}

ConfigReader::Handler ConfigReader::strList(std::vector<std::string>& out) {
    return [this, &out](const yaml::Node& v) {
        out.clear();
        if (v.isNull()) {
            return;
        }
        if (!v.isSequence()) {
            error(v, "expected a list");
            return;
        }
        for (const auto& item : v.items()) {
            if (!item.isScalar() || item.scalar().empty()) {
                error(item, "expected a non-empty name or pattern");
            } else {
                out.push_back(item.scalar());
            }
        }
    };
}

ConfigReader::Handler ConfigReader::strMap(std::map<std::string, std::string>& out) {
    return [this, &out](const yaml::Node& v) {
        out.clear();
        if (v.isNull()) {
            return;
        }
        if (!v.isMap()) {
            error(v, "expected a mapping of names to values");
            return;
        }
        for (const auto& [k, val] : v.entries()) {
            if (!k.isScalar() || k.scalar().empty() || !val.isScalar()) {
                error(k, "expected name: value");
            } else if (!out.emplace(k.scalar(), val.scalar()).second) {
                error(k, "duplicate key '" + k.scalar() + "'");
            }
        }
    };
}

bool ConfigReader::parseNumber(const yaml::Node& v, uint64_t min, uint64_t max, uint64_t& x) {
    const std::string& s = v.scalar();
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    if (!v.isScalar() || ec != std::errc() || end != s.data() + s.size() || x < min || x > max) {
        error(v,
              "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max));
        return false;
    }
    return true;
}

}  // namespace ztseg
