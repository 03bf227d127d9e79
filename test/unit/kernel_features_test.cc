#include "agent/datapath/kernel_features.h"

#include <gtest/gtest.h>

namespace shunt::datapath {
namespace {

TEST(KernelFeatureStatusTest, AllPresentIsOk) {
  EXPECT_TRUE(KernelFeatureStatus({{true, "sockops programs"}, {true, "SOCKHASH maps"}}).ok());
  EXPECT_TRUE(KernelFeatureStatus({}).ok());
}

TEST(KernelFeatureStatusTest, NamesEveryMissingFeatureInOneMessage) {
  absl::Status s = KernelFeatureStatus(
      {{false, "sockops programs"}, {true, "sk_msg programs"}, {false, "SOCKHASH maps"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "kernel: missing sockops programs, SOCKHASH maps (Shunt needs Linux >= 5.15 with BPF)");
}

}  // namespace
}  // namespace shunt::datapath
