// Errors and warnings about policy input, each with the place it is about.
#pragma once

#include <string>
#include <vector>

#include "common/error.hpp"
#include "policy/model.hpp"

namespace ztseg::policy {

struct Diagnostic {
    enum class Severity { Error, Warning };
    Severity severity = Severity::Error;
    SourceLocation loc;
    std::string message;
    std::string str() const;  // "file:line:col: error: message"
};

class Diagnostics {
  public:
    void error(const SourceLocation& loc, std::string msg);
    void warning(const SourceLocation& loc, std::string msg);
    bool hasErrors() const;
    const std::vector<Diagnostic>& all() const { return items_; }
    std::vector<Diagnostic> warnings() const;
    std::string str() const;  // one per line

  private:
    std::vector<Diagnostic> items_;
};

// Thrown when input has errors: what() lists every one of them.
class PolicyError : public Error {
  public:
    explicit PolicyError(std::vector<Diagnostic> diags);
    const std::vector<Diagnostic>& diagnostics() const { return diags_; }

  private:
    std::vector<Diagnostic> diags_;
};

}  // namespace ztseg::policy
