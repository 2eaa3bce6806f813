// The raw-pointer kernels of the fused inference paths against LibTorch's own ops.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernels/gemm_cpu.h"
#include "kernels/vector_cpu.h"

namespace infini {
namespace {

float* ptr(torch::Tensor& t) { return t.data_ptr<float>(); }

TEST(Kernels, RowFunctionsMatchLibTorch) {
  torch::manual_seed(3);
  // 203 values: 25 AVX2 blocks and a tail of 3; from far below the clamps to far above.
  auto x = torch::cat({torch::randn({195}) * 6, torch::tensor({-200.0f, -90.0f, -87.0f, 0.0f, 1e-7f, 87.0f, 88.0f, 100.0f})});
  auto up = torch::randn({203});
  auto out = torch::empty({203});

  kernels::elu_plus_one(ptr(x), ptr(out), 203);
  // LibTorch's ELU is expm1(x), then + 1 rounds to float's steps near 1 (6e-8).
  EXPECT_TRUE(out.allclose(torch::elu(x) + 1, 1e-6, 1e-7)) << (out - (torch::elu(x) + 1)).abs().max();

  kernels::silu_mul(ptr(x), ptr(up), ptr(out), 203);
  EXPECT_TRUE(out.allclose(torch::silu(x) * up, 1e-6, 1e-6)) << (out - torch::silu(x) * up).abs().max();

  for (const int64_t n : {1, 7, 8, 203}) {
    auto row = x.narrow(0, 0, n).clone();
    kernels::softmax(ptr(row), n);
    const auto want = torch::softmax(x.narrow(0, 0, n), 0);
    EXPECT_TRUE(row.allclose(want, 1e-6, 1e-7)) << n << ": " << (row - want).abs().max();
  }
}

TEST(Kernels, MatvecRowsMatchesMv) {
  torch::manual_seed(4);
  // 11 rows: two blocks of four and a tail of three; widths with and without 16- and 8-wide tails.
  for (const int64_t cols : {3, 8, 24, 203, 682}) {
    auto W = torch::randn({11, cols});
    auto x = torch::randn({cols});
    const auto want = torch::mv(W, x);
    for (const auto [r0, r1] : {std::pair<int64_t, int64_t>{0, 11}, {1, 10}, {5, 6}, {4, 4}}) {
      auto y = torch::full({11}, 7.0f);
      kernels::matvec_rows(ptr(W), cols, ptr(x), ptr(y), r0, r1);
      const auto got = y.narrow(0, r0, r1 - r0);
      EXPECT_TRUE(got.allclose(want.narrow(0, r0, r1 - r0), 1e-5, 1e-5)) << cols << " cols, rows " << r0 << ".." << r1;
      // Rows outside [r0, r1) are not written.
      EXPECT_EQ((y.narrow(0, 0, r0) != 7.0f).sum().item<int64_t>(), 0);
      EXPECT_EQ((y.narrow(0, r1, 11 - r1) != 7.0f).sum().item<int64_t>(), 0);
    }
  }
}

TEST(Kernels, RowMajorGemmMatchesMm) {
  torch::manual_seed(4);
  const int64_t m = 37, n = 19, k = 70;
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      // Stored with a wider leading dimension than needed, as the fused paths' column slices are.
      auto A = torch::randn({ta ? k : m, (ta ? m : k) + 5});
      auto B = torch::randn({tb ? n : k, (tb ? k : n) + 3});
      auto C = torch::randn({m, n + 2});
      const auto a = A.narrow(1, 0, ta ? m : k), b = B.narrow(1, 0, tb ? k : n);
      const auto want = 0.5 * torch::mm(ta ? a.t() : a, tb ? b.t() : b) + 2.0 * C.narrow(1, 0, n);
      kernels::gemm(ta, tb, m, n, k, 0.5f, ptr(A), A.size(1), ptr(B), B.size(1), 2.0f, ptr(C), C.size(1));
      EXPECT_TRUE(C.narrow(1, 0, n).allclose(want, 1e-5, 1e-5)) << "trans_a " << ta << ", trans_b " << tb;
    }
}

}  // namespace
}  // namespace infini
