#include "integration/lab_fixture.hpp"

#include <unistd.h>

#include <atomic>

namespace ztseg::test {

void LabTest::SetUp() {
    static std::atomic<int> seq{0};
    lab_ = std::make_unique<DbLab>();
    opts_.pin_dir =
        "/sys/fs/bpf/ztseg-it-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
    opts_.policy_capacity = 1 << 16;
    opts_.identity_capacity = 1 << 16;
    opts_.drop_event_interval_ns = 0;
    dp_.emplace(Datapath::create(opts_));
    reader_ = std::make_unique<EventReader>(
        dp_->eventsFd(), [this](const ztseg_flow_event& e) { events_.push_back(e); });
}

void LabTest::TearDown() {
    reader_.reset();
    dp_.reset();
    Datapath::uninstall(opts_.pin_dir);
    lab_.reset();
}

std::vector<ztseg_flow_event> LabTest::takeEvents() {
    reader_->drain();
    return std::exchange(events_, {});
}

}  // namespace ztseg::test
