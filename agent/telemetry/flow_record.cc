#include "flow_record.h"

#include <cstring>

namespace shunt::telemetry {

bool DecodeFlowEvent(const void* data, size_t size, FlowRecord* out) {
  if (size != sizeof(shunt_flow) && size != sizeof(shunt_flow_event)) return false;
  const auto* ev = static_cast<const shunt_flow_event*>(data);
  std::memcpy(static_cast<shunt_flow*>(out), &ev->flow, sizeof(shunt_flow));
  if (size == sizeof(shunt_flow_event))
    std::memcpy(out->rr_hist, ev->rr_hist, sizeof(out->rr_hist));
  else
    std::memset(out->rr_hist, 0, sizeof(out->rr_hist));
  return true;
}

FlowRecord WithHist(const shunt_flow& f, const LiveHists& hists) {
  FlowRecord r;
  static_cast<shunt_flow&>(r) = f;
  if (f.rr_count == 0) return r;
  if (auto h = hists.find(FlowInstance{f.key, f.start_ns}); h != hists.end())
    std::memcpy(r.rr_hist, h->second.rr_hist, sizeof(r.rr_hist));
  return r;
}

}  // namespace shunt::telemetry
