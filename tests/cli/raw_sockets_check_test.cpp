// `ztsegctl check` / `compile` name the workloads a policy lets open raw
// sockets (`raw_sockets: allow`), in text and JSON, and warn about a
// `raw_sockets: deny` that another policy's allow overrides.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "integration/ztseg_process.hpp"

namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

TEST(CliRawSockets, CheckNamesTheWorkloadsAllowedRawSockets) {
    fs::path dir = fs::temp_directory_path() / uniqueName("ztraw");
    fs::create_directories(dir);
    std::ofstream(dir / "p.yaml") << "workloads:\n"
                                     "  - name: capture\n"
                                     "    labels: {app: capture}\n"
                                     "  - name: web\n"
                                     "    labels: {app: web}\n"
                                     "policies:\n"
                                     "  - name: capture\n"
                                     "    selector: {matchLabels: {app: capture}}\n"
                                     "    raw_sockets: allow\n"
                                     "  - name: everyone\n"
                                     "    selector: {}\n"
                                     "    raw_sockets: deny\n";
    const std::string file = (dir / "p.yaml").string();

    CommandResult text =
        runCommand({ZTSEGCTL_PATH, "check", file}, nullptr, std::chrono::seconds(60), true);
    EXPECT_EQ(text.status, 0) << text.errors;
    EXPECT_NE(text.errors.find("raw sockets allowed (raw_sockets: allow) for: capture\n"),
              std::string::npos)
        << text.errors;
    EXPECT_NE(text.errors.find("p.yaml:10:5: warning: policy 'everyone' says raw_sockets: deny, "
                               "but policy 'capture' (p.yaml:7:5) allows raw sockets"),
              std::string::npos)
        << text.errors;

    CommandResult js = runCommand({ZTSEGCTL_PATH, "check", "-o", "json", file}, nullptr,
                                  std::chrono::seconds(60), true);
    EXPECT_EQ(js.status, 0) << js.errors;
    auto j = nlohmann::json::parse(js.output);
    EXPECT_EQ(j.at("raw_sockets"), nlohmann::json::array({"capture"}));
    fs::remove_all(dir);
}

}  // namespace
}  // namespace ztseg::test
