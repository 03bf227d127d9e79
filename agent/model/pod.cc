#include "pod.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/model/field.h"
#include "agent/model/namespace.h"

namespace shunt::model {
namespace {

bool IsLabelChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }
bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63 || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  for (char c : s)
    if (!IsLabelChar(c)) return false;
  return true;
}

bool IsDnsSubdomain(const std::string& s) {
  // RFC 1123 subdomain as Kubernetes checks it: dot-separated labels, each
  // starting and ending with a letter or digit, 253 characters in all.
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    const size_t end = dot == std::string::npos ? s.size() : dot;
    if (end == start || !IsAlnum(s[start]) || !IsAlnum(s[end - 1])) return false;
    for (size_t i = start; i < end; ++i)
      if (!IsLabelChar(s[i])) return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

namespace {

// metadata.ownerReferences -> pod.workload_kind / workload (see pod.h).
absl::Status ParseOwner(const Field& meta, Pod& pod) {
  Field refs = meta["ownerReferences"];
  if (refs.absent()) return absl::OkStatus();
  if (!refs.is_array()) return Invalid(refs.path(), "must be a list");
  int chosen_index = -1;
  for (size_t i = 0; i < refs.size(); ++i) {
    Field r = refs[i];
    if (!r.is_object()) return Invalid(r.path(), "must be a mapping");
    // An owner that says controller: true wins; a malformed flag is no claim.
    const bool controller = r["controller"].is_bool() && r["controller"].json()->get<bool>();
    if (chosen_index < 0 || controller) chosen_index = static_cast<int>(i);
    if (controller) break;
  }
  if (chosen_index < 0) return absl::OkStatus();
  Field chosen = refs[static_cast<size_t>(chosen_index)];
  const std::string where = "metadata.ownerReferences";
  auto kind = Field(chosen["kind"].json(), where + ".kind").String();
  if (!kind.ok()) return kind.status();
  auto name = Field(chosen["name"].json(), where + ".name").String();
  if (!name.ok()) return name.status();
  if (kind->empty() || name->empty())
    return absl::InvalidArgumentError(where + ": an owner needs kind and name");
  pod.workload_kind = absl::AsciiStrToLower(*kind);
  pod.workload = *name;
  if (pod.workload_kind == "replicaset") {
    Field labels = meta["labels"];
    auto hash =
        Field(labels["pod-template-hash"].json(), "metadata.labels.pod-template-hash").String();
    if (hash.ok() && !hash->empty() && absl::EndsWith(pod.workload, "-" + *hash)) {
      pod.workload_kind = "deployment";
      pod.workload.resize(pod.workload.size() - hash->size() - 1);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Pod> ParsePod(const Json& doc) {
  auto meta = ReadMeta(doc);
  if (!meta.ok()) return meta.status();
  Pod pod{.namespace_ = meta->namespace_, .name = meta->name};
  auto uid = meta->fields["uid"].String();
  if (!uid.ok()) return uid.status();
  pod.uid = *uid;
  if (auto s = ParseOwner(meta->fields, pod); !s.ok()) return s;
  auto off = ShortCircuitOff(meta->fields);
  if (!off.ok()) return off.status();
  pod.short_circuit_off = *off;

  Field spec = Field::Root(doc)["spec"];
  if (!spec.is_object()) return absl::InvalidArgumentError("spec is missing");
  auto sa = spec["serviceAccountName"].String();
  if (!sa.ok()) return sa.status();
  pod.service_account = sa->empty() ? "default" : *sa;
  if (!IsDnsSubdomain(pod.service_account))
    return absl::InvalidArgumentError(
        absl::StrCat("spec.serviceAccountName '", pod.service_account, "' is not a valid name"));
  auto host_network = spec["hostNetwork"].Bool(false);
  if (!host_network.ok()) return host_network.status();
  pod.host_network = *host_network;

  auto node = spec["nodeName"].String();
  if (!node.ok()) return node.status();
  if (node->empty())
    return absl::InvalidArgumentError("spec.nodeName is missing (the pod is not scheduled)");
  pod.node_name = *node;

  auto ip = Field::Root(doc)["status"]["podIP"].String();
  if (!ip.ok()) return ip.status();
  if (ip->empty()) return absl::InvalidArgumentError("status.podIP is missing");
  in_addr addr{};
  if (inet_pton(AF_INET, ip->c_str(), &addr) != 1) {
    in6_addr a6{};
    if (inet_pton(AF_INET6, ip->c_str(), &a6) == 1)
      return absl::InvalidArgumentError(absl::StrCat(
          "status.podIP '", *ip,
          "' is IPv6: IPv6-only pods are not meshed (dual-stack pods are, by status.podIPs)"));
    return absl::InvalidArgumentError(
        absl::StrCat("status.podIP '", *ip, "' is not an IPv4 address"));
  }
  pod.ip = *ip;
  pod.ip_be = addr.s_addr;

  auto host_ip = Field::Root(doc)["status"]["hostIP"].String();
  if (!host_ip.ok()) return host_ip.status();
  if (!host_ip->empty()) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, host_ip->c_str(), buf) != 1 &&
        inet_pton(AF_INET6, host_ip->c_str(), buf) != 1)
      return absl::InvalidArgumentError(
          absl::StrCat("status.hostIP '", *host_ip, "' is not an IP address"));
    pod.host_ip = *host_ip;
  }

  // Dual stack: status.podIPs lists one address per family, podIP first.
  Field ips = Field::Root(doc)["status"]["podIPs"];
  if (!ips.absent() && !ips.is_array())
    return absl::InvalidArgumentError("status.podIPs is not a list");
  for (size_t i = 0; i < ips.size(); ++i) {
    auto text = ips[i]["ip"].RequiredString();
    if (!text.ok()) return text.status();
    in6_addr a6{};
    in_addr a4{};
    if (inet_pton(AF_INET, text->c_str(), &a4) == 1) {
      if (a4.s_addr != addr.s_addr)
        return absl::InvalidArgumentError(
            absl::StrCat(ips[i]["ip"].path(), " '", *text,
                         "' is a second IPv4 address (status.podIP is ", pod.ip, ")"));
      continue;
    }
    if (inet_pton(AF_INET6, text->c_str(), &a6) != 1)
      return absl::InvalidArgumentError(
          absl::StrCat(ips[i]["ip"].path(), " '", *text, "' is not an IP address"));
    if (!pod.ip6.empty())
      return absl::InvalidArgumentError(absl::StrCat(
          ips[i]["ip"].path(), " '", *text, "' is a second IPv6 address (after ", pod.ip6, ")"));
    if (IN6_IS_ADDR_V4MAPPED(&a6) || IN6_IS_ADDR_LINKLOCAL(&a6) || IN6_IS_ADDR_MULTICAST(&a6) ||
        IN6_IS_ADDR_UNSPECIFIED(&a6) || IN6_IS_ADDR_LOOPBACK(&a6))
      return absl::InvalidArgumentError(
          absl::StrCat(ips[i]["ip"].path(), " '", *text,
                       "' is not a pod's address (mapped, link-local, "
                       "multicast, loopback or unspecified)"));
    pod.ip6 = *text;
    std::memcpy(pod.ip6_bytes.data(), &a6, 16);
  }
  return pod;
}

}  // namespace shunt::model
