// A small etcd v3 client over etcd's JSON gateway (POST /v3/kv/put,
// /v3/kv/range, /v3/kv/deleterange, /v3/kv/txn, /v3/watch; keys and values
// base64), so
// ztseg needs no etcd gRPC stubs. Each call tries the endpoints in turn.
// Nothing read from etcd is trusted by ztseg: bundles carry signatures.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace httplib {
class Client;
}

namespace ztseg {

struct EtcdKeyValue {
    std::string key, value;
    int64_t mod_revision = 0;
    bool deleted = false;  // in watch events
};

class EtcdClient {
  public:
    // endpoints: "http://host:port" (or "host:port"). Throws Error if empty.
    explicit EtcdClient(std::vector<std::string> endpoints);
    ~EtcdClient();
    EtcdClient(const EtcdClient&) = delete;
    EtcdClient& operator=(const EtcdClient&) = delete;

    // Throw Error naming the key, the endpoint and the reason.
    void put(const std::string& key, const std::string& value);
    // Many puts in few round trips: transactions of at most `max_ops` puts
    // (etcd's --max-txn-ops defaults to 128) and about `max_bytes` of values
    // (its --max-request-bytes defaults to 1.5 MiB), up to `parallel` of them
    // in flight at once. Each transaction is one revision and one fsync in
    // etcd instead of one per key. Returns, per item, "" when it was written,
    // else why not (all items of a failed transaction fail together).
    std::vector<std::string> putMany(const std::vector<std::pair<std::string, std::string>>& items,
                                     size_t max_ops = 128, size_t max_bytes = 1 << 20,
                                     size_t parallel = 4);
    void remove(const std::string& key);
    std::optional<EtcdKeyValue> get(const std::string& key);
    // Every key starting with `prefix`, sorted; `revision` receives the store
    // revision the answer reflects (watch from revision + 1 to miss nothing).
    // `keys_only`: values are left empty (not sent).
    std::vector<EtcdKeyValue> range(const std::string& prefix, int64_t* revision = nullptr,
                                    bool keys_only = false);

    // Streams changes of `key` (or every key under it when `prefix`) from
    // `start_revision` on to `on_change`, until stop() is called (returns
    // normally) or the stream fails (throws Error; call again from the last
    // seen revision + 1).
    void watch(const std::string& key, bool prefix, int64_t start_revision,
               const std::function<void(const EtcdKeyValue&)>& on_change);
    // Ends a running watch() from another thread; later watch() calls return at once.
    void stop();

  private:
    std::string post(const std::string& path, const std::string& body, const std::string& what);
    std::vector<std::string> endpoints_;
    std::atomic<bool> stopped_{false};
    std::mutex mu_;
    httplib::Client* watching_ = nullptr;  // guarded by mu_
};

}  // namespace ztseg
