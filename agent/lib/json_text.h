// JSON output that cannot throw on what it carries: a byte sequence that is
// not UTF-8 (a file name, a value from the kernel) becomes U+FFFD instead of
// a type_error that would end the agent.
#pragma once

#include "nlohmann/json.hpp"

namespace shunt::lib {

// For dump(): nlohmann's default handler throws on invalid UTF-8.
inline constexpr auto kUtf8Replace = nlohmann::json::error_handler_t::replace;

}  // namespace shunt::lib
