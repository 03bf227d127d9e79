// The compatibility suite's cases (docs/short-circuit.md has the table
// they verify): each runs a socket feature between two pods the way an
// application uses it and returns what the application saw, as text. The
// suite runs every case once on plain TCP (no agent) and once meshed, and
// the two texts must be equal; it also checks which path the meshed run
// took, from the node-side veth byte counters and the agent's counters, so
// a case cannot pass by never being short-circuited when it could be.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"
#include "test/e2e/harness/sim.h"

namespace shunt::e2e::compat {

// Which path the meshed run must take on this kernel.
enum class Path {
  kShortCircuit,  // most payload bytes socket to socket, not through the veths
  kTcp,           // all payload through the veths (the TCP/IP path)
};

struct Outcome {
  std::string seen;      // what the application saw; equal with and without the agent
  uint64_t payload = 0;  // bytes the case moved between the pods (for the path check)
};

struct CaseEnv {
  TestNode& node;
  const TestPod& client;
  const TestPod& server;
  const TestPod& proxy;  // a third pod, for cases with a program in the middle
  uint16_t port;         // fresh for each run
};

struct Case {
  const char* name;
  Path path;
  // The reason (enum shunt_tcp_reason) the meshed run must count, when it
  // takes TCP because of a socket feature; -1 when it takes TCP because the
  // receiver never read with a plain recvmsg (messages_on_tcp_until_peer_reads).
  int reason;
  std::function<absl::StatusOr<Outcome>(CaseEnv&)> run;
};

// Cases of the receive side, the send side and of real programs.
std::vector<Case> ReceiveCases();
std::vector<Case> SendCases();
std::vector<Case> ProgramCases();

// Helpers the cases share.
struct Pair {
  lib::UniqueFd client, server, listener;
};
// A connection from the client pod to the server pod on env.port; `before`
// runs on the client socket before connect(), `listen_before` on the
// listener before listen().
absl::StatusOr<Pair> Connect(CaseEnv& env, const std::function<void(int)>& before = nullptr,
                             const std::function<void(int)>& listen_before = nullptr,
                             int client_protocol = 0);
// One request/response exchange (`n` bytes each way) read with plain
// recv(): after it, both ends have been seen reading, as applications do
// before they use the feature a case is about.
absl::Status Exchange(Pair& p, size_t n);
// The client writes `data` while the server reads it (a thread), as real
// peers do; returns what the server read.
absl::StatusOr<std::string> Transfer(Pair& p, const std::string& data);
// "<size> bytes, fnv <hash>" of data.
std::string Digest(const std::string& data);
// "errno <name>" for -1, else the number.
std::string Result(long n);

}  // namespace shunt::e2e::compat
