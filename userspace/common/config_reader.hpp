// Reading configuration files (ztsegd, ztseg-controller): a YAML mapping walked
// field by field, every problem collected as "file:line:col: message".
// Unknown and repeated fields are errors.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/yaml_doc.hpp"

namespace ztseg {

class ConfigReader {
  public:
    explicit ConfigReader(std::string file) : file_(std::move(file)) {}

    // The file's single document (a null node when it is empty). Throws Error
    // with the location for invalid YAML or several documents.
    yaml::Node parse(const std::string& text);

    void error(const yaml::Node& n, const std::string& msg);
    const std::string& errors() const { return errors_; }
    // Throws Error listing every problem, if there was any.
    void throwIfErrors() const;

    using Handler = std::function<void(const yaml::Node&)>;
    // Dispatches each key of a mapping to its handler; unknown and repeated keys are errors.
    void fields(const yaml::Node& n, const std::string& what,
                const std::map<std::string, Handler>& handlers);

    Handler str(std::string& out);
    Handler flag(bool& out);  // true/false
    Handler strList(std::vector<std::string>& out);
    Handler strMap(std::map<std::string, std::string>& out);  // {key: value, ...}

    template <typename T>
    Handler num(T& out, uint64_t min, uint64_t max) {
        return [this, &out, min, max](const yaml::Node& v) {
            uint64_t x = 0;
            if (parseNumber(v, min, max, x)) {
                out = T(x);
            }
        };
    }

  private:
    bool parseNumber(const yaml::Node& v, uint64_t min, uint64_t max, uint64_t& x);
    std::string file_;
    std::string errors_;
};

}  // namespace ztseg
