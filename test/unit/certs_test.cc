// Certificate issuing and checking (agent/certs): a CA from `shuntctl ca
// init`, workload certificates for SPIFFE IDs, and what the receiving proxy
// refuses. Checked with OpenSSL's own command line where it is the judge.
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "agent/certs/authority.h"
#include "agent/certs/peer_verifier.h"
#include "agent/certs/spiffe_id.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::certs {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1796000000);  // 2026-11

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/shunt-certs-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(absl::StrCat("rm -rf ", path_).c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::unique_ptr<Authority> NewCa(const TempDir& dir) {
  EXPECT_TRUE(InitAuthority(dir.path(), kNow).ok());
  auto ca = Authority::Load(dir.path(), kNow);
  EXPECT_TRUE(ca.ok()) << ca.status();
  return ca.ok() ? std::move(*ca) : nullptr;
}

TEST(SpiffeIdTest, ParsesTheKubernetesForm) {
  auto id = ParseSpiffeId("spiffe://cluster.local/ns/demo/sa/web-frontend");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->trust_domain, "cluster.local");
  EXPECT_EQ(id->ns, "demo");
  EXPECT_EQ(id->service_account, "web-frontend");
  EXPECT_EQ(id->Uri(), "spiffe://cluster.local/ns/demo/sa/web-frontend");
}

TEST(SpiffeIdTest, RefusesWhatTheStandardForbidsSayingWhy) {
  const std::pair<const char*, const char*> bad[] = {
      {"SPIFFE://cluster.local/ns/a/sa/b", "does not start with 'spiffe://'"},
      {"https://cluster.local/ns/a/sa/b", "does not start with 'spiffe://'"},
      {"spiffe://Cluster.local/ns/a/sa/b", "lowercase only"},
      {"spiffe://cluster.local:443/ns/a/sa/b", "no port"},
      {"spiffe://user@cluster.local/ns/a/sa/b", "no user info"},
      {"spiffe://cluster.local", "no path"},
      {"spiffe:///ns/a/sa/b", "empty trust domain"},
      {"spiffe://cluster.local/ns/a/sa/b?x=1", "query or fragment"},
      {"spiffe://cluster.local/ns/a/sa/b#f", "query or fragment"},
      {"spiffe://cluster.local/ns/a%41/sa/b", "outside [A-Za-z0-9._-]"},
      {"spiffe://cluster.local/ns/../sa/b", "dot segment"},
      {"spiffe://cluster.local/ns//sa/b", "empty namespace"},
      {"spiffe://cluster.local/ns/a/sa/b/", "is not /ns/NAMESPACE/sa/SERVICE_ACCOUNT"},
      {"spiffe://cluster.local/sa/b/ns/a", "is not /ns/NAMESPACE/sa/SERVICE_ACCOUNT"},
      {"spiffe://cluster.local/ns/a/sa", "is not /ns/NAMESPACE/sa/SERVICE_ACCOUNT"},
  };
  for (const auto& [uri, why] : bad) {
    auto id = ParseSpiffeId(uri);
    ASSERT_FALSE(id.ok()) << uri;
    EXPECT_THAT(std::string(id.status().message()), HasSubstr(why)) << uri;
  }
  EXPECT_FALSE(
      ParseSpiffeId(absl::StrCat("spiffe://td/ns/", std::string(2100, 'a'), "/sa/b")).ok());
}

TEST(AuthorityTest, InitWritesAP256CaThatOpensslAcceptsAndRefusesToOverwrite) {
  TempDir dir;
  ASSERT_TRUE(InitAuthority(dir.path(), absl::Now()).ok());
  struct stat key {};
  ASSERT_EQ(stat((dir.path() + "/ca.key").c_str(), &key), 0);
  EXPECT_EQ(key.st_mode & 0777, 0600u) << "the CA key is readable by others";
  const std::string text = Slurp(dir.path() + "/ca.crt");
  EXPECT_THAT(text, HasSubstr("BEGIN CERTIFICATE"));
  // OpenSSL itself: a CA, ECDSA on P-256, self-signed and valid.
  const std::string show = absl::StrCat("openssl x509 -noout -text -in ", dir.path(), "/ca.crt");
  FILE* p = popen(show.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  pclose(p);
  EXPECT_THAT(out, HasSubstr("CA:TRUE"));
  EXPECT_THAT(out, HasSubstr("prime256v1"));
  EXPECT_EQ(std::system(absl::StrCat("openssl verify -CAfile ", dir.path(), "/ca.crt ", dir.path(),
                                     "/ca.crt >/dev/null")
                            .c_str()),
            0);

  auto again = InitAuthority(dir.path(), absl::Now());
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.message()), HasSubstr("ca.crt exists"));
  EXPECT_EQ(Slurp(dir.path() + "/ca.crt"), text) << "the CA was overwritten";
}

TEST(AuthorityTest, LoadSaysWhatIsWrongWithTheFiles) {
  TempDir empty;
  auto missing = Authority::Load(empty.path(), kNow);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("shuntctl ca init --dir"));

  TempDir a, b;
  ASSERT_TRUE(InitAuthority(a.path(), kNow).ok());
  ASSERT_TRUE(InitAuthority(b.path(), kNow).ok());
  const std::string cert_a = Slurp(a.path() + "/ca.crt"), key_b = Slurp(b.path() + "/ca.key");
  auto mixed = Authority::FromPem(cert_a, key_b, kNow);
  EXPECT_THAT(std::string(mixed.status().message()), HasSubstr("ca.key: is not the key of ca.crt"));
  auto garbage = Authority::FromPem("not a certificate", key_b, kNow);
  EXPECT_THAT(std::string(garbage.status().message()), HasSubstr("ca.crt: not a PEM certificate"));
  auto expired =
      Authority::FromPem(cert_a, Slurp(a.path() + "/ca.key"), kNow + absl::Hours(24 * 3651));
  EXPECT_THAT(std::string(expired.status().message()), HasSubstr("ca.crt: expired at"));
}

TEST(AuthorityTest, IssuesAWorkloadCertificateThatOpensslVerifies) {
  TempDir dir;
  auto ca = NewCa(dir);
  ASSERT_NE(ca, nullptr);
  auto id = MakeSpiffeId("cluster.local", "demo", "web");
  ASSERT_TRUE(id.ok());
  auto issued = ca->Issue(*id, absl::Hours(24), absl::Now());
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_EQ(issued->not_after - issued->not_before, absl::Hours(24) + absl::Minutes(1));
  EXPECT_FALSE(issued->serial_hex.empty());
  { std::ofstream(dir.path() + "/leaf.pem") << issued->cert_pem; }
  // OpenSSL's own verification, as a TLS client and as a TLS server.
  for (const char* purpose : {"sslclient", "sslserver"}) {
    EXPECT_EQ(std::system(absl::StrCat("openssl verify -purpose ", purpose, " -CAfile ", dir.path(),
                                       "/ca.crt ", dir.path(), "/leaf.pem >/dev/null")
                              .c_str()),
              0)
        << purpose;
  }
  auto leaf = CertFromPem(issued->cert_pem, "leaf");
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(X509_check_ca(leaf->get()), 0) << "a workload certificate must not be a CA";
  auto key = KeyFromPem(issued->key_pem, "leaf key");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(X509_check_private_key(leaf->get(), key->get()), 1);
  auto named = SpiffeIdOf(leaf->get());
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(*named, *id);

  // Two certificates for one identity never share a serial or a key.
  auto second = ca->Issue(*id, absl::Hours(24), absl::Now());
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->serial_hex, issued->serial_hex);
  EXPECT_NE(second->key_pem, issued->key_pem);
}

TEST(AuthorityTest, NeverIssuesPastTheCasOwnExpiry) {
  TempDir dir;
  ASSERT_TRUE(InitAuthority(dir.path(), kNow, absl::Hours(10)).ok());
  auto ca = Authority::Load(dir.path(), kNow);
  ASSERT_TRUE(ca.ok());
  auto issued = (*ca)->Issue(*MakeSpiffeId("td", "a", "b"), absl::Hours(24), kNow);
  ASSERT_TRUE(issued.ok());
  EXPECT_EQ(issued->not_after, (*ca)->not_after());
}

class PeerVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = NewCa(dir_);
    ASSERT_NE(ca_, nullptr);
    auto v = PeerVerifier::Create(ca_->cert_pem(), "cluster.local");
    ASSERT_TRUE(v.ok()) << v.status();
    verifier_ = std::make_unique<PeerVerifier>(std::move(*v));
  }
  std::string Leaf(const char* td, absl::Duration ttl = absl::Hours(24)) {
    auto issued = ca_->Issue(*MakeSpiffeId(td, "demo", "web"), ttl, kNow);
    EXPECT_TRUE(issued.ok());
    return issued.ok() ? issued->cert_pem : "";
  }
  TempDir dir_;
  std::unique_ptr<Authority> ca_;
  std::unique_ptr<PeerVerifier> verifier_;
};

TEST_F(PeerVerifierTest, AcceptsItsCasCertificateAndNamesTheIdentity) {
  auto r = verifier_->VerifyPem(Leaf("cluster.local"), kNow + absl::Hours(1));
  EXPECT_EQ(r.refusal, Refusal::kNone) << r.detail;
  EXPECT_EQ(r.id.Uri(), "spiffe://cluster.local/ns/demo/sa/web");
}

TEST_F(PeerVerifierTest, RefusesEachWayACertificateCanBeWrong) {
  const std::string leaf = Leaf("cluster.local");
  auto expired = verifier_->VerifyPem(leaf, kNow + absl::Hours(25));
  EXPECT_EQ(expired.refusal, Refusal::kExpired);
  EXPECT_THAT(expired.detail, HasSubstr("expired at"));
  auto early = verifier_->VerifyPem(leaf, kNow - absl::Hours(1));
  EXPECT_EQ(early.refusal, Refusal::kNotYetValid);

  TempDir other_dir;
  auto other = NewCa(other_dir);
  ASSERT_NE(other, nullptr);
  auto foreign = other->Issue(*MakeSpiffeId("cluster.local", "demo", "web"), absl::Hours(24), kNow);
  ASSERT_TRUE(foreign.ok());
  auto wrong_ca = verifier_->VerifyPem(foreign->cert_pem, kNow + absl::Hours(1));
  EXPECT_EQ(wrong_ca.refusal, Refusal::kUnknownCa);
  EXPECT_THAT(wrong_ca.detail, HasSubstr("not issued by this cluster's CA"));
  // The other CA's own certificate, presented as a leaf.
  EXPECT_EQ(verifier_->VerifyPem(other->cert_pem(), kNow + absl::Hours(1)).refusal,
            Refusal::kUnknownCa);

  auto td = verifier_->VerifyPem(Leaf("other.domain"), kNow + absl::Hours(1));
  EXPECT_EQ(td.refusal, Refusal::kForeignTrustDomain);
  EXPECT_THAT(td.detail, HasSubstr("spiffe://other.domain/ns/demo/sa/web"));

  EXPECT_EQ(verifier_->VerifyPem("garbage", kNow).refusal, Refusal::kBadCertificate);
}

TEST(SpiffeIdOfTest, ACertificateWithoutExactlyOneSpiffeUriNamesNoOne) {
  // Built with OpenSSL's command line: no URI SAN, and two of them.
  TempDir dir;
  const std::string base = absl::StrCat(
      "cd ", dir.path(),
      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem "
      "-days 1 -subj /CN=x ");
  ASSERT_EQ(
      std::system((base + "-addext subjectAltName=DNS:a.b -out none.pem 2>/dev/null").c_str()), 0);
  ASSERT_EQ(
      std::system((base + "-addext subjectAltName=URI:spiffe://td/ns/a/sa/b,URI:spiffe://td/ns/c/"
                          "sa/d -out two.pem 2>/dev/null")
                      .c_str()),
      0);
  auto none = CertFromPem(Slurp(dir.path() + "/none.pem"), "none");
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(std::string(SpiffeIdOf(none->get()).status().message()), HasSubstr("no URI SAN"));
  auto two = CertFromPem(Slurp(dir.path() + "/two.pem"), "two");
  ASSERT_TRUE(two.ok());
  EXPECT_THAT(std::string(SpiffeIdOf(two->get()).status().message()), HasSubstr("2 URI SANs"));
  EXPECT_FALSE(SpiffeIdOfDer("\x30\x03\x02\x01\x01").ok());
}

}  // namespace
}  // namespace shunt::certs
