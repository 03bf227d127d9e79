// FileSource + ObjectStore with Services, EndpointSlices and TrafficSplits.
#include "agent/source/file_source.h"
#include "test/unit/file_source_fixture.h"

namespace shunt::source {
namespace {

using namespace file_source_test;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// --- Services, EndpointSlices and TrafficSplits ------------------------------

// A ClusterIP Service with one port 80 -> `target`.
std::string ServiceYaml(const std::string& ns, const std::string& name, const std::string& ip,
                        const std::string& target = "8080") {
  return absl::StrCat("apiVersion: v1\nkind: Service\nmetadata: {name: ", name, ", namespace: ", ns,
                      "}\nspec:\n  clusterIP: ", ip,
                      "\n  ports: [{name: http, port: 80, targetPort: ", target, "}]\n");
}
// An IPv4 EndpointSlice of `service` with one ready endpoint at `ip`.
std::string SliceYaml(const std::string& ns, const std::string& name, const std::string& service,
                      const std::string& ip, const std::string& address_type = "IPv4",
                      const std::string& api = "discovery.k8s.io/v1") {
  return absl::StrCat("apiVersion: ", api, "\nkind: EndpointSlice\nmetadata:\n  name: ", name,
                      "\n  namespace: ", ns, "\n  labels: {kubernetes.io/service-name: ", service,
                      "}\naddressType: ", address_type, "\nendpoints:\n- addresses: ['", ip,
                      "']\n  nodeName: node-a\nports: [{name: http, port: 8080}]\n");
}
// A TrafficSplit of root `root` over `backends` ("{service: a, weight: 1}, ...").
std::string SplitYaml(const std::string& ns, const std::string& name, const std::string& root,
                      const std::string& backends, const std::string& created = "",
                      const std::string& api = "split.smi-spec.io/v1alpha4") {
  return absl::StrCat("apiVersion: ", api, "\nkind: TrafficSplit\nmetadata: {name: ", name,
                      ", namespace: ", ns,
                      created.empty() ? "" : absl::StrCat(", creationTimestamp: '", created, "'"),
                      "}\nspec:\n  service: ", root, "\n  backends: [", backends, "]\n");
}

TEST_F(FileSourceTest, ReadsTheCanaryExampleWithItsPodsServicesAndSlices) {
  // SMI.md 5.3 with what it needs around it: the root and leaf Services,
  // their EndpointSlices and the pods behind them.
  Write("shop.yaml", PodYaml("shop", "checkout-v1-a", "10.244.1.10") + "---\n" +
                         PodYaml("shop", "checkout-v2-a", "10.244.2.20", "node-b") + R"(---
apiVersion: v1
kind: Service
metadata:
  name: checkout
  namespace: shop
  annotations: {shunt.io/balancer: ewma}
spec:
  clusterIP: 10.96.0.100
  selector: {app: checkout}
  ports:
  - {name: http, port: 80, targetPort: http}
---
)" + ServiceYaml("shop", "checkout-v1", "10.96.0.101") +
                         "---\n" + ServiceYaml("shop", "checkout-v2", "10.96.0.102") + R"(---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: checkout-v1-x7k2p
  namespace: shop
  labels: {kubernetes.io/service-name: checkout-v1}
addressType: IPv4
endpoints:
- addresses: [10.244.1.10]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: node-a
  targetRef: {kind: Pod, namespace: shop, name: checkout-v1-a}
ports:
- {name: http, port: 8080, protocol: TCP}
---
)" + SliceYaml("shop", "checkout-v2-q9z4d", "checkout-v2", "10.244.2.20") +
                         R"(---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata:
  name: checkout-canary
  namespace: shop
spec:
  service: checkout           # root/apex Service clients call (OSM also accepts the FQDN)
  backends:
  - service: checkout-v1      # leaf Services, same namespace, same port as root
    weight: 90
  - service: checkout-v2
    weight: 10                # relative weights; 900/100 or 9/1 mean the same
)");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(Strings(s.problems), IsEmpty());
  EXPECT_THAT(Strings(s.notices), IsEmpty());
  EXPECT_EQ(s.documents, 8);
  EXPECT_THAT(Keys(s), ElementsAre("shop/checkout-v1-a", "shop/checkout-v2-a"));

  ASSERT_THAT(SmiKeys(s.services),
              ElementsAre("shop/checkout", "shop/checkout-v1", "shop/checkout-v2"));
  EXPECT_EQ(s.services[0].cluster_ip, "10.96.0.100");
  EXPECT_EQ(s.services[0].ports[0].target_port_name, "http");
  EXPECT_EQ(s.services[0].annotations.at("shunt.io/balancer"), "ewma");
  EXPECT_EQ(s.services[1].ports[0].target_port, 8080);

  ASSERT_THAT(SmiKeys(s.endpoint_slices),
              ElementsAre("shop/checkout-v1-x7k2p", "shop/checkout-v2-q9z4d"));
  EXPECT_EQ(s.endpoint_slices[0].service_name, "checkout-v1");
  EXPECT_THAT(s.endpoint_slices[0].endpoints[0].addresses, ElementsAre("10.244.1.10"));
  EXPECT_EQ(s.endpoint_slices[0].endpoints[0].target_ref->name, "checkout-v1-a");
  EXPECT_EQ(s.endpoint_slices[1].service_name, "checkout-v2");
  EXPECT_TRUE(s.endpoint_slices[1].endpoints[0].ready);
  EXPECT_EQ(s.endpoint_slices[1].ports[0].port, 8080);

  ASSERT_THAT(SmiKeys(s.traffic_splits), ElementsAre("shop/checkout-canary"));
  EXPECT_EQ(s.traffic_splits[0].service, "checkout");
  EXPECT_THAT(s.traffic_splits[0].backends, ElementsAre(model::SplitBackend{"checkout-v1", 90},
                                                        model::SplitBackend{"checkout-v2", 10}));
}

TEST_F(FileSourceTest, SplitsOfEverySupportedVersion) {
  Write(
      "splits.yaml",
      SplitYaml("n", "s4", "r4", "{service: a, weight: 1}") + "---\n" +
          SplitYaml("n", "s3", "r3", "{service: a, weight: 1}", "", "split.smi-spec.io/v1alpha3") +
          "---\n" +
          SplitYaml("n", "s2", "r2", "{service: a, weight: 1}", "", "split.smi-spec.io/v1alpha2") +
          "---\n" +
          SplitYaml("n", "s1", "r1", "{service: a, weight: 500m}", "",
                    "split.smi-spec.io/v1alpha1") +
          "---\n" +
          SplitYaml("n", "beta", "r0", "{service: a, weight: 1}", "", "split.smi-spec.io/v1beta1"));
  Loader src(dir_);
  Snapshot s = Load(src);
  ASSERT_THAT(SmiKeys(s.traffic_splits), ElementsAre("n/s4", "n/s3", "n/s2", "n/s1"));
  EXPECT_EQ(s.traffic_splits[3].backends[0].weight, 500);
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("splits.yaml:29 TrafficSplit n/beta: apiVersion split.smi-spec.io/v1beta1 of "
                  "TrafficSplit is not supported (use split.smi-spec.io/v1alpha4, v1alpha3, "
                  "v1alpha2 or v1alpha1)"));
}

TEST_F(FileSourceTest, ObjectsNotLoadBalancedAreNoticesNotProblems) {
  // An IPv6 slice (the other half of a dual-stack service) and an
  // ExternalName service are valid Kubernetes this version skips.
  Write("svc.yaml", ServiceYaml("demo", "web", "10.96.0.1") + "---\n" +
                        SliceYaml("demo", "web-v4", "web", "10.244.0.5") + "---\n" +
                        SliceYaml("demo", "web-v6", "web", "fd00::5", "IPv6") + R"(---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: demo}
spec: {type: ExternalName, externalName: db.example.com}
)");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.services), ElementsAre("demo/web"));
  EXPECT_THAT(SmiKeys(s.endpoint_slices), ElementsAre("demo/web-v4"));
  EXPECT_THAT(Strings(s.problems), IsEmpty());
  EXPECT_THAT(
      Strings(s.notices),
      ElementsAre("svc.yaml:20 EndpointSlice demo/web-v6: addressType IPv6 is not "
                  "load-balanced in this version",
                  "svc.yaml:32 Service demo/db: spec.type ExternalName has no cluster IP; not "
                  "load-balanced"));
  EXPECT_EQ(s.documents, 4);
}

TEST_F(FileSourceTest, AnObjectThatBecomesUnbalancedIsWithdrawnNotKept) {
  Write("svc.yaml", ServiceYaml("demo", "web", "10.96.0.1") + "---\n" +
                        SliceYaml("demo", "web-1", "web", "10.244.0.5"));
  Loader src(dir_);
  ASSERT_THAT(SmiKeys(Load(src).endpoint_slices), ElementsAre("demo/web-1"));
  // A valid change to something this version skips is not a bad edit.
  Write("svc.yaml", ServiceYaml("demo", "web", "'fd00::1'") + "---\n" +
                        SliceYaml("demo", "web-1", "web", "fd00::5", "IPv6"));
  Snapshot s = Load(src);
  EXPECT_THAT(s.services, IsEmpty());
  EXPECT_THAT(s.endpoint_slices, IsEmpty());
  EXPECT_THAT(s.problems, IsEmpty());
  EXPECT_THAT(
      Strings(s.notices),
      ElementsAre("svc.yaml:1 Service demo/web: spec.clusterIP 'fd00::1' is IPv6; IPv6 is not "
                  "load-balanced in this version",
                  "svc.yaml:8 EndpointSlice demo/web-1: addressType IPv6 is not load-balanced "
                  "in this version"));
}

TEST_F(FileSourceTest, InvalidServicesSlicesAndSplitsAreProblemsWithTheFieldPath) {
  Write("bad.yaml",
        ServiceYaml("demo", "web", "10.96.0.1", "Web") + "---\n" +
            SliceYaml("demo", "web-1", "web", "10.244.0.300") + "---\n" +
            SplitYaml("demo", "zero", "web", "{service: a, weight: 0}, {service: b, weight: 0}") +
            "---\n" +
            SplitYaml("demo", "v2m", "web", "{service: a, weight: 1}", "",
                      "split.smi-spec.io/v1alpha2") +
            "  matches: [{kind: HTTPRouteGroup, name: g}]\n" + "---\n" +
            SliceYaml("demo", "web-2", "web", "10.244.0.1", "IPv4", "discovery.k8s.io/v1beta1"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(s.services, IsEmpty());
  EXPECT_THAT(s.endpoint_slices, IsEmpty());
  EXPECT_THAT(s.traffic_splits, IsEmpty());
  EXPECT_THAT(s.notices, IsEmpty());
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("bad.yaml:1 Service demo/web: spec.ports[0].targetPort 'Web' is not a valid "
                  "port name (at most 15 lowercase letters, digits and '-', with a letter, no "
                  "'-' at either end or twice in a row)",
                  "bad.yaml:8 EndpointSlice demo/web-1: endpoints[0].addresses[0] '10.244.0.300' "
                  "is not an IPv4 address (the slice's addressType is IPv4)",
                  "bad.yaml:20 TrafficSplit demo/zero: spec.backends: all backend weights are 0",
                  "bad.yaml:27 TrafficSplit demo/v2m: spec.matches is not part of "
                  "split.smi-spec.io/v1alpha2 (it came in v1alpha3)",
                  "bad.yaml:35 EndpointSlice demo/web-2: apiVersion discovery.k8s.io/v1beta1 of "
                  "EndpointSlice is not supported (use discovery.k8s.io/v1)"));
}

TEST_F(FileSourceTest, InvalidServiceSliceOrSplitKeepsItsLastGoodVersion) {
  Write("svc.yaml", ServiceYaml("demo", "web", "10.96.0.1") + "---\n" +
                        SliceYaml("demo", "web-1", "web", "10.244.0.5") + "---\n" +
                        SplitYaml("demo", "split", "web", "{service: a, weight: 1}"));
  Loader src(dir_);
  ASSERT_THAT(Load(src).problems, IsEmpty());

  // Bad edits to all three, and the slice moved to an unsupported version.
  Write("svc.yaml",
        ServiceYaml("demo", "web", "10.96.0.1", "70000") + "---\n" +
            SliceYaml("demo", "web-1", "web", "10.244.0.6", "IPv4", "discovery.k8s.io/v1beta1") +
            "---\n" + SplitYaml("demo", "split", "web", "{service: a, weight: -1}"));
  Snapshot s = Load(src);
  ASSERT_THAT(SmiKeys(s.services), ElementsAre("demo/web"));
  EXPECT_EQ(s.services[0].ports[0].target_port, 8080);
  ASSERT_THAT(SmiKeys(s.endpoint_slices), ElementsAre("demo/web-1"));
  EXPECT_THAT(s.endpoint_slices[0].endpoints[0].addresses, ElementsAre("10.244.0.5"));
  ASSERT_THAT(SmiKeys(s.traffic_splits), ElementsAre("demo/split"));
  EXPECT_EQ(s.traffic_splits[0].backends[0].weight, 1);
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("svc.yaml:1 Service demo/web: spec.ports[0].targetPort '70000' is not a port "
                  "(1-65535); keeping its last good version",
                  "svc.yaml:8 EndpointSlice demo/web-1: apiVersion discovery.k8s.io/v1beta1 of "
                  "EndpointSlice is not supported (use discovery.k8s.io/v1); keeping its last "
                  "good version",
                  "svc.yaml:20 TrafficSplit demo/split: spec.backends[0].weight -1 is negative; "
                  "keeping its last good version"));

  // A syntax error keeps the whole file's last good objects.
  Write("svc.yaml", ServiceYaml("demo", "web", "10.96.0.1") + "---\nspec: [\n");
  s = Load(src);
  EXPECT_THAT(SmiKeys(s.services), ElementsAre("demo/web"));
  EXPECT_THAT(SmiKeys(s.endpoint_slices), ElementsAre("demo/web-1"));
  EXPECT_THAT(SmiKeys(s.traffic_splits), ElementsAre("demo/split"));
}

TEST_F(FileSourceTest, DuplicateServicesSlicesAndSplitsLaterCopyLoses) {
  Write("a.yaml", ServiceYaml("demo", "x", "10.96.0.1") + "---\n" +
                      SliceYaml("demo", "x-1", "x", "10.244.0.1") + "---\n" +
                      SplitYaml("demo", "x", "x", "{service: x-v1, weight: 1}"));
  // The same names again, and the same names in another namespace (fine).
  Write("b.yaml", ServiceYaml("demo", "x", "10.96.0.2") + "---\n" +
                      SliceYaml("demo", "x-1", "x", "10.244.0.2") + "---\n" +
                      SplitYaml("demo", "x", "x", "{service: x-v2, weight: 1}") + "---\n" +
                      ServiceYaml("other", "x", "10.96.0.3"));
  Loader src(dir_);
  Snapshot s = Load(src);
  ASSERT_THAT(SmiKeys(s.services), ElementsAre("demo/x", "other/x"));
  EXPECT_EQ(s.services[0].cluster_ip, "10.96.0.1");
  ASSERT_THAT(SmiKeys(s.endpoint_slices), ElementsAre("demo/x-1"));
  EXPECT_EQ(s.endpoint_slices[0].endpoints[0].addresses[0], "10.244.0.1");
  ASSERT_THAT(SmiKeys(s.traffic_splits), ElementsAre("demo/x"));
  EXPECT_EQ(s.traffic_splits[0].backends[0].service, "x-v1");
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre(
          "b.yaml:1 Service demo/x: duplicate: Service demo/x is already defined in "
          "a.yaml; this copy is ignored",
          "b.yaml:8 EndpointSlice demo/x-1: duplicate: EndpointSlice demo/x-1 is already "
          "defined in a.yaml; this copy is ignored",
          "b.yaml:20 TrafficSplit demo/x: duplicate: TrafficSplit demo/x is already defined "
          "in a.yaml; this copy is ignored"));
}

TEST_F(FileSourceTest, SplitsOfOneRootTheOldestWins) {
  // SMI.md 7.10: by creationTimestamp, then by name; a split without a
  // timestamp counts as newer than one with. Roots are per namespace, and
  // "web.shop.svc.cluster.local" is the root "web".
  Write("a.yaml",
        SplitYaml("shop", "b-new", "web", "{service: v1, weight: 1}", "2024-03-01T00:00:00Z") +
            "---\n" + SplitYaml("shop", "z-none", "web", "{service: v2, weight: 1}") + "---\n" +
            SplitYaml("other", "b-new", "web", "{service: v1, weight: 1}"));
  Write("b.yaml", SplitYaml("shop", "y-old", "web.shop.svc.cluster.local",
                            "{service: v3, weight: 1}", "2024-01-01T00:00:00Z") +
                      "---\n" + SplitYaml("shop", "a-none", "web", "{service: v4, weight: 1}"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_splits), ElementsAre("other/b-new", "shop/y-old"));
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("a.yaml:1 TrafficSplit shop/b-new: root service 'web' is already split by "
                  "shop/y-old; ignored",
                  "a.yaml:8 TrafficSplit shop/z-none: root service 'web' is already split by "
                  "shop/y-old; ignored",
                  "b.yaml:8 TrafficSplit shop/a-none: root service 'web' is already split by "
                  "shop/y-old; ignored"));

  // The winner goes: the next oldest takes over, without a reload of a.yaml.
  Write("b.yaml", SplitYaml("shop", "a-none", "web", "{service: v4, weight: 1}"));
  s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_splits), ElementsAre("shop/b-new", "other/b-new"));
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("a.yaml:8 TrafficSplit shop/z-none: root service 'web' is already split by "
                  "shop/b-new; ignored",
                  "b.yaml:1 TrafficSplit shop/a-none: root service 'web' is already split by "
                  "shop/b-new; ignored"));

  // Without timestamps, the name decides.
  Write("a.yaml", SplitYaml("shop", "z-none", "web", "{service: v2, weight: 1}"));
  s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_splits), ElementsAre("shop/a-none"));
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("a.yaml:1 TrafficSplit shop/z-none: root service 'web' is already split by "
                  "shop/a-none; ignored"));
}

TEST_F(FileSourceTest, ServiceInAnotherApiVersionIsSkipped) {
  Write("svc.yaml", "apiVersion: v2\nkind: Service\nmetadata: {name: web}\n");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(s.services, IsEmpty());
  EXPECT_THAT(s.problems, IsEmpty());
  EXPECT_THAT(
      Strings(s.notices),
      ElementsAre(
          "svc.yaml:1 Service web: kind Service (v2) is not handled by this version; skipped"));
}

}  // namespace
}  // namespace shunt::source
