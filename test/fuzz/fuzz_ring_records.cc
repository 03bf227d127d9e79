// Fuzz target ring_records: what the agent reads from the kernel's ring
// buffers, the denial ring (DecodeDenyEvent) and the finished-flow ring
// (DecodeFlowEvent), folded into the telemetry (FlowAggregator: Ingest,
// IngestDenial, IngestLive) and rendered as the agent renders it: the flow
// list (FlowJson), `shuntctl stat` (StatJson), TrafficMetrics and the
// Prometheus text. The input is a sequence of records: a type byte (bit 0:
// flow or denial; bit 1: a live look instead of a finished flow; bit 2: a
// flow record without its histogram), a byte that sets the length near the
// record's size, then that many bytes of record.
//
// Beyond not crashing: a record decodes exactly when its size is one the
// ring carries; the aggregator never counts more flows than it was given
// nor keeps more than its bounds; every JSON answer prints (dump() throws
// on bad UTF-8) and reads back.
#include <string>

#include "agent/lib/clock.h"
#include "agent/policy/deny_log.h"
#include "agent/telemetry/flow_aggregator.h"
#include "agent/telemetry/flow_record.h"
#include "agent/telemetry/prometheus.h"
#include "agent/telemetry/stat.h"
#include "agent/telemetry/traffic_metrics.h"
#include "test/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt;
  constexpr int64_t kMono = 5'000'000'000'000, kReal = 1'700'000'000'000'000'000;
  lib::FakeClock clock(kMono, kReal);
  telemetry::FlowAggregator flows(
      {.recent_flows = 16, .max_edges = 8, .max_pod_edges = 8, .clock = &clock});
  fuzz::Bytes in(data, size);
  uint64_t finished = 0, denials = 0, scan = 0;
  while (in.left() > 0) {
    const uint8_t type = in.Byte();
    // Lengths around the records' sizes are the interesting ones: a flow
    // comes alone (bit 2) or with its histogram.
    const size_t want = !(type & 1)  ? sizeof(shunt_deny_event)
                        : (type & 4) ? sizeof(shunt_flow)
                                     : sizeof(shunt_flow_event);
    const size_t len = want - 8 + in.Byte() % 16;
    const std::string record(in.View(len));
    if (type & 1) {
      telemetry::FlowRecord f;
      const bool ok = telemetry::DecodeFlowEvent(record.data(), record.size(), &f);
      FUZZ_CHECK(
          ok == (record.size() == sizeof(shunt_flow) || record.size() == sizeof(shunt_flow_event)));
      if (!ok) continue;
      if (type & 2) {
        flows.IngestLive(f, kReal, ++scan);
        flows.EndScan(scan);
      } else {
        flows.Ingest(f);
        ++finished;
      }
      FUZZ_CHECK(nlohmann::json::accept(telemetry::FlowJson(flows.Describe(f)).dump()));
    } else {
      policy::LoggedDenial d;
      const bool ok = policy::DecodeDenyEvent(record.data(), record.size(), kReal, kMono, &d);
      FUZZ_CHECK(ok == (record.size() >= sizeof(shunt_deny_event)));
      if (!ok) continue;
      flows.IngestDenial(d.event, d.wall_time_ns);
      ++denials;
    }
    clock.Advance(1'000'000'000);
  }

  const auto totals = flows.totals();
  FUZZ_CHECK(totals.flows <= finished + denials);
  FUZZ_CHECK(totals.denials <= denials);
  FUZZ_CHECK(totals.recent <= 16 && totals.edges <= 8 && totals.pod_edges <= 8);
  for (const auto& v : flows.Since(0, 100))
    FUZZ_CHECK(nlohmann::json::accept(telemetry::FlowJson(v).dump()));
  for (const char* group : {"workload", "pod", "edge"}) {
    auto stat = telemetry::StatJson(flows, clock.RealtimeNs(), 60, group);
    FUZZ_CHECK(stat.ok());
    FUZZ_CHECK(nlohmann::json::accept(stat->dump()));
  }
  for (const char* path :
       {"/apis/metrics.smi-spec.io/v1alpha1/namespaces",
        "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/pods",
        "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments/a/edges"}) {
    auto answer = telemetry::ServeTrafficMetrics(path, "window=60s", flows, clock.RealtimeNs());
    FUZZ_CHECK(answer.status == 200);
    FUZZ_CHECK(nlohmann::json::accept(answer.body));
  }
  FUZZ_CHECK(!telemetry::RenderPrometheus(flows.Edges(), {}).empty());
  flows.TakeServerSamples();
  return 0;
}
