// shunt-l7-alloc-bench: heap allocations per request on the L7 layer's hot
// path (issue 17 item 6: "no per-request heap allocation, shown with a
// counting allocator in a benchmark"). One keep-alive HTTP/1.1 connection
// through an H1Proxy on its event-loop thread, judged by a compiled SMI
// policy (HTTPRouteGroup in RE2 sets), its trace carried on with a span of
// this hop's, each request counted as the proxy's worker counts it
// (RequestMetrics by identity and by address); a blocking client and a
// blocking upstream on 127.0.0.1 in threads of their own, which allocate
// nothing per request. Operator new is replaced in this binary and counts
// on the loop thread only. Prints allocations and bytes per request in the
// steady state (after a warm-up), and the same with a traceparent sent in.
// No root needed.
#include <arpa/inet.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include "proxy/http/h1_proxy.h"
#include "proxy/http/l7_policy.h"
#include "proxy/loop/event_loop.h"
#include "proxy/server/request_metrics.h"

namespace {

thread_local bool tl_counted = false;
thread_local bool tl_in_trace = false;
std::atomic<uint64_t> g_allocs{0}, g_bytes{0};
// Heap the loop thread holds now (malloc_usable_size of what it allocated
// minus what it freed): the memory an idle connection keeps.
std::atomic<int64_t> g_live{0};
// --where: the stack of each counted allocation while set.
std::atomic<bool> g_trace{false};

void* Allocate(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  if (tl_counted) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    g_bytes.fetch_add(n, std::memory_order_relaxed);
    g_live.fetch_add(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
    if (g_trace.load(std::memory_order_relaxed) && !tl_in_trace) {
      tl_in_trace = true;
      void* frames[24];
      const int depth = backtrace(frames, 24);
      fprintf(stderr, "--- %zu bytes %p\n", n, p);
      backtrace_symbols_fd(frames, depth, 2);
      tl_in_trace = false;
    }
  }
  return p;
}

void Free(void* p) {
  if (p && tl_counted) {
    g_live.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
    if (g_trace.load(std::memory_order_relaxed) && !tl_in_trace)
      fprintf(stderr, "+++ freed %p\n", p);
  }
  std::free(p);
}

}  // namespace

void* operator new(std::size_t n) { return Allocate(n); }
void* operator new[](std::size_t n) { return Allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return Allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return Allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { Free(p); }
void operator delete[](void* p) noexcept { Free(p); }
void operator delete(void* p, std::size_t) noexcept { Free(p); }
void operator delete[](void* p, std::size_t) noexcept { Free(p); }

namespace shunt::proxy {
namespace {

constexpr char kResponse[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// Reads until the buffer holds one full message ending at "\r\n\r\n" plus
// `body` bytes; returns false on EOF.
bool ReadMessage(int fd, char* buf, size_t cap, size_t body) {
  size_t have = 0;
  for (;;) {
    const ssize_t n = recv(fd, buf + have, cap - have, 0);
    if (n <= 0) return false;
    have += static_cast<size_t>(n);
    const char* end = static_cast<const char*>(memmem(buf, have, "\r\n\r\n", 4));
    if (end && static_cast<size_t>(end + 4 - buf) + body <= have) return true;
    if (have == cap) return false;
  }
}

// The upstream: answers each request head with kResponse, a thread per
// connection (the idle-memory phase opens a few hundred).
void ServeUpstream(int c) {
  int one = 1;
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  char buf[8192];
  while (ReadMessage(c, buf, sizeof(buf), 0))
    if (send(c, kResponse, sizeof(kResponse) - 1, MSG_NOSIGNAL) < 0) break;
  close(c);
}
void Upstream(int listener) {
  std::vector<std::thread> conns;
  for (;;) {
    const int c = accept(listener, nullptr, nullptr);
    if (c < 0) break;
    conns.emplace_back(ServeUpstream, c);
  }
  for (auto& t : conns) t.join();
}

model::HttpRouteGroup Routes() {
  model::HttpRouteGroup g;
  g.namespace_ = "shop";
  g.name = "books-api";
  g.matches = {{.name = "read", .path_regex = "/books(/.*)?", .methods = {"GET", "HEAD"}},
               {.name = "admin", .path_regex = "/admin(/.*)?"}};
  return g;
}

struct Phase {
  double allocs = 0, bytes = 0;
};

int Run(bool where, bool where_denied, bool where_idle) {
  http::L7Policy::Input in;
  in.groups = {Routes()};
  model::TrafficTarget t;
  t.namespace_ = "shop";
  t.name = "readers";
  t.destination = {"shop", "books"};
  t.sources = {{"shop", "client"}};
  t.rules = {{model::RouteKind::kHttp, "books-api", {"read"}}};
  in.targets = {t};
  auto policy = http::L7Policy::Compile(in);
  if (!policy.ok()) {
    fprintf(stderr, "policy: %s\n", std::string(policy.status().message()).c_str());
    return 1;
  }

  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
  socklen_t len = sizeof(a);
  if (bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) != 0 || listen(listener, 4)) {
    perror("upstream listener");
    return 1;
  }
  std::thread upstream(Upstream, listener);
  Destination to;
  const uint32_t lo = htonl(INADDR_LOOPBACK);
  memcpy(to.addr.data(), &lo, 4);
  to.port = ntohs(a.sin_port);

  auto loop = EventLoop::Create();
  if (!loop.ok()) return 1;
  std::unique_ptr<EventLoop> l = *std::move(loop);
  RequestMetrics metrics;
  const model::Subject source{"shop", "client"}, destination{"shop", "books"};
  const std::string source_text = "shop/client", destination_text = "shop/books";
  Destination client_addr = to;
  client_addr.port = 0;
  http::H1Proxy::Hooks hooks;
  std::vector<int> scratch;
  // As proxy/server/l7_entry.cc judges a pod's request.
  hooks.judge = [&](const http::H1Head&, const http::RequestView& view, http::ExchangeVerdict* v) {
    http::L7Policy::Decision d = (*policy)->Judge(source, destination, to.port, view, &scratch);
    v->route.assign(d.route.data(), d.route.size());
    v->reason.assign(d.reason.data(), d.reason.size());
    v->allow = d.allow;
  };
  hooks.on_request = [&](const http::H1Proxy::Record& r) {
    metrics.Add(source_text, destination_text, to.port, r.route, r.status, r.micros, r.retries);
    metrics.AddRecent(client_addr, r.upstream.port ? r.upstream : to, r.route, r.status, r.micros,
                      r.retries, r.local && r.status == 403);
  };
  // The node proxy's defaults (proxy/server/l7_entry.cc): its timers on.
  http::H1Proxy::Options options;
  options.connect_timeout_ms = 5000;
  options.stream_idle_timeout_ms = 300000;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 1;
  fcntl(sv[1], F_SETFL, O_NONBLOCK);
  std::shared_ptr<http::H1Proxy> proxy;
  l->Post([&] {
    tl_counted = true;
    proxy = http::H1Proxy::Start(l.get(), lib::UniqueFd(sv[1]), to, options, hooks);
  });
  std::thread loop_thread([&] { l->Run(); });

  const int client = sv[0];
  char buf[8192];
  auto requests = [&](const char* request, int n) {
    for (int i = 0; i < n; ++i) {
      if (send(client, request, strlen(request), MSG_NOSIGNAL) < 0 ||
          !ReadMessage(client, buf, sizeof(buf), 2))
        return false;
    }
    return true;
  };
  auto measure = [&](const char* request, int n, Phase* out) {
    // The loop counts only while it handles these requests; the counts are
    // read after the last answer, when it is idle.
    if (!requests(request, 2000)) return false;  // warm-up: buffers and series grown
    const uint64_t a0 = g_allocs.load(), b0 = g_bytes.load();
    if (!requests(request, n)) return false;
    out->allocs = static_cast<double>(g_allocs.load() - a0) / n;
    out->bytes = static_cast<double>(g_bytes.load() - b0) / n;
    return true;
  };
  const int n = 20000;
  if (where) {
    // One request's allocations, with their stacks, after the warm-up.
    // --where denied: the denied request's instead.
    const char* get = where_denied ? "GET /admin/x HTTP/1.1\r\nHost: books\r\n\r\n"
                                   : "GET /books/42 HTTP/1.1\r\nHost: books\r\nUser-Agent: "
                                     "bench\r\n\r\n";
    bool ok = requests(get, 2000);
    g_trace = true;
    ok = ok && requests(get, 1);
    g_trace = false;
    if (!ok) return 1;
  }
  Phase plain, traced, browser, denied;
  bool ok =
      measure("GET /books/42 HTTP/1.1\r\nHost: books\r\nUser-Agent: bench\r\n\r\n", n, &plain) &&
      measure(
          "GET /books/42 HTTP/1.1\r\nHost: books\r\nUser-Agent: bench\r\ntraceparent: "
          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
          n, &traced) &&
      // Header values longer than a string keeps inline (15 bytes).
      measure(
          "GET /books/42?page=2 HTTP/1.1\r\nHost: books.shop.svc.cluster.local\r\n"
          "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101\r\n"
          "Accept: application/json, text/plain, */*\r\nAccept-Language: en-US,en;q=0.5\r\n"
          "Cookie: session=0123456789abcdef0123456789abcdef\r\n\r\n",
          n, &browser) &&
      measure("GET /admin/x HTTP/1.1\r\nHost: books\r\n\r\n", n, &denied);
  // The heap an idle keep-alive connection keeps: kIdle more connections,
  // one request answered on each, then left open.
  constexpr int kIdle = 200;
  std::vector<std::shared_ptr<http::H1Proxy>> idle_proxies;
  std::vector<int> idle_clients;
  std::mutex idle_mu;
  const int64_t live0 = g_live.load();
  bool idle_ok = ok;
  for (int i = 0; i < kIdle && idle_ok; ++i) {
    // --where idle: what the last one allocates and keeps.
    if (where_idle && i == kIdle - 1) g_trace = true;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) break;
    fcntl(pair[1], F_SETFL, O_NONBLOCK);
    const int theirs = pair[1];
    l->Post([&, theirs] {
      auto p = http::H1Proxy::Start(l.get(), lib::UniqueFd(theirs), to, options, hooks);
      std::lock_guard<std::mutex> lock(idle_mu);
      idle_proxies.push_back(std::move(p));
    });
    const char* get = "GET /books/42 HTTP/1.1\r\nHost: books\r\nUser-Agent: bench\r\n\r\n";
    idle_ok = send(pair[0], get, strlen(get), MSG_NOSIGNAL) > 0 &&
              ReadMessage(pair[0], buf, sizeof(buf), 2);
    idle_clients.push_back(pair[0]);
  }
  g_trace = false;
  const double idle_bytes = static_cast<double>(g_live.load() - live0) / kIdle;
  ok = ok && idle_ok;
  for (int c : idle_clients) shutdown(c, SHUT_RDWR);
  shutdown(client, SHUT_RDWR);
  l->Post([&] {
    proxy.reset();
    std::lock_guard<std::mutex> lock(idle_mu);
    idle_proxies.clear();
  });
  l->Stop();
  loop_thread.join();
  shutdown(listener, SHUT_RDWR);
  close(listener);
  upstream.join();
  close(client);
  for (int c : idle_clients) close(c);
  if (!ok) {
    fprintf(stderr, "the exchange broke off\n");
    return 1;
  }
  printf(
      "L7 hot path, HTTP/1.1 keep-alive, %d requests each after 2000 warm-up (loop thread "
      "only):\n",
      n);
  printf("  %-44s %8s %10s\n", "request", "allocs", "bytes");
  printf("  %-44s %8.2f %10.1f\n", "allowed GET, forwarded", plain.allocs, plain.bytes);
  printf("  %-44s %8.2f %10.1f\n", "allowed GET with traceparent, forwarded", traced.allocs,
         traced.bytes);
  printf("  %-44s %8.2f %10.1f\n", "allowed GET, browser-like long headers", browser.allocs,
         browser.bytes);
  printf("  %-44s %8.2f %10.1f\n", "denied GET (403 from the proxy)", denied.allocs, denied.bytes);
  printf("target (issue 17 item 6): 0 allocations per request on the hot path\n");
  printf(
      "heap an idle keep-alive connection keeps (after one request; %d connections): %.0f "
      "bytes\n",
      kIdle, idle_bytes);
  return 0;
}

}  // namespace
}  // namespace shunt::proxy

int main(int argc, char** argv) {
  const bool where = argc > 1 && std::string(argv[1]) == "--where";
  const std::string what = where && argc > 2 ? argv[2] : "";
  return shunt::proxy::Run(where && what != "idle", what == "denied", what == "idle");
}
