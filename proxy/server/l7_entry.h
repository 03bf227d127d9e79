// The L7 layer's door (docs/l7.md): a pod connection the kernel sent to the
// proxy's L7 port because policy grants it only through HTTP routes
// (bpf/sock_addr.bpf.c, to_l7_proxy). Its first bytes say which protocol it
// speaks, within a bounded wait: HTTP/1.x goes to an H1Proxy, HTTP/2 with
// prior knowledge to an H2Proxy; either judges every request by the
// Runtime's L7Policy and, when allowed, forwards it to the pod it was
// going to, from the client's own address; anything else (a server-first
// protocol that sends nothing) is refused in enforce mode, and relayed as
// bytes and reported in permissive mode. Never left hanging.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/lib/unique_fd.h"
#include "agent/model/smi.h"
#include "proxy/http/h1_proxy.h"
#include "proxy/http/protocol_detect.h"
#include "proxy/loop/event_loop.h"
#include "proxy/loop/stream_io.h"
#include "proxy/server/l7_service_router.h"
#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy {

class Worker;

// Who talks to whom on one L7 connection, as the proxy established it.
struct L7Flow {
  Destination source;       // the client pod's address (port 0)
  Destination destination;  // where it was connecting (SO_ORIGINAL_DST)
  model::Subject source_identity, destination_identity;  // service accounts
  std::string source_text, destination_text;             // the same, "ns/sa"
  // A service balanced per request (its clusterIP was the destination):
  // each request goes where its router picks; no destination identity.
  std::shared_ptr<const CompiledL7Service> service;
};

class L7Entry : public EventLoop::Watcher, public std::enable_shared_from_this<L7Entry> {
 public:
  // The first bytes must come within this long (a client that waits for
  // the server to speak first is not HTTP).
  static constexpr std::chrono::milliseconds kDetectWait{3000};
  static constexpr size_t kDetectBytes = 64;

  // `client`: the pod's socket, or an in-process channel (a tunnel stream
  // from another node's pod, l7_stream_leg.h).
  static std::shared_ptr<L7Entry> Start(Worker* worker, StreamIo client, L7Flow flow);
  ~L7Entry();
  void OnEvents(uint32_t events) override;

 private:
  L7Entry(Worker* worker, StreamIo client, L7Flow flow);
  // Hands the connection on (or refuses it) once the protocol is known.
  void Decide(http::Detected what);
  void Close(bool reset);
  struct Connection;
  static void ServiceHooks(Connection* c, http::H1Proxy::Hooks* hooks);

  Worker* worker_;
  StreamIo client_;
  L7Flow flow_;
  std::string first_;  // read while detecting; given to the next stage
  EventLoop::TimerId timer_ = 0;
  bool decided_ = false;
};

// "ns/sa" as a Subject.
model::Subject SubjectOf(const std::string& identity);

}  // namespace shunt::proxy
