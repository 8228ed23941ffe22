#include "cli/daemon_client.hpp"

#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "cli/completion.hpp"
#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace ztseg::cli {
namespace {

const char* kStartHint =
    "start it with `systemctl start ztsegd` (or `ztsegd --config FILE`), or point --socket at "
    "its api.unix_socket";

// 0 if the socket accepts a connection, else errno.
int probe(const std::string& path) {
    sockaddr_un a{};
    if (path.size() >= sizeof(a.sun_path)) {
        return ENAMETOOLONG;
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return errno;
    }
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), path.size());
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        return errno;
    }
    return 0;
}

}  // namespace

void addSocketOption(CLI::App* cmd, std::string& socket) {
    const char* env = std::getenv("ZTSEG_SOCKET");
    socket = env && *env ? env : kDefaultSocket;
    cmd->add_option("--socket", socket, "ztsegd's API socket (api.unix_socket; env ZTSEG_SOCKET)")
        ->type_name(kFileType)
        ->capture_default_str();
}

bool DaemonClient::running(const std::string& socket) {
    return probe(socket) == 0;
}

bool DaemonClient::answers(const std::string& socket, std::chrono::seconds deadline) {
    auto stub = v1::Agent::NewStub(
        grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials()));
    v1::StatusReply st;
    return stub->Status(context(deadline).get(), v1::StatusRequest{}, &st).ok();
}

bool DaemonClient::absent(const std::string& socket) {
    int err = probe(socket);
    return err == ENOENT || err == ECONNREFUSED;
}

DaemonClient::DaemonClient(std::string socket) : socket_(std::move(socket)) {
    switch (int err = probe(socket_)) {
        case 0:
            break;
        case ENOENT:
        case ECONNREFUSED:
            throw Error("ztsegd is not running (" +
                        std::string(err == ENOENT ? "no socket at " : "nobody listens on ") +
                        socket_ + "): " + kStartHint);
        case EACCES:
        case EPERM:
            throw Error("permission denied on " + socket_ +
                        ": ztsegd's API is for root only; run ztsegctl as root (sudo)");
        default:
            throw Error("connect to ztsegd at " + socket_ + ": " + std::strerror(err));
    }
    stub_ = v1::Agent::NewStub(
        grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
}

std::unique_ptr<grpc::ClientContext> DaemonClient::context(std::chrono::seconds deadline) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (deadline.count() > 0) {
        ctx->set_deadline(std::chrono::system_clock::now() + deadline);
    }
    return ctx;
}

void DaemonClient::check(const grpc::Status& st, const std::string& what) const {
    if (st.ok()) {
        return;
    }
    std::string why = st.error_message();
    switch (st.error_code()) {
        case grpc::StatusCode::UNAVAILABLE:
            throw Error(what + ": ztsegd is not answering on " + socket_ + " (" + why +
                        "): " + kStartHint);
        case grpc::StatusCode::DEADLINE_EXCEEDED:
            throw Error(what + ": ztsegd did not answer in time on " + socket_ +
                        "; check its log (journalctl -u ztsegd)");
        default:
            throw Error(what + ": refused by ztsegd: " + why);
    }
}

}  // namespace ztseg::cli
