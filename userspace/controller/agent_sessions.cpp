#include "controller/agent_sessions.hpp"

namespace ztseg::controller {

bool AgentSession::write(const v1::ControllerMessage& m) {
    std::lock_guard lock(mu_);
    return open_ && stream_->Write(m);
}

void AgentSession::cancel() {
    std::lock_guard lock(mu_);
    if (open_) {
        ctx_->TryCancel();
    }
}

void AgentSession::close() {
    std::lock_guard lock(mu_);
    open_ = false;
}

void AgentSessions::attach(const std::string& host, std::shared_ptr<AgentSession> s) {
    std::shared_ptr<AgentSession> old;
    {
        std::lock_guard lock(mu_);
        old = std::exchange(sessions_[host], std::move(s));
    }
    if (old) {
        old->cancel();
    }
}

void AgentSessions::detach(const std::string& host, const std::shared_ptr<AgentSession>& s) {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(host);
    if (it != sessions_.end() && it->second == s) {
        sessions_.erase(it);
    }
}

std::shared_ptr<AgentSession> AgentSessions::find(const std::string& host) {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(host);
    return it == sessions_.end() ? nullptr : it->second;
}

bool AgentSessions::push(const std::string& host, uint64_t generation,
                         const std::string& signed_bundle) {
    auto s = find(host);
    if (!s) {
        return false;
    }
    v1::ControllerMessage m;
    m.mutable_push()->set_generation(generation);
    m.mutable_push()->set_signed_bundle(signed_bundle);
    m.mutable_push()->set_confirm_within_ms(s->generation() != 0 ? confirm_within_ms_ : 0);
    return s->write(m);
}

bool AgentSessions::confirm(const std::string& host, uint64_t generation) {
    auto s = find(host);
    if (!s) {
        return false;
    }
    v1::ControllerMessage m;
    m.mutable_confirm()->set_generation(generation);
    return s->write(m);
}

bool AgentSessions::send(const std::string& host, const v1::ControllerMessage& m) {
    auto s = find(host);
    return s && s->write(m);
}

std::vector<std::string> AgentSessions::hosts() {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [host, s] : sessions_) out.push_back(host);
    return out;
}

void AgentSessions::requestReport(const std::string& host, uint64_t id, bool rules) {
    if (auto s = find(host)) {
        v1::ControllerMessage m;
        m.mutable_report_request()->set_id(id);
        m.mutable_report_request()->set_rules(rules);
        s->write(m);
    }
}

}  // namespace ztseg::controller
