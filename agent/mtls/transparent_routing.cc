#include "agent/mtls/transparent_routing.h"

#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/unique_fd.h"

namespace shunt::mtls {
namespace {

struct Request {
  nlmsghdr nh;
  union {
    fib_rule_hdr rule;
    rtmsg route;
  };
  alignas(NLMSG_ALIGNTO) char attrs[256];
};

void AddAttr(Request& r, uint16_t type, const void* data, size_t len) {
  auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&r) + NLMSG_ALIGN(r.nh.nlmsg_len));
  a->rta_type = type;
  a->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
  memcpy(RTA_DATA(a), data, len);
  r.nh.nlmsg_len = NLMSG_ALIGN(r.nh.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

void AddU32(Request& r, uint16_t type, uint32_t v) { AddAttr(r, type, &v, sizeof(v)); }

// Sends one request and reads its acknowledgement; `ok_errno` (EEXIST on
// add, ENOENT/ESRCH on delete) counts as done.
absl::Status Talk(Request& r, const char* what, int ok_errno, int ok_errno2 = 0) {
  lib::UniqueFd s(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!s.valid()) return lib::ErrnoStatus(errno, "netlink: socket");
  r.nh.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  r.nh.nlmsg_seq = 1;
  if (send(s.get(), &r, r.nh.nlmsg_len, 0) < 0) return lib::ErrnoStatus(errno, what);
  alignas(nlmsghdr) char buf[4096];
  const ssize_t n = recv(s.get(), buf, sizeof(buf), 0);
  if (n < 0) return lib::ErrnoStatus(errno, what);
  auto* nh = reinterpret_cast<nlmsghdr*>(buf);
  if (!NLMSG_OK(nh, static_cast<size_t>(n)) || nh->nlmsg_type != NLMSG_ERROR)
    return absl::InternalError(absl::StrCat(what, ": no acknowledgement"));
  const int err = -static_cast<nlmsgerr*>(NLMSG_DATA(nh))->error;
  if (err == 0 || err == ok_errno || (ok_errno2 && err == ok_errno2)) return absl::OkStatus();
  return lib::ErrnoStatus(err, what);
}

Request Rule(uint16_t type, uint8_t family) {
  Request r{};
  r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(fib_rule_hdr));
  r.nh.nlmsg_type = type;
  if (type == RTM_NEWRULE) r.nh.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  r.rule.family = family;
  r.rule.action = FR_ACT_TO_TBL;
  r.rule.table = RT_TABLE_UNSPEC;
  AddU32(r, FRA_TABLE, kProxyRouteTable);
  AddU32(r, FRA_PRIORITY, kProxyRouteTable);
  AddU32(r, FRA_FWMARK, SHUNT_MTLS_REPLY_MARK);
  AddU32(r, FRA_FWMASK, 0xffffffff);
  return r;
}

Request Route(uint16_t type, uint8_t family) {
  Request r{};
  r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  r.nh.nlmsg_type = type;
  if (type == RTM_NEWROUTE) r.nh.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  r.route.rtm_family = family;
  r.route.rtm_dst_len = 0;
  r.route.rtm_table = RT_TABLE_UNSPEC;
  r.route.rtm_protocol = RTPROT_STATIC;
  r.route.rtm_scope = RT_SCOPE_HOST;
  r.route.rtm_type = RTN_LOCAL;
  AddU32(r, RTA_TABLE, kProxyRouteTable);
  AddU32(r, RTA_OIF, if_nametoindex("lo"));
  return r;
}

}  // namespace

absl::Status EnsureTransparentRouting() {
  for (const uint8_t family : {AF_INET, AF_INET6}) {
    const char* v = family == AF_INET ? "" : " (IPv6)";
    Request route = Route(RTM_NEWROUTE, family);
    absl::Status s = Talk(
        route, absl::StrCat("mtls: add the proxy's local route (table 5348)", v).c_str(), EEXIST);
    if (s.ok()) {
      Request rule = Rule(RTM_NEWRULE, family);
      s = Talk(rule, absl::StrCat("mtls: add the proxy's fwmark rule", v).c_str(), EEXIST);
    }
    // A node without IPv6 has no IPv6 pods to connect to either.
    if (!s.ok() && family == AF_INET6 && absl::StrContains(s.message(), strerror(EAFNOSUPPORT)))
      continue;
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status RemoveTransparentRouting() {
  absl::Status first;
  for (const uint8_t family : {AF_INET, AF_INET6}) {
    Request rule = Rule(RTM_DELRULE, family);
    absl::Status a = Talk(rule, "mtls: delete the proxy's fwmark rule", ENOENT, ESRCH);
    Request route = Route(RTM_DELROUTE, family);
    absl::Status b = Talk(route, "mtls: delete the proxy's local route", ENOENT, ESRCH);
    if (family == AF_INET6 && (absl::StrContains(a.message(), strerror(EAFNOSUPPORT)) ||
                               absl::StrContains(b.message(), strerror(EAFNOSUPPORT))))
      continue;
    if (first.ok()) first = a.ok() ? b : a;
  }
  return first;
}

}  // namespace shunt::mtls
