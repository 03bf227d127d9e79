#include "pod.h"

#include <arpa/inet.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace shunt::model {
namespace {

bool IsLabelChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }
bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Reads an optional scalar string; InvalidArgument if present but not a scalar.
absl::StatusOr<std::string> OptionalString(const YAML::Node& parent, const char* key,
                                           const std::string& path) {
  if (!parent || !parent.IsMap()) return std::string();
  YAML::Node n = parent[key];
  if (!n || n.IsNull()) return std::string();
  if (!n.IsScalar()) return absl::InvalidArgumentError(absl::StrCat(path, " must be a string"));
  return n.Scalar();
}

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
absl::Status ParseOwner(const YAML::Node& meta, Pod& pod) {
  YAML::Node refs = meta["ownerReferences"];
  if (!refs || refs.IsNull()) return absl::OkStatus();
  if (!refs.IsSequence()) return absl::InvalidArgumentError("metadata.ownerReferences must be a list");
  // By index: assigning one YAML::Node to another would re-point the
  // document's own node (yaml-cpp's operator= on a defined node).
  int chosen_index = -1;
  for (size_t i = 0; i < refs.size(); ++i) {
    YAML::Node r = refs[i];
    if (!r.IsMap())
      return absl::InvalidArgumentError(absl::StrCat("metadata.ownerReferences[", i, "] must be a mapping"));
    bool controller = false;
    if (YAML::Node c = r["controller"]; c && c.IsScalar()) YAML::convert<bool>::decode(c, controller);
    if (chosen_index < 0 || controller) chosen_index = static_cast<int>(i);
    if (controller) break;
  }
  if (chosen_index < 0) return absl::OkStatus();
  YAML::Node chosen = refs[static_cast<size_t>(chosen_index)];
  const std::string where = "metadata.ownerReferences";
  auto kind = OptionalString(chosen, "kind", where + ".kind");
  if (!kind.ok()) return kind.status();
  auto name = OptionalString(chosen, "name", where + ".name");
  if (!name.ok()) return name.status();
  if (kind->empty() || name->empty())
    return absl::InvalidArgumentError(where + ": an owner needs kind and name");
  pod.workload_kind = absl::AsciiStrToLower(*kind);
  pod.workload = *name;
  if (pod.workload_kind == "replicaset") {
    auto hash = OptionalString(meta["labels"], "pod-template-hash", "metadata.labels.pod-template-hash");
    if (hash.ok() && !hash->empty() && absl::EndsWith(pod.workload, "-" + *hash)) {
      pod.workload_kind = "deployment";
      pod.workload.resize(pod.workload.size() - hash->size() - 1);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Pod> ParsePod(const YAML::Node& doc) {
  if (!doc.IsMap()) return absl::InvalidArgumentError("not a Kubernetes object (expected a mapping)");
  YAML::Node meta = doc["metadata"];
  if (!meta || !meta.IsMap()) return absl::InvalidArgumentError("metadata is missing");
  Pod pod;
  auto name = OptionalString(meta, "name", "metadata.name");
  if (!name.ok()) return name.status();
  if (name->empty()) return absl::InvalidArgumentError("metadata.name is missing");
  if (!IsDnsSubdomain(*name))
    return absl::InvalidArgumentError(
        absl::StrCat("metadata.name '", *name, "' is not a valid DNS subdomain"));
  pod.name = *name;

  auto ns = OptionalString(meta, "namespace", "metadata.namespace");
  if (!ns.ok()) return ns.status();
  pod.namespace_ = ns->empty() ? "default" : *ns;
  if (!IsDnsLabel(pod.namespace_))
    return absl::InvalidArgumentError(
        absl::StrCat("metadata.namespace '", pod.namespace_, "' is not a valid DNS label"));

  if (auto s = ParseOwner(meta, pod); !s.ok()) return s;

  YAML::Node spec = doc["spec"];
  if (!spec || !spec.IsMap()) return absl::InvalidArgumentError("spec is missing");
  auto sa = OptionalString(spec, "serviceAccountName", "spec.serviceAccountName");
  if (!sa.ok()) return sa.status();
  pod.service_account = sa->empty() ? "default" : *sa;
  if (!IsDnsSubdomain(pod.service_account))
    return absl::InvalidArgumentError(absl::StrCat("spec.serviceAccountName '",
                                                   pod.service_account, "' is not a valid name"));

  if (YAML::Node hn = spec["hostNetwork"]; hn && !hn.IsNull()) {
    bool value = false;
    if (!hn.IsScalar() || !YAML::convert<bool>::decode(hn, value))
      return absl::InvalidArgumentError("spec.hostNetwork must be true or false");
    pod.host_network = value;
  }

  auto node = OptionalString(spec, "nodeName", "spec.nodeName");
  if (!node.ok()) return node.status();
  if (node->empty())
    return absl::InvalidArgumentError("spec.nodeName is missing (the pod is not scheduled)");
  pod.node_name = *node;

  auto ip = OptionalString(doc["status"], "podIP", "status.podIP");
  if (!ip.ok()) return ip.status();
  if (ip->empty()) return absl::InvalidArgumentError("status.podIP is missing");
  in_addr addr{};
  if (inet_pton(AF_INET, ip->c_str(), &addr) != 1) {
    in6_addr a6{};
    if (inet_pton(AF_INET6, ip->c_str(), &a6) == 1)
      return absl::InvalidArgumentError(
          absl::StrCat("status.podIP '", *ip, "' is IPv6, which this version does not mesh"));
    return absl::InvalidArgumentError(
        absl::StrCat("status.podIP '", *ip, "' is not an IPv4 address"));
  }
  pod.ip = *ip;
  pod.ip_be = addr.s_addr;
  return pod;
}

}  // namespace shunt::model
