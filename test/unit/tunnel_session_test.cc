// The tunnel's HTTP/2 CONNECT streams (proxy/tunnel), a client and a server
// session wired back to back in memory: bytes both ways, half-close, per
// stream flow control, refusals and resets that end one stream only, and
// input that ends the session at a bounded cost.
#include "proxy/tunnel/tunnel_session.h"

#include <cstring>
#include <map>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/tunnel/connect_authority.h"
#include "test/e2e/harness/status_matchers.h"

namespace shunt::proxy {
namespace {

using ::testing::HasSubstr;

struct End {
  std::unique_ptr<TunnelSession> s;
  std::map<int32_t, std::string> got;
  std::set<int32_t> eof;
  std::map<int32_t, uint32_t> closed;
  std::map<int32_t, int> status;
  std::vector<std::string> connects;
  std::set<int32_t> hold;  // streams whose bytes are not consumed (a pod not reading)
  std::map<int32_t, size_t> held;

  TunnelSession::Events Events(std::function<void(int32_t, absl::string_view)> on_connect) {
    return {.on_connect = std::move(on_connect),
            .on_response = [this](int32_t id, int st) { status[id] = st; },
            .on_data =
                [this](int32_t id, absl::string_view d) {
                  got[id].append(d.data(), d.size());
                  if (hold.count(id))
                    held[id] += d.size();
                  else
                    s->Consumed(id, d.size());
                },
            .on_peer_eof = [this](int32_t id) { eof.insert(id); },
            .on_close = [this](int32_t id, uint32_t code) { closed[id] = code; },
            .on_send_space = nullptr};
  }
};

class TunnelSessionTest : public ::testing::Test {
 protected:
  void SetUp() override { Make({}); }
  void Make(const TunnelLimits& server_limits) {
    auto c = TunnelSession::Create(TunnelSession::Role::kClient, {}, client_.Events(nullptr));
    ASSERT_TRUE(c.ok()) << c.status();
    client_.s = std::move(*c);
    auto s = TunnelSession::Create(TunnelSession::Role::kServer, server_limits,
                                   server_.Events([this](int32_t id, absl::string_view a) {
                                     server_.connects.emplace_back(a);
                                     if (ParseConnectAuthority(a).ok())
                                       server_.s->Accept(id);
                                     else
                                       server_.s->Refuse(id, 400);
                                   }));
    ASSERT_TRUE(s.ok()) << s.status();
    server_.s = std::move(*s);
  }
  // Moves bytes both ways until neither side has anything to say.
  void Pump() {
    for (int i = 0; i < 10000; ++i) {
      std::string a, b;
      client_.s->TakeOutput(&a);
      if (!a.empty()) {
        ASSERT_TRUE(server_.s->Receive(a).ok());
      }
      server_.s->TakeOutput(&b);
      if (!b.empty()) {
        ASSERT_TRUE(client_.s->Receive(b).ok());
      }
      if (a.empty() && b.empty()) return;
    }
    FAIL() << "the sessions never went quiet";
  }
  // Sends all of `data` on the client's stream `id`, pumping as the
  // stream's buffer fills.
  void SendAll(End& from, int32_t id, const std::string& data) {
    size_t off = 0;
    for (int i = 0; off < data.size() && i < 100000; ++i) {
      off += from.s->Send(id, absl::string_view(data).substr(off));
      Pump();
    }
    ASSERT_EQ(off, data.size()) << "the stream stopped taking bytes";
  }
  End client_, server_;
};

std::string Bytes(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 + (i >> 9));
  return s;
}

TEST_F(TunnelSessionTest, AStreamCarriesBytesBothWaysAndHalfClosesEachWay) {
  ASSERT_OK_AND_ASSIGN(int32_t id, client_.s->OpenStream("10.244.1.7:8080"));
  Pump();
  ASSERT_EQ(server_.connects, std::vector<std::string>{"10.244.1.7:8080"});
  EXPECT_EQ(client_.status[id], 200);
  const std::string up = Bytes(3 << 20, 1), down = Bytes(1 << 20, 2);
  SendAll(client_, id, up);
  client_.s->CloseWrite(id);
  Pump();
  EXPECT_EQ(server_.got[id], up);
  EXPECT_TRUE(server_.eof.count(id)) << "the client's FIN did not arrive";
  EXPECT_EQ(client_.closed.count(id), 0u) << "half-close ended the stream";
  SendAll(server_, id, down);
  server_.s->CloseWrite(id);
  Pump();
  EXPECT_EQ(client_.got[id], down);
  EXPECT_TRUE(client_.eof.count(id));
  EXPECT_EQ(client_.closed.at(id), 0u);
  EXPECT_EQ(server_.closed.at(id), 0u);
  EXPECT_EQ(client_.s->open_streams(), 0u);
  EXPECT_EQ(server_.s->open_streams(), 0u);
}

TEST_F(TunnelSessionTest, APodThatStopsReadingStallsOnlyItsOwnStream) {
  ASSERT_OK_AND_ASSIGN(int32_t slow, client_.s->OpenStream("10.244.1.7:80"));
  ASSERT_OK_AND_ASSIGN(int32_t fast, client_.s->OpenStream("10.244.1.8:80"));
  Pump();
  server_.hold.insert(slow);
  const std::string data = Bytes(2 << 20, 3);
  // The slow stream takes what its window and its send buffer hold, then
  // nothing more; the fast one carries everything meanwhile.
  size_t queued = 0;
  for (int i = 0; i < 100; ++i) {
    queued += client_.s->Send(slow, absl::string_view(data).substr(queued));
    Pump();
  }
  EXPECT_LE(server_.got[slow].size(), TunnelLimits{}.stream_window);
  EXPECT_LE(queued, TunnelLimits{}.stream_window + TunnelLimits{}.send_buffer);
  SendAll(client_, fast, data);
  EXPECT_EQ(server_.got[fast], data);
  // The pod reads again: the rest follows, in order.
  server_.hold.erase(slow);
  server_.s->Consumed(slow, server_.held[slow]);
  Pump();
  SendAll(client_, slow, data.substr(queued));
  EXPECT_EQ(server_.got[slow], data);
}

TEST_F(TunnelSessionTest, RefusalsAndResetsEndOneStreamAndLeaveTheOthers) {
  ASSERT_OK_AND_ASSIGN(int32_t bad, client_.s->OpenStream("pod.example:80"));
  ASSERT_OK_AND_ASSIGN(int32_t good, client_.s->OpenStream("10.244.1.7:80"));
  ASSERT_OK_AND_ASSIGN(int32_t reset, client_.s->OpenStream("10.244.1.9:80"));
  Pump();
  EXPECT_EQ(client_.status[bad], 400);
  EXPECT_TRUE(client_.closed.count(bad));
  client_.s->Reset(reset, NGHTTP2_CANCEL);
  Pump();
  EXPECT_EQ(server_.closed.at(reset), static_cast<uint32_t>(NGHTTP2_CANCEL));
  SendAll(client_, good, "still here");
  EXPECT_EQ(server_.got[good], "still here");
  EXPECT_TRUE(client_.s->alive() && server_.s->alive());
}

TEST_F(TunnelSessionTest, ThePeersStreamLimitHolds) {
  TunnelLimits few;
  few.max_streams = 4;
  Make(few);
  Pump();  // the server's SETTINGS reach the client
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(client_.s->OpenStream("10.244.1.7:80").ok());
  auto fifth = client_.s->OpenStream("10.244.1.7:80");
  EXPECT_EQ(fifth.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(TunnelSessionTest, NotHttp2EndsTheSession) {
  auto r = server_.s->Receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(server_.s->alive());
}

TEST_F(TunnelSessionTest, APingFloodEndsTheSessionAtABoundedCost) {
  std::string flood = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  flood += std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);  // empty SETTINGS
  const std::string ping(
      "\x00\x00\x08\x06\x00\x00\x00\x00\x00"
      "12345678",
      17);
  for (int i = 0; i < 100000; ++i) flood += ping;
  // The answers are never read: the library stops at its outbound limit.
  absl::Status r = server_.s->Receive(flood);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.message()), HasSubstr("Flooding"));
  EXPECT_FALSE(server_.s->alive());
}

// A peer speaking plain HTTP/2 (nghttp2's own client) with another method
// than CONNECT gets 405 on that stream; nothing is tunnelled.
TEST_F(TunnelSessionTest, OnlyConnectIsTunnelled) {
  nghttp2_session_callbacks* cbs = nullptr;
  ASSERT_EQ(nghttp2_session_callbacks_new(&cbs), 0);
  nghttp2_session_callbacks_set_on_header_callback(
      cbs, [](nghttp2_session*, const nghttp2_frame*, const uint8_t* name, size_t namelen,
              const uint8_t* value, size_t valuelen, uint8_t, void* status) {
        if (absl::string_view(reinterpret_cast<const char*>(name), namelen) == ":status")
          *static_cast<std::string*>(status) =
              std::string(reinterpret_cast<const char*>(value), valuelen);
        return 0;
      });
  std::string status;
  nghttp2_session* raw = nullptr;
  ASSERT_EQ(nghttp2_session_client_new(&raw, cbs, &status), 0);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_submit_settings(raw, NGHTTP2_FLAG_NONE, nullptr, 0);
  auto nv = [](const char* n, const char* v) {
    return nghttp2_nv{(uint8_t*)n, (uint8_t*)v, strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE};
  };
  const nghttp2_nv get[] = {nv(":method", "GET"), nv(":scheme", "http"), nv(":path", "/"),
                            nv(":authority", "10.244.1.7:80")};
  ASSERT_GT(nghttp2_submit_request(raw, nullptr, get, 4, nullptr, nullptr), 0);
  for (int i = 0; i < 10; ++i) {
    const uint8_t* data = nullptr;
    std::string to_server, to_client;
    for (ssize_t n; (n = nghttp2_session_mem_send(raw, &data)) > 0;)
      to_server.append(reinterpret_cast<const char*>(data), n);
    if (!to_server.empty()) ASSERT_OK(server_.s->Receive(to_server));
    server_.s->TakeOutput(&to_client);
    nghttp2_session_mem_recv(raw, reinterpret_cast<const uint8_t*>(to_client.data()),
                             to_client.size());
  }
  nghttp2_session_del(raw);
  EXPECT_EQ(status, "405");
  EXPECT_TRUE(server_.connects.empty());
  EXPECT_EQ(server_.s->open_streams(), 0u);
}

TEST(ConnectAuthorityTest, ReadsPodAddressesAndRefusesEverythingElseSayingWhy) {
  auto v4 = ParseConnectAuthority("10.244.1.7:8080");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_EQ(v4->port, 8080);
  EXPECT_EQ(v4->ToAuthority(), "10.244.1.7:8080");
  auto v6 = ParseConnectAuthority("[fd00:10:244::7]:443");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->family, AF_INET6);
  EXPECT_EQ(v6->ToAuthority(), "[fd00:10:244::7]:443");
  const std::pair<const char*, const char*> bad[] = {
      {"", "empty"},
      {"10.244.1.7", "no port"},
      {"10.244.1.7:0", "not 1..65535"},
      {"10.244.1.7:65536", "not 1..65535"},
      {"10.244.1.7:080", "not 1..65535"},
      {"10.244.1.7:+80", "not a decimal number"},
      {"10.244.1.7:80 ", "not a decimal number"},
      {"web.demo.svc:80", "host names are not tunnelled"},
      {"010.244.1.7:80", "host names are not tunnelled"},
      {"fd00::7:80", "must be in brackets"},
      {"[fd00::7%eth0]:80", "zone"},
      {"[10.244.1.7]:80", "not an IPv6 address"},
      {"[::ffff:10.244.1.7]:80", "IPv4-mapped"},
      {"[fd00::7:80", "unclosed"},
  };
  for (const auto& [text, why] : bad) {
    auto d = ParseConnectAuthority(text);
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_THAT(std::string(d.status().message()), HasSubstr(why)) << text;
  }
  EXPECT_FALSE(ParseConnectAuthority(std::string(100, '1') + ":80").ok());
}

}  // namespace
}  // namespace shunt::proxy
