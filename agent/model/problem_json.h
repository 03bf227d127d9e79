// Problems as the local API shows them: {file, line, object, reason}.
#pragma once

#include <vector>

#include "agent/model/object_ref.h"
#include "nlohmann/json.hpp"

namespace shunt::model {

inline nlohmann::json ProblemsJson(const std::vector<Problem>& problems) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : problems)
    out.push_back({{"file", p.ref.file},
                   {"line", p.ref.line},
                   {"object", p.ref.ToString()},
                   {"reason", p.reason}});
  return out;
}

}  // namespace shunt::model
