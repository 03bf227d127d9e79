// H2Proxy's retries (h2_proxy.h): a request sent again on a new upstream
// stream, before any of its response reached the client: its head, and
// its body as far as it was sent (at most kMaxReplay; what comes after
// follows on the new stream as it arrives).
#include "absl/strings/str_cat.h"
#include "proxy/http/h2_proxy.h"

namespace shunt::proxy::http {

bool H2Proxy::SubmitUpstream(Exchange& ex, const Destination& to, std::string* why) {
  ex.attempt_started = loop_->Now();
  ex.record.upstream = to;
  Conn* up = UpstreamFor(to);
  if (!up) {
    *why = "upstream-connect-failed";
    return false;
  }
  // A retry sends the body sent so far again, first: the new stream ends
  // after it (MoveBody) unless there was none.
  const bool again = ex.retrying;
  const bool no_body = ex.request_ended && ex.to_up.empty() && ex.request_trailers.empty() &&
                       (!again || ex.replay_body.empty());
  auto up_id = up->session->SubmitRequest(ex.replay, no_body);
  if (!up_id.ok()) {
    *why = std::string(up_id.status().message());
    return false;
  }
  ex.up = up;
  ++up->requests;
  ex.up_id = *up_id;
  up->exchanges[*up_id] = ex.id;
  ex.last_endpoint = ex.rules.endpoint;
  ex.retrying = false;
  if (again && !ex.replay_body.empty()) {
    // What of the last replayed front was not sent yet is in replay_body
    // already: only the bytes after it stay.
    ex.to_up.Consume(std::min(ex.uncredited, ex.to_up.size()));
    ByteBuffer rest = std::move(ex.to_up);
    ex.to_up.clear();
    ex.to_up.Append(ex.replay_body.view());
    ex.to_up.Append(rest.view());
    ex.uncredited = ex.replay_body.size();  // replay_body stays: a further retry's front
  }
  if (!no_body) MoveBody(ex, /*to_up=*/true);
  return true;
}

bool H2Proxy::PickRetry(Exchange& ex, bool allowed_for_failure, bool refused, Destination* next,
                        int* endpoint) {
  if (!ex.replayable || ex.local || ex.response_started || done_) return false;
  *next = ex.record.upstream;
  *endpoint = ex.last_endpoint;
  if (refused && !ex.refused_retried) {
    // Not processed by the server (RFC 9113 8.7): once more, whatever the
    // method, to the same upstream (a new connection if this one is going
    // away), outside the budget: it costs the server nothing. Not a new
    // pick of the balancer's: this attempt is not reported to it again.
    ex.refused_retried = true;
    *endpoint = -1;
    return true;
  }
  return allowed_for_failure && Idempotent(ex.record.method) &&
         ex.record.retries < ex.rules.retries && hooks_.retry &&
         hooks_.retry(ex.rules.state.get(), next, endpoint);
}

bool H2Proxy::Resubmit(Exchange& ex, const Destination& next, int endpoint) {
  ++ex.record.retries;
  ex.rules.endpoint = endpoint;
  std::string why;
  if (SubmitUpstream(ex, next, &why)) return true;
  EndAttempt(ex, true, 0);
  // Bounded: each further try takes one of the verdict's retries.
  return Retry(ex, ex.rules.retry_on_connect_failure, false);
}

bool H2Proxy::Retry(Exchange& ex, bool allowed_for_failure, bool refused) {
  Destination next;
  int endpoint = -1;
  if (!PickRetry(ex, allowed_for_failure, refused, &next, &endpoint)) return false;
  QueueRetry(ex, next, endpoint);
  return true;
}

void H2Proxy::QueueRetry(Exchange& ex, const Destination& next, int endpoint) {
  ex.up = nullptr;  // between attempts
  ex.retrying = true;
  if (pending_retries_.empty())
    loop_->Later(weak_from_this(), [](void* p) { static_cast<H2Proxy*>(p)->RunRetries(); });
  pending_retries_.push_back({ex.id, next, endpoint});
}

void H2Proxy::RunRetries() {
  std::vector<PendingRetry> now;
  now.swap(pending_retries_);
  for (const PendingRetry& r : now) {
    if (done_) return;
    Exchange* ex = Find(r.id);  // the client may have reset it meanwhile
    if (!ex || ex->local || ex->response_started) continue;
    if (!Resubmit(*ex, r.next, r.endpoint)) AnswerLocally(*ex, 502, "upstream-connect-failed");
  }
  Pump();
}

}  // namespace shunt::proxy::http
