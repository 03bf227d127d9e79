// The agent's certificates feature: which identities get a certificate,
// renewal at half-life with the clock driven by the test, what the API and
// the proxy's channel are given, and what happens when the CA cannot issue.
#include "agent/certs/certs_controller.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "agent/certs/peer_verifier.h"
#include "agent/http/router.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::certs {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kStartNs = 1'796'000'000'000'000'000;  // 2026-11, realtime

model::Pod MakePod(const std::string& ns, const std::string& name, const std::string& sa,
                   const std::string& node, bool host_network = false) {
  model::Pod p;
  p.namespace_ = ns;
  p.name = name;
  p.service_account = sa;
  p.node_name = node;
  p.host_network = host_network;
  return p;
}

class CertsControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shunt-certs-ctl-XXXXXX";
    dir_ = mkdtemp(tmpl);
    ASSERT_TRUE(InitAuthority(dir_, absl::FromUnixNanos(kStartNs), absl::Hours(72)).ok());
    auto ca = Authority::Load(dir_, absl::FromUnixNanos(kStartNs));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_pem_ = (*ca)->cert_pem();
    controller_ = std::make_unique<CertsController>(CertsController::Deps{
        .clock = &clock_,
        .options = {.node = "node-a", .mode = "strict", .ttl = absl::Hours(24)},
        .authority = std::move(*ca),
        .publish = [this](const std::vector<IssuedCertificate>& all) {
          ++publishes_;
          published_ = all;
        }});
  }
  void TearDown() override { std::system(absl::StrCat("rm -rf ", dir_).c_str()); }
  size_t Reconcile(std::vector<model::Pod> pods) {
    auto snap = std::make_shared<model::Snapshot>();
    snap->pods = std::move(pods);
    controller_->Plan(snap, true);
    return controller_->Apply();
  }
  std::string dir_, ca_pem_;
  lib::FakeClock clock_{1'000'000'000, kStartNs};
  std::unique_ptr<CertsController> controller_;
  int publishes_ = 0;
  std::vector<IssuedCertificate> published_;
};

TEST_F(CertsControllerTest, OneCertificatePerLocalIdentityThatTheReceivingSideAccepts) {
  EXPECT_EQ(
      Reconcile({MakePod("demo", "web-1", "web", "node-a"),
                 MakePod("demo", "web-2", "web", "node-a"), MakePod("demo", "db-1", "db", "node-a"),
                 MakePod("demo", "far", "far", "node-b"),
                 MakePod("kube-system", "proxy", "host", "node-a", /*host_network=*/true),
                 // A workload posing as the node proxies' identity gets nothing.
                 MakePod("shunt-system", "evil", "shunt-proxy", "node-a")}),
      0u);
  // web, db, and the node proxy's own (every tunnel's server end).
  ASSERT_EQ(controller_->issued().size(), 3u);
  ASSERT_EQ(publishes_, 1);
  ASSERT_EQ(published_.size(), 3u);
  EXPECT_EQ(controller_->issued().at("shunt-system/shunt-proxy").id.Uri(),
            "spiffe://cluster.local/ns/shunt-system/sa/shunt-proxy");
  std::vector<std::string> warnings;
  controller_->AddWarnings(warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("pod shunt-system/evil runs as shunt-system/shunt-proxy"));
  EXPECT_THAT(controller_->ListJson().dump(), ::testing::Not(HasSubstr("evil")));
  auto verifier = PeerVerifier::Create(ca_pem_, "cluster.local");
  ASSERT_TRUE(verifier.ok());
  for (const IssuedCertificate& c : published_) {
    auto r = verifier->VerifyPem(c.cert_pem, absl::FromUnixNanos(kStartNs) + absl::Hours(1));
    EXPECT_EQ(r.refusal, Refusal::kNone) << r.detail;
    EXPECT_FALSE(c.key_pem.empty());
  }
  EXPECT_EQ(controller_->issued().at("demo/web").id.Uri(), "spiffe://cluster.local/ns/demo/sa/web");

  // The API lists identities, serials and pods, never a key.
  const std::string list = controller_->ListJson().dump();
  EXPECT_THAT(list, HasSubstr("spiffe://cluster.local/ns/demo/sa/db"));
  EXPECT_THAT(list, HasSubstr("web-2"));
  EXPECT_THAT(list, ::testing::Not(HasSubstr("PRIVATE KEY")));

  // Nothing changed: nothing reissued, nothing published.
  EXPECT_EQ(Reconcile({MakePod("demo", "web-1", "web", "node-a"),
                       MakePod("demo", "db-1", "db", "node-a")}),
            0u);
  EXPECT_EQ(publishes_, 1);
}

TEST_F(CertsControllerTest, RenewsAtHalfLifeAndDropsIdentitiesWithoutPods) {
  Reconcile({MakePod("demo", "web-1", "web", "node-a"), MakePod("demo", "db-1", "db", "node-a")});
  const std::string first = controller_->issued().at("demo/web").serial_hex;
  clock_.Advance(absl::ToInt64Nanoseconds(absl::Hours(11)));
  controller_->Tick(clock_.MonotonicMs());
  EXPECT_EQ(controller_->issued().at("demo/web").serial_hex, first) << "renewed too early";
  EXPECT_EQ(publishes_, 1);
  clock_.Advance(absl::ToInt64Nanoseconds(absl::Hours(1) + absl::Minutes(1)));
  controller_->Tick(clock_.MonotonicMs());
  EXPECT_NE(controller_->issued().at("demo/web").serial_hex, first) << "not renewed at half-life";
  EXPECT_EQ(publishes_, 2);
  EXPECT_EQ(controller_->issued().at("demo/web").not_after,
            absl::FromUnixNanos(clock_.RealtimeNs()) + absl::Hours(24));

  Reconcile({MakePod("demo", "web-1", "web", "node-a")});
  EXPECT_EQ(controller_->issued().count("demo/db"), 0u);
  EXPECT_EQ(published_.size(), 2u);  // web and the node proxy's
}

TEST_F(CertsControllerTest, ACaThatCannotIssueKeepsTheLastCertificateAndSaysWhy) {
  Reconcile({MakePod("demo", "web-1", "web", "node-a")});
  const IssuedCertificate before = controller_->issued().at("demo/web");
  // Past the CA's 72 h: renewals fail; the last certificate stays, and the
  // failure is a warning, a status count and a metric.
  clock_.Advance(absl::ToInt64Nanoseconds(absl::Hours(73)));
  controller_->Tick(clock_.MonotonicMs());
  EXPECT_EQ(controller_->issued().at("demo/web").serial_hex, before.serial_hex);
  std::vector<std::string> warnings;
  controller_->AddWarnings(warnings);
  ASSERT_EQ(warnings.size(), 2u);  // web's and the node proxy's renewals
  EXPECT_THAT(warnings[0], HasSubstr("the CA expired at"));
  EXPECT_THAT(warnings[1], HasSubstr("the CA expired at"));
  nlohmann::json status;
  controller_->AddStatus(status);
  EXPECT_EQ(status["mtls"]["issue_errors"], 2);
  std::string metrics;
  controller_->AddMetrics(metrics);
  EXPECT_THAT(metrics, HasSubstr("shunt_certificate_issue_errors_total 2"));
  // A new identity gets no certificate, and is listed with the error.
  EXPECT_EQ(Reconcile({MakePod("demo", "web-1", "web", "node-a"),
                       MakePod("demo", "new-1", "new", "node-a")}),
            3u);
  EXPECT_THAT(controller_->ListJson().dump(), HasSubstr("\"identity\":\"demo/new\""));
}

TEST(CertsControllerOffTest, WithMtlsOffNothingIsIssued) {
  lib::FakeClock clock(1, kStartNs);
  CertsController c({.clock = &clock, .options = {.node = "node-a"}, .authority = nullptr});
  auto snap = std::make_shared<model::Snapshot>();
  snap->pods = {MakePod("demo", "web-1", "web", "node-a")};
  c.Plan(snap, true);
  EXPECT_EQ(c.Apply(), 0u);
  EXPECT_TRUE(c.issued().empty());
  nlohmann::json status;
  c.AddStatus(status);
  EXPECT_EQ(status["mtls"]["mode"], "off");
}

}  // namespace
}  // namespace shunt::certs
