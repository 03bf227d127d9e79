// The agent's one HTTP layer, part 1: what a request and a response are,
// and the table of routes each controller adds its own to. The server
// (server.h) finds a route here and runs its handler where the route says.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace shunt::http {

struct Request {
  std::string method;                        // "GET", "POST"
  std::string path;                          // without the query string, percent-decoded
  std::map<std::string, std::string> query;  // decoded; a repeated key keeps its last value
  std::string raw_query;                     // as sent, for handlers that parse it themselves
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Where a handler runs.
enum class RunsOn {
  // On the agent's loop, between reconciles: it may read any controller's
  // state. The default.
  kLoop,
  // On the server's own thread, so it answers while the loop is busy or
  // stuck (health checks): only atomics and thread-safe state.
  kServer,
};

using Handler = std::function<Response(const Request&)>;

struct Route {
  std::string method;
  std::string path;
  Handler handler;
  RunsOn runs_on = RunsOn::kLoop;
};

class Router {
 public:
  void Add(std::string method, std::string path, Handler handler, RunsOn runs_on = RunsOn::kLoop);
  // Adds `handler` for every path that starts with `prefix` (the SMI
  // TrafficMetrics API's many paths).
  void AddPrefix(std::string method, std::string prefix, Handler handler,
                 RunsOn runs_on = RunsOn::kLoop);
  // The route for method and path, or nullptr; `path_known` tells a 405 from a 404.
  const Route* Find(const std::string& method, const std::string& path, bool* path_known) const;
  std::vector<std::string> Paths() const;

 private:
  std::vector<Route> exact_;
  std::vector<Route> prefixes_;
};

// A JSON body; invalid UTF-8 in strings is replaced, never thrown on.
Response Json(const nlohmann::json& body, int status = 200);
// {"error": message}, the local API's error shape.
Response Error(int status, const std::string& message);
Response Text(int status, std::string body);

// "a=1&b=x%2Fy" -> {a: 1, b: x/y}; '+' is a space.
std::map<std::string, std::string> ParseQuery(const std::string& query);
std::string PercentDecode(const std::string& s);
std::string PercentEncode(const std::string& s);  // for clients building targets

}  // namespace shunt::http
