#include "proxy/http/h1_writer.h"

#include <http_parser.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace shunt::proxy::http {
namespace {

constexpr absl::string_view kHopByHop[] = {
    "connection",        "keep-alive", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade",    "content-length"};  // framing is the proxy's, per leg

void Put(ByteBuffer* out, absl::string_view a) { out->Append(a); }
// Pieces appended in turn: no string built for them (numbers through
// absl::AlphaNum's own buffer).
void Put(ByteBuffer* out, std::initializer_list<absl::AlphaNum> pieces) {
  for (const absl::AlphaNum& p : pieces) out->Append(p.Piece());
}

void WriteHeaders(const H1Head& head, const HeaderList& extra, Framing framing, ByteBuffer* out) {
  for (const auto& [name, value] : head.headers) {
    if (IsHopByHop(name, head)) continue;
    Put(out, name);
    Put(out, ": ");
    Put(out, value);
    Put(out, "\r\n");
  }
  for (const auto& [name, value] : extra) Put(out, {name, ": ", value, "\r\n"});
  if (framing == Framing::kChunked) Put(out, "Transfer-Encoding: chunked\r\n");
  if (framing == Framing::kLength)
    Put(out, {"Content-Length: ", head.content_length < 0 ? 0 : head.content_length, "\r\n"});
}

}  // namespace

const char* ReasonPhrase(int status) {
  const char* s = http_status_str(static_cast<http_status>(status));
  return s && *s && absl::string_view(s) != "<unknown>" ? s : "Unknown";
}

bool IsHopByHop(absl::string_view name, const H1Head& head) {
  for (absl::string_view h : kHopByHop)
    if (absl::EqualsIgnoreCase(name, h)) return true;
  for (const auto& [n, v] : head.headers) {
    if (!absl::EqualsIgnoreCase(n, "connection")) continue;
    for (absl::string_view token : absl::StrSplit(v, ',')) {
      token = absl::StripAsciiWhitespace(token);
      if (!token.empty() && absl::EqualsIgnoreCase(token, name)) return true;
    }
  }
  return false;
}

void WriteRequestHead(const H1Head& head, const HeaderList& extra, Framing framing,
                      ByteBuffer* out) {
  Put(out, {head.method, " ", head.target, " HTTP/1.1\r\n"});
  WriteHeaders(head, extra, framing, out);
  if (head.upgrade) {
    Put(out, "Connection: upgrade\r\n");
    Put(out, {"Upgrade: ", head.Header("upgrade"), "\r\n"});
  }
  Put(out, "\r\n");
}

void WriteResponseHead(const H1Head& head, const HeaderList& extra, Framing framing, bool close,
                       ByteBuffer* out) {
  Put(out, {"HTTP/1.1 ", head.status, " ", ReasonPhrase(head.status), "\r\n"});
  WriteHeaders(head, extra, framing, out);
  if (head.status == 101) {
    Put(out, "Connection: upgrade\r\n");
    Put(out, {"Upgrade: ", head.Header("upgrade"), "\r\n"});
  } else if (close) {
    Put(out, "Connection: close\r\n");
  }
  Put(out, "\r\n");
}

void WriteLocalResponse(int status, const HeaderList& extra, absl::string_view body, bool close,
                        ByteBuffer* out) {
  Put(out, {"HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\n"});
  for (const auto& [name, value] : extra) Put(out, {name, ": ", value, "\r\n"});
  Put(out, {"Content-Type: text/plain\r\nContent-Length: ", body.size(), "\r\n"});
  if (close) Put(out, "Connection: close\r\n");
  Put(out, "\r\n");
  Put(out, body);
}

void WriteLocalAnswer(int status, absl::string_view header, absl::string_view reason,
                      absl::string_view route, bool close, ByteBuffer* out) {
  constexpr absl::string_view kRoute = "; route=";
  const absl::string_view phrase = ReasonPhrase(status);
  const size_t why = reason.size() + (route.empty() ? 0 : kRoute.size() + route.size());
  Put(out, {"HTTP/1.1 ", status, " ", phrase, "\r\n", header, ": "});
  // The header's value: at most 128 bytes of "REASON[; route=ROUTE]".
  size_t room = 128;
  for (absl::string_view piece : {reason, route.empty() ? absl::string_view() : kRoute, route}) {
    const absl::string_view cut = piece.substr(0, room);
    Put(out, cut);
    room -= cut.size();
  }
  Put(out,
      {"\r\nContent-Type: text/plain\r\nContent-Length: ", phrase.size() + 2 + why + 1, "\r\n"});
  if (close) Put(out, "Connection: close\r\n");
  Put(out, {"\r\n", phrase, ": ", reason});
  if (!route.empty()) Put(out, {kRoute, route});
  Put(out, "\n");
}

void WriteChunk(absl::string_view data, ByteBuffer* out) {
  if (data.empty()) return;  // an empty chunk would end the body
  Put(out, {absl::Hex(data.size()), "\r\n"});
  Put(out, data);
  Put(out, "\r\n");
}

void WriteLastChunk(ByteBuffer* out) { Put(out, "0\r\n\r\n"); }

}  // namespace shunt::proxy::http
