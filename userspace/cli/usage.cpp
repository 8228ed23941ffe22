// Usage errors of ztsegctl (usage.hpp): "did you mean", what a command
// needs, deprecated flag spellings.
#include "cli/usage.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <iostream>

#include "cli/command.hpp"
#include "model/names.hpp"

namespace ztseg::cli {
namespace {

// What each command needs to run, when run without it (issue 14). Commands
// with subcommands (ztsegctl, fleet) say so from the tree instead.
struct Need {
    const char* path;
    const char* line;
};
constexpr Need kNeeds[] = {
    {"compile",
     "compile needs policy files or a directory: ztsegctl compile POLICY_DIR|FILE... [--out FILE] "
     "[-g N] [--fleet NAME]"},
    {"check",
     "check needs policy files or a directory: ztsegctl check POLICY_DIR|FILE... [--strict]"},
    {"explain",
     "explain needs a flow: ztsegctl explain --from PARTY --to PARTY --port SERVICE [-p "
     "POLICY_DIR|FILE], or a recorded one: --flow-file FILE [--pick N]"},
    {"whatif",
     "whatif needs candidate policy and recorded flows: ztsegctl whatif -p POLICY_DIR|FILE... "
     "--flows FLOW_FILE..."},
    {"suggest",
     "suggest needs recorded flows: ztsegctl suggest --flows FLOW_FILE... [-p POLICY_DIR|FILE...] "
     "[--out FILE]"},
    {"apply",
     "apply needs policy files or a directory: ztsegctl apply POLICY_DIR|FILE... [-g N] [--fleet "
     "NAME] (or --bundle FILE, a bundle from ztsegctl compile)"},
    {"diff",
     "diff needs a candidate: ztsegctl diff POLICY_DIR|FILE... (or --bundle FILE) [--against "
     "BUNDLE]"},
    {"sign",
     "sign needs a bundle and the private key(s) to sign it with: ztsegctl sign BUNDLE -k KEY... "
     "[--out FILE]"},
    {"verify",
     "verify needs a bundle and the public key(s) to trust: ztsegctl verify BUNDLE -k PUBKEY..."},
};

// The description that marks a hidden option as a deprecated spelling.
constexpr std::string_view kDeprecatedMark = "deprecated spelling of ";

std::string bare(const std::string& s) {
    size_t i = s.find_first_not_of('-');
    return i == std::string::npos ? std::string() : s.substr(i);
}

bool visible(const CLI::App* a) {
    return !a->get_name().empty() && !a->get_group().empty();
}

std::vector<const CLI::App*> subcommandsOf(const CLI::App* a) {
    return a->get_subcommands([](const CLI::App* s) { return !s->get_name().empty(); });
}

const CLI::App* findSubcommand(const CLI::App* a, const std::string& word) {
    for (const CLI::App* s : subcommandsOf(a)) {
        if (s->check_name(word)) {
            return s;
        }
    }
    return nullptr;
}

const CLI::Option* findOption(const CLI::App* a, const std::string& name) {
    for (const CLI::Option* o : a->get_options()) {
        if (o->nonpositional() && o->check_name(name)) {
            return o;
        }
    }
    return nullptr;
}

bool takesValue(const CLI::Option* o) {
    return o->get_expected_max() > 0 && o->get_type_size_max() > 0;
}

bool dashed(const std::string& w) {
    // "-1" is a value (explain --pick -1), not an option.
    return w.size() > 1 && w[0] == '-' && !std::isdigit(static_cast<unsigned char>(w[1]));
}

// An option's first spelling ("--out", "-b"): CLI11's get_name() is empty
// for hidden options.
std::string spelling(const CLI::Option* o) {
    return o->get_lnames().empty() ? "-" + o->get_snames().front() : "--" + o->get_lnames().front();
}

std::string commandLine(const std::string& path) {
    return path.empty() ? "ztsegctl" : "ztsegctl " + path;
}

// Where the command line stops making sense to the tree: the deepest command
// reached, and the first word that is neither its option nor its subcommand.
struct Walk {
    const CLI::App* at;
    std::string path;
    std::string unknown;  // as typed, without "=value"
    bool unknown_is_option = false;
    const CLI::Option* last_option = nullptr;  // the last one given that takes a value
    std::string last_option_word;              // as typed
};

Walk walk(const CLI::App& app, const std::vector<std::string>& args) {
    Walk w{&app, "", "", false, nullptr, ""};
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& word = args[i];
        if (word == "--") {
            break;
        }
        if (dashed(word)) {
            bool long_name = word.rfind("--", 0) == 0;
            std::string name = long_name ? word.substr(0, word.find('=')) : word.substr(0, 2);
            bool attached = name.size() < word.size();  // --opt=v, -ov, -fv
            const CLI::Option* o = findOption(w.at, name);
            if (o == nullptr) {
                w.unknown = name;
                w.unknown_is_option = true;
                return w;
            }
            if (!takesValue(o) || attached) {
                continue;
            }
            w.last_option = o;
            w.last_option_word = name;
            if (o->get_expected_max() > 1) {  // a list: values up to the next option
                while (i + 1 < args.size() && !dashed(args[i + 1]) &&
                       findSubcommand(w.at, args[i + 1]) == nullptr) {
                    ++i;
                }
            } else {
                ++i;
            }
            continue;
        }
        if (const CLI::App* sub = findSubcommand(w.at, word)) {
            w.at = sub;
            w.path = w.path.empty() ? sub->get_name() : w.path + " " + sub->get_name();
            continue;
        }
        bool has_positionals =
            !w.at->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
        if (has_positionals) {
            continue;
        }
        if (!w.at->get_subcommands(visible).empty()) {
            w.unknown = word;  // a command where a command was expected
            return w;
        }
        break;  // an extra argument: CLI11 says so
    }
    return w;
}

std::string didYouMean(const std::vector<std::string>& near) {
    if (near.empty()) {
        return "";
    }
    std::string s = "; did you mean ";
    for (size_t i = 0; i < near.size(); ++i) {
        s += (i == 0 ? "" : i + 1 == near.size() ? " or " : ", ") + ("'" + near[i] + "'");
    }
    return s + "?";
}

std::string unknownMessage(const Walk& w) {
    std::vector<std::string> known;
    if (w.unknown_is_option) {
        bool long_name = w.unknown.rfind("--", 0) == 0;
        for (const CLI::Option* o : w.at->get_options()) {
            if (!o->nonpositional() || o->get_group().empty()) {
                continue;  // hidden: deprecated spellings are not suggested
            }
            for (const auto& n : long_name ? o->get_lnames() : o->get_snames()) {
                known.push_back((long_name ? "--" : "-") + n);
            }
        }
    } else {
        for (const CLI::App* s : w.at->get_subcommands(visible)) known.push_back(s->get_name());
    }
    std::string where = w.path.empty() ? "" : w.path + ": ";
    return where + "unknown " + (w.unknown_is_option ? "option" : "command") + " '" + w.unknown +
           "'" + didYouMean(closestWords(w.unknown, known)) + " (see " + commandLine(w.path) +
           " --help)";
}

// "compile, check, ... or fleet"
std::string commandList(const CLI::App* a) {
    std::vector<const CLI::App*> subs = a->get_subcommands(visible);
    std::string s;
    for (size_t i = 0; i < subs.size(); ++i) {
        s += (i == 0 ? "" : i + 1 == subs.size() ? " or " : ", ") + subs[i]->get_name();
    }
    return s;
}

void forEachCommand(const CLI::App* a, const std::string& path,
                    const std::function<void(const CLI::App*, const std::string&)>& f) {
    f(a, path);
    for (const CLI::App* s : subcommandsOf(a)) {
        forEachCommand(s, path.empty() ? s->get_name() : path + " " + s->get_name(), f);
    }
}

}  // namespace

UsageError::UsageError(std::string what)
    : CLI::ParseError("UsageError", std::move(what), kExitUsage) {}

size_t editDistance(std::string_view a, std::string_view b) {
    // d[i][j]: edits from a[0..i) to b[0..j).
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

std::vector<std::string> closestWords(const std::string& word,
                                      const std::vector<std::string>& candidates) {
    const std::string w = asciiLower(bare(word));
    // One letter off in a short word, two in a longer one; a one- or
    // two-letter word only by case (-O for -o): any other letter would do.
    const size_t limit = w.size() <= 2 ? 0 : w.size() <= 4 ? 1 : 2;
    size_t best = limit + 1;
    std::vector<std::string> near;
    for (const auto& c : candidates) {
        size_t d = editDistance(w, asciiLower(bare(c)));
        if (d > limit) {
            continue;
        }
        if (d < best) {
            best = d;
            near.clear();
        }
        if (d == best && std::find(near.begin(), near.end(), c) == near.end()) {
            near.push_back(c);
        }
    }
    if (near.size() > 3) {
        near.clear();  // too many to mean one of them
    }
    return near;
}

std::string whatItNeeds(const std::string& path) {
    for (const Need& n : kNeeds) {
        if (path == n.path) {
            return n.line;
        }
    }
    return "";
}

int reportMissingInput(const std::string& path) {
    std::cerr << "ztsegctl: " << whatItNeeds(path) << "\n";
    return kExitUsage;
}

void addDeprecatedAlias(CLI::App* cmd, const std::string& old_name, CLI::Option* current,
                        std::string& target) {
    CLI::Option* alias =
        cmd->add_option(old_name, target, std::string(kDeprecatedMark) + spelling(current))
            ->group("")
            ->type_name(current->get_type_name());
    // The same checks as the current spelling; their errors name the alias,
    // which CLI11 does not for a hidden option.
    for (int i = 0;; ++i) {
        CLI::Validator v;
        try {
            v = *current->get_validator(i);
        } catch (const CLI::OptionNotFound&) {
            break;
        }
        alias->check(CLI::Validator(
            [v, old_name](std::string& value) {
                std::string err = v(value);
                return err.empty() ? err : old_name + ": " + err;
            },
            v.get_description()));
    }
}

void checkDeprecatedAliases(const CLI::App& app) {
    std::vector<std::string> warnings;
    forEachCommand(&app, "", [&](const CLI::App* a, const std::string& path) {
        for (const CLI::Option* o : a->get_options()) {
            const std::string& d = o->get_description();
            if (o->count() == 0 || !o->get_group().empty() || d.rfind(kDeprecatedMark, 0) != 0) {
                continue;
            }
            std::string current = d.substr(kDeprecatedMark.size());
            const CLI::Option* now = a->get_option_no_throw(current);
            std::string old = spelling(o);
            if (now != nullptr && now->count() > 0) {
                throw UsageError(path + ": " + old + " is the deprecated spelling of " + current +
                                 "; give only " + current);
            }
            warnings.push_back("ztsegctl: warning: '" + commandLine(path) + " " + old +
                               "' is deprecated: use " + current + " " + o->get_type_name() +
                               " (docs/ztsegctl.md, flag conventions)");
        }
    });
    for (const auto& w : warnings) std::cerr << w << "\n";
}

int reportParseError(const CLI::App& app, const CLI::ParseError& e,
                     const std::vector<std::string>& args) {
    if (e.get_exit_code() == 0) {
        return app.exit(e);  // --help, --version
    }
    Walk w = walk(app, args);
    std::string message;
    if (dynamic_cast<const UsageError*>(&e) != nullptr) {
        message = e.what();
    } else if (!w.unknown.empty()) {
        message = unknownMessage(w);
    } else if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr &&
               w.at->get_require_subcommand_min() > 0) {
        message = (w.path.empty() ? "no command given: " : w.path + " needs a command: ") +
                  commandList(w.at) + " (see " + commandLine(w.path) + " --help)";
    } else if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr &&
               !whatItNeeds(w.path).empty()) {
        message = whatItNeeds(w.path);
    } else {
        std::string what = e.what();
        // CLI11 leaves hidden options (deprecated spellings) unnamed (": msg"):
        // their validators name themselves, a missing value is named here.
        if (what.rfind(": ", 0) == 0) {
            what.erase(0, 2);
            if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr &&
                w.last_option != nullptr && w.last_option->get_group().empty()) {
                what = w.last_option_word + ": " + what;
            }
        }
        message = (w.path.empty() ? "" : w.path + ": ") + what + " (see " + commandLine(w.path) +
                  " --help)";
    }
    std::cerr << "ztsegctl: " << message << "\n";
    return kExitUsage;
}

}  // namespace ztseg::cli
