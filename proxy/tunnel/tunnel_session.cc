#include "proxy/tunnel/tunnel_session.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace shunt::proxy {
namespace {

TunnelSession* Self(void* p) { return static_cast<TunnelSession*>(p); }

nghttp2_nv Header(absl::string_view name, absl::string_view value) {
  return nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
                    const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())),
                    name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
}

absl::Status Nghttp2Error(absl::string_view what, long rv) {
  return absl::InternalError(
      absl::StrCat("tunnel: ", what, ": ", nghttp2_strerror(static_cast<int>(rv))));
}

}  // namespace

TunnelSession::TunnelSession(Role role, const TunnelLimits& limits, Events events)
    : role_(role), limits_(limits), events_(std::move(events)) {}

TunnelSession::~TunnelSession() {
  if (session_) nghttp2_session_del(session_);
}

absl::StatusOr<std::unique_ptr<TunnelSession>> TunnelSession::Create(Role role,
                                                                     const TunnelLimits& limits,
                                                                     Events events) {
  std::unique_ptr<TunnelSession> t(new TunnelSession(role, limits, std::move(events)));
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_option* opt = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
    return absl::ResourceExhaustedError("tunnel: out of memory");
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &TunnelSession::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &TunnelSession::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &TunnelSession::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &TunnelSession::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &TunnelSession::OnStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &TunnelSession::OnFrameSend);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &TunnelSession::SendDataFrame);
  // Windows open as bytes reach the pods (Consumed), not as they arrive.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_settings(opt, 32);
  int rv = role == Role::kClient ? nghttp2_session_client_new2(&t->session_, cbs, t.get(), opt)
                                 : nghttp2_session_server_new2(&t->session_, cbs, t.get(), opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  if (rv != 0) return Nghttp2Error("new session", rv);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(limits.max_header_list)},
  };
  rv = nghttp2_submit_settings(t->session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  if (rv != 0) return Nghttp2Error("settings", rv);
  rv = nghttp2_session_set_local_window_size(t->session_, NGHTTP2_FLAG_NONE, 0,
                                             static_cast<int32_t>(limits.session_window));
  if (rv != 0) return Nghttp2Error("session window", rv);
  return t;
}

TunnelSession::Stream* TunnelSession::Find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

size_t TunnelSession::queued(int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.send.size();
}

size_t TunnelSession::SendRoom(int32_t id) {
  Stream* s = Find(id);
  if (!s || s->write_closed || failed_) return 0;
  const size_t buffered = s->send.size();
  if (buffered >= limits_.send_buffer) {
    s->wanted_space = true;
    return 0;
  }
  return limits_.send_buffer - buffered;
}

bool TunnelSession::alive() const {
  return !failed_ && (nghttp2_session_want_read(session_) || nghttp2_session_want_write(session_));
}

absl::Status TunnelSession::Receive(absl::string_view bytes) {
  if (failed_) return absl::FailedPreconditionError("tunnel: session already failed");
  const ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (rv >= 0) return absl::OkStatus();
  // Fatal for the whole session (bad preface, a flood the library
  // refuses): say so to the peer if it still can, end every stream.
  failed_ = true;
  nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
  std::map<int32_t, Stream> ended;
  ended.swap(streams_);
  for (const auto& [id, s] : ended)
    if (events_.on_close) events_.on_close(id, NGHTTP2_INTERNAL_ERROR);
  return Nghttp2Error("receive", rv);
}

bool TunnelSession::TakeOutput(std::string* out) {
  ByteBuffer b;
  const bool alive = TakeOutput(&b);
  out->append(b.data(), b.size());
  return alive;
}

bool TunnelSession::TakeOutput(ByteBuffer* out) {
  const size_t before = out->size();
  sink_ = out;
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) break;
    out->Append({reinterpret_cast<const char*>(data), static_cast<size_t>(n)});
  }
  sink_ = nullptr;
  // Room made while framing: tell the owners now, outside nghttp2's calls.
  std::vector<int32_t> room;
  for (auto& [id, s] : streams_) {
    if (s.wanted_space && s.send.size() <= limits_.send_buffer / 2) {
      s.wanted_space = false;
      room.push_back(id);
    }
  }
  for (int32_t id : room)
    if (events_.on_send_space) events_.on_send_space(id);
  return out->size() > before || alive();
}

absl::string_view TunnelSession::forwarded(int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? absl::string_view() : absl::string_view(it->second.forwarded);
}

bool TunnelSession::can_open() const {
  return !failed_ && nghttp2_session_want_read(session_) &&
         nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) >
             streams_.size();
}

absl::StatusOr<int32_t> TunnelSession::OpenStream(absl::string_view authority,
                                                  absl::string_view forwarded) {
  if (role_ != Role::kClient)
    return absl::FailedPreconditionError("tunnel: server opens no stream");
  if (failed_ || !nghttp2_session_want_read(session_))
    return absl::UnavailableError("tunnel: session closed");
  if (nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) <=
      streams_.size())
    return absl::ResourceExhaustedError("tunnel: the peer allows no more streams now");
  const nghttp2_nv nva[] = {Header(":method", "CONNECT"), Header(":authority", authority),
                            Header("forwarded", forwarded)};
  nghttp2_data_provider provider{};
  provider.read_callback = &TunnelSession::ReadData;
  const int32_t id = nghttp2_submit_request(
      session_, nullptr, nva, std::size(nva) - (forwarded.empty() ? 1 : 0), &provider, nullptr);
  if (id < 0) return Nghttp2Error("open stream", id);
  Stream& s = streams_[id];
  s.authority = std::string(authority);
  s.providing = true;
  return id;
}

void TunnelSession::Accept(int32_t id) {
  Stream* s = Find(id);
  if (!s || s->providing) return;
  const nghttp2_nv nva[] = {Header(":status", "200")};
  nghttp2_data_provider provider{};
  provider.read_callback = &TunnelSession::ReadData;
  if (nghttp2_submit_response(session_, id, nva, std::size(nva), &provider) == 0)
    s->providing = true;
}

void TunnelSession::Refuse(int32_t id, int http_status) {
  Stream* s = Find(id);
  if (!s || s->providing) return;
  const std::string status = absl::StrCat(http_status);
  const nghttp2_nv nva[] = {Header(":status", status)};
  // A response with END_STREAM and no body; once it is out, RST_STREAM
  // (NO_ERROR) follows (OnFrameSend, RFC 9113 8.1): the client's half ends
  // too, and whatever it sent optimistically is not waited for.
  nghttp2_submit_response(session_, id, nva, std::size(nva), nullptr);
  s->providing = true;
  s->write_closed = true;
  s->refused = true;
}

size_t TunnelSession::Send(int32_t id, absl::string_view data) {
  const size_t n = std::min(SendRoom(id), data.size());
  char* space = n > 0 ? SendSpace(id, n) : nullptr;
  if (!space) return 0;
  memcpy(space, data.data(), n);
  CommitSend(id, n);
  if (n < data.size()) Find(id)->wanted_space = true;
  return n;
}

char* TunnelSession::SendSpace(int32_t id, size_t n) {
  Stream* s = Find(id);
  if (!s || s->write_closed || failed_) return nullptr;
  return s->send.Reserve(n);
}

void TunnelSession::CommitSend(int32_t id, size_t n) {
  Stream* s = Find(id);
  if (!s || n == 0) return;
  s->send.Commit(n);
  Kick(*s, id);
}

void TunnelSession::CloseWrite(int32_t id) {
  Stream* s = Find(id);
  if (!s || s->write_closed) return;
  s->write_closed = true;
  Kick(*s, id);
}

void TunnelSession::Kick(Stream& s, int32_t id) {
  if (s.deferred) {
    s.deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
}

void TunnelSession::Reset(int32_t id, uint32_t error_code) {
  if (Find(id)) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
}

void TunnelSession::Consumed(int32_t id, size_t n) {
  if (n == 0 || failed_) return;
  if (nghttp2_session_consume(session_, id, n) != 0)
    nghttp2_session_consume_connection(session_, n);  // the stream is gone: the tunnel's share
}

void TunnelSession::Shutdown() {
  if (failed_) return;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
}

// How much of the stream's buffer the next DATA frame carries; the bytes
// themselves are written by SendDataFrame, straight from the buffer.
ssize_t TunnelSession::ReadData(nghttp2_session*, int32_t id, uint8_t*, size_t length,
                                uint32_t* flags, nghttp2_data_source*, void* self) {
  Stream* s = Self(self)->Find(id);
  if (!s) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  const size_t avail = s->send.size();
  const size_t n = std::min(avail, length);
  if (n == avail && s->write_closed) *flags |= NGHTTP2_DATA_FLAG_EOF;
  if (n > 0) {
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    return static_cast<ssize_t>(n);
  }
  if (s->write_closed) return 0;  // END_STREAM alone
  s->deferred = true;
  return NGHTTP2_ERR_DEFERRED;
}

int TunnelSession::SendDataFrame(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                                 size_t length, nghttp2_data_source*, void* self) {
  TunnelSession* t = Self(self);
  Stream* s = t->Find(frame->hd.stream_id);
  // Only during TakeOutput, for a stream whose ReadData just said `length`.
  if (!t->sink_ || !s || s->send.size() < length) return NGHTTP2_ERR_CALLBACK_FAILURE;
  ByteBuffer& out = *t->sink_;
  out.Append({reinterpret_cast<const char*>(framehd), 9});
  const size_t pad = frame->data.padlen;  // none of ours pads; kept exact anyway
  if (pad > 0) out.Append(std::string(1, static_cast<char>(pad - 1)));
  out.Append({s->send.data(), length});
  if (pad > 1) out.Append(std::string(pad - 1, '\0'));
  s->send.Consume(length);
  return 0;
}

int TunnelSession::OnBeginHeaders(nghttp2_session*, const nghttp2_frame* f, void* self) {
  TunnelSession* t = Self(self);
  if (t->role_ == Role::kServer && f->hd.type == NGHTTP2_HEADERS &&
      f->headers.cat == NGHTTP2_HCAT_REQUEST)
    t->streams_[f->hd.stream_id];
  return 0;
}

int TunnelSession::OnHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name,
                            size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                            void* self) {
  TunnelSession* t = Self(self);
  Stream* s = t->Find(f->hd.stream_id);
  if (!s) return 0;
  const absl::string_view n(reinterpret_cast<const char*>(name), namelen);
  const absl::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (t->role_ == Role::kServer) {
    if (n == ":authority") s->authority = std::string(v);
    if (n == "forwarded") s->forwarded = std::string(v);
    // Only CONNECT is tunnelled: any other method is refused on its stream.
    if (n == ":method" && v != "CONNECT") s->status = 405;
  } else if (n == ":status") {
    int code = 0;
    for (char c : v) code = code * 10 + (c >= '0' && c <= '9' ? c - '0' : 0);
    s->status = code;
  }
  return 0;
}

int TunnelSession::OnFrameRecv(nghttp2_session*, const nghttp2_frame* f, void* self) {
  TunnelSession* t = Self(self);
  const int32_t id = f->hd.stream_id;
  Stream* s = t->Find(id);
  if (!s) return 0;
  if (f->hd.type == NGHTTP2_HEADERS) {
    if (t->role_ == Role::kServer && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
      if (s->status == 405) {
        t->Refuse(id, 405);
      } else if (t->events_.on_connect) {
        t->events_.on_connect(id, s->authority);
      }
    } else if (t->role_ == Role::kClient && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
      if (t->events_.on_response) t->events_.on_response(id, s->status);
    }
  }
  if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
      (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && t->Find(id) && t->events_.on_peer_eof)
    t->events_.on_peer_eof(id);
  return 0;
}

int TunnelSession::OnFrameSend(nghttp2_session* session, const nghttp2_frame* f, void* self) {
  if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR)
    Self(self)->goaway_error_ = f->goaway.error_code;
  Stream* s = Self(self)->Find(f->hd.stream_id);
  if (s && s->refused && f->hd.type == NGHTTP2_HEADERS)
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
  return 0;
}

int TunnelSession::OnDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data,
                               size_t len, void* self) {
  TunnelSession* t = Self(self);
  if (!t->Find(id)) {
    t->Consumed(id, len);  // a stream we already ended: give the window back
    return 0;
  }
  if (t->events_.on_data) t->events_.on_data(id, {reinterpret_cast<const char*>(data), len});
  return 0;
}

int TunnelSession::OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* self) {
  TunnelSession* t = Self(self);
  if (t->streams_.erase(id) == 0) return 0;
  if (t->events_.on_close) t->events_.on_close(id, error_code);
  return 0;
}

}  // namespace shunt::proxy
