#include "agent.h"

#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/lib/bpf_introspect.h"
#include "agent/lib/counters.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/fmt_absl.h"
#include "agent/lib/fs_checks.h"
#include "agent/lib/ip.h"
#include "agent/lib/json_text.h"
#include "agent/lib/pin_layout.h"
#include "agent/lib/pinned_maps.h"
#include "agent/lib/status_macros.h"
#include "agent/netns/link_info.h"
#include "agent/netns/netns_scanner.h"
#include "agent/policy/check.h"
#include "agent/source/file_source.h"
#include "agent/telemetry/stat.h"
#include "agent/telemetry/traffic_metrics.h"
#include "nlohmann/json.hpp"
#include "shunt/abi/pins.h"
#include "spdlog/spdlog.h"

namespace shunt::agent {
namespace {

int64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // the clock of bpf_ktime_get_ns
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

nlohmann::json ProblemsJson(const std::vector<model::Problem>& ps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : ps)
    out.push_back({{"file", p.ref.file},
                   {"line", p.ref.line},
                   {"object", p.ref.ToString()},
                   {"reason", p.reason}});
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentConfig& config) {
  SHUNT_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<Agent> a(new Agent(config));
  a->started_at_ = time(nullptr);
  if (access(config.config_dir.c_str(), R_OK | X_OK) != 0)
    return lib::ErrnoStatus(errno, absl::StrCat("--config-dir ", config.config_dir));
  SHUNT_RETURN_IF_ERROR(lib::CheckCgroup2Dir(config.cgroup_root));
  SHUNT_RETURN_IF_ERROR(lib::CheckBpffsDir(config.bpffs_dir));

  // Block the signals before anything else so none is lost between here and Run().
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  a->signal_fd_.Reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!a->signal_fd_.valid()) return lib::ErrnoStatus(errno, "signalfd");

  SHUNT_ASSIGN_OR_RETURN(a->source_, source::FileSource::Create(config.config_dir));
  SHUNT_ASSIGN_OR_RETURN(a->own_netns_cookie_, netns::CurrentNetnsCookie());

  SHUNT_ASSIGN_OR_RETURN(a->datapath_,
                         datapath::Datapath::Install({.bpffs_dir = config.bpffs_dir,
                                                      .cgroup_root = config.cgroup_root,
                                                      .max_queued_bytes = config.max_queued_bytes,
                                                      .mode = config.mode,
                                                      .telemetry = config.telemetry}));
  const auto& rep = a->datapath_->report();
  spdlog::info("data path {} in {} (cgroup {}, {} KiB unread per flow before TCP){}{}",
               rep.reused_maps ? "reopened" : "installed", config.bpffs_dir, config.cgroup_root,
               rep.max_queued_bytes / 1024,
               rep.links_updated ? ", programs replaced in existing links" : "",
               rep.sk_msg_is_link ? "" : ", sk_msg attached to the map (no sockmap links)");
  if (!rep.retired_pins.empty())
    spdlog::info("removed maps of an earlier layout: {}", absl::StrJoin(rep.retired_pins, ", "));
  a->maps_ = std::make_unique<endpoints::BpfEndpointMaps>(&a->datapath_->maps());

  // Keep identity and rule numbers stable across restarts: re-adopt the ones
  // the pins hold.
  const lib::PinnedMaps& maps = a->datapath_->maps();
  if (auto ids = maps.identity_meta().Entries(); ids.ok()) {
    for (const auto& [id, m] : *ids) a->identities_.Seed({m.namespace_, m.service_account}, id);
  }
  if (auto existing = a->maps_->ReadEndpoints(); existing.ok()) {
    for (const auto& [cookie, e] : *existing)
      a->identities_.Seed({e.meta.namespace_, e.meta.service_account}, e.ep.identity);
  }
  if (auto rules = maps.rule_meta().Entries(); rules.ok()) {
    for (const auto& [id, m] : *rules) a->rule_ids_.Seed({m.namespace_, m.name}, id);
  }
  a->tc_map_ = std::make_unique<lib::ShadowedMap<__u32, shunt_tc_endpoint>>(maps.tc_endpoints());
  SHUNT_RETURN_IF_ERROR(a->tc_map_->Load());
  a->policy_writer_ = std::make_unique<policy::PolicyWriter>(maps);
  SHUNT_RETURN_IF_ERROR(a->policy_writer_->Load());
  a->service_writer_ = std::make_unique<services::ServiceWriter>(maps);
  SHUNT_RETURN_IF_ERROR(a->service_writer_->Load());
  a->lb_writer_ = std::make_unique<services::LbScoreWriter>(maps.lb_scores());
  SHUNT_RETURN_IF_ERROR(a->lb_writer_->Load());
  a->lb_trace_fd_ = maps.lb_trace_fd();
  SHUNT_ASSIGN_OR_RETURN(a->deny_log_, policy::DenyLog::Create(maps.events_fd()));
  // Finished flows are drained on a thread of their own (flow_collector.h);
  // with telemetry off the kernel keeps no records, so there is nothing to drain.
  if (config.telemetry) {
    SHUNT_ASSIGN_OR_RETURN(a->collector_, telemetry::FlowCollector::Start(
                                              maps.flow_events_fd(), &a->flows_, maps.flows_fd(),
                                              maps.flow_hists_fd()));
  }

  SHUNT_ASSIGN_OR_RETURN(
      auto api,
      api::ApiServer::Listen(config.api_socket, [agent = a.get()](const std::string& req) {
        return agent->HandleApi(req);
      }));
  a->api_.emplace(std::move(api));
  if (!config.metrics_addr.empty()) {
    auto http = api::HttpServer::Start(
        config.metrics_addr, [agent = a.get()](const std::string& path, const std::string& query) {
          return agent->ServeHttp(path, query);
        });
    if (!http.ok())
      return absl::Status(http.status().code(),
                          absl::StrCat("--metrics-addr: ", http.status().message()));
    a->http_ = std::move(*http);
    spdlog::info(
        "metrics at http://{}/metrics, TrafficMetrics at "
        "http://{}/apis/metrics.smi-spec.io/v1alpha1",
        a->http_->address(), a->http_->address());
  }
  a->Reconcile(/*reload_config=*/true);
  return a;
}

void Agent::Reconcile(bool reload_config) {
  ++reconciles_;
  if (reload_config) {
    if (absl::Status synced = source_->Sync(store_); !synced.ok()) {
      // The source as a whole cannot be read: keep the last good state in force.
      ++reconcile_errors_;
      spdlog::error("config: {}; keeping the last good state", synced.message());
    } else if (auto snap = store_.Publish(); snap != snapshot_) {
      snapshot_ = std::move(snap);
      compiler_.Update(*snapshot_);
      service_plan_ = services::MakePlan(*snapshot_);
      flows_.SetDirectory(telemetry::PeerDirectory::Build(snapshot_->pods));
      if (compiler_.policy().rules_stamp != rule_names_stamp_) {
        flows_.SetRuleNames(
            std::make_shared<const std::map<uint32_t, std::string>>(compiler_.policy().rules));
        rule_names_stamp_ = compiler_.policy().rules_stamp;
      }
    }
  }
  auto handles = netns::ListNetns();
  std::set<uint64_t> inodes;
  for (const auto& h : handles) inodes.insert(h.inode);
  bool unresolved = false;
  for (const auto& p : plan_.local_pods) unresolved |= p.netns_cookie == 0;
  const int64_t now = NowMs();
  // Probing enters every namespace: only when something can have changed,
  // and once every 30 s to catch addresses that moved.
  const bool probe =
      reload_config || unresolved || inodes != last_netns_inodes_ || now - last_full_probe_ > 30000;
  if (!probe) return;
  last_netns_inodes_ = std::move(inodes);
  last_full_probe_ = now;
  auto probes = netns::ProbeNetns(handles);
  if (!probes.ok()) {
    ++reconcile_errors_;
    spdlog::error("netns scan: {}", probes.status().message());
    return;
  }
  plan_ = endpoints::MakePlan({.node = config_.node,
                               .pods = &snapshot_->pods,
                               .namespaces = &*probes,
                               .own_netns_cookie = own_netns_cookie_},
                              identities_);
  std::set<endpoints::IdentityAllocator::Key> in_use(compiler_.policy().identities.begin(),
                                                     compiler_.policy().identities.end());
  in_use.insert(plan_.identities.begin(), plan_.identities.end());
  identities_.Retain(in_use);
  std::set<endpoints::IdentityAllocator::Key> targets;
  for (const auto& t : snapshot_->traffic_targets) targets.insert({t.namespace_, t.name});
  rule_ids_.Retain(targets);
  // Policy before endpoints: a pod's grants are in place before it is meshed.
  const std::vector<policy::EntryKey> changed = compiler_.TakeChanges();
  last_policy_apply_ = policy_writer_->Apply(compiler_.policy(), identities_, &changed);
  if (!last_policy_apply_.errors.empty()) {
    ++reconcile_errors_;
    for (const auto& e : last_policy_apply_.errors) spdlog::error("policy maps: {}", e);
  }
  if (last_policy_apply_.written || last_policy_apply_.deleted)
    spdlog::info("policy: {} written, {} deleted, {} unchanged ({} entries)",
                 last_policy_apply_.written, last_policy_apply_.deleted,
                 last_policy_apply_.unchanged, policy_writer_->entries());
  // Services after policy (a backend's grants are in place before
  // connections are sent to it), before endpoints.
  last_service_apply_ = service_writer_->Apply(service_plan_);
  if (!last_service_apply_.errors.empty()) {
    ++reconcile_errors_;
    for (const auto& e : last_service_apply_.errors) spdlog::error("service maps: {}", e);
  }
  if (last_service_apply_.written || last_service_apply_.deleted)
    spdlog::info("services: {} entries written, {} deleted, {} services unchanged ({} in force)",
                 last_service_apply_.written, last_service_apply_.deleted,
                 last_service_apply_.unchanged, service_writer_->services());
  last_apply_ = endpoints::ApplyPlan(plan_, *maps_);
  if (!last_apply_.errors.empty()) {
    ++reconcile_errors_;
    for (const auto& e : last_apply_.errors) spdlog::error("maps: {}", e);
  }
  if (last_apply_.written || last_apply_.deleted)
    spdlog::info("maps: {} written, {} deleted, {} unchanged", last_apply_.written,
                 last_apply_.deleted, last_apply_.unchanged);
  SyncTcGuards();
  LogSnapshotIfChanged();
}

void Agent::SyncTcGuards() {
  // A pod's veth peer must be in the agent's own namespace (the node's) to
  // carry the guards; it is when the agent runs with the node's network.
  lib::ShadowedMap<__u32, shunt_tc_endpoint>::Entries want;
  std::set<int> ifindexes;
  for (const auto& p : plan_.local_pods) {
    if (p.netns_cookie == 0 || p.host_ifindex == 0) continue;
    auto link = netns::GetLink(p.host_ifindex);
    if (!link.ok() || !link->peer_in_other_ns) continue;
    const shunt_endpoint& ep = plan_.endpoints.at(p.netns_cookie).ep;
    want[static_cast<__u32>(p.host_ifindex)] =
        shunt_tc_endpoint{.ip4 = ep.ip4, .identity = ep.identity};
    ifindexes.insert(p.host_ifindex);
  }
  lib::DiffReport r =
      tc_map_->Apply(want, [](const __u32& i) { return absl::StrCat("tc endpoint ", i); });
  datapath::TcSyncReport t = datapath_->SyncTc(ifindexes);
  tc_errors_ = r.errors;
  tc_errors_.insert(tc_errors_.end(), t.errors.begin(), t.errors.end());
  for (const auto& e : tc_errors_) spdlog::error("{}", e);
  if (!tc_errors_.empty()) ++reconcile_errors_;
  if (t.attached || t.detached)
    spdlog::info("tc guards: {} links attached, {} detached, {} interfaces guarded", t.attached,
                 t.detached, ifindexes.size());
  tc_guarded_ = std::move(ifindexes);
}

void Agent::LogSnapshotIfChanged() {
  std::vector<std::string> lines;
  for (const auto& p : snapshot_->problems) lines.push_back("rejected: " + p.ToString());
  for (const auto& n : snapshot_->notices) lines.push_back("notice: " + n.ToString());
  for (const auto& p : plan_.local_pods)
    if (!p.problem.empty())
      lines.push_back(absl::StrCat("pod ", p.key, " not meshed: ", p.problem));
  for (const auto& p : compiler_.policy().problems) lines.push_back("policy: " + p.ToString());
  for (const auto& p : service_plan_.problems) lines.push_back("services: " + p.ToString());
  std::string all = absl::StrJoin(lines, "\n");
  if (all == last_logged_) return;
  last_logged_ = all;
  spdlog::info("config: {} files, {} objects, {} pods ({} local, {} meshed)", snapshot_->origins,
               snapshot_->documents, snapshot_->pods.size(), plan_.local_pods.size(),
               plan_.endpoints.size());
  for (const auto& p : snapshot_->problems) spdlog::warn("config: rejected {}", p.ToString());
  for (const auto& n : snapshot_->notices) spdlog::info("config: {}", n.ToString());
  for (const auto& p : plan_.local_pods)
    if (!p.problem.empty()) spdlog::warn("pod {}: not meshed: {}", p.key, p.problem);
  for (const auto& p : compiler_.policy().problems) spdlog::warn("policy: {}", p.ToString());
  if (compiler_.policy().l7_targets > 0)
    spdlog::warn(
        "policy: {} TrafficTarget(s) grant HTTP routes; the L7 proxy does not exist yet, "
        "so those pairs are allowed at L4 and their HTTP rules are NOT enforced",
        compiler_.policy().l7_targets);
}

std::string Agent::StatusJson() const {
  nlohmann::json pods = nlohmann::json::array();
  for (const auto& p : plan_.local_pods)
    pods.push_back({{"pod", p.key},
                    {"ip", p.ip},
                    {"netns_cookie", p.netns_cookie},
                    {"netns", p.netns_path},
                    {"host_ifindex", p.host_ifindex},
                    {"tc_guarded", tc_guarded_.count(p.host_ifindex) > 0},
                    {"problem", p.problem}});
  nlohmann::json j = {
      {"node", config_.node},
      {"pid", getpid()},
      {"started_at_unix", started_at_},
      {"config_dir", config_.config_dir},
      {"cgroup_root", config_.cgroup_root},
      {"bpffs", config_.bpffs_dir},
      {"config",
       {{"files", snapshot_->origins},
        {"objects", snapshot_->documents},
        {"pods", snapshot_->pods.size()},
        {"problems", ProblemsJson(snapshot_->problems)},
        {"notices", ProblemsJson(snapshot_->notices)}}},
      {"identities", identities_.size()},
      {"local_pods", pods},
      {"last_apply",
       {{"written", last_apply_.written},
        {"deleted", last_apply_.deleted},
        {"unchanged", last_apply_.unchanged},
        {"errors", last_apply_.errors}}},
      {"reconciles", reconciles_.load()},
      // The generation of the object snapshot now in force: tests and tools
      // wait on it to know a change has been applied, not merely seen.
      {"generation", snapshot_->generation},
      {"reconcile_errors", reconcile_errors_.load()},
      {"metrics_addr", http_ ? http_->address() : ""},
      {"telemetry",
       {{"enabled", config_.telemetry},
        {"flow_records", collector_ ? collector_->records() : 0},
        {"edges", flows_.totals().edges}}},
      {"mode", config_.mode == SHUNT_MODE_ENFORCE ? "enforce" : "permissive"},
      {"policy",
       {{"traffic_targets", snapshot_->traffic_targets.size()},
        {"entries", compiler_.policy().entries.size()},
        {"l7_targets", compiler_.policy().l7_targets},
        {"problems", ProblemsJson(compiler_.policy().problems)},
        {"last_apply",
         {{"written", last_policy_apply_.written},
          {"deleted", last_policy_apply_.deleted},
          {"unchanged", last_policy_apply_.unchanged},
          {"errors", last_policy_apply_.errors}}}}},
      {"denials_seen", deny_log_ ? deny_log_->total() : 0},
      {"services",
       {{"addresses", service_plan_.entries.size()},
        {"problems", ProblemsJson(service_plan_.problems)},
        {"last_apply",
         {{"written", last_service_apply_.written},
          {"deleted", last_service_apply_.deleted},
          {"errors", last_service_apply_.errors}}}}},
      {"tc_errors", tc_errors_},
  };
  return j.dump(-1, ' ', false, lib::kUtf8Replace);
}

std::string Agent::HandleApi(const std::string& request) {
  // A request is outside input: whatever it holds, it gets an answer and
  // the agent lives.
  try {
    return Answer(request);
  } catch (const std::exception& e) {
    ++api_errors_;
    spdlog::error("api: request '{}' failed: {}", request.substr(0, 200), e.what());
    return nlohmann::json{{"error", absl::StrCat("internal error: ", e.what())}}.dump(
        -1, ' ', false, lib::kUtf8Replace);
  }
}

std::string Agent::Answer(const std::string& request) {
  const size_t sp = request.find(' ');
  const std::string verb = request.substr(0, sp);
  const std::string arg = sp == std::string::npos ? "" : request.substr(sp + 1);
  if (verb == "ping") return "{\"ok\":true}";
  if (verb == "status" || verb.empty()) return StatusJson();
  if (verb == "drops") return DropsJson(arg);
  if (verb == "policy-check") return PolicyCheckJson(arg);
  if (verb == "flows") return FlowsJson(arg);
  if (verb == "stat") return StatJson(arg);
  if (verb == "services") return ServicesJson();
  if (verb == "lb-explain") return LbExplainJson(arg);
  return nlohmann::json{{"error", absl::StrCat("unknown request '", verb, "'")}}.dump(-1, ' ', false, lib::kUtf8Replace);
}

std::string Agent::DropsJson(const std::string& arg) const {
  uint64_t after = 0;
  if (!arg.empty() && !absl::SimpleAtoi(arg, &after))
    return nlohmann::json{{"error", absl::StrCat("drops: '", arg, "' is not a sequence number")}}
        .dump(-1, ' ', false, lib::kUtf8Replace);
  nlohmann::json events = nlohmann::json::array();
  uint64_t last = after;
  for (const auto& d : deny_log_->Since(after, 1000)) {
    const shunt_deny_event& e = d.event;
    events.push_back({{"seq", d.seq},
                      {"time_ns", d.wall_time_ns},
                      {"type", e.type == SHUNT_EVENT_SPOOF_DROP ? "spoofed-source" : "policy"},
                      {"hook", e.hook == SHUNT_HOOK_SENDMSG4 ? "sendmsg4"
                               : e.hook == SHUNT_HOOK_TC     ? "tc"
                                                             : "connect4"},
                      {"enforced", e.enforced != 0},
                      {"proto", e.proto == policy::kUdp ? "udp" : "tcp"},
                      {"src_ip", lib::Ipv4String(e.saddr)},
                      {"dst_ip", lib::Ipv4String(e.daddr)},
                      {"dst_port", ntohs(e.dport)},
                      {"src_identity", e.src_identity},
                      {"dst_identity", e.dst_identity}});
    last = d.seq;
  }
  return nlohmann::json{{"events", events}, {"next", last}, {"total", deny_log_->total()}}.dump(-1, ' ', false, lib::kUtf8Replace);
}

std::string Agent::PolicyCheckJson(const std::string& arg) const {
  auto j = nlohmann::json::parse(arg, nullptr, false);
  auto req = policy::ParseCheckRequest(j.is_discarded() ? nlohmann::json() : j);
  if (!req.ok()) return nlohmann::json{{"error", std::string(req.status().message())}}.dump(-1, ' ', false, lib::kUtf8Replace);
  auto out = policy::Check(*req, *snapshot_, compiler_.policy(), identities_, config_.mode);
  if (!out.ok()) return nlohmann::json{{"error", std::string(out.status().message())}}.dump(-1, ' ', false, lib::kUtf8Replace);
  return out->dump();
}

void Agent::ConsumeDenials() {
  deny_log_->Consume();
  for (const auto& d : deny_log_->Since(denials_fed_, deny_log_->total())) {
    flows_.IngestDenial(d.event, d.wall_time_ns);
    denials_fed_ = d.seq;
  }
}

// "flows [after-seq]": finished flows newer than the sequence number, and
// every live one from the kernel's map.
std::string Agent::FlowsJson(const std::string& arg) const {
  uint64_t after = 0;
  if (!arg.empty() && !absl::SimpleAtoi(arg, &after))
    return nlohmann::json{{"error", absl::StrCat("flows: '", arg, "' is not a sequence number")}}
        .dump(-1, ' ', false, lib::kUtf8Replace);
  nlohmann::json closed = nlohmann::json::array(), live = nlohmann::json::array();
  uint64_t next = after;
  for (const auto& f : flows_.Since(after, 5000)) {
    closed.push_back(telemetry::FlowJson(f));
    next = f.seq;
  }
  if (auto entries = datapath_->maps().flows().Entries(); entries.ok()) {
    telemetry::LiveHists hists;
    if (auto h = datapath_->maps().flow_hists().Entries(); h.ok())
      for (const auto& [k, v] : *h) hists[telemetry::FlowInstance{k, v.start_ns}] = v;
    for (const auto& [k, f] : *entries)
      live.push_back(telemetry::FlowJson(flows_.Describe(telemetry::WithHist(f, hists))));
  }
  return nlohmann::json{
      {"closed", closed}, {"live", live}, {"next", next}, {"telemetry", config_.telemetry}}
      .dump(-1, ' ', false, lib::kUtf8Replace);
}

// "stat <window-seconds> <workload|pod|edge>"
std::string Agent::StatJson(const std::string& arg) const {
  const size_t sp = arg.find(' ');
  int window_s = 0;
  if (sp == std::string::npos || !absl::SimpleAtoi(arg.substr(0, sp), &window_s))
    return nlohmann::json{
        {"error", absl::StrCat("stat: '", arg, "': expected <window-seconds> <group>")}}
        .dump(-1, ' ', false, lib::kUtf8Replace);
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  auto j = telemetry::StatJson(flows_, static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec,
                               window_s, arg.substr(sp + 1));
  if (!j.ok())
    return nlohmann::json{{"error", absl::StrCat("stat: ", j.status().message())}}.dump(-1, ' ', false, lib::kUtf8Replace);
  (*j)["telemetry"] = config_.telemetry;
  return j->dump();
}

// Each service address with its backends: weight (share of the slot
// table), and live share (of the flows that finished towards them).
// A latency-aware backend's figures as the kernel's choices see them.
void Agent::AddLbFigures(const services::BackendAddr& a, int64_t now, nlohmann::json& j) const {
  if (auto ewma = lb_scorer_.EwmaNs(a, now)) j["ewma_ms"] = static_cast<double>(*ewma) / 1e6;
  j["open"] = lb_scorer_.Outstanding(a);
  j["score"] = lb_scorer_.Score(a, now);
}

// Feeds what telemetry measured of each backend since the last call into
// the latency scorer, and writes the scores that changed.
void Agent::UpdateBalancer() {
  const int64_t now = MonotonicNs();
  for (const auto& [server, s] : flows_.TakeServerSamples()) {
    const services::BackendAddr a{static_cast<uint32_t>(server >> 16),
                                  static_cast<uint16_t>(server & 0xffff)};
    // Response latency is what a client waits for. A handshake's time is
    // the kernel's, not the application's: below 10 ms it is noise (and
    // made connect-only clients herd onto whichever backend was a hair
    // ahead), above it something is wrong (dropped SYNs, a full accept
    // queue), so only then does it count, as a slow sample.
    constexpr uint64_t kSlowHandshakeNs = 10'000'000;
    const uint64_t connect_mean = s.connect_count ? s.connect_sum_ns / s.connect_count : 0;
    if (s.rr_count)
      lb_scorer_.Observe(a, now, static_cast<int64_t>(s.rr_sum_ns / s.rr_count),
                         static_cast<uint32_t>(s.rr_count), 0);
    if (connect_mean >= kSlowHandshakeNs)
      lb_scorer_.Observe(a, now, static_cast<int64_t>(connect_mean),
                         static_cast<uint32_t>(s.connect_count), 0);
    if (s.failures) lb_scorer_.Observe(a, now, 0, 0, s.failures);
  }
  absl::flat_hash_set<services::BackendAddr> keep;
  for (const auto& e : service_plan_.entries)
    for (const auto& b : e.backends) keep.insert({b.ip_be, b.port});
  // Open connections come from the once-a-second live look: a snapshot.
  // One connection caught open would double a backend's score for a whole
  // second (a client making one connection at a time always has one open
  // somewhere), so the load factor is the floor of an average over looks:
  // it counts connections that stay open, as outstanding requests do.
  const uint64_t scans = collector_ ? collector_->live_scans() : 0;
  if (scans != lb_open_scans_) {
    lb_open_scans_ = scans;
    const auto open = flows_.OpenByServer();
    for (const auto& a : keep) {
      auto it = open.find(telemetry::FlowAggregator::ServerKey(a.ip_be, a.port));
      double& avg = lb_open_avg_[a];
      avg = 0.5 * avg + 0.5 * (it == open.end() ? 0 : it->second);
    }
  }
  for (auto it = lb_open_avg_.begin(); it != lb_open_avg_.end();) {
    if (!keep.contains(it->first)) {
      lb_open_avg_.erase(it++);
      continue;
    }
    lb_scorer_.SetOutstanding(it->first, static_cast<uint32_t>(it->second));
    ++it;
  }
  lb_scorer_.Retain(keep);
  last_lb_write_ = lb_writer_->Write(service_plan_, lb_scorer_, now);
  for (const auto& err : last_lb_write_.errors) spdlog::warn("balancer: {}", err);
}

// "lb-explain ns/name": the last balancing choices for the service's
// addresses, newest first, with both candidates and their scores.
std::string Agent::LbExplainJson(const std::string& arg) const {
  std::vector<const services::ServiceEntry*> entries;
  for (const auto& e : service_plan_.entries)
    if (e.service == arg) entries.push_back(&e);
  if (entries.empty())
    return nlohmann::json{{"error", absl::StrCat("lb explain: no service '", arg,
                                                 "' with a cluster IP (expected namespace/name)")}}
        .dump(-1, ' ', false, lib::kUtf8Replace);
  auto trace = lib::ReadLbTrace(lb_trace_fd_);
  if (!trace.ok()) return nlohmann::json{{"error", std::string(trace.status().message())}}.dump(-1, ' ', false, lib::kUtf8Replace);
  const auto directory = telemetry::PeerDirectory::Build(snapshot_->pods);
  const int64_t now = MonotonicNs();
  auto name = [&](const shunt_backend& b) {
    nlohmann::json j = {{"address", absl::StrCat(lib::Ipv4String(b.ip), ":", ntohs(b.port))}};
    const telemetry::Peer& peer = directory->Find(b.ip);
    if (peer.known()) j["pod"] = absl::StrCat(peer.namespace_, "/", peer.pod);
    return j;
  };
  nlohmann::json out = nlohmann::json::array();
  for (const auto* e : entries) {
    const uint32_t id = service_writer_->SvcId(e->vip_be, e->port, e->proto);
    nlohmann::json choices = nlohmann::json::array();
    for (auto it = trace->rbegin(); it != trace->rend() && choices.size() < 20; ++it) {
      const shunt_lb_choice& c = *it;
      if (c.svc_id != id || id == 0) continue;
      nlohmann::json cands = nlohmann::json::array();
      for (int i = 0; i < c.ncand && i < 2; ++i) {
        nlohmann::json j = name(c.cand[i]);
        j["slot"] = c.slot[i];
        if (c.ncand == 2) j["score"] = c.score[i];
        cands.push_back(std::move(j));
      }
      std::string why;
      if (c.ncand == 1)
        why = e->split.empty() ? absl::StrCat("random slot ", c.slot[0], " of ", e->slots.size())
                               : absl::StrCat("random slot ", c.slot[0], " of ", e->slots.size(),
                                              " (TrafficSplit ", e->split, " weights)");
      else if (c.picked == 1)
        why = absl::StrCat("lower score: ", c.score[1], " is over 20% below ", c.score[0]);
      else if (c.score[0] <= c.score[1])
        why = absl::StrCat("lower or equal score: ", c.score[0], " <= ", c.score[1]);
      else
        why = absl::StrCat("scores within 20% (", c.score[0], " vs ", c.score[1],
                           "): the first draw");
      choices.push_back({{"ago_ms", static_cast<double>(now - static_cast<int64_t>(c.ts_ns)) / 1e6},
                         {"candidates", std::move(cands)},
                         {"picked", name(c.cand[c.picked & 1])},
                         {"why", why}});
    }
    nlohmann::json scores = nlohmann::json::array();
    for (const auto& b : e->backends) {
      nlohmann::json j = name(shunt_backend{b.ip_be, htons(b.port), 0});
      AddLbFigures({b.ip_be, b.port}, now, j);
      scores.push_back(std::move(j));
    }
    out.push_back({{"service", e->service},
                   {"address", absl::StrCat(lib::Ipv4String(e->vip_be), ":", e->port)},
                   {"proto", e->proto == 17 ? "udp" : "tcp"},
                   {"balancer", e->lb == SHUNT_LB_P2C_EWMA ? "p2c-ewma" : "random"},
                   {"split", e->split},
                   {"backends", std::move(scores)},
                   {"choices", std::move(choices)}});
  }
  return nlohmann::json{{"services", std::move(out)}}.dump(-1, ' ', false, lib::kUtf8Replace);
}

std::string Agent::ServicesJson() const {
  const auto directory = telemetry::PeerDirectory::Build(snapshot_->pods);
  const int64_t now = MonotonicNs();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : service_plan_.entries) {
    std::vector<uint64_t> flows(e.backends.size(), 0);
    std::vector<size_t> slots(e.backends.size(), 0);
    uint64_t total_flows = 0;
    for (size_t i = 0; i < e.backends.size(); ++i) {
      flows[i] = flows_.FlowsTo(e.backends[i].ip_be, e.backends[i].port);
      total_flows += flows[i];
    }
    for (uint32_t s : e.slots) ++slots[s];
    nlohmann::json backends = nlohmann::json::array();
    for (size_t i = 0; i < e.backends.size(); ++i) {
      const auto& b = e.backends[i];
      const telemetry::Peer& peer = directory->Find(b.ip_be);
      nlohmann::json j = {
          {"address", absl::StrCat(lib::Ipv4String(b.ip_be), ":", b.port)},
          {"service", b.service},
          {"weight_percent", e.slots.empty() ? 0.0 : 100.0 * slots[i] / e.slots.size()},
          {"flows", flows[i]},
          {"live_share_percent", total_flows ? 100.0 * flows[i] / total_flows : 0.0}};
      if (peer.known()) j["pod"] = absl::StrCat(peer.namespace_, "/", peer.pod);
      if (e.lb == SHUNT_LB_P2C_EWMA) AddLbFigures({b.ip_be, b.port}, now, j);
      backends.push_back(std::move(j));
    }
    out.push_back({{"service", e.service},
                   {"port_name", e.port_name},
                   {"address", absl::StrCat(lib::Ipv4String(e.vip_be), ":", e.port)},
                   {"proto", e.proto == 17 ? "udp" : "tcp"},
                   {"balancer", e.lb == SHUNT_LB_P2C_EWMA ? "p2c-ewma" : "random"},
                   {"split", e.split},
                   {"slots", e.slots.size()},
                   {"backends", std::move(backends)}});
  }
  return nlohmann::json{{"services", out}, {"problems", ProblemsJson(service_plan_.problems)}}
      .dump(-1, ' ', false, lib::kUtf8Replace);
}

// Runs on the metrics server's thread: only thread-safe state (the flow
// aggregator, atomics, the kernel's maps by their pins).
telemetry::AgentHealth Agent::Health() const {
  telemetry::AgentHealth h;
  lib::PinLayout layout(config_.bpffs_dir);
  for (const auto& m : lib::PinnedMapList()) {
    auto fd = lib::OpenPin(layout.Map(m.pin_name), /*read_only=*/true);
    if (!fd.ok()) continue;
    if (auto f = lib::DescribeMap(fd->get()); f.ok())
      h.maps.push_back({m.pin_name, f->entries, f->max_entries});
  }
  if (auto fd = lib::OpenPin(layout.Map(SHUNT_MAP_COUNTERS), true); fd.ok()) {
    if (auto c = lib::ReadCounters(fd->get()); c.ok()) {
      for (int i = 0; i < SHUNT_CTR_MAX; ++i)
        h.datapath_counters.emplace_back(lib::CounterName(i), (*c)[i]);
      h.flow_records_lost = (*c)[SHUNT_CTR_FLOW_EVENTS_LOST];
    }
  }
  h.reconciles = reconciles_.load();
  h.reconcile_errors = reconcile_errors_.load();
  if (collector_) {
    h.flow_records = collector_->records();
    h.flow_records_malformed = collector_->malformed();
  }
  h.aggregator = flows_.totals();
  return h;
}

api::HttpResponse Agent::ServeHttp(const std::string& path, const std::string& query) const {
  if (path == "/metrics")
    return {200, "text/plain; version=0.0.4; charset=utf-8",
            telemetry::RenderPrometheus(flows_.Edges(), Health())};
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (path.rfind("/apis/metrics.smi-spec.io/", 0) == 0) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    auto a = telemetry::ServeTrafficMetrics(
        path, query, flows_, static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec);
    return {a.status, a.content_type, a.body};
  }
  if (path == "/")
    return {200, "text/plain; charset=utf-8",
            "shunt-agent: /metrics (Prometheus), /apis/metrics.smi-spec.io/v1alpha1/... (SMI "
            "TrafficMetrics), "
            "/healthz\n"};
  return {404, "text/plain; charset=utf-8",
          "not found: try /metrics or /apis/metrics.smi-spec.io/v1alpha1\n"};
}

absl::Status Agent::Run() {
  // The data path wakes us only once many denials wait (a wake-up per
  // event would be an interrupt inside every audited connect()), so look
  // this often anyway.
  constexpr int64_t kDenialPollMs = 20;
  // Latency scores follow what telemetry measured this often: a backend
  // turning slow loses new connections within a few of these.
  constexpr int64_t kBalancerUpdateMs = 100;
  int64_t reload_at = -1;  // debounce: editors write files in several steps
  int64_t balancer_at = NowMs();
  int64_t rescan_at = NowMs() + config_.rescan_ms;
  for (;;) {
    pollfd fds[4] = {{signal_fd_.get(), POLLIN, 0},
                     {source_->fd(), POLLIN, 0},
                     {api_->fd(), POLLIN, 0},
                     {deny_log_->fd(), POLLIN, 0}};
    const int64_t now = NowMs();
    int64_t wake = std::min({rescan_at, now + kDenialPollMs, balancer_at});
    if (reload_at >= 0) wake = std::min(wake, reload_at);
    int n = poll(fds, 4, static_cast<int>(std::max<int64_t>(0, wake - now)));
    if (n < 0 && errno != EINTR) return lib::ErrnoStatus(errno, "agent: poll");
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      if (read(signal_fd_.get(), &si, sizeof(si)) > 0)
        spdlog::info("signal {}: exiting; the data path stays in place", si.ssi_signo);
      return absl::OkStatus();
    }
    if ((fds[1].revents & POLLIN) && source_->Drain() && reload_at < 0)
      reload_at = NowMs() + config_.debounce_ms;
    ConsumeDenials();  // cheap when the ring is empty; also so `shuntctl drops` sees the latest
    if (fds[2].revents & POLLIN) api_->ServePending();
    if (NowMs() >= balancer_at) {
      UpdateBalancer();
      balancer_at = NowMs() + kBalancerUpdateMs;
    }
    if (reload_at >= 0 && NowMs() >= reload_at) {
      reload_at = -1;
      Reconcile(/*reload_config=*/true);
      rescan_at = NowMs() + config_.rescan_ms;
    } else if (NowMs() >= rescan_at) {
      Reconcile(/*reload_config=*/false);
      rescan_at = NowMs() + config_.rescan_ms;
    }
  }
}

}  // namespace shunt::agent
