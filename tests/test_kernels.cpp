// The raw-pointer kernels of the fused inference paths, and the training kernels in fp32, against
// LibTorch's own ops or float64.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernels/attention_cpu.h"
#include "kernels/batched_matmul_cpu.h"
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

// The training kernels in fp32 (the training dtype) against themselves in float64, which the golden
// tests hold to the Python reference: outputs and every input's gradient.
TEST(Kernels, AttentionFp32MatchesFloat64) {
  torch::manual_seed(5);
  const int64_t X = 3, H = 2, n = 9, dk = 8, dv = 5;
  for (const int64_t L : {n, n + 6}) {
    // A causal mask over the segment (and all of a cache before it), and one mask per x: 0 or -inf.
    const auto causal = torch::ones({n, L}, torch::kBool).tril(L - n);
    const auto per_x = torch::rand({X, 1, n, L}) < 0.7;
    per_x.select(3, 0).fill_(true);  // no row fully masked
    for (const auto& allowed : {causal, per_x}) {
      const auto bias = torch::zeros(allowed.sizes()).masked_fill_(allowed.logical_not(), -INFINITY);
      const auto q = torch::randn({X, H, n, dk}, torch::kFloat64), k = torch::randn({X, H, L, dk}, torch::kFloat64),
                 v = torch::randn({X, H, L, dv}, torch::kFloat64), g = torch::randn({X, H, n, dv}, torch::kFloat64);
      std::vector<torch::Tensor> out, grads;
      for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
        auto qi = q.to(dtype).detach().requires_grad_(), ki = k.to(dtype).detach().requires_grad_(),
             vi = v.to(dtype).detach().requires_grad_();
        const auto o = kernels::attention_cpu(qi, ki, vi, bias.to(dtype), 0.35);
        o.backward(g.to(dtype));
        out.push_back(o.to(torch::kFloat64));
        for (const auto& t : {qi, ki, vi}) grads.push_back(t.grad().to(torch::kFloat64));
      }
      EXPECT_TRUE(out[1].allclose(out[0], 1e-5, 1e-5)) << "L " << L << ": " << (out[1] - out[0]).abs().max();
      for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(grads[3 + i].allclose(grads[i], 1e-5, 1e-5))
            << "L " << L << ", gradient " << i << ": " << (grads[3 + i] - grads[i]).abs().max();
    }
  }
}

TEST(Kernels, BatchedMatmulFp32MatchesFloat64) {
  torch::manual_seed(6);
  const int64_t B = 2, H = 3, m = 7, k = 5, p = 4;
  // Row-major operands, and transposed views of column-major storage (the memory write's sigma(K)^T).
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      const auto a64 = ta ? torch::randn({B, H, k, m}, torch::kFloat64).transpose(-2, -1)
                          : torch::randn({B, H, m, k}, torch::kFloat64);
      const auto b64 = tb ? torch::randn({B, H, p, k}, torch::kFloat64).transpose(-2, -1)
                          : torch::randn({B, H, k, p}, torch::kFloat64);
      const auto g = torch::randn({B, H, m, p}, torch::kFloat64);
      std::vector<torch::Tensor> got;
      for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
        auto a = a64.to(dtype).detach().requires_grad_(), b = b64.to(dtype).detach().requires_grad_();
        const auto c = kernels::batched_matmul_cpu(a, b);
        c.backward(g.to(dtype));
        for (const auto& t : {c, a.grad(), b.grad()}) got.push_back(t.to(torch::kFloat64));
      }
      EXPECT_TRUE(got[0].allclose(torch::matmul(a64, b64), 1e-12, 1e-12));
      for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(got[3 + i].allclose(got[i], 1e-5, 1e-5))
            << "trans " << ta << tb << ", output/gradient " << i << ": " << (got[3 + i] - got[i]).abs().max();
    }
}

}  // namespace
}  // namespace infini
