#include "integration/netns_forwarder.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integration/lab_topology.hpp"

namespace ztseg::test {

NetnsForwarder::NetnsForwarder(const NetNs& ns, uint16_t to_port, std::string to_addr)
    : listener_(tcpListen("127.0.0.1", 0)), port_(localPort(listener_.get())) {
    thread_ = std::thread([this, &ns, to_port, to_addr] {
        NetnsScope in(ns);  // sockets made by this thread live in ns
        while (!stop_) {
            pollfd p{listener_.get(), POLLIN, 0};
            if (poll(&p, 1, 100) != 1) {
                continue;
            }
            UniqueFd client(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            UniqueFd server(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(to_port);
            inet_pton(AF_INET, to_addr.c_str(), &a.sin_addr);
            if (!client || !server ||
                connect(server.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
                continue;  // the client sees the connection close
            }
            pumps_.emplace_back(
                [this, c = std::move(client), s = std::move(server)] { pump(c.get(), s.get()); });
        }
    });
}

NetnsForwarder::~NetnsForwarder() {
    stop_ = true;
    thread_.join();
    for (auto& t : pumps_) t.join();
}

void NetnsForwarder::pump(int a, int b) {
    char buf[16384];
    while (!stop_) {
        pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
        if (poll(p, 2, 100) <= 0) {
            continue;
        }
        for (int i = 0; i < 2; ++i) {
            if (p[i].revents == 0) {
                continue;
            }
            ssize_t n = read(p[i].fd, buf, sizeof(buf));
            if (n <= 0 || write(p[1 - i].fd, buf, size_t(n)) != n) {
                return;
            }
        }
    }
}

}  // namespace ztseg::test
