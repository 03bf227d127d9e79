// Which SMI objects the node's proxy needs for its L7 layer (docs/l7.md):
// the TrafficTargets that protect an identity with a pod on this node (the
// receiving side judges requests, as OSM's does), and the TCPRoutes and
// HTTPRouteGroups they name. Everything else stays with the agent: a
// cluster's policy can be large, and a proxy should hold what it judges.
#pragma once

#include <set>
#include <string>

#include "agent/model/objects.h"
#include "agent/services/service_plan.h"
#include "proxy/control/proxy_config.h"

namespace shunt::mtls {

// Fills config->traffic_targets, tcp_routes and http_route_groups from
// `objects` for the destinations in `local_identities` ("ns/sa").
void SelectL7Objects(const model::Objects& objects, const std::set<std::string>& local_identities,
                     proxy::ProxyConfig* config);

// Fills config->l7_services from the service plan's entries the kernel
// flags for the L7 layer (SHUNT_SVC_F_L7), with the HTTPRouteGroups their
// splits match on from `objects`.
void SelectL7Services(const services::Plan& plan, const model::Objects& objects,
                      proxy::ProxyConfig* config);

// Fills config->upstream_http: the ports of local pods (config->local_pods)
// behind a Service port whose appProtocol says which HTTP version it speaks
// (proxy::HttpVersionOf), and sets each L7 service's upstream_http the same
// way. Call after SelectL7Services.
void SelectUpstreamHttp(const services::Plan& plan, const model::Objects& objects,
                        proxy::ProxyConfig* config);

}  // namespace shunt::mtls
