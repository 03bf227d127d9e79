// Which protocol a connection on an L7 port speaks, from its first bytes
// (issue 17 item 1): HTTP/2 with prior knowledge (the client preface),
// HTTP/1.x (a request line: a method token, a space), or something else,
// which enforce mode denies and permissive mode passes and reports. h2c
// (an HTTP/1.1 Upgrade to h2c) starts as HTTP/1.x and is seen there.
// The caller bounds the wait (a client that sends nothing, as server-first
// protocols' clients do, is "something else" when it runs out).
#pragma once

#include "absl/strings/string_view.h"

namespace shunt::proxy::http {

enum class Detected { kNeedMore, kHttp1, kHttp2, kOther };

// From the bytes read so far (the same prefix, longer, on each call).
Detected DetectProtocol(absl::string_view first_bytes);
const char* DetectedName(Detected d);  // "need-more", "http/1", "h2", "other"

}  // namespace shunt::proxy::http
