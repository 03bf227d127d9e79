// What an H1Parser reports, kept for a test to look at: each message's
// head, its body, and how many messages ended.
#pragma once

#include <string>
#include <vector>

#include "proxy/http/h1_parser.h"

namespace shunt::proxy::http::test_util {

struct RecordedMessages : H1Parser::Handler {
  std::vector<H1Head> heads;
  std::vector<std::string> bodies;
  int ends = 0;
  void OnHead(H1Head& h) override {
    heads.push_back(h);
    bodies.emplace_back();
  }
  void OnBody(absl::string_view piece) override {
    bodies.back().append(piece.data(), piece.size());
  }
  void OnMessageEnd() override { ++ends; }
};

}  // namespace shunt::proxy::http::test_util
