#include "agent.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/endpoints/numbering_restore.h"
#include "agent/lib/cidr.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/fmt_absl.h"
#include "agent/lib/fs_checks.h"
#include "agent/lib/pin_layout.h"
#include "agent/lib/pinned_maps.h"
#include "agent/lib/status_macros.h"
#include "agent/model/problem_json.h"
#include "agent/mtls/node_address.h"
#include "agent/source/file_source.h"
#include "agent/source/kube/kube_source.h"
#include "agent/source/kube/resources.h"
#include "shunt/abi/pins.h"
#include "spdlog/spdlog.h"

namespace shunt::agent {
namespace {

// --pod-cidrs as map keys (Validate() checked each).
std::vector<shunt_cidr_key> PodCidrKeys(const std::vector<std::string>& texts) {
  std::vector<shunt_cidr_key> keys;
  for (const std::string& t : texts)
    if (auto k = lib::ParseCidr(t); k.ok()) keys.push_back(*k);
  return keys;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentConfig& config) {
  SHUNT_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<Agent> a(new Agent(config));
  a->started_at_ = time(nullptr);
  if (config.source == "file" && access(config.config_dir.c_str(), R_OK | X_OK) != 0)
    return lib::ErrnoStatus(errno, absl::StrCat("--config-dir ", config.config_dir));
  SHUNT_RETURN_IF_ERROR(lib::CheckCgroup2Dir(config.cgroup_root));
  SHUNT_RETURN_IF_ERROR(lib::CheckBpffsDir(config.bpffs_dir));
  // The CA before anything is installed: a node that cannot issue its
  // workloads' certificates must not start half-way.
  if (config.mtls != "off") {
    SHUNT_ASSIGN_OR_RETURN(
        a->authority_,
        certs::Authority::Load(config.ca_dir, absl::FromUnixNanos(a->clock_->RealtimeNs())));
    SHUNT_RETURN_IF_ERROR(a->ResolveProxy(/*make_cgroup=*/true));
  } else if (config.proxy_l7_port != 0) {
    // Without mTLS the proxy may still run, for the L7 layer between this
    // node's pods (docs/l7.md); a node without it only loses that.
    // (Its cgroup is made when it starts: most nodes never need it.)
    if (absl::Status st = a->ResolveProxy(/*make_cgroup=*/false); st.ok())
      a->l7_without_mtls_ = true;
    else
      spdlog::warn("l7: the proxy cannot run ({}): HTTP-routes-only grants open nothing",
                   st.message());
  }

  // Block the signals before anything else so none is lost between here and Run().
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  a->signal_fd_.Reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!a->signal_fd_.valid()) return lib::ErrnoStatus(errno, "signalfd");

  a->store_.SetLocalNode(config.node);
  SHUNT_ASSIGN_OR_RETURN(a->source_, a->CreateSource());
  SHUNT_ASSIGN_OR_RETURN(a->datapath_, datapath::Datapath::Install(
                                           {.bpffs_dir = config.bpffs_dir,
                                            .cgroup_root = config.cgroup_root,
                                            .max_queued_bytes = config.max_queued_bytes,
                                            .node_tcp_memory_bytes = config.node_tcp_memory_bytes,
                                            .mode = config.mode,
                                            .udp_exchanges_per_pod = config.udp_exchanges_per_pod,
                                            .icmp_echo = config.allow_icmp_echo,
                                            .pod_cidrs = PodCidrKeys(config.pod_cidrs),
                                            .telemetry = config.telemetry}));
  const auto& rep = a->datapath_->report();
  spdlog::info(
      "data path {} in {} (cgroup {}, {} KiB unread per flow before TCP, node TCP memory "
      "budget {}){}{}",
      rep.reused_maps ? "reopened" : "installed", config.bpffs_dir, config.cgroup_root,
      rep.max_queued_bytes / 1024,
      rep.node_tcp_memory_bytes ? absl::StrCat(rep.node_tcp_memory_bytes >> 20, " MiB")
                                : std::string("the kernel's tcp_mem pressure threshold"),
      rep.links_updated ? ", programs replaced in existing links" : "",
      rep.sk_msg_is_link ? "" : ", sk_msg attached to the map (no sockmap links)");
  if (!rep.retired_pins.empty())
    spdlog::info("removed maps of an earlier layout: {}", absl::StrJoin(rep.retired_pins, ", "));
  if (!rep.short_circuit_off.empty())
    spdlog::warn(
        "same-node short-circuit off, every flow takes TCP: the socket watch that keeps it "
        "invisible to applications could not be installed: {}",
        rep.short_circuit_off);
  SHUNT_RETURN_IF_ERROR(a->StartControllers());
  SHUNT_RETURN_IF_ERROR(a->StartHttp());
  a->Reconcile(/*config_event=*/true);
  return a;
}

absl::Status Agent::ResolveProxy(bool make_cgroup) {
  if (config_.proxy_bin.empty()) {
    char self[PATH_MAX] = "";
    const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) return lib::ErrnoStatus(errno, "--proxy-bin: cannot find the agent's own path");
    std::string dir(self, static_cast<size_t>(n));
    config_.proxy_bin = dir.substr(0, dir.rfind('/')) + "/shunt-proxy";
  }
  if (access(config_.proxy_bin.c_str(), X_OK) != 0)
    return lib::ErrnoStatus(errno, absl::StrCat("--proxy-bin ", config_.proxy_bin));
  if (make_cgroup) {
    SHUNT_ASSIGN_OR_RETURN(proxy_cgroup_, mtls::ProxyCgroup(config_.cgroup_root));
    if (!proxy_cgroup_.empty())
      spdlog::info("mtls: the agent runs outside --cgroup-root; the proxy runs in {}",
                   proxy_cgroup_);
  }
  if (config_.node_ips.empty()) {
    SHUNT_ASSIGN_OR_RETURN(std::string ip, mtls::DefaultRouteSource());
    spdlog::info("mtls: node address {} (the default route's source; --node-ip to choose)", ip);
    config_.node_ips.push_back(ip);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<source::Source>> Agent::CreateSource() {
  if (config_.source == "file") {
    SHUNT_ASSIGN_OR_RETURN(auto file, source::FileSource::Create(config_.config_dir));
    return std::unique_ptr<source::Source>(std::move(file));
  }
  absl::StatusOr<source::kube::KubeConfig> kube =
      config_.kubeconfig.empty() ? source::kube::InClusterConfig(source::kube::ProcessEnv())
                                 : source::kube::LoadKubeconfig(config_.kubeconfig);
  if (!kube.ok()) return kube.status();
  spdlog::info("kube source: API server {} ({})", kube->server, kube->where);
  SHUNT_ASSIGN_OR_RETURN(
      auto ks, source::kube::KubeSource::Create(*kube, source::kube::MeshResources(config_.node),
                                                config_.kube_options, *clock_));
  return std::unique_ptr<source::Source>(std::move(ks));
}

absl::Status Agent::StartControllers() {
  const lib::PinnedMaps& maps = datapath_->maps();
  auto endpoint_maps = std::make_unique<endpoints::BpfEndpointMaps>(&maps);
  // Keep identity and rule numbers stable across restarts: re-adopt the
  // ones the pins hold. A map that cannot be read is no reason not to run,
  // but its numbers may be given out anew: say so everywhere.
  const auto identity_meta = maps.identity_meta();
  const auto rule_meta = maps.rule_meta();
  restore_errors_ = endpoints::RestoreNumbering(
      {.identity_meta = &identity_meta, .endpoints = endpoint_maps.get(), .rule_meta = &rule_meta},
      identities_, rule_ids_);
  for (const auto& e : restore_errors_)
    spdlog::error("restart: cannot read {}; identities or rule ids may be renumbered", e);

  auto policy_writer = std::make_unique<policy::PolicyWriter>(maps);
  SHUNT_RETURN_IF_ERROR(policy_writer->Load());
  SHUNT_ASSIGN_OR_RETURN(auto deny_log, policy::DenyLog::Create(maps.events_fd()));
  policy_ = std::make_unique<policy::PolicyController>(policy::PolicyController::Deps{
      .mode = config_.mode,
      .identities = &identities_,
      .rule_ids = &rule_ids_,
      .writer = std::move(policy_writer),
      .denials = std::move(deny_log),
      .entries_per_namespace = config_.policy_entries_per_namespace,
      .l7_node = [this] { return mtls_ && mtls_->l7_on() ? config_.node : std::string(); },
      .l7_across_nodes = [this] { return config_.mtls != "off"; }});

  SHUNT_ASSIGN_OR_RETURN(
      telemetry_, telemetry::TelemetryController::Create({.clock = clock_,
                                                          .enabled = config_.telemetry,
                                                          .maps = &maps,
                                                          .bpffs_dir = config_.bpffs_dir,
                                                          .policy = policy_.get(),
                                                          .trust_domain = config_.trust_domain}));

  auto service_writer = std::make_unique<services::ServiceWriter>(maps);
  SHUNT_RETURN_IF_ERROR(service_writer->Load());
  auto lb_writer = std::make_unique<services::LbScoreWriter>(maps.lb_scores());
  SHUNT_RETURN_IF_ERROR(lb_writer->Load());
  services_ = std::make_unique<services::ServicesController>(services::ServicesController::Deps{
      .clock = clock_,
      .writer = std::move(service_writer),
      .lb_writer = std::move(lb_writer),
      .lb_trace_fd = maps.lb_trace_fd(),
      .flows = telemetry_->flows(),
      .live_scans = [t = telemetry_.get()] { return t->live_scans(); },
      .namespace_budget = {.entries = config_.service_entries_per_namespace,
                           .slots = config_.service_slots_per_namespace},
      // Made after: read when asked.
      .l7_balancers = [this] { return mtls_ ? mtls_->L7Balancers() : nlohmann::json(); }});

  SHUNT_ASSIGN_OR_RETURN(uint64_t own_cookie, netns::CurrentNetnsCookie());
  scanner_ = std::make_unique<netns::SystemNamespaceScanner>(config_.cgroup_root);
  SHUNT_ASSIGN_OR_RETURN(
      endpoints_,
      endpoints::EndpointsController::Create(
          {.node = config_.node,
           .own_netns_cookie = own_cookie,
           .clock = clock_,
           .identities = &identities_,
           .maps = std::move(endpoint_maps),
           .tc_endpoints =
               std::make_shared<lib::TypedMap<__u32, shunt_tc_endpoint>>(maps.tc_endpoints()),
           .sync_tc = [dp = datapath_.get()](const std::set<int>& i) { return dp->SyncTc(i); },
           .scanner = scanner_.get(),
           .ipcache_per_namespace = config_.ipcache_entries_per_namespace}));

  // Opened with --mtls=off too: an earlier run's hand-off is turned off.
  SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd mtls_switch,
                         lib::OpenPin(lib::PinLayout(config_.bpffs_dir).Map(SHUNT_MAP_MTLS_CONFIG),
                                      /*read_only=*/false));
  mtls_ = std::make_unique<mtls::MtlsController>(mtls::MtlsController::Deps{
      .clock = clock_,
      .options = {.mode = config_.mtls,
                  .node = config_.node,
                  .trust_domain = config_.trust_domain,
                  .ca_pem = authority_ ? authority_->cert_pem() : std::string(),
                  .node_ips = config_.node_ips,
                  .inbound_port = static_cast<uint16_t>(config_.proxy_inbound_port),
                  .l7_port = static_cast<uint16_t>(config_.proxy_l7_port),
                  .handshake_timeout_ms = config_.proxy_handshake_timeout_ms,
                  .proxy_bin = config_.proxy_bin,
                  .proxy_cgroup = proxy_cgroup_,
                  .cgroup_root = config_.cgroup_root,
                  // Named after the API socket: one per agent, kept across its
                  // restarts, and apart from another agent's whose socket shares
                  // the directory (two simulated nodes on one machine).
                  .proxy_pid_file = config_.api_socket + ".shunt-proxy.pid",
                  .bpffs = config_.bpffs_dir,
                  .trace_otlp_endpoint = config_.trace_otlp_endpoint,
                  .l7_max_connections = config_.l7_max_connections,
                  .l7_max_header_bytes = config_.l7_max_header_bytes,
                  .l7_max_headers = config_.l7_max_headers,
                  .l7_header_timeout_ms = config_.l7_header_timeout_ms,
                  .l7_idle_timeout_ms = config_.l7_idle_timeout_ms,
                  .l7_connect_timeout_ms = config_.l7_connect_timeout_ms,
                  .l7_stream_idle_timeout_ms = config_.l7_stream_idle_timeout_ms,
                  .l7_without_mtls = l7_without_mtls_},
      .identities = &identities_,
      .config_map = std::move(mtls_switch),
      .on_refusal = [p = policy_.get()](const nlohmann::json& e) { p->RecordProxyRefusal(e); },
      .on_requests = [t = telemetry_.get()](const nlohmann::json& r) { t->IngestRequests(r); },
      .service_plan = [s = services_.get()]() -> const services::Plan* { return &s->plan(); }});
  certs_ = std::make_unique<certs::CertsController>(certs::CertsController::Deps{
      .clock = clock_,
      .options = {.node = config_.node,
                  .mode = config_.mtls,
                  .trust_domain = config_.trust_domain,
                  .ttl = absl::Seconds(config_.cert_ttl_s)},
      .authority = std::move(authority_),
      .publish = [m = mtls_.get()](const std::vector<certs::IssuedCertificate>& c) {
        m->SetCertificates(c);
      }});

  // mtls after certs: it sends the proxy what certs issued in the same pass.
  controllers_ = {policy_.get(),    services_.get(), endpoints_.get(),
                  telemetry_.get(), certs_.get(),    mtls_.get()};
  return absl::OkStatus();
}

absl::Status Agent::StartHttp() {
  api_routes_.Add("GET", "/v1/ping", [](const http::Request&) {
    return http::Json({{"ok", true}});
  });
  api_routes_.Add("GET", "/v1/status", [this](const http::Request&) { return Status(); });
  metrics_routes_.Add("GET", "/metrics", [this](const http::Request&) { return Metrics(); });
  metrics_routes_.Add(
      "GET", "/healthz", [this](const http::Request&) { return Healthz(); }, http::RunsOn::kServer);
  metrics_routes_.Add(
      "GET", "/readyz", [this](const http::Request&) { return Readyz(); }, http::RunsOn::kServer);
  health_routes_.Add(
      "GET", "/healthz", [this](const http::Request&) { return Healthz(); }, http::RunsOn::kServer);
  health_routes_.Add(
      "GET", "/readyz", [this](const http::Request&) { return Readyz(); }, http::RunsOn::kServer);
  metrics_routes_.Add("GET", "/", [](const http::Request&) {
    return http::Text(200,
                      "shunt-agent: /metrics (Prometheus), /apis/metrics.smi-spec.io/v1alpha1/... "
                      "(SMI TrafficMetrics), /healthz, /readyz\n");
  });
  for (Controller* c : controllers_) c->AddRoutes(api_routes_, metrics_routes_);

  SHUNT_ASSIGN_OR_RETURN(loop_queue_, http::LoopQueue::Create());
  std::vector<http::Listener> listeners = {
      {http::Listener::Kind::kUnix, config_.api_socket, &api_routes_, ""}};
  if (!config_.metrics_addr.empty())
    listeners.push_back(
        {http::Listener::Kind::kTcp, config_.metrics_addr, &metrics_routes_, "--metrics-addr"});
  if (!config_.health_addr.empty())
    listeners.push_back(
        {http::Listener::Kind::kTcp, config_.health_addr, &health_routes_, "--health-addr"});
  SHUNT_ASSIGN_OR_RETURN(http_, http::Server::Start({}, std::move(listeners), loop_queue_.get()));
  if (!config_.health_addr.empty())
    spdlog::info("health at http://{}/healthz and /readyz", http_->addresses().back());
  if (!config_.metrics_addr.empty()) {
    metrics_address_ = http_->addresses()[1];
    spdlog::info(
        "metrics at http://{}/metrics, TrafficMetrics at "
        "http://{}/apis/metrics.smi-spec.io/v1alpha1, health at /healthz and /readyz",
        metrics_address_, metrics_address_);
  }
  return absl::OkStatus();
}

Agent::~Agent() {
  // The server first: its pending loop work refers to the controllers.
  http_.reset();
}

void Agent::Reconcile(bool config_event) {
  const int64_t now_ms = clock_->MonotonicMs();
  bool changed = false;
  if (config_event) {
    if (absl::Status synced = source_->Sync(store_); !synced.ok()) {
      // The source as a whole cannot be read: keep the last good state in force.
      ++reconcile_errors_;
      spdlog::error("config: {}; keeping the last good state", synced.message());
    } else {
      auto snap = store_.Publish();
      changed = snap != snapshot_;
      snapshot_ = std::move(snap);
    }
  }
  // Until the source has read everything once, an empty or partial
  // snapshot would unmesh pods and drop policy that the pinned maps still
  // enforce from before a restart: nothing is applied yet.
  if (!source_->synced()) return;
  if (!config_event) {
    bool wanted = false;
    for (Controller* c : controllers_) wanted |= c->WantsReconcile(now_ms);
    if (!wanted) return;
  }
  ++reconciles_;
  for (Controller* c : controllers_) c->Plan(snapshot_, changed);
  // Identities are numbered across features: keep those any of them uses.
  std::set<endpoints::IdentityAllocator::Key> in_use(policy_->identities_in_use().begin(),
                                                     policy_->identities_in_use().end());
  in_use.insert(endpoints_->identities_in_use().begin(), endpoints_->identities_in_use().end());
  identities_.Retain(in_use);
  size_t errors = 0;
  for (Controller* c : controllers_) errors += c->Apply();
  if (errors > 0) ++reconcile_errors_;
  if (source_->synced()) {
    synced_ = true;
    ready_ = true;
  }
  LogWarningsIfChanged();
}

void Agent::LogWarningsIfChanged() {
  std::vector<std::string> warnings;
  for (Controller* c : controllers_) c->AddWarnings(warnings);
  std::vector<std::string> lines;
  for (const auto& p : snapshot_->problems) lines.push_back("rejected: " + p.ToString());
  for (const auto& n : snapshot_->notices) lines.push_back("notice: " + n.ToString());
  lines.insert(lines.end(), warnings.begin(), warnings.end());
  std::string all = absl::StrJoin(lines, "\n");
  if (all == last_logged_) return;
  last_logged_ = all;
  const auto& plan = endpoints_->plan();
  spdlog::info("config: {} files, {} objects, {} pods ({} local, {} meshed), generation {}",
               snapshot_->origins, snapshot_->documents, snapshot_->pods.size(),
               plan.local_pods.size(), plan.endpoints.size(), snapshot_->generation);
  for (const auto& p : snapshot_->problems) spdlog::warn("config: rejected {}", p.ToString());
  for (const auto& n : snapshot_->notices) spdlog::info("config: {}", n.ToString());
  for (const auto& w : warnings) spdlog::warn("{}", w);
}

http::Response Agent::Status() const {
  nlohmann::json j = {
      {"node", config_.node},
      {"pid", getpid()},
      {"started_at_unix", started_at_},
      {"config_dir", config_.config_dir},
      {"cgroup_root", config_.cgroup_root},
      {"bpffs", config_.bpffs_dir},
      {"source", source_->StatusJson()},
      {"config",
       {{"files", snapshot_->origins},
        {"objects", snapshot_->documents},
        {"pods", snapshot_->pods.size()},
        {"problems", model::ProblemsJson(snapshot_->problems)},
        {"notices", model::ProblemsJson(snapshot_->notices)}}},
      {"reconciles", reconciles_},
      {"reconcile_errors", reconcile_errors_},
      // The object snapshot now in force in the kernel: tools and tests
      // wait on it to know a change has been applied, not merely seen.
      {"generation", snapshot_->generation},
      {"restore_errors", restore_errors_},
      {"metrics_addr", metrics_address_},
      {"ready", ready_.load()},
      // Off when the socket watch could not be installed (then every flow
      // takes TCP), with the reason.
      {"short_circuit",
       {{"on", datapath_->report().short_circuit_off.empty()},
        {"off_because", datapath_->report().short_circuit_off},
        {"urgent_data_before_the_send", datapath_->report().send_flags_seen}}},
  };
  for (const Controller* c : controllers_) c->AddStatus(j);
  return http::Json(j);
}

http::Response Agent::Metrics() const {
  std::string out;
  for (const Controller* c : controllers_) c->AddMetrics(out);
  const auto& s = http_->stats();
  absl::StrAppend(
      &out, "# HELP shunt_reconciles_total Reconcile passes of the agent.\n",
      "# TYPE shunt_reconciles_total counter\n", "shunt_reconciles_total ", reconciles_, "\n",
      "# HELP shunt_reconcile_errors_total Reconcile passes that met an error.\n",
      "# TYPE shunt_reconcile_errors_total counter\n", "shunt_reconcile_errors_total ",
      reconcile_errors_, "\n", "# HELP shunt_object_generation The object snapshot in force.\n",
      "# TYPE shunt_object_generation gauge\n", "shunt_object_generation ", snapshot_->generation,
      "\n", "# HELP shunt_restore_errors Pinned maps whose numbering could not be read at start.\n",
      "# TYPE shunt_restore_errors gauge\n", "shunt_restore_errors ", restore_errors_.size(), "\n",
      "# HELP shunt_http_requests_total Requests the agent's HTTP layer answered.\n",
      "# TYPE shunt_http_requests_total counter\n", "shunt_http_requests_total ", s.requests.load(),
      "\n",
      "# HELP shunt_http_connections_closed_total Connections the HTTP layer closed, by why.\n",
      "# TYPE shunt_http_connections_closed_total counter\n",
      "shunt_http_connections_closed_total{reason=\"deadline\"} ", s.timeouts.load(), "\n",
      "shunt_http_connections_closed_total{reason=\"evicted\"} ", s.evicted.load(), "\n",
      "shunt_http_connections_closed_total{reason=\"refused\"} ", s.refused.load(), "\n");
  return {200, "text/plain; version=0.0.4; charset=utf-8", std::move(out)};
}

// Server thread: atomics only.
http::Response Agent::Healthz() const {
  const int64_t stalled_ms = clock_->MonotonicMs() - last_turn_ms_.load();
  if (stalled_ms > config_.health_stall_ms)
    return http::Text(
        503, absl::StrCat("the agent's loop has not turned for ", stalled_ms,
                          " ms (limit --health-stall-ms=", config_.health_stall_ms, ")\n"));
  return http::Text(200, "ok\n");
}

// Server thread: atomics only.
http::Response Agent::Readyz() const {
  if (!synced_.load())
    return http::Text(503, "not ready: the source's first full sync is not applied yet\n");
  return http::Text(200, "ready: data path installed, objects applied\n");
}

absl::Status Agent::Run() {
  int64_t reload_at = -1;  // debounce: editors write files in several steps
  int64_t rescan_at = clock_->MonotonicMs() + config_.rescan_ms;
  // Denials wake the loop only once many wait, so turn at least this often.
  constexpr int64_t kTurnMs = 20;
  for (;;) {
    std::vector<pollfd> fds = {
        {signal_fd_.get(), POLLIN, 0}, {source_->fd(), POLLIN, 0}, {loop_queue_->fd(), POLLIN, 0}};
    for (Controller* c : controllers_)
      for (int fd : c->PollFds()) fds.push_back({fd, POLLIN, 0});
    const int64_t now = clock_->MonotonicMs();
    last_turn_ms_ = now;
    int64_t wake = std::min(rescan_at, now + kTurnMs);
    if (reload_at >= 0) wake = std::min(wake, reload_at);
    int n = poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(0, wake - now)));
    if (n < 0 && errno != EINTR) return lib::ErrnoStatus(errno, "agent: poll");
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      if (read(signal_fd_.get(), &si, sizeof(si)) > 0)
        spdlog::info("signal {}: exiting; the data path stays in place", si.ssi_signo);
      return absl::OkStatus();
    }
    if ((fds[1].revents & POLLIN) && source_->Drain() && reload_at < 0)
      // Files are written in several steps; watch events come whole, and
      // a few milliseconds gather a burst of them into one reconcile.
      reload_at = clock_->MonotonicMs() + (config_.source == "file" ? config_.debounce_ms : 5);
    for (Controller* c : controllers_) c->Tick(clock_->MonotonicMs());
    loop_queue_->RunPending();  // the HTTP layer's requests, between reconciles
    if (reload_at >= 0 && clock_->MonotonicMs() >= reload_at) {
      reload_at = -1;
      Reconcile(/*config_event=*/true);
      rescan_at = clock_->MonotonicMs() + config_.rescan_ms;
    } else if (clock_->MonotonicMs() >= rescan_at) {
      Reconcile(/*config_event=*/false);
      rescan_at = clock_->MonotonicMs() + config_.rescan_ms;
    }
  }
}

}  // namespace shunt::agent
