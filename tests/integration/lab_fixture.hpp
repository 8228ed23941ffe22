// gtest fixture: a DbLab plus a private datapath (own pin dir) and its flow events.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>

#include "datapath/event_reader.hpp"
#include "integration/lab_topology.hpp"

namespace ztseg::test {

class LabTest : public ::testing::Test {
  protected:
    void SetUp() override;
    void TearDown() override;

    std::string dbAddr(int family) const { return lab_->dbAddr(family); }
    std::string webAddr(int family) const { return lab_->webAddr(family); }
    std::string intruderAddr(int family) const { return lab_->intruderAddr(family); }
    Generation policy(uint64_t number, WorkloadMode mode) const {
        return lab_->policy(number, mode);
    }
    void apply(uint64_t number, WorkloadMode mode = WorkloadMode::Enforce) {
        dp_->apply(policy(number, mode));
    }
    void attachAll() { lab_->attach(*dp_); }
    std::unique_ptr<Child> startDbServer(uint16_t port, bool udp = false) {
        return lab_->startDbServer(port, udp);
    }
    std::unique_ptr<Child> startWebServer(uint16_t port) { return lab_->startWebServer(port); }
    int inPeer(std::function<int()> fn) { return lab_->inPeer(std::move(fn)); }
    int inDb(std::function<int()> fn) { return lab_->inDb(std::move(fn)); }

    Counters counters() { return dp_->counters(); }
    std::vector<ztseg_flow_event> takeEvents();

    std::unique_ptr<DbLab> lab_;
    DatapathOptions opts_;
    std::optional<Datapath> dp_;
    std::unique_ptr<EventReader> reader_;
    std::vector<ztseg_flow_event> events_;
};

}  // namespace ztseg::test
