#include "integration/ztseg_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/httplib_quiet.hpp"

namespace ztseg::test {

CommandResult runCommand(const std::vector<std::string>& argv, NetNs* ns,
                         std::chrono::milliseconds timeout, bool separate_stderr) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        throw std::runtime_error("runCommand: pipe: " + std::string(std::strerror(errno)));
    }
    UniqueFd out_rd(out[0]), out_wr(out[1]), err_rd(err[0]), err_wr(err[1]);
    int o = out_wr.get(), e = separate_stderr ? err_wr.get() : out_wr.get();
    Child c(ns, nullptr, [&argv, o, e] {
        dup2(o, STDOUT_FILENO);
        dup2(e, STDERR_FILENO);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        return 127;
    });
    out_wr.reset();
    err_wr.reset();
    CommandResult res;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    bool open[2] = {true, true};
    while ((open[0] || open[1]) && std::chrono::steady_clock::now() < deadline) {
        pollfd p[2] = {{open[0] ? out_rd.get() : -1, POLLIN, 0},
                       {open[1] ? err_rd.get() : -1, POLLIN, 0}};
        int n = poll(p, 2, 100);
        if (n < 0 && errno != EINTR) {
            break;
        }
        for (int i = 0; i < 2 && n > 0; ++i) {
            if (!open[i] || p[i].revents == 0) {
                continue;
            }
            ssize_t got = read(p[i].fd, buf, sizeof(buf));
            if (got <= 0) {
                open[i] = false;  // EOF: the command closed this output
                continue;
            }
            (i == 0 ? res.output : res.errors).append(buf, size_t(got));
        }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    res.status = c.wait(std::max(left, std::chrono::milliseconds(1000)));
    return res;
}

HttpReply httpRequestIn(NetNs& ns, uint16_t port, const std::string& path,
                        const std::filesystem::path& scratch) {
    // The child writes "<status>\n<body>" (status 0: no answer).
    Child c(&ns, nullptr, [&] {
        httplib::Client cli("127.0.0.1", port);
        auto res = cli.Get(path);
        std::ofstream(scratch) << (res ? res->status : 0) << "\n" << (res ? res->body : "");
        return 0;
    });
    HttpReply r;
    if (c.wait(std::chrono::seconds(30)) != 0) {
        return r;
    }
    std::ifstream f(scratch);
    f >> r.status;
    f.ignore(1);
    std::stringstream ss;
    ss << f.rdbuf();
    r.body = ss.str();
    return r;
}

std::string httpGetIn(NetNs& ns, uint16_t port, const std::string& path,
                      const std::filesystem::path& scratch) {
    HttpReply r = httpRequestIn(ns, port, path, scratch);
    return r.status == 200 ? r.body : "";
}

bool waitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return pred();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return true;
}

namespace {
bool socketAnswers(const std::string& path) {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    return fd && connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
}
}  // namespace

ZtsegdProcess::ZtsegdProcess(const std::string& ztsegd_path, NetNs& ns, const std::string& config,
                             const std::string& api_socket, const std::string& log_level) {
    child_ = std::make_unique<Child>(&ns, nullptr, [=] {
        execl(ztsegd_path.c_str(), "ztsegd", "--config", config.c_str(), "--log-level",
              log_level.c_str(), static_cast<char*>(nullptr));
        return 127;
    });
    if (!waitUntil([&] { return socketAnswers(api_socket) || !child_->running(); },
                   std::chrono::seconds(30)) ||
        !child_->running()) {
        int status = child_->running() ? -1 : child_->wait(std::chrono::seconds(1));
        child_.reset();
        throw std::runtime_error("ztsegd did not start (exit status " + std::to_string(status) +
                                 "); its log is above");
    }
    // The API opens before the first apply and attach; status answers once they are done.
    CommandResult ready = runCommand({ZTSEGCTL_PATH, "status", "--socket", api_socket}, nullptr,
                                     std::chrono::seconds(90));
    if (ready.status != 0) {
        throw std::runtime_error("ztsegd did not become ready: " + ready.output + ready.errors);
    }
}

int ZtsegdProcess::stop() {
    if (!child_) {
        return -1;
    }
    kill(child_->pid(), SIGTERM);
    int status = child_->wait(std::chrono::seconds(30));
    child_.reset();
    return status;
}

ZtsegdProcess::~ZtsegdProcess() {
    try {
        stop();
    } catch (...) {
        // Child's destructor kills what is left.
    }
}

}  // namespace ztseg::test
