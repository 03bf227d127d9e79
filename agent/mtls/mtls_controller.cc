#include "agent/mtls/mtls_controller.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/lib/fmt_absl.h"
#include "agent/lib/prometheus_text.h"
#include "agent/mtls/proxy_l7_objects.h"
#include "agent/mtls/transparent_routing.h"
#include "shunt/abi/mtls.h"
#include "spdlog/spdlog.h"

namespace shunt::mtls {

MtlsController::MtlsController(Deps deps) : deps_(std::move(deps)) {
  config_.mode = deps_.options.mode;
  config_.trust_domain = deps_.options.trust_domain;
  config_.ca_pem = deps_.options.ca_pem;
  if (!on()) {
    // A pinned switch an earlier run with --mtls left on would send
    // connections to a proxy this agent does not run (yet). An earlier
    // L7-only proxy's stays: it drains what it carries (its replies are
    // marked while its port is named) until this agent's own is ready,
    // or until Plan finds nothing for one to do.
    shunt_mtls_config pinned{};
    uint32_t zero = 0;
    const bool l7_predecessor = l7_only() && deps_.config_map.valid() &&
                                bpf_map_lookup_elem(deps_.config_map.get(), &zero, &pinned) == 0 &&
                                pinned.mode == SHUNT_MTLS_OFF && pinned.l7_port != 0;
    if (deps_.config_map.valid() && !l7_predecessor) {
      WriteKernelSwitch();
      switch_settled_ = true;
    }
    return;
  }
  StartProxy();
}

void MtlsController::StartProxy() {
  if (supervisor_ || proxy_failed_) return;
  MtlsOptions& o = deps_.options;
  if (l7_only()) {
    absl::StatusOr<std::string> cg = ProxyCgroup(o.cgroup_root);
    if (!cg.ok()) {
      proxy_failed_ = true;
      spdlog::error("l7: the proxy cannot start: {}", cg.status().message());
      return;
    }
    o.proxy_cgroup = *cg;
  }
  // The pod sees its real client when the replies can be routed back to the
  // proxy; if the rule cannot be added, the proxy connects from the node's
  // address and the status says why.
  if (absl::Status st = EnsureTransparentRouting(); st.ok()) {
    transparent_ = true;
  } else {
    transparent_error_ = std::string(st.message());
    spdlog::warn("mtls: {}; pods will see the {} as their client", transparent_error_,
                 on() ? "peer node's address" : "node's address");
  }
  std::string ips;
  for (const auto& ip : o.node_ips) absl::StrAppend(&ips, ips.empty() ? "" : ",", ip);
  std::vector<std::string> args = {
      absl::StrCat("--node-ip=", ips),
      absl::StrCat("--outbound-port=", o.outbound_port),
      absl::StrCat("--proxy-inbound-port=", o.inbound_port),
      absl::StrCat("--l7-port=", o.l7_port),
      absl::StrCat("--bpffs=", o.bpffs),
      absl::StrCat("--handshake-timeout-ms=", o.handshake_timeout_ms),
      absl::StrCat("--transparent=", transparent_ ? "true" : "false"),
      absl::StrCat("--node=", o.node),
      absl::StrCat("--trace-otlp-endpoint=", o.trace_otlp_endpoint),
      absl::StrCat("--l7-max-connections=", o.l7_max_connections),
      absl::StrCat("--l7-max-header-bytes=", o.l7_max_header_bytes),
      absl::StrCat("--l7-max-headers=", o.l7_max_headers),
      absl::StrCat("--l7-header-timeout-ms=", o.l7_header_timeout_ms),
      absl::StrCat("--l7-idle-timeout-ms=", o.l7_idle_timeout_ms),
      absl::StrCat("--l7-connect-timeout-ms=", o.l7_connect_timeout_ms),
      absl::StrCat("--l7-stream-idle-timeout-ms=", o.l7_stream_idle_timeout_ms)};
  if (l7_only()) args.push_back("--l7-only");
  supervisor_ = std::make_unique<ProxySupervisor>(ProxyLaunch{.bin = o.proxy_bin,
                                                              .args = std::move(args),
                                                              .cgroup = o.proxy_cgroup,
                                                              .pid_file = o.proxy_pid_file});
  if (l7_only())
    spdlog::info(
        "l7: the proxy starts for the L7 layer between this node's pods (--mtls=off: no "
        "tunnels; HTTP-routes-only grants to other nodes' pods open nothing)");
}

void MtlsController::SetCertificates(const std::vector<certs::IssuedCertificate>& certs) {
  workloads_.clear();
  for (const auto& c : certs) {
    proxy::Credential cred{.identity = absl::StrCat(c.id.ns, "/", c.id.service_account),
                           .cert_pem = c.cert_pem,
                           .key_pem = c.key_pem};
    workloads_[cred.identity] = std::move(cred);
  }
  if (on()) SendIfChanged();
}

void MtlsController::Plan(const std::shared_ptr<const model::Snapshot>& snapshot,
                          bool /*changed*/) {
  l7_services_without_mtls_.clear();
  if (const services::Plan* plan = deps_.service_plan ? deps_.service_plan() : nullptr;
      plan && !on())
    for (const services::ServiceEntry& e : plan->entries)
      if (e.l7 &&
          (l7_services_without_mtls_.empty() || l7_services_without_mtls_.back() != e.service))
        l7_services_without_mtls_.push_back(e.service);
  if (!runs_proxy()) return;
  config_.generation = snapshot->generation;
  config_.local_pods.clear();
  config_.remote_pods.clear();
  pods_without_host_ip_.clear();
  for (const model::Pod& pod : snapshot->pods) {
    if (pod.host_network) continue;
    if (pod.node_name == deps_.options.node) {
      const std::string id = absl::StrCat(pod.namespace_, "/", pod.service_account);
      config_.local_pods[pod.ip] = id;
      if (!pod.ip6.empty()) config_.local_pods[pod.ip6] = id;
      continue;
    }
    if (pod.host_ip.empty()) {
      pods_without_host_ip_.push_back(pod.Key());
      continue;
    }
    config_.remote_pods[pod.ip] = pod.host_ip;
    if (!pod.ip6.empty()) config_.remote_pods[pod.ip6] = pod.host_ip;
  }
  // The L7 layer judges requests to this node's pods: their policy.
  std::set<std::string> local_identities;
  for (const auto& [ip, id] : config_.local_pods) local_identities.insert(id);
  SelectL7Objects(*snapshot, local_identities, &config_);
  config_.l7_services.clear();
  config_.upstream_http.clear();
  if (const services::Plan* plan = deps_.service_plan ? deps_.service_plan() : nullptr) {
    // Services balanced per request need the tunnels (a pick may be
    // another node's pod): without mTLS the kernel balances them.
    if (on()) SelectL7Services(*plan, *snapshot, &config_);
    SelectUpstreamHttp(*plan, *snapshot, &config_);
  }
  // Without mTLS the proxy is there for the L7 layer only: started once
  // an HTTP route concerns this node's pods. With none, an earlier run's
  // L7 port is cleared (no proxy of ours will take it).
  if (l7_only() && !supervisor_ && !config_.http_route_groups.empty()) StartProxy();
  if (l7_only() && !supervisor_ && !switch_settled_ && deps_.config_map.valid()) {
    WriteKernelSwitch();
    switch_settled_ = true;
  }
}

size_t MtlsController::Apply() {
  if (!runs_proxy()) return 0;
  config_.identity_ids.clear();
  for (const auto& [key, id] : deps_.identities->all())
    config_.identity_ids[absl::StrCat(key.first, "/", key.second)] = id;
  SendIfChanged();
  return 0;
}

void MtlsController::SendIfChanged() {
  if (!supervisor_) return;
  if (on()) {
    const std::string proxy_key =
        absl::StrCat(certs::kNodeProxyNamespace, "/", certs::kNodeProxyServiceAccount);
    auto np = workloads_.find(proxy_key);
    if (np == workloads_.end()) return;  // nothing to serve with yet
    config_.node_proxy = np->second;
    config_.workloads.clear();
    for (const auto& [id, cred] : workloads_)
      if (id != proxy_key) config_.workloads.push_back(cred);
  }
  nlohmann::json j = proxy::ProxyConfigToJson(config_);
  // The generation alone changes nothing the proxy acts on.
  nlohmann::json compare = j;
  compare.erase("generation");
  std::string text = compare.dump();
  if (text == sent_) return;
  sent_ = std::move(text);
  supervisor_->SetConfig(j);
}

void MtlsController::Tick(int64_t now_ms) {
  if (!supervisor_) return;
  supervisor_->Tick(now_ms);
  for (const auto& e : supervisor_->TakeRefusals())
    if (deps_.on_refusal) deps_.on_refusal(e);
  for (const auto& r : supervisor_->TakeRequests())
    if (deps_.on_requests) deps_.on_requests(r);
  const bool want = supervisor_->ready() || deps_.options.mode == "strict";
  if (want != handoff_on_ || !switch_error_.empty()) {
    const bool was = handoff_on_;
    handoff_on_ = want;
    if (WriteKernelSwitch() && was != want) {
      if (on())
        spdlog::info("mtls: connections to other nodes {}",
                     want ? (supervisor_->ready() ? "go through the proxy"
                                                  : "are refused until the proxy is up (strict)")
                          : "go directly, unencrypted, until the proxy is up (permissive)");
      else
        spdlog::info(
            "l7: HTTP-routes-only grants between this node's pods {}",
            want ? "go through the proxy's L7 layer" : "open nothing until the proxy is up");
    }
  }
}

bool MtlsController::WriteKernelSwitch() {
  shunt_mtls_config c{};
  c.mode = !handoff_on_ || !on()            ? SHUNT_MTLS_OFF
           : deps_.options.mode == "strict" ? SHUNT_MTLS_STRICT
                                            : SHUNT_MTLS_PERMISSIVE;
  c.proxy_port = htons(deps_.options.outbound_port);
  // The L7 layer's port only while it takes connections (strict mode:
  // also before, refused there rather than let through).
  c.l7_port = handoff_on_ && runs_proxy() ? htons(deps_.options.l7_port) : 0;
  for (const auto& ip : deps_.options.node_ips) {
    if (inet_pton(AF_INET, ip.c_str(), &c.proxy_ip4) == 1) continue;
    inet_pton(AF_INET6, ip.c_str(), c.proxy_ip6);
  }
  uint32_t zero = 0;
  if (bpf_map_update_elem(deps_.config_map.get(), &zero, &c, BPF_ANY) != 0) {
    switch_error_ = absl::StrCat("cannot write shunt_mtls_config_v1: ", strerror(errno));
    spdlog::error("mtls: {}", switch_error_);
    return false;
  }
  switch_error_.clear();
  return true;
}

std::vector<int> MtlsController::PollFds() const {
  return supervisor_ ? supervisor_->PollFds() : std::vector<int>{};
}

void MtlsController::AddStatus(nlohmann::json& status) const {
  if (!supervisor_) return;
  nlohmann::json& m = status["mtls"];
  if (l7_only()) m["l7_only"] = true;  // --mtls=off: the proxy runs for the L7 layer alone
  m["proxy"] = supervisor_->StatusJson(deps_.clock->MonotonicMs());
  m["proxy"]["report"] = supervisor_->last_report();
  m["handoff"] = handoff_on_;
  m["transparent_source"] = transparent_;
  if (!transparent_error_.empty()) m["transparent_source_error"] = transparent_error_;
  m["node_ips"] = deps_.options.node_ips;
  m["inbound_port"] = deps_.options.inbound_port;
  m["l7_port"] = deps_.options.l7_port;
  // Services balanced per request: as planned, and as the proxy has them.
  m["l7_services_planned"] = config_.l7_services.size();
  const nlohmann::json& report = supervisor_->last_report();
  if (report.is_object() && report.contains("l7_services"))
    m["l7_services"] = report["l7_services"];
  // Pods' ports whose Service says the HTTP version they speak: the L7
  // layer maps a client of the other version (docs/l7.md).
  if (report.is_object() && report.contains("upstream_http"))
    m["upstream_http"] = report["upstream_http"];
}

nlohmann::json MtlsController::L7Balancers() const {
  if (!supervisor_) return nlohmann::json::array();
  const nlohmann::json& report = supervisor_->last_report();
  if (!report.is_object() || !report.contains("l7_balancers")) return nlohmann::json::array();
  return report["l7_balancers"];
}

namespace {

// The L7 layer's request metrics, as the proxy reported them (its
// RequestMetrics::Report), per edge and route.
void HttpMetrics(const nlohmann::json& http, std::string& out) {
  const auto series = http.find("series");
  if (series == http.end() || !series->is_array() || series->empty()) return;
  absl::StrAppend(&out,
                  "# HELP shunt_l7_requests_total HTTP requests through the node proxy's L7 "
                  "layer, by edge, route and status class (none: no response).\n"
                  "# TYPE shunt_l7_requests_total counter\n");
  std::string durations =
      "# HELP shunt_l7_request_duration_seconds From a request's head to the end of its "
      "response, through the node proxy's L7 layer.\n"
      "# TYPE shunt_l7_request_duration_seconds histogram\n";
  std::string retries =
      "# HELP shunt_l7_retries_total Attempts after the first the node proxy's L7 layer made "
      "for requests, by edge and route.\n"
      "# TYPE shunt_l7_retries_total counter\n";
  static constexpr const char* kBounds[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                            "0.1",   "0.25",   "0.5",   "1",    "2.5",   "5"};
  for (const auto& s : *series) {
    if (!s.is_object()) continue;
    const std::string labels = absl::StrCat(
        "src_identity=\"", lib::PrometheusLabelValue(s.value("src", "")), "\",dst_identity=\"",
        lib::PrometheusLabelValue(s.value("dst", "")), "\",dst_port=\"", s.value("port", 0),
        "\",route=\"", lib::PrometheusLabelValue(s.value("route", "")), "\"");
    if (auto c = s.find("classes"); c != s.end() && c->is_object())
      for (const auto& [cls, n] : c->items())
        absl::StrAppend(&out, "shunt_l7_requests_total{", labels, ",code_class=\"", cls, "\"} ",
                        n.dump(), "\n");
    absl::StrAppend(&retries, "shunt_l7_retries_total{", labels, "} ",
                    s.value("retries", uint64_t{0}), "\n");
    const auto b = s.find("buckets");
    if (b == s.end() || !b->is_array() || b->size() != std::size(kBounds) + 1) continue;
    for (size_t i = 0; i < std::size(kBounds); ++i)
      absl::StrAppend(&durations, "shunt_l7_request_duration_seconds_bucket{", labels, ",le=\"",
                      kBounds[i], "\"} ", (*b)[i].dump(), "\n");
    absl::StrAppend(&durations, "shunt_l7_request_duration_seconds_bucket{", labels,
                    ",le=\"+Inf\"} ", b->back().dump(), "\n",
                    "shunt_l7_request_duration_seconds_sum{", labels, "} ", s.value("sum_s", 0.0),
                    "\n", "shunt_l7_request_duration_seconds_count{", labels, "} ",
                    s.value("count", uint64_t{0}), "\n");
  }
  out += durations;
  out += retries;
}

// Outlier ejections of the endpoints of services balanced per request,
// summed over the proxy's threads (each ejects on its own), and each
// endpoint's state now by thread.
void EjectionMetrics(const nlohmann::json& threads, std::string& out) {
  if (!threads.is_array() || threads.empty()) return;
  std::map<std::string, uint64_t> total;  // labels -> ejections
  std::string states =
      "# HELP shunt_l7_endpoint_ejected Whether a proxy thread has the endpoint ejected "
      "now (outlier ejection of a service balanced per request).\n"
      "# TYPE shunt_l7_endpoint_ejected gauge\n";
  for (const auto& t : threads) {
    for (const auto& l : t.value("leaves", nlohmann::json::array())) {
      for (const auto& e : l.value("endpoints", nlohmann::json::array())) {
        const std::string labels = absl::StrCat(
            "service=\"", lib::PrometheusLabelValue(l.value("service", "")), "\",port=\"",
            l.value("port", 0), "\",leaf=\"", lib::PrometheusLabelValue(l.value("leaf", "")),
            "\",endpoint=\"", lib::PrometheusLabelValue(e.value("address", "")), "\"");
        total[labels] += e.value("ejections_total", uint64_t{0});
        absl::StrAppend(&states, "shunt_l7_endpoint_ejected{", labels, ",thread=\"",
                        t.value("thread", 0), "\"} ", e.value("state", "") == "ejected" ? 1 : 0,
                        "\n");
      }
    }
  }
  absl::StrAppend(&out,
                  "# HELP shunt_l7_endpoint_ejections_total Outlier ejections of an endpoint "
                  "of a service balanced per request, over the node proxy's threads.\n"
                  "# TYPE shunt_l7_endpoint_ejections_total counter\n");
  for (const auto& [labels, n] : total)
    absl::StrAppend(&out, "shunt_l7_endpoint_ejections_total{", labels, "} ", n, "\n");
  out += states;
}

}  // namespace

void MtlsController::AddMetrics(std::string& out) const {
  if (!supervisor_) return;
  absl::StrAppend(&out, "# HELP shunt_proxy_up Whether the node's mTLS proxy listens.\n",
                  "# TYPE shunt_proxy_up gauge\nshunt_proxy_up ", supervisor_->ready() ? 1 : 0,
                  "\n");
  const nlohmann::json& r = supervisor_->last_report();
  if (auto c = r.find("counters"); c != r.end() && c->is_object()) {
    for (const auto& [name, v] : c->items())
      absl::StrAppend(&out, "# HELP shunt_proxy_", name, "_total The node proxy's counter ", name,
                      " (shuntctl status -o json: agent.mtls.proxy.report.counters).\n",
                      "# TYPE shunt_proxy_", name, "_total counter\nshunt_proxy_", name, "_total ",
                      v.dump(), "\n");
  }
  if (auto f = r.find("refusals"); f != r.end() && f->is_object() && !f->empty()) {
    absl::StrAppend(&out,
                    "# HELP shunt_proxy_refusals_total Connections and handshakes the proxy "
                    "refused, by reason.\n# TYPE shunt_proxy_refusals_total counter\n");
    for (const auto& [reason, v] : f->items())
      absl::StrAppend(&out, "shunt_proxy_refusals_total{reason=\"", reason, "\"} ", v.dump(), "\n");
  }
  if (auto h = r.find("http"); h != r.end() && h->is_object()) HttpMetrics(*h, out);
  if (auto b = r.find("l7_balancers"); b != r.end()) EjectionMetrics(*b, out);
}

void MtlsController::AddWarnings(std::vector<std::string>& lines) const {
  if (proxy_failed_)
    lines.push_back(
        "l7: the proxy could not start (see the log): HTTP-routes-only grants open "
        "nothing at L4");
  if (const auto& names = l7_services_without_mtls_; !names.empty()) {
    constexpr size_t kNamed = 5;
    const std::string named = absl::StrCat(
        absl::StrJoin(names.begin(), names.begin() + std::min(names.size(), kNamed), ", "),
        names.size() > kNamed ? absl::StrCat(" and ", names.size() - kNamed, " more") : "");
    lines.push_back(absl::StrCat(
        "l7: ", names.size(),
        " services ask to be balanced per request (shunt.dev/ annotations or a TrafficSplit with "
        "matches: ",
        named,
        "), which needs the mTLS tunnels (a pick may be another node's pod): with --mtls=off the "
        "kernel balances their connections, without their timeouts, retries, outlier ejection or "
        "matches"));
  }
  if (!on()) return;
  if (!switch_error_.empty()) lines.push_back("mtls: " + switch_error_);
  if (!pods_without_host_ip_.empty())
    lines.push_back(absl::StrCat(
        "mtls: ", pods_without_host_ip_.size(),
        " pods on other nodes have no status.hostIP (first: ", pods_without_host_ip_.front(),
        "): connections to them are refused"));
}

}  // namespace shunt::mtls
