// A small read-only YAML tree over libyaml, with the line and column of every
// node. libyaml is the reference C parser and is fuzzed continuously; yaml-cpp
// 0.7 (Debian 12) loops forever on inputs as small as `  , "x"]`.
// Aliases are expanded with a size limit, nesting is bounded: hostile input
// gets an error, never unbounded time or memory.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace ztseg::yaml {

struct Mark {
    int line = 1;  // 1-based
    int column = 1;
};

class Node {
  public:
    enum class Kind { Null, Scalar, Sequence, Map };

    Kind kind() const { return kind_; }
    bool isNull() const { return kind_ == Kind::Null; }
    bool isScalar() const { return kind_ == Kind::Scalar; }
    bool isSequence() const { return kind_ == Kind::Sequence; }
    bool isMap() const { return kind_ == Kind::Map; }
    const Mark& mark() const { return mark_; }

    const std::string& scalar() const { return scalar_; }                           // Scalar
    const std::vector<Node>& items() const { return items_; }                       // Sequence
    const std::vector<std::pair<Node, Node>>& entries() const { return entries_; }  // Map
    // The value of a scalar key in a map, or nullptr (also for non-maps).
    const Node* get(std::string_view key) const;

  private:
    friend class Builder;
    Kind kind_ = Kind::Null;
    Mark mark_;
    std::string scalar_;
    std::vector<Node> items_;
    std::vector<std::pair<Node, Node>> entries_;
};

class ParseError : public Error {
  public:
    ParseError(Mark m, const std::string& problem) : Error(problem), mark(m) {}
    Mark mark;
};

// Every document in `text`. Throws ParseError with the location of the problem.
std::vector<Node> parseAll(std::string_view text);

}  // namespace ztseg::yaml
