#include "policy/diagnostics.hpp"

namespace ztseg::policy {

std::string SourceLocation::str() const {
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Diagnostic::str() const {
    return loc.str() + (severity == Severity::Error ? ": error: " : ": warning: ") + message;
}

void Diagnostics::error(const SourceLocation& loc, std::string msg) {
    items_.push_back({Diagnostic::Severity::Error, loc, std::move(msg)});
}

void Diagnostics::warning(const SourceLocation& loc, std::string msg) {
    items_.push_back({Diagnostic::Severity::Warning, loc, std::move(msg)});
}

bool Diagnostics::hasErrors() const {
    for (const auto& d : items_) {
        if (d.severity == Diagnostic::Severity::Error) {
            return true;
        }
    }
    return false;
}

std::vector<Diagnostic> Diagnostics::warnings() const {
    std::vector<Diagnostic> out;
    for (const auto& d : items_) {
        if (d.severity == Diagnostic::Severity::Warning) {
            out.push_back(d);
        }
    }
    return out;
}

std::string Diagnostics::str() const {
    std::string out;
    for (const auto& d : items_) {
        out += d.str() + "\n";
    }
    return out;
}

namespace {
std::string joinErrors(const std::vector<Diagnostic>& diags) {
    std::string out;
    for (const auto& d : diags) {
        if (d.severity == Diagnostic::Severity::Error) {
            out += (out.empty() ? "" : "\n") + d.str();
        }
    }
    return out;
}
}  // namespace

PolicyError::PolicyError(std::vector<Diagnostic> diags)
    : Error(joinErrors(diags)), diags_(std::move(diags)) {}

}  // namespace ztseg::policy
