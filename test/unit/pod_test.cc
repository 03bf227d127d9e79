// ParsePod and the Kubernetes name rules.
#include "agent/model/pod.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/model/namespace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/ipv4_util.h"
#include "test/unit/yaml_doc.h"
#include "yaml-cpp/yaml.h"

namespace shunt::model {
namespace {

using ::testing::HasSubstr;

constexpr char kValidPod[] = R"(
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: demo
spec:
  serviceAccountName: client-sa
  nodeName: node-a
status:
  podIP: 10.1.2.3
)";

absl::StatusOr<Pod> Parse(const std::string& yaml) {
  return ParsePod(shunt::testing::YamlDoc(yaml));
}

using test_util::Ipv4Be;

TEST(ParsePodTest, ValidPodHasEveryField) {
  absl::StatusOr<Pod> pod = Parse(kValidPod);
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->namespace_, "demo");
  EXPECT_EQ(pod->name, "client");
  EXPECT_EQ(pod->service_account, "client-sa");
  EXPECT_EQ(pod->node_name, "node-a");
  EXPECT_EQ(pod->ip, "10.1.2.3");
  EXPECT_EQ(pod->ip_be, Ipv4Be("10.1.2.3"));
  EXPECT_FALSE(pod->host_network);
  EXPECT_EQ(pod->Key(), "demo/client");
}

TEST(ParsePodTest, NamespaceAndServiceAccountDefault) {
  absl::StatusOr<Pod> pod = Parse(R"(
metadata: {name: web}
spec: {nodeName: n1}
status: {podIP: 192.168.0.1}
)");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->namespace_, "default");
  EXPECT_EQ(pod->service_account, "default");
  EXPECT_EQ(pod->Key(), "default/web");
}

TEST(ParsePodTest, ExplicitNullsAndEmptyStringsDefaultToo) {
  absl::StatusOr<Pod> pod = Parse(R"(
metadata: {name: web, namespace: ""}
spec: {nodeName: n1, serviceAccountName: ~}
status: {podIP: 192.168.0.1}
)");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->namespace_, "default");
  EXPECT_EQ(pod->service_account, "default");
}

TEST(ParsePodTest, HostNetworkIsRead) {
  for (const char* value : {"true", "True", "yes"}) {
    absl::StatusOr<Pod> pod =
        Parse(absl::StrCat("metadata: {name: h}\nspec: {nodeName: n1, hostNetwork: ", value,
                           "}\nstatus: {podIP: 10.0.0.1}\n"));
    ASSERT_TRUE(pod.ok()) << value << ": " << pod.status();
    EXPECT_TRUE(pod->host_network) << value;
  }
  absl::StatusOr<Pod> pod = Parse(
      "metadata: {name: h}\nspec: {nodeName: n1, hostNetwork: false}\nstatus: {podIP: 10.0.0.1}\n");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_FALSE(pod->host_network);
}

struct BadPod {
  const char* description;
  std::string yaml;
  const char* message;  // substring that must appear, naming the field
};

TEST(ParsePodTest, InvalidPodsNameTheField) {
  const BadPod cases[] = {
      {"no metadata", "spec: {nodeName: n}\nstatus: {podIP: 10.0.0.1}", "metadata is missing"},
      {"metadata not a map", "metadata: x\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1}",
       "metadata is missing"},
      {"no name", "metadata: {namespace: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1}",
       "metadata.name is missing"},
      {"name is a list", "metadata: {name: [a]}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1}",
       "metadata.name must be a string"},
      {"name upper case", "metadata: {name: Web}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1}",
       "metadata.name 'Web' is not a valid DNS subdomain"},
      {"name with underscore",
       "metadata: {name: my_pod}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1}",
       "metadata.name 'my_pod' is not a valid DNS subdomain"},
      {"namespace with a dot",
       "metadata: {name: a, namespace: x.y}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1}",
       "metadata.namespace 'x.y' is not a valid DNS label"},
      {"namespace is a map",
       "metadata: {name: a, namespace: {x: 1}}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1}",
       "metadata.namespace must be a string"},
      {"no spec", "metadata: {name: a}\nstatus: {podIP: 10.0.0.1}", "spec is missing"},
      {"spec is a list", "metadata: {name: a}\nspec: [1]\nstatus: {podIP: 10.0.0.1}",
       "spec is missing"},
      {"service account invalid",
       "metadata: {name: a}\nspec: {nodeName: n, serviceAccountName: -sa}\nstatus: {podIP: "
       "10.0.0.1}",
       "spec.serviceAccountName '-sa' is not a valid name"},
      {"service account is a list",
       "metadata: {name: a}\nspec: {nodeName: n, serviceAccountName: [x]}\nstatus: {podIP: "
       "10.0.0.1}",
       "spec.serviceAccountName must be a string"},
      {"not scheduled", "metadata: {name: a}\nspec: {}\nstatus: {podIP: 10.0.0.1}",
       "spec.nodeName is missing (the pod is not scheduled)"},
      {"node name is a map",
       "metadata: {name: a}\nspec: {nodeName: {a: b}}\nstatus: {podIP: 10.0.0.1}",
       "spec.nodeName must be a string"},
      {"no status", "metadata: {name: a}\nspec: {nodeName: n}", "status.podIP is missing"},
      {"status without podIP", "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {phase: Pending}",
       "status.podIP is missing"},
      {"podIP is a list", "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: [10.0.0.1]}",
       "status.podIP must be a string"},
      {"podIP garbage", "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: not-an-ip}",
       "status.podIP 'not-an-ip' is not an IPv4 address"},
      {"podIP with prefix",
       "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1/24}",
       "status.podIP '10.0.0.1/24' is not an IPv4 address"},
      {"podIP out of range",
       "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.256}",
       "status.podIP '10.0.0.256' is not an IPv4 address"},
      {"podIP IPv6", "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: 'fd00::1'}",
       "status.podIP 'fd00::1' is IPv6: IPv6-only pods are not meshed"},
      {"podIPs not a list",
       "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1, podIPs: 'fd00::1'}",
       "status.podIPs is not a list"},
      {"podIPs garbage",
       "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1, podIPs: [{ip: "
       "10.0.0.1}, {ip: nope}]}",
       "status.podIPs[1].ip 'nope' is not an IP address"},
      {"podIPs second IPv4",
       "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1, podIPs: [{ip: "
       "10.0.0.2}]}",
       "status.podIPs[0].ip '10.0.0.2' is a second IPv4 address (status.podIP is 10.0.0.1)"},
      {"podIPs second IPv6",
       "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1, podIPs: [{ip: "
       "'fd00::1'}, {ip: 'fd00::2'}]}",
       "status.podIPs[1].ip 'fd00::2' is a second IPv6 address (after fd00::1)"},
      {"podIPs link-local",
       "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1, podIPs: [{ip: "
       "'fe80::1'}]}",
       "status.podIPs[0].ip 'fe80::1' is not a pod's address"},
      {"podIPs mapped",
       "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1, podIPs: [{ip: "
       "'::ffff:10.0.0.9'}]}",
       "status.podIPs[0].ip '::ffff:10.0.0.9' is not a pod's address"},
  };
  for (const BadPod& c : cases) {
    absl::StatusOr<Pod> pod = Parse(c.yaml);
    EXPECT_EQ(pod.status().code(), absl::StatusCode::kInvalidArgument) << c.description;
    EXPECT_THAT(pod.status().message(), HasSubstr(c.message)) << c.description;
  }
}

TEST(ParsePodTest, NameIsCheckedBeforeNamespace) {
  // The first problem found is the one reported, in document order.
  absl::StatusOr<Pod> pod = Parse("metadata: {name: Bad, namespace: Bad}\nspec: {}");
  EXPECT_EQ(pod.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(pod.status().message(), HasSubstr("metadata.name"));
}

TEST(ParsePodTest, NonMappingDocumentsAreInvalidArgument) {
  // ParsePod returns a Status; it must not let a yaml-cpp exception escape.
  for (const char* yaml : {"", "~", "[1, 2]"}) {
    absl::StatusOr<Pod> pod;
    EXPECT_NO_THROW(pod = Parse(yaml)) << "'" << yaml << "'";
    EXPECT_EQ(pod.status().code(), absl::StatusCode::kInvalidArgument) << "'" << yaml << "'";
    EXPECT_THAT(pod.status().message(), HasSubstr("expected a mapping")) << "'" << yaml << "'";
  }
}

TEST(ParsePodTest, ScalarDocumentIsInvalidArgument) {
  // Regression: doc["metadata"] on a scalar node throws YAML::BadSubscript.
  absl::StatusOr<Pod> pod;
  EXPECT_NO_THROW(pod = Parse("just a string"));
  EXPECT_EQ(pod.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParsePodTest, NonBooleanHostNetworkIsInvalidArgument) {
  // Regression: hn.as<bool>() throws YAML::TypedBadConversion instead of returning a
  // Status naming spec.hostNetwork.
  absl::StatusOr<Pod> pod;
  EXPECT_NO_THROW(pod = Parse("metadata: {name: a}\nspec: {nodeName: n, hostNetwork: "
                              "maybe}\nstatus: {podIP: 10.0.0.1}"));
  EXPECT_EQ(pod.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(pod.status().message(), HasSubstr("spec.hostNetwork"));
}

struct NameCase {
  std::string name;
  bool label;
  bool subdomain;
};

TEST(DnsNameTest, Table) {
  const NameCase cases[] = {
      {"a", true, true},
      {"0", true, true},
      {"web-1", true, true},
      {"1web", true, true},
      {"a.b", false, true},
      {"api.example.com", false, true},
      {"", false, false},
      {"-a", false, false},
      {"a-", false, false},
      {".a", false, false},
      {"a.", false, false},
      {"A", false, false},
      {"a_b", false, false},
      {"a b", false, false},
      {"ä", false, false},
      {std::string(63, 'a'), true, true},
      {std::string(64, 'a'), false, true},
      {std::string(253, 'a'), false, true},
      {std::string(254, 'a'), false, false},
  };
  for (const NameCase& c : cases) {
    EXPECT_EQ(IsDnsLabel(c.name), c.label) << "'" << c.name << "'";
    EXPECT_EQ(IsDnsSubdomain(c.name), c.subdomain) << "'" << c.name << "'";
  }
}

TEST(DnsNameTest, SubdomainLabelsMustEachBeValid) {
  // Regression: Kubernetes (RFC 1123 subdomain) requires every dot-separated label
  // to start and end with an alphanumeric; these are accepted.
  for (const char* name : {"a..b", "a.-b", "a-.b"}) EXPECT_FALSE(IsDnsSubdomain(name)) << name;
}

// metadata.ownerReferences -> the pod's workload, for telemetry.

// A scheduled pod with the given metadata lines (ownerReferences, labels),
// each indented under metadata.
absl::StatusOr<Pod> PodWithMetadata(const std::string& extra_metadata) {
  return Parse(absl::StrCat("metadata:\n  name: web-5d9f7c-abcde\n  namespace: demo\n",
                            extra_metadata,
                            "spec: {nodeName: n1, serviceAccountName: web-sa}\n"
                            "status: {podIP: 10.0.0.7}\n"));
}

TEST(PodOwnerTest, ControllerReferenceIsChosenOverOthers) {
  // The controller second: it still wins over the first.
  absl::StatusOr<Pod> pod = PodWithMetadata(R"(  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: settings, controller: false}
  - {apiVersion: apps/v1, kind: StatefulSet, name: db, controller: true}
)");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->workload_kind, "statefulset");
  EXPECT_EQ(pod->workload, "db");
  EXPECT_EQ(pod->WorkloadName(), "statefulset/db");

  // The controller first: later ones do not replace it.
  pod = PodWithMetadata(R"(  ownerReferences:
  - {kind: DaemonSet, name: agent, controller: true}
  - {kind: Job, name: other}
)");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->WorkloadName(), "daemonset/agent");
}

TEST(PodOwnerTest, WithoutAControllerTheFirstReferenceIsChosen) {
  absl::StatusOr<Pod> pod = PodWithMetadata(R"(  ownerReferences:
  - {kind: Job, name: migrate}
  - {kind: ConfigMap, name: settings, controller: false}
)");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->workload_kind, "job");
  EXPECT_EQ(pod->workload, "migrate");
  EXPECT_EQ(pod->WorkloadName(), "job/migrate");
}

TEST(PodOwnerTest, EmptyOwnerReferencesIsNoOwner) {
  absl::StatusOr<Pod> pod = PodWithMetadata("  ownerReferences: []\n");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->workload, "");
  EXPECT_EQ(pod->WorkloadName(), "sa/web-sa");
}

TEST(PodOwnerTest, ReplicaSetOfADeploymentIsTheDeployment) {
  absl::StatusOr<Pod> pod = PodWithMetadata(R"(  labels: {app: web, pod-template-hash: 5d9f7c}
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: web-5d9f7c, controller: true}
)");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->workload_kind, "deployment");
  EXPECT_EQ(pod->workload, "web");
  EXPECT_EQ(pod->WorkloadName(), "deployment/web");
  EXPECT_EQ(pod->service_account, "web-sa");
}

TEST(PodOwnerTest, ReplicaSetWithoutTheHashLabelStaysAReplicaSet) {
  // No pod-template-hash label: a bare ReplicaSet.
  absl::StatusOr<Pod> pod = PodWithMetadata(R"(  labels: {app: web}
  ownerReferences:
  - {kind: ReplicaSet, name: web-5d9f7c, controller: true}
)");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->workload_kind, "replicaset");
  EXPECT_EQ(pod->workload, "web-5d9f7c");
  EXPECT_EQ(pod->WorkloadName(), "replicaset/web-5d9f7c");

  // No labels at all.
  pod = PodWithMetadata(
      "  ownerReferences: [{kind: ReplicaSet, name: web-5d9f7c, controller: true}]\n");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->WorkloadName(), "replicaset/web-5d9f7c");

  // A hash that is not the name's suffix: not made by a Deployment.
  pod = PodWithMetadata(R"(  labels: {pod-template-hash: 123abc}
  ownerReferences: [{kind: ReplicaSet, name: web-5d9f7c, controller: true}]
)");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->WorkloadName(), "replicaset/web-5d9f7c");

  // The hash must follow a dash: "web5d9f7c" is not "web" + "-5d9f7c".
  pod = PodWithMetadata(R"(  labels: {pod-template-hash: 5d9f7c}
  ownerReferences: [{kind: ReplicaSet, name: web5d9f7c, controller: true}]
)");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->WorkloadName(), "replicaset/web5d9f7c");
}

TEST(PodOwnerTest, StatefulSetKeepsItsName) {
  absl::StatusOr<Pod> pod = PodWithMetadata(R"(  labels: {pod-template-hash: db}
  ownerReferences:
  - {apiVersion: apps/v1, kind: StatefulSet, name: db, uid: 1234, controller: true, blockOwnerDeletion: true}
)");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->workload_kind, "statefulset");
  EXPECT_EQ(pod->workload, "db");
  EXPECT_EQ(pod->WorkloadName(), "statefulset/db");
}

TEST(PodOwnerTest, NoOwnerIsKnownByItsServiceAccount) {
  for (const char* refs : {"", "  ownerReferences: ~\n"}) {
    absl::StatusOr<Pod> pod = PodWithMetadata(refs);
    ASSERT_TRUE(pod.ok()) << "'" << refs << "': " << pod.status();
    EXPECT_EQ(pod->workload_kind, "") << refs;
    EXPECT_EQ(pod->workload, "") << refs;
    EXPECT_EQ(pod->WorkloadName(), "sa/web-sa") << refs;
  }
  // The default service account.
  absl::StatusOr<Pod> pod = Parse(kValidPod);
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->WorkloadName(), "sa/client-sa");
  pod = Parse("metadata: {name: web}\nspec: {nodeName: n1}\nstatus: {podIP: 192.168.0.1}\n");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->WorkloadName(), "sa/default");
}

TEST(PodOwnerTest, MalformedOwnerReferencesNameTheField) {
  const struct {
    const char* description;
    const char* metadata;
    const char* message;
  } cases[] = {
      {"a string", "  ownerReferences: web\n", "metadata.ownerReferences must be a list"},
      {"a mapping", "  ownerReferences: {kind: ReplicaSet, name: web}\n",
       "metadata.ownerReferences must be a list"},
      {"an entry that is not a mapping", "  ownerReferences: [web]\n",
       "metadata.ownerReferences[0] must be a mapping"},
      {"an entry without name", "  ownerReferences: [{kind: ReplicaSet, controller: true}]\n",
       "metadata.ownerReferences: an owner needs kind and name"},
      {"an entry without kind", "  ownerReferences: [{name: web, controller: true}]\n",
       "metadata.ownerReferences: an owner needs kind and name"},
      {"a name that is a list",
       "  ownerReferences: [{kind: ReplicaSet, name: [web], controller: true}]\n",
       "metadata.ownerReferences.name must be a string"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<Pod> pod;
    EXPECT_NO_THROW(pod = PodWithMetadata(c.metadata)) << c.description;
    EXPECT_EQ(pod.status().code(), absl::StatusCode::kInvalidArgument) << c.description;
    EXPECT_THAT(pod.status().message(), HasSubstr("metadata.ownerReferences")) << c.description;
    EXPECT_THAT(pod.status().message(), HasSubstr(c.message)) << c.description;
  }
}

TEST(ParsePodTest, ADualStackPodHasItsIpv6AddressFromPodIps) {
  absl::StatusOr<Pod> pod = Parse(
      "metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1, podIPs: [{ip: "
      "10.0.0.1}, {ip: 'fd00:0:1::7'}]}");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->ip, "10.0.0.1");
  EXPECT_EQ(pod->ip6, "fd00:0:1::7");
  in6_addr want{};
  inet_pton(AF_INET6, "fd00:0:1::7", &want);
  EXPECT_EQ(std::memcmp(pod->ip6_bytes.data(), &want, 16), 0);
  // Single stack: no IPv6 address, all zero.
  absl::StatusOr<Pod> v4 =
      Parse("metadata: {name: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1}");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->ip6.empty());
  EXPECT_EQ(v4->ip6_bytes, (std::array<uint8_t, 16>{}));
}

// shunt.dev/short-circuit on a pod: "off" opts it out, "on" or none keeps
// it in, anything else is refused with the annotation named.
TEST(PodTest, ShortCircuitAnnotationTurnsItOffAndRejectsOtherValues) {
  auto annotated = [](const std::string& value) {
    return Parse(absl::StrCat(R"(
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: demo
  annotations:
    shunt.dev/short-circuit: ")",
                              value, R"("
spec:
  serviceAccountName: client-sa
  nodeName: node-a
status:
  podIP: 10.1.2.3
)"));
  };
  absl::StatusOr<Pod> off = annotated("off"), on = annotated("on"), plain = Parse(kValidPod);
  ASSERT_TRUE(off.ok() && on.ok() && plain.ok()) << off.status() << on.status() << plain.status();
  EXPECT_TRUE(off->short_circuit_off);
  EXPECT_FALSE(on->short_circuit_off);
  EXPECT_FALSE(plain->short_circuit_off);
  absl::StatusOr<Pod> bad = annotated("no");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("metadata.annotations.shunt.dev/short-circuit 'no' must be \"on\" or "
                        "\"off\""));
}

TEST(PodTest, ANamespaceCarriesTheSameAnnotation) {
  absl::StatusOr<Namespace> ns = ParseNamespace(shunt::testing::YamlDoc(R"(
apiVersion: v1
kind: Namespace
metadata:
  name: legacy
  annotations:
    shunt.dev/short-circuit: "off"
)"));
  ASSERT_TRUE(ns.ok()) << ns.status();
  EXPECT_EQ(ns->name, "legacy");
  EXPECT_TRUE(ns->short_circuit_off);
  EXPECT_FALSE(
      ParseNamespace(shunt::testing::YamlDoc("kind: Namespace\nmetadata:\n  name: Bad_Name\n"))
          .ok());
}

}  // namespace
}  // namespace shunt::model
