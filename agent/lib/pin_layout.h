// Where everything an agent pins lives under its bpffs directory, and the
// list of maps this version pins (used by install, inspect and uninstall).
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace shunt::lib {

struct MapDescription {
  const char* pin_name;
  const char* what;  // one line, for `shuntctl maps`
};

// Every map this ABI version pins, in display order.
const std::vector<MapDescription>& PinnedMapList();

// Map pin names of earlier layouts (renamed when their layout changed):
// nothing of this version uses them, so install and uninstall remove them.
const std::vector<std::string>& RetiredMapList();

// Link pin names (under links/) this version creates.
const std::vector<std::string>& PinnedLinkList();

class PinLayout {
 public:
  explicit PinLayout(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }
  std::string Map(absl::string_view pin_name) const;
  std::string LinkDir() const;
  std::string Link(absl::string_view link_name) const;

 private:
  std::string dir_;
};

}  // namespace shunt::lib
