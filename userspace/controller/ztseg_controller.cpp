// ztseg-controller: compiles, signs and rolls out fleet policy to ztsegd
// agents (docs/ztseg-controller.md, dist/ztseg-controller.yaml).
// Exit codes: 0 clean stop, 1 failure (logged with the reason), 2 usage.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "common/logging.hpp"
#include "common/version.hpp"
#include "controller/controller.hpp"
#include "controller/controller_config.hpp"
#include "controller/controller_service.hpp"

int main(int argc, char** argv) {
    using namespace ztseg;
    CLI::App app{"ztseg-controller: signs ztseg policy bundles and rolls them out to a fleet"};
    std::string config_path = "/etc/ztseg/ztseg-controller.yaml";
    std::string log_level = "info";
    app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
        ->capture_default_str();
    app.set_version_flag("--version", versionLine("ztseg-controller"));
    app.footer("Signals: SIGHUP re-reads the policy source, SIGTERM/SIGINT stop.");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    configureLogging(log_level);
    try {
        controller::Controller c(controller::loadControllerConfig(config_path));
        c.start();
        controller::ControllerServer server(c);
        c.run();
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return 1;
    }
    return 0;
}
