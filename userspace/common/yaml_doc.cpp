#include "common/yaml_doc.hpp"

#include <yaml.h>

#include <memory>

namespace ztseg::yaml {
namespace {

constexpr int kMaxDepth = 64;
// Nodes after alias expansion: generous for real files (a node takes at least
// a couple of bytes of text), fatal for alias bombs.
size_t maxNodes(size_t text_bytes) {
    return 100'000 + text_bytes;
}

bool isNullScalar(const yaml_node_t* n) {
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    std::string_view v(reinterpret_cast<const char*>(n->data.scalar.value), n->data.scalar.length);
    return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

}  // namespace

class Builder {
  public:
    Builder(yaml_document_t* doc, size_t max_nodes) : doc_(doc), max_nodes_(max_nodes) {}

    Node build(int index, int depth) {
        yaml_node_t* n = yaml_document_get_node(doc_, index);
        if (n == nullptr) {
            return Node{};
        }
        Mark m{int(n->start_mark.line) + 1, int(n->start_mark.column) + 1};
        if (depth > kMaxDepth) {
            throw ParseError(m, "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
        }
        if (++nodes_ > max_nodes_) {
            throw ParseError(m, "document expands to more than " + std::to_string(max_nodes_) +
                                    " nodes (alias bomb?)");
        }
        Node out;
        out.mark_ = m;
        switch (n->type) {
            case YAML_SCALAR_NODE:
                if (isNullScalar(n)) {
                    out.kind_ = Node::Kind::Null;
                } else {
                    out.kind_ = Node::Kind::Scalar;
                    out.scalar_.assign(reinterpret_cast<const char*>(n->data.scalar.value),
                                       n->data.scalar.length);
                }
                break;
            case YAML_SEQUENCE_NODE:
                out.kind_ = Node::Kind::Sequence;
                out.items_.reserve(
                    size_t(n->data.sequence.items.top - n->data.sequence.items.start));
                for (yaml_node_item_t* it = n->data.sequence.items.start;
                     it < n->data.sequence.items.top; ++it) {
                    out.items_.push_back(build(*it, depth + 1));
                }
                break;
            case YAML_MAPPING_NODE:
                out.kind_ = Node::Kind::Map;
                out.entries_.reserve(
                    size_t(n->data.mapping.pairs.top - n->data.mapping.pairs.start));
                for (yaml_node_pair_t* p = n->data.mapping.pairs.start;
                     p < n->data.mapping.pairs.top; ++p) {
                    Node k = build(p->key, depth + 1);
                    Node v = build(p->value, depth + 1);
                    out.entries_.emplace_back(std::move(k), std::move(v));
                }
                break;
            default:
                break;
        }
        return out;
    }

  private:
    yaml_document_t* doc_;
    size_t max_nodes_;
    size_t nodes_ = 0;
};

const Node* Node::get(std::string_view key) const {
    for (const auto& [k, v] : entries_) {
        if (k.isScalar() && k.scalar() == key) {
            return &v;
        }
    }
    return nullptr;
}

std::vector<Node> parseAll(std::string_view text) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        throw Error("YAML parser: out of memory");
    }
    std::unique_ptr<yaml_parser_t, decltype(&yaml_parser_delete)> guard(&parser,
                                                                        &yaml_parser_delete);
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
    std::vector<Node> docs;
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            Mark m{int(parser.problem_mark.line) + 1, int(parser.problem_mark.column) + 1};
            std::string problem = parser.problem ? parser.problem : "invalid YAML";
            if (parser.context) {
                problem += std::string(" (") + parser.context + ")";
            }
            throw ParseError(m, problem);
        }
        std::unique_ptr<yaml_document_t, decltype(&yaml_document_delete)> dguard(
            &doc, &yaml_document_delete);
        if (yaml_document_get_root_node(&doc) == nullptr) {
            break;  // end of stream
        }
        docs.push_back(Builder(&doc, maxNodes(text.size())).build(1, 0));
    }
    return docs;
}

}  // namespace ztseg::yaml
