// The node agent: the loop that runs the controllers (controller.h) in the
// order stated once in Create(): it syncs the source into the object
// store, hands each new snapshot to every controller, applies them, serves
// the HTTP layer's loop work, and answers health. Signals end the loop; the
// data path stays in the kernel.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/agent_config.h"
#include "agent/certs/certs_controller.h"
#include "agent/controller.h"
#include "agent/datapath/datapath.h"
#include "agent/endpoints/endpoints_controller.h"
#include "agent/endpoints/identity_allocator.h"
#include "agent/http/loop_queue.h"
#include "agent/http/server.h"
#include "agent/lib/clock.h"
#include "agent/lib/unique_fd.h"
#include "agent/model/object_store.h"
#include "agent/mtls/mtls_controller.h"
#include "agent/netns/namespace_scanner.h"
#include "agent/policy/policy_controller.h"
#include "agent/services/services_controller.h"
#include "agent/source/source.h"
#include "agent/telemetry/telemetry_controller.h"

namespace shunt::agent {

class Agent {
 public:
  // Installs the data path, starts the controllers and the HTTP layer, and
  // reconciles once. Errors name what is wrong.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(const AgentConfig& config);
  ~Agent();

  // Runs until SIGTERM or SIGINT.
  absl::Status Run();

 private:
  explicit Agent(AgentConfig config) : config_(std::move(config)) {}
  absl::StatusOr<std::unique_ptr<source::Source>> CreateSource();
  // --mtls: the proxy's program and the node's addresses, or an error naming the flag.
  // The proxy's binary and the node's address; with `make_cgroup`, the
  // cgroup it runs in (mtls::ProxyCgroup).
  absl::Status ResolveProxy(bool make_cgroup);
  absl::Status StartControllers();
  absl::Status StartHttp();
  // `config_event`: the source said something changed (or the first pass).
  void Reconcile(bool config_event);
  void LogWarningsIfChanged();
  http::Response Status() const;
  http::Response Metrics() const;
  http::Response Healthz() const;
  http::Response Readyz() const;

  AgentConfig config_;
  const lib::Clock* clock_ = &lib::RealClock::Get();
  lib::UniqueFd signal_fd_;
  std::unique_ptr<source::Source> source_;
  model::ObjectStore store_;
  std::shared_ptr<const model::Snapshot> snapshot_ = store_.current();
  std::unique_ptr<datapath::Datapath> datapath_;
  std::unique_ptr<netns::SystemNamespaceScanner> scanner_;
  endpoints::IdentityAllocator identities_;  // shared by policy and endpoints
  endpoints::IdentityAllocator rule_ids_;
  std::vector<std::string> restore_errors_;  // pinned numbering that could not be read

  // The controllers, and the order they plan and apply in: policy before
  // services (a backend's grants are in place before connections are sent
  // to it), both before endpoints (a pod's grants are in place before it is
  // meshed); telemetry last (it reads what the others decided).
  std::unique_ptr<policy::PolicyController> policy_;
  std::unique_ptr<services::ServicesController> services_;
  std::unique_ptr<endpoints::EndpointsController> endpoints_;
  std::unique_ptr<telemetry::TelemetryController> telemetry_;
  std::unique_ptr<certs::Authority> authority_;    // --ca-dir, until certs_ takes it
  std::unique_ptr<certs::CertsController> certs_;  // workload certificates (mTLS)
  std::unique_ptr<mtls::MtlsController> mtls_;     // the proxy and the hand-off
  std::string proxy_cgroup_;                       // mtls::ProxyCgroup()
  bool l7_without_mtls_ = false;                   // --mtls=off, the proxy can run for L7
  std::vector<Controller*> controllers_;

  http::Router api_routes_, metrics_routes_, health_routes_;
  std::unique_ptr<http::LoopQueue> loop_queue_;
  std::unique_ptr<http::Server> http_;  // last but one: its work reads the controllers
  std::string metrics_address_;

  std::string last_logged_;
  int64_t started_at_ = 0;
  uint64_t reconciles_ = 0;
  uint64_t reconcile_errors_ = 0;
  // Read by the HTTP server's thread (health).
  std::atomic<int64_t> last_turn_ms_{0};
  std::atomic<bool> ready_{false};
  std::atomic<bool> synced_{false};
};

}  // namespace shunt::agent
