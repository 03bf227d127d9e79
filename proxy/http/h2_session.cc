#include "proxy/http/h2_session.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace shunt::proxy::http {
namespace {

H2Session* Self(void* p) { return static_cast<H2Session*>(p); }

absl::Status Nghttp2Error(absl::string_view what, long rv) {
  return absl::InternalError(
      absl::StrCat("h2: ", what, ": ", nghttp2_strerror(static_cast<int>(rv))));
}

// nghttp2 reads the names and values during the submit call only (it
// copies them into its own frame), so views of `headers` are enough.
std::vector<nghttp2_nv> ToNv(const H2Headers& headers) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size());
  for (const auto& [n, v] : headers) {
    nva.push_back(nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(n.data())),
                             const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v.data())),
                             n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nva;
}

}  // namespace

H2Session::H2Session(Role role, const H2Limits& limits, Events events)
    : role_(role), limits_(limits), events_(std::move(events)) {}

H2Session::~H2Session() {
  if (session_) nghttp2_session_del(session_);
}

absl::StatusOr<std::unique_ptr<H2Session>> H2Session::Create(Role role, const H2Limits& limits,
                                                             Events events) {
  std::unique_ptr<H2Session> t(new H2Session(role, limits, std::move(events)));
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_option* opt = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
    return absl::ResourceExhaustedError("h2: out of memory");
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &H2Session::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &H2Session::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &H2Session::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2Session::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2Session::OnStreamClose);
  // Windows open as bodies are passed on (Consumed), not as they arrive.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_max_send_header_block_length(opt, 2 * limits.max_header_list);
  int rv = role == Role::kClient ? nghttp2_session_client_new2(&t->session_, cbs, t.get(), opt)
                                 : nghttp2_session_server_new2(&t->session_, cbs, t.get(), opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  if (rv != 0) return Nghttp2Error("new session", rv);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(limits.max_header_list)},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  // A server does not send ENABLE_PUSH (RFC 9113 6.5.2 lets only clients).
  const size_t n = role == Role::kClient ? std::size(settings) : std::size(settings) - 1;
  rv = nghttp2_submit_settings(t->session_, NGHTTP2_FLAG_NONE, settings, n);
  if (rv != 0) return Nghttp2Error("settings", rv);
  rv = nghttp2_session_set_local_window_size(t->session_, NGHTTP2_FLAG_NONE, 0,
                                             static_cast<int32_t>(limits.session_window));
  if (rv != 0) return Nghttp2Error("session window", rv);
  return t;
}

H2Session::Stream* H2Session::Find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

bool H2Session::alive() const {
  return !failed_ && (nghttp2_session_want_read(session_) || nghttp2_session_want_write(session_));
}

bool H2Session::can_open() const {
  return !failed_ && !peer_goaway_ && nghttp2_session_want_read(session_) &&
         nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) >
             streams_.size();
}

absl::Status H2Session::Receive(absl::string_view bytes) {
  if (failed_) return absl::FailedPreconditionError("h2: session already failed");
  const ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (rv >= 0) return absl::OkStatus();
  failed_ = true;
  nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
  std::map<int32_t, Stream> ended;
  ended.swap(streams_);
  for (const auto& [id, s] : ended)
    if (events_.on_close) events_.on_close(id, NGHTTP2_INTERNAL_ERROR);
  return Nghttp2Error("receive", rv);
}

bool H2Session::TakeOutput(ByteBuffer* out) {
  const size_t before = out->size();
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) break;
    out->Append({reinterpret_cast<const char*>(data), static_cast<size_t>(n)});
  }
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

absl::StatusOr<int32_t> H2Session::SubmitRequest(const H2Headers& headers, bool end) {
  if (role_ != Role::kClient) return absl::FailedPreconditionError("h2: a server sends no request");
  if (!can_open()) return absl::UnavailableError("h2: the upstream takes no more streams now");
  const std::vector<nghttp2_nv> nva = ToNv(headers);
  nghttp2_data_provider provider{};
  provider.read_callback = &H2Session::ReadData;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                            end ? nullptr : &provider, nullptr);
  if (id < 0) return Nghttp2Error("request", id);
  Stream& s = streams_[id];
  s.providing = true;
  s.write_closed = end;
  return id;
}

absl::Status H2Session::SubmitInterim(int32_t id, const H2Headers& headers) {
  if (!Find(id)) return absl::NotFoundError("h2: no such stream");
  const std::vector<nghttp2_nv> nva = ToNv(headers);
  const int rv = nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, id, nullptr, nva.data(),
                                        nva.size(), nullptr);
  return rv == 0 ? absl::OkStatus() : Nghttp2Error("interim response", rv);
}

absl::Status H2Session::SubmitResponse(int32_t id, const H2Headers& headers, bool end) {
  Stream* s = Find(id);
  if (!s || s->providing) return absl::FailedPreconditionError("h2: no stream awaiting a response");
  const std::vector<nghttp2_nv> nva = ToNv(headers);
  nghttp2_data_provider provider{};
  provider.read_callback = &H2Session::ReadData;
  const int rv =
      nghttp2_submit_response(session_, id, nva.data(), nva.size(), end ? nullptr : &provider);
  if (rv != 0) return Nghttp2Error("response", rv);
  s->providing = true;
  s->write_closed = end;
  return absl::OkStatus();
}

size_t H2Session::SendRoom(int32_t id) {
  Stream* s = Find(id);
  if (!s || s->write_closed || failed_) return 0;
  if (s->send.size() >= limits_.send_buffer) {
    s->wanted_space = true;
    return 0;
  }
  return limits_.send_buffer - s->send.size();
}

size_t H2Session::Send(int32_t id, absl::string_view data) {
  const size_t n = std::min(SendRoom(id), data.size());
  Stream* s = Find(id);
  if (!s || n == 0) return 0;
  s->send.Append(data.substr(0, n));
  if (n < data.size()) s->wanted_space = true;
  Kick(*s, id);
  return n;
}

void H2Session::End(int32_t id, H2Headers trailers) {
  Stream* s = Find(id);
  if (!s || s->write_closed) return;
  s->write_closed = true;
  s->trailers = std::move(trailers);
  Kick(*s, id);
}

void H2Session::Kick(Stream& s, int32_t id) {
  if (s.deferred) {
    s.deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
}

void H2Session::Reset(int32_t id, uint32_t error_code) {
  if (Find(id)) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
}

void H2Session::Consumed(int32_t id, size_t n) {
  if (n == 0 || failed_) return;
  if (nghttp2_session_consume(session_, id, n) != 0)
    nghttp2_session_consume_connection(session_, n);  // the stream is gone: the connection's share
}

void H2Session::Shutdown() {
  if (failed_) return;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
}

ssize_t H2Session::ReadData(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                            uint32_t* flags, nghttp2_data_source*, void* self) {
  Stream* s = Self(self)->Find(id);
  if (!s) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  const size_t n = std::min(s->send.size(), length);
  if (n > 0) {
    memcpy(buf, s->send.data(), n);
    s->send.Consume(n);
  }
  if (s->send.empty() && s->write_closed) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!s->trailers.empty()) {
      const std::vector<nghttp2_nv> nva = ToNv(s->trailers);
      if (nghttp2_submit_trailer(session, id, nva.data(), nva.size()) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return static_cast<ssize_t>(n);
  }
  if (n > 0) return static_cast<ssize_t>(n);
  s->deferred = true;
  return NGHTTP2_ERR_DEFERRED;
}

int H2Session::OnBeginHeaders(nghttp2_session*, const nghttp2_frame* f, void* self) {
  H2Session* t = Self(self);
  if (f->hd.type != NGHTTP2_HEADERS) return 0;
  if (t->role_ == Role::kServer && f->headers.cat == NGHTTP2_HCAT_REQUEST)
    t->streams_[f->hd.stream_id];
  if (Stream* s = t->Find(f->hd.stream_id)) s->headers.clear();
  return 0;
}

int H2Session::OnHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name,
                        size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                        void* self) {
  Stream* s = Self(self)->Find(f->hd.stream_id);
  if (!s) return 0;
  s->headers.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                          std::string(reinterpret_cast<const char*>(value), valuelen));
  return 0;
}

int H2Session::OnFrameRecv(nghttp2_session*, const nghttp2_frame* f, void* self) {
  H2Session* t = Self(self);
  if (f->hd.type == NGHTTP2_GOAWAY) {
    t->peer_goaway_ = true;
    return 0;
  }
  const int32_t id = f->hd.stream_id;
  Stream* s = t->Find(id);
  if (!s) return 0;
  const bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (f->hd.type == NGHTTP2_HEADERS) {
    H2Headers headers;
    headers.swap(s->headers);
    if (s->head_seen) {
      if (t->events_.on_trailers) t->events_.on_trailers(id, headers);
    } else {
      // A 1xx is interim: the final head is still to come.
      const bool interim = t->role_ == Role::kClient && !headers.empty() &&
                           headers[0].first == ":status" && headers[0].second.size() == 3 &&
                           headers[0].second[0] == '1';
      if (!interim) s->head_seen = true;
      if (t->events_.on_head) t->events_.on_head(id, headers, end);
    }
  }
  if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && end) {
    s = t->Find(id);
    if (s && !s->end_seen) {
      s->end_seen = true;
      if (t->events_.on_end) t->events_.on_end(id);
    }
  }
  return 0;
}

int H2Session::OnDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                           void* self) {
  H2Session* t = Self(self);
  if (!t->Find(id)) {
    t->Consumed(id, len);  // a stream already ended: give the window back
    return 0;
  }
  if (t->events_.on_data) t->events_.on_data(id, {reinterpret_cast<const char*>(data), len});
  return 0;
}

int H2Session::OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* self) {
  H2Session* t = Self(self);
  if (t->streams_.erase(id) == 0) return 0;
  if (t->events_.on_close) t->events_.on_close(id, error_code);
  return 0;
}

}  // namespace shunt::proxy::http
