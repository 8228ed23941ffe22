#include "common/etcd_client.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error.hpp"
#include "common/httplib_quiet.hpp"

namespace ztseg {
namespace {

using json = nlohmann::json;

std::string base64(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), int(in.size()));
    out.resize(size_t(n));
    return out;
}

std::string unbase64(const std::string& in) {
    if (in.empty()) {
        return "";
    }
    std::string out(3 * in.size() / 4 + 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), int(in.size()));
    if (n < 0) {
        throw Error("etcd: invalid base64 in a response");
    }
    size_t pad = 0;
    for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) ++pad;
    out.resize(size_t(n) - pad);  // EVP_DecodeBlock counts padding as zero bytes
    return out;
}

// The end of the key range holding every key that starts with prefix.
std::string prefixEnd(std::string p) {
    while (!p.empty()) {
        if (static_cast<unsigned char>(p.back()) < 0xff) {
            p.back() = char(static_cast<unsigned char>(p.back()) + 1);
            return p;
        }
        p.pop_back();
    }
    return std::string(1, '\0');  // every key
}

int64_t jsonInt(const json& j, const char* field) {
    // The gateway writes 64-bit integers as strings.
    if (!j.contains(field)) {
        return 0;
    }
    const json& v = j.at(field);
    return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
}

EtcdKeyValue keyValueOf(const json& kv) {
    EtcdKeyValue out;
    out.key = unbase64(kv.value("key", ""));
    out.value = unbase64(kv.value("value", ""));
    out.mod_revision = jsonInt(kv, "mod_revision");
    return out;
}

std::unique_ptr<httplib::Client> clientFor(const std::string& endpoint) {
    std::string url = endpoint.find("://") == std::string::npos ? "http://" + endpoint : endpoint;
    auto c = std::make_unique<httplib::Client>(url);
    c->set_connection_timeout(std::chrono::seconds(3));
    c->set_read_timeout(std::chrono::seconds(10));
    c->set_write_timeout(std::chrono::seconds(10));
    return c;
}

}  // namespace

EtcdClient::EtcdClient(std::vector<std::string> endpoints) : endpoints_(std::move(endpoints)) {
    if (endpoints_.empty()) {
        throw Error("etcd: no endpoints configured");
    }
}

EtcdClient::~EtcdClient() {
    stop();
}

std::string EtcdClient::post(const std::string& path, const std::string& body,
                             const std::string& what) {
    std::string errors;
    for (const auto& ep : endpoints_) {
        auto cli = clientFor(ep);
        auto res = cli->Post(path, body, "application/json");
        if (!res) {
            errors += (errors.empty() ? "" : "; ") + ep + ": " + httplib::to_string(res.error());
            continue;
        }
        if (res->status != 200) {
            throw Error("etcd " + what + " at " + ep + ": HTTP " + std::to_string(res->status) +
                        ": " + res->body);
        }
        return res->body;
    }
    throw Error("etcd " + what + ": no endpoint answered (" + errors + ")");
}

void EtcdClient::put(const std::string& key, const std::string& value) {
    post("/v3/kv/put", json{{"key", base64(key)}, {"value", base64(value)}}.dump(), "put " + key);
}

std::vector<std::string> EtcdClient::putMany(
    const std::vector<std::pair<std::string, std::string>>& items, size_t max_ops, size_t max_bytes,
    size_t parallel) {
    // Cut into transactions: [begin, end) of items each.
    std::vector<std::pair<size_t, size_t>> txns;
    for (size_t i = 0; i < items.size();) {
        size_t end = i, bytes = 0;
        while (end < items.size() && end - i < std::max<size_t>(max_ops, 1) &&
               (end == i || bytes + items[end].second.size() <= max_bytes)) {
            bytes += items[end].first.size() + items[end].second.size();
            ++end;
        }
        txns.emplace_back(i, end);
        i = end;
    }
    std::vector<std::string> errors(items.size());
    std::atomic<size_t> next{0};
    auto worker = [&] {
        for (size_t t; (t = next.fetch_add(1)) < txns.size();) {
            auto [begin, end] = txns[t];
            json ops = json::array();
            for (size_t i = begin; i < end; ++i) {
                ops.push_back(
                    {{"request_put",
                      {{"key", base64(items[i].first)}, {"value", base64(items[i].second)}}}});
            }
            std::string what = "txn of " + std::to_string(end - begin) + " puts (" +
                               items[begin].first + (end - begin > 1 ? ", ..." : "") + ")";
            try {
                json r = json::parse(post("/v3/kv/txn", json{{"success", ops}}.dump(), what));
                // No compare: the success branch always runs; say so if not.
                if (!r.value("succeeded", false)) {
                    throw Error("etcd " + what + ": not applied: " + r.dump());
                }
            } catch (const std::exception& e) {
                for (size_t i = begin; i < end; ++i) errors[i] = e.what();
            }
        }
    };
    std::vector<std::thread> threads;
    size_t n = std::min(std::max<size_t>(parallel, 1), txns.size());
    for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    return errors;
}

void EtcdClient::remove(const std::string& key) {
    post("/v3/kv/deleterange", json{{"key", base64(key)}}.dump(), "delete " + key);
}

std::optional<EtcdKeyValue> EtcdClient::get(const std::string& key) {
    json r = json::parse(post("/v3/kv/range", json{{"key", base64(key)}}.dump(), "get " + key));
    if (!r.contains("kvs") || r["kvs"].empty()) {
        return std::nullopt;
    }
    return keyValueOf(r["kvs"][0]);
}

std::vector<EtcdKeyValue> EtcdClient::range(const std::string& prefix, int64_t* revision,
                                            bool keys_only) {
    json req{{"key", base64(prefix)}, {"range_end", base64(prefixEnd(prefix))}};
    if (keys_only) {
        req["keys_only"] = true;
    }
    json r = json::parse(post("/v3/kv/range", req.dump(), "range " + prefix));
    std::vector<EtcdKeyValue> out;
    for (const auto& kv : r.value("kvs", json::array())) {
        out.push_back(keyValueOf(kv));
    }
    if (revision != nullptr) {
        *revision = jsonInt(r.value("header", json::object()), "revision");
    }
    return out;
}

void EtcdClient::watch(const std::string& key, bool prefix, int64_t start_revision,
                       const std::function<void(const EtcdKeyValue&)>& on_change) {
    json create{{"key", base64(key)}, {"start_revision", start_revision}};
    if (prefix) {
        create["range_end"] = base64(prefixEnd(key));
    }
    std::string body = json{{"create_request", create}}.dump();
    std::string errors;
    for (const auto& ep : endpoints_) {
        auto cli = clientFor(ep);
        cli->set_read_timeout(std::chrono::hours(24));  // a watch is quiet until something changes
        {
            std::lock_guard lock(mu_);
            if (stopped_) {
                return;
            }
            watching_ = cli.get();
        }
        // The gateway streams one JSON object per change batch.
        std::string buffer;
        std::string failure;
        httplib::Request req;
        req.method = "POST";
        req.path = "/v3/watch";
        req.body = body;
        req.set_header("Content-Type", "application/json");
        req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
            buffer.append(data, n);
            size_t start = 0;
            try {
                for (;;) {
                    // Objects are separated by newlines (or simply concatenated).
                    size_t depth = 0, end = std::string::npos;
                    bool in_str = false, esc = false;
                    for (size_t i = start; i < buffer.size(); ++i) {
                        char c = buffer[i];
                        if (in_str) {
                            esc = !esc && c == '\\';
                            in_str = esc || c != '"';
                            continue;
                        }
                        if (c == '"')
                            in_str = true;
                        if (c == '{')
                            ++depth;
                        if (c == '}' && depth > 0 && --depth == 0) {
                            end = i + 1;
                            break;
                        }
                    }
                    if (end == std::string::npos) {
                        break;
                    }
                    json msg =
                        json::parse(buffer.begin() + long(start), buffer.begin() + long(end));
                    start = end;
                    if (msg.contains("error")) {
                        failure = msg["error"].dump();
                        return false;
                    }
                    const json& result = msg.value("result", json::object());
                    if (result.value("canceled", false)) {
                        failure = "watch canceled: " + result.dump();
                        return false;
                    }
                    for (const auto& ev : result.value("events", json::array())) {
                        EtcdKeyValue kv = keyValueOf(ev.value("kv", json::object()));
                        kv.deleted = ev.value("type", "") == "DELETE";
                        on_change(kv);
                    }
                }
            } catch (const std::exception& e) {
                failure = e.what();
                return false;
            }
            buffer.erase(0, start);
            return !stopped_;
        };
        httplib::Response res;
        httplib::Error err = httplib::Error::Success;
        cli->send(req, res, err);
        {
            std::lock_guard lock(mu_);
            watching_ = nullptr;
        }
        if (stopped_) {
            return;
        }
        if (!failure.empty()) {
            throw Error("etcd watch " + key + " at " + ep + ": " + failure);
        }
        errors += (errors.empty() ? "" : "; ") + ep + ": " +
                  (err == httplib::Error::Success
                       ? "stream ended (HTTP " + std::to_string(res.status) + ")"
                       : httplib::to_string(err));
    }
    throw Error("etcd watch " + key + ": " + errors);
}

void EtcdClient::stop() {
    std::lock_guard lock(mu_);
    stopped_ = true;
    if (watching_ != nullptr) {
        watching_->stop();
    }
}

}  // namespace ztseg
