#include "tools/bench/service_bench_options.h"

#include "absl/strings/str_cat.h"

namespace shunt::bench {

std::string ServiceVip(int i) { return absl::StrCat("10.96.", 1 + i / 250, ".", 1 + i % 250); }

}  // namespace shunt::bench
