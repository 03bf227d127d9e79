// Writing HTTP/1.1 messages the proxy forwards or answers itself: heads
// without the hop-by-hop headers of the leg they came on (RFC 9110 7.6.1),
// framed for the leg they go on, and chunks.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "proxy/common/byte_buffer.h"
#include "proxy/http/h1_parser.h"

namespace shunt::proxy::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// How a forwarded message's body is framed on the next leg.
enum class Framing { kNone, kLength, kChunked };

// A header that belongs to one connection, not to the message: the
// standard ones and any the message's Connection header names.
bool IsHopByHop(absl::string_view name, const H1Head& head);

// "METHOD target HTTP/1.1", the end-to-end headers, `extra`, and the
// framing of the body: Content-Length, chunked, or none. An upgrade
// request keeps its Connection: upgrade and Upgrade.
void WriteRequestHead(const H1Head& head, const HeaderList& extra, Framing framing,
                      ByteBuffer* out);
// "HTTP/1.1 status reason", the end-to-end headers, `extra`, the framing;
// Connection: close when this response ends the connection.
void WriteResponseHead(const H1Head& head, const HeaderList& extra, Framing framing, bool close,
                       ByteBuffer* out);
// The proxy's own answer (403, 400, 502, 504...) saying why, with no
// string built for it (a flood of denied requests costs no allocation):
// `header` ("x-shunt-denied" or "x-shunt-error") is "REASON[; route=ROUTE]"
// cut at 128 bytes, the body "Phrase: REASON[; route=ROUTE]\n".
void WriteLocalAnswer(int status, absl::string_view header, absl::string_view reason,
                      absl::string_view route, bool close, ByteBuffer* out);
// A whole response of the proxy's own (403, 400, 502, 504...).
void WriteLocalResponse(int status, const HeaderList& extra, absl::string_view body, bool close,
                        ByteBuffer* out);
void WriteChunk(absl::string_view data, ByteBuffer* out);
void WriteLastChunk(ByteBuffer* out);

// The reason phrase of a status ("Forbidden"), or "Unknown".
const char* ReasonPhrase(int status);

}  // namespace shunt::proxy::http
