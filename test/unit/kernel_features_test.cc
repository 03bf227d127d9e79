#include "agent/datapath/kernel_features.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <utility>

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
            "kernel: missing sockops programs, SOCKHASH maps (Shunt needs Linux >= 6.6 with BPF)");
}

// A kernel that has everything except what `missing_*` lists.
class FakeKernel : public KernelProbe {
 public:
  bool VmlinuxBtf() override { return btf; }
  bool ProgType(bpf_prog_type type) override { return !missing_progs.count(type); }
  bool MapType(bpf_map_type type) override { return !missing_maps.count(type); }
  bool Helper(bpf_prog_type type, bpf_func_id helper) override {
    return ProgType(type) && !missing_helpers.count({type, helper});
  }
  bool TcxLinks() override { return tcx; }

  bool btf = true, tcx = true;
  std::set<bpf_prog_type> missing_progs;
  std::set<bpf_map_type> missing_maps;
  std::set<std::pair<bpf_prog_type, bpf_func_id>> missing_helpers;
};

TEST(RequiredKernelFeaturesTest, CurrentKernelHasEverything) {
  FakeKernel k;
  EXPECT_TRUE(KernelFeatureStatus(RequiredKernelFeatures(k)).ok());
}

// Linux 5.15 to 5.17: everything before bpf_set_retval and tcx.
TEST(RequiredKernelFeaturesTest, Linux515LacksSetRetvalAndTcx) {
  FakeKernel k;
  k.missing_helpers.insert({BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_set_retval});
  k.tcx = false;
  absl::Status s = KernelFeatureStatus(RequiredKernelFeatures(k));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "kernel: missing bpf_set_retval in cgroup sock_addr programs (Linux 5.18), TCX links "
            "(Linux 6.6) (Shunt needs Linux >= 6.6 with BPF)");
}

// Linux 5.18 to 6.5: only tcx.
TEST(RequiredKernelFeaturesTest, Linux61LacksTcx) {
  FakeKernel k;
  k.tcx = false;
  absl::Status s = KernelFeatureStatus(RequiredKernelFeatures(k));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "kernel: missing TCX links (Linux 6.6) (Shunt needs Linux >= 6.6 with BPF)");
}

TEST(RequiredKernelFeaturesTest, EachOlderFeatureIsNamed) {
  FakeKernel k;
  k.btf = false;
  k.missing_progs = {BPF_PROG_TYPE_SOCK_OPS, BPF_PROG_TYPE_SK_MSG};
  k.missing_maps = {BPF_MAP_TYPE_SOCKHASH, BPF_MAP_TYPE_SK_STORAGE, BPF_MAP_TYPE_RINGBUF};
  k.missing_helpers.insert({BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_set_retval});
  k.tcx = false;
  EXPECT_EQ(KernelFeatureStatus(RequiredKernelFeatures(k)).message(),
            "kernel: missing kernel BTF (/sys/kernel/btf/vmlinux), sockops programs, sk_msg "
            "programs, SOCKHASH maps, socket-local storage, bpf_get_netns_cookie in sockops, ring "
            "buffers, bpf_set_retval in cgroup sock_addr programs (Linux 5.18), TCX links (Linux "
            "6.6) (Shunt needs Linux >= 6.6 with BPF)");
}

// Verifier logs of "call bpf_set_retval; exit", as Linux 6.18 writes them.
TEST(VerifierRejectsHelperTest, ReadsTheVerifiersWords) {
  // XDP may not call it: the wording libbpf 1.1 misses.
  EXPECT_TRUE(VerifierRejectsHelper(
      "0: R1=ctx() R10=fp0\n0: (85) call bpf_set_retval#187\nprogram of this type cannot use "
      "helper bpf_set_retval#187\nprocessed 1 insns (limit 1000000)\n"));
  // A helper number the kernel does not know.
  EXPECT_TRUE(VerifierRejectsHelper(
      "0: R1=ctx() R10=fp0\n0: (85) call unknown#9999\ninvalid func unknown#9999\n"));
  // Older kernels' wording for a known helper the type may not call.
  EXPECT_TRUE(
      VerifierRejectsHelper("0: (85) call bpf_get_netns_cookie#122\nunknown func "
                            "bpf_get_netns_cookie#122\n"));
  // cgroup sock_addr may call it; the program fails later, for its return value.
  EXPECT_FALSE(VerifierRejectsHelper(
      "0: R1=ctx() R10=fp0\n0: (85) call bpf_set_retval#187       ; R0=scalar()\n1: (95) "
      "exit\nAt program exit the register R0 has unknown scalar value should have been in [0, "
      "1]\n"));
}

}  // namespace
}  // namespace shunt::datapath
