// ztsegd: the per-host enforcement daemon. See dist/ztsegd.yaml and
// docs/ztsegd.md. Exit codes: 0 clean stop, 1 start-up failure (the message
// says which), 2 usage.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "agent/config.hpp"
#include "agent/daemon.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/logging.hpp"
#include "common/version.hpp"

int main(int argc, char** argv) {
    using namespace ztseg;
    CLI::App app{"ztsegd: ztseg's host daemon (enforces segmentation policy with eBPF)"};
    std::string config_path = "/etc/ztseg/ztsegd.yaml";
    std::string apply_path;
    std::string log_level = "info";
    bool uninstall = false;
    app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
    app.add_option("--apply", apply_path,
                   "apply this bundle (after starting or adopting enforcement), then exit");
    app.add_flag("--uninstall", uninstall,
                 "detach every ztseg program and remove all pinned state, then exit");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
        ->capture_default_str();
    app.set_version_flag("--version", versionLine("ztsegd"));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    configureLogging(log_level);
    try {
        agent::AgentConfig cfg = agent::loadConfig(config_path);
        if (uninstall) {
            agent::Daemon::uninstall(cfg);
            return 0;
        }
        agent::Daemon d(cfg, config_path);
        d.start(/*serve_api=*/apply_path.empty());
        if (!apply_path.empty()) {
            uint64_t g = d.applyBundle(readFile(apply_path, "bundle"));
            std::cout << "applied generation " << g << "\n";
            return 0;
        }
        d.run();
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return 1;
    }
    return 0;
}
