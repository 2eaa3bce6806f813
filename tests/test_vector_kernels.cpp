// Each vector kernel (src/kernels/vector_cpu.h, infini_cpu.h, matvecs_cpu.h, query_attention_cpu.h) against a plain scalar loop
// in double, at widths from 16 up, including every kind of tail: widths one below, at and one above
// the AVX2 blocks of 8 and the dot product's 32, and odd ones. Outputs must match to a few float
// ulps of the scale; rows outside the output are never written.
#include <cmath>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kernels/infini_cpu.h"
#include "kernels/matvecs_cpu.h"
#include "kernels/query_attention_cpu.h"
#include "kernels/vector_cpu.h"

namespace infini {
namespace {

const int64_t kWidths[] = {16, 17, 23, 24, 25, 31, 32, 33, 40, 63, 64, 65, 100, 129, 257};

std::vector<float> random_row(int64_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = normal(gen);
  return v;
}

// |got - want| <= tol * max(1, max |want|), element by element.
void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1.0;
  for (const double w : want) scale = std::max(scale, std::abs(w));
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * scale) << what << ", element " << i << " of " << got.size();
}

TEST(VectorKernels, ReportTheirInstructionSet) {
  // Not an assertion on the machine: the log says which versions the other tests checked.
  std::fprintf(stderr, "vector kernels: %s\n", kernels::vector_isa_avx2() ? "AVX2+FMA" : "portable loops");
  SUCCEED();
}

TEST(VectorKernels, DotAxpyAndMatvecMatchScalarLoops) {
  for (const auto n : kWidths) {
    const auto a = random_row(n, 1), b = random_row(n, 2);
    double want = 0, mass = 0;
    for (int64_t i = 0; i < n; ++i) want += double(a[i]) * b[i], mass += std::abs(double(a[i]) * b[i]);
    EXPECT_NEAR(kernels::dot(a.data(), b.data(), n), want, 1e-6 * mass) << "dot, width " << n;

    auto y = b;
    kernels::axpy(0.7f, a.data(), y.data(), n);
    std::vector<double> y_want(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) y_want[i] = b[i] + 0.7 * a[i];
    expect_close(y, y_want, 1e-6, fmt::format("axpy, width {}", n));

    const int64_t rows = 5;
    const auto W = random_row(rows * n, 3);
    std::vector<float> out(rows + 2, 9.0f);
    kernels::matvec_rows(W.data(), n, a.data(), out.data() + 1, 1, rows - 1);  // rows 1..3 only
    for (int64_t r = 0; r < rows + 2; ++r) {
      if (r < 2 || r >= rows) {
        EXPECT_EQ(out[r], 9.0f) << "matvec wrote outside its rows, width " << n;
        continue;
      }
      double s = 0, m = 0;
      for (int64_t i = 0; i < n; ++i) s += double(W[(r - 1) * n + i]) * a[i], m += std::abs(double(W[(r - 1) * n + i]) * a[i]);
      EXPECT_NEAR(out[r], s, 1e-6 * m) << "matvec row " << r - 1 << ", width " << n;
    }
  }
}

// A packed product of rows by several vectors gives each vector exactly what it gives that vector
// alone, whatever the batch (the batched decode step relies on it: tests/test_api.cpp, BatchedDecode),
// and what dot products give, up to rounding.
TEST(VectorKernels, PackedRowsTimesSeveralVectorsEqualEachAloneBitForBit) {
  std::mt19937 random(7);
  std::normal_distribution<float> normal;
  for (const int64_t panel_rows : {24, 32}) {  // both heights, whichever kernel this CPU runs them on
    for (const int64_t cols : {5, 37, 64, 256, 682}) {
      for (const int64_t rows : {29, 64, 83, 100}) {
        std::vector<float> W(rows * cols);
        for (auto& w : W) w = normal(random);
        const auto packed = kernels::PackedRows::pack(W.data(), rows, cols, panel_rows);
        const int64_t panels = packed.panel_count();
        ASSERT_EQ(panels, (rows + panel_rows - 1) / panel_rows);
        for (const int64_t n : {1, 2, 3, 4, 5, 6, 8, 9, 12, 13, 25}) {  // every tile shape, and more than a tile
          std::vector<std::vector<float>> x(n, std::vector<float>(cols)), y(n, std::vector<float>(rows, -1.0f));
          std::vector<const float*> xs;
          std::vector<float*> ys;
          for (int64_t v = 0; v < n; ++v) {
            for (auto& e : x[v]) e = normal(random);
            xs.push_back(x[v].data());
            ys.push_back(y[v].data());
          }
          kernels::matvecs_packed(packed, xs.data(), n, ys.data(), 1, panels);  // panel 0's rows untouched
          for (int64_t v = 0; v < n; ++v) {
            std::vector<float> alone(rows, -1.0f), dots(rows);
            float* out = alone.data();
            kernels::matvecs_packed(packed, &xs[v], 1, &out, 1, panels);
            kernels::matvec_rows(W.data(), cols, x[v].data(), dots.data(), 0, rows);
            for (int64_t r = 0; r < rows; ++r) {
              const auto where = fmt::format("panels of {}, cols {}, {} vectors, vector {}, row {}", panel_rows, cols, n, v, r);
              ASSERT_EQ(y[v][r], alone[r]) << where;
              if (r < panel_rows) {
                ASSERT_EQ(y[v][r], -1.0f) << where;
              } else {
                ASSERT_NEAR(y[v][r], dots[r], 1e-4f * (1.0f + std::abs(dots[r]))) << where;
              }
            }
          }
        }
      }
    }
  }
}

// A weighted sum of rows, over widths with every tail and more than one 64-column block, and over
// row counts from one up.
TEST(VectorKernels, WeightedRowSumMatchesScalarLoops) {
  for (const auto d : kWidths) {
    for (const int64_t count : {1, 3, 64, 130}) {
      const auto w = random_row(count, 21), rows = random_row(count * d, 22);
      std::vector<float> out(static_cast<size_t>(d) + 1, -7.0f);
      kernels::weighted_row_sum(w.data(), rows.data(), count, d, out.data());
      std::vector<double> want(static_cast<size_t>(d), 0.0);
      for (int64_t j = 0; j < count; ++j)
        for (int64_t c = 0; c < d; ++c) want[c] += double(w[j]) * rows[j * d + c];
      EXPECT_EQ(out[d], -7.0f) << "width " << d << ": wrote past the output";
      out.resize(static_cast<size_t>(d));
      expect_close(out, want, 1e-5, fmt::format("weighted_row_sum, width {}, {} rows", d, count));
    }
  }
}

// One query's attention over cached rows against softmax and weighted sums in double: head widths
// the vector path takes (multiples of 8, one or more 64-column blocks) and ones it leaves to the
// portable loops, over key counts with every remainder of its blocks of four.
TEST(VectorKernels, OneQueryAttentionMatchesScalarLoops) {
  for (const auto [dk, dv] : {std::pair<int64_t, int64_t>{64, 64}, {16, 8}, {32, 72}, {128, 136}, {12, 20}}) {
    for (const int64_t count : {1, 2, 3, 4, 5, 7, 130, 512}) {
      const auto q = random_row(dk, 11, 2.0f), keys = random_row(count * dk, 12), values = random_row(count * dv, 13);
      const float scale = 1.0f / std::sqrt(static_cast<float>(dk));
      std::vector<float> scores(static_cast<size_t>(count), -7.0f), out(static_cast<size_t>(dv) + 1, -7.0f);
      kernels::attend_one_query(q.data(), keys.data(), values.data(), count, dk, dv, scale, scores.data(), out.data());
      std::vector<double> weight(static_cast<size_t>(count)), want(static_cast<size_t>(dv), 0.0);
      double max = -INFINITY, total = 0;
      for (int64_t j = 0; j < count; ++j) {
        double s = 0;
        for (int64_t c = 0; c < dk; ++c) s += double(q[c]) * keys[j * dk + c];
        weight[j] = s * scale;
        max = std::max(max, weight[j]);
      }
      for (auto& w : weight) total += (w = std::exp(w - max));
      for (auto& w : weight) w /= total;
      for (int64_t j = 0; j < count; ++j)
        for (int64_t c = 0; c < dv; ++c) want[c] += weight[j] * values[j * dv + c];
      const auto where = fmt::format("dk {}, dv {}, {} keys", dk, dv, count);
      expect_close(scores, weight, 1e-5, where + ": weights");
      EXPECT_EQ(out[dv], -7.0f) << where << ": wrote past the output";
      out.resize(static_cast<size_t>(dv));
      expect_close(out, want, 1e-5, where + ": output");
    }
  }
}

TEST(VectorKernels, ElementwiseKernelsMatchScalarLoops) {
  for (const auto n : kWidths) {
    // Values from far below exp's clamp to far above: every branch of ELU, exp and the sigmoid.
    auto x = random_row(n, 4, 6.0f);
    x[0] = -100.0f, x[1] = 90.0f, x[n - 1] = -0.0f;
    const auto up = random_row(n, 5);
    std::vector<float> out(static_cast<size_t>(n));
    std::vector<double> want(static_cast<size_t>(n));

    kernels::elu_plus_one(x.data(), out.data(), n);
    for (int64_t i = 0; i < n; ++i) want[i] = x[i] > 0 ? x[i] + 1.0 : std::exp(double(x[i]));
    expect_close(out, want, 1e-6, fmt::format("elu_plus_one, width {}", n));

    kernels::silu_mul(x.data(), up.data(), out.data(), n);
    for (int64_t i = 0; i < n; ++i) want[i] = x[i] / (1.0 + std::exp(-double(x[i]))) * up[i];
    expect_close(out, want, 1e-6, fmt::format("silu_mul, width {}", n));

    auto row = random_row(n, 6, 4.0f);
    const auto before = row;
    kernels::softmax(row.data(), n);
    double max = -INFINITY, sum = 0;
    for (const float v : before) max = std::max(max, double(v));
    for (int64_t i = 0; i < n; ++i) sum += want[i] = std::exp(before[i] - max);
    for (auto& w : want) w /= sum;
    expect_close(row, want, 1e-6, fmt::format("softmax, width {}", n));
  }
}

TEST(VectorKernels, RmsNormAndRopeMatchScalarLoops) {
  for (const auto n : kWidths) {
    const auto x = random_row(n, 7, 3.0f), w = random_row(n, 8);
    std::vector<float> out(static_cast<size_t>(n));
    kernels::rms_norm(x.data(), w.data(), out.data(), n, 1e-5);
    double ms = 0;
    for (const float v : x) ms += double(v) * v;
    const double inv = 1.0 / std::sqrt(ms / n + 1e-5);
    std::vector<double> want(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) want[i] = x[i] * inv * w[i];
    expect_close(out, want, 2e-6, fmt::format("rms_norm, width {}", n));

    // RoPE on a row of d = 2n: n pairs (i, i + n), so the AVX2 blocks of 8 pairs meet every tail.
    const int64_t d = 2 * n;
    const auto row = random_row(d, 9);
    std::vector<float> cos(static_cast<size_t>(n)), sin(static_cast<size_t>(n)), rotated(static_cast<size_t>(d));
    for (int64_t i = 0; i < n; ++i) cos[i] = std::cos(0.3f * i + 0.1f), sin[i] = std::sin(0.3f * i + 0.1f);
    kernels::rope_rotate(row.data(), cos.data(), sin.data(), rotated.data(), d);
    std::vector<double> r_want(static_cast<size_t>(d));
    for (int64_t i = 0; i < n; ++i) {
      r_want[i] = double(row[i]) * cos[i] - double(row[i + n]) * sin[i];
      r_want[i + n] = double(row[i + n]) * cos[i] + double(row[i]) * sin[i];
    }
    expect_close(rotated, r_want, 1e-6, fmt::format("rope_rotate, d {}", d));
  }
}

// The compressive memory's kernels, one head: n rows of dk features and dv values.
struct MemoryCase {
  int64_t n, dk, dv;
};

// qk_conv over a run of rows: each output the taps' sum over the row and the W - 1 before it (the
// tail's rows, then the run's own), the tail moving on one row at a time.
TEST(InfiniKernels, QkConvRowsMatchAScalarLoop) {
  for (const int64_t d : {16, 17, 64, 65})
    for (const int64_t W : {2, 3, 4}) {
      const int64_t n = 7;
      const auto taps = random_row(d * W, 20), rows = random_row((W - 1 + n) * d, 21);  // tail rows, then n rows
      std::vector<float> tail(rows.begin(), rows.begin() + (W - 1) * d), out(static_cast<size_t>(n * d));
      for (int64_t r = 0; r < n; ++r) {
        const float* x = rows.data() + (W - 1 + r) * d;
        std::vector<float> got(static_cast<size_t>(d));
        kernels::qk_conv_row(taps.data(), tail.data(), x, got.data(), d, W);
        kernels::qk_conv_slide(tail.data(), x, d, W);
        std::vector<double> want(static_cast<size_t>(d));
        for (int64_t c = 0; c < d; ++c)
          for (int64_t j = 0; j < W; ++j) want[c] += double(taps[c * W + j]) * rows[(W - 1 + r - j) * d + c];
        expect_close(got, want, 1e-6, fmt::format("qk_conv_row d {} W {} row {}", d, W, r));
      }
      // The tail is the last W - 1 rows, oldest first.
      const std::vector<float> last(rows.end() - (W - 1) * d, rows.end());
      EXPECT_EQ(tail, last) << "d " << d << " W " << W;
    }
}

TEST(InfiniKernels, WrittenKeyFeaturesMatchAScalarLoop) {
  for (const auto [n, dk, dv] : {MemoryCase{1, 16, 16}, {5, 17, 16}, {64, 64, 64}, {9, 33, 40}}) {
    const int64_t ld = dk + 3;  // rows inside a wider matrix, as the fused prefill's qkv rows are
    const auto k = random_row(n * ld, 10, 2.0f);
    for (const bool shifted : {false, true}) {
      const float share = 0.3f;
      std::vector<float> sk(static_cast<size_t>(n * dk));
      kernels::written_key_features(k.data(), ld, n, dk, shifted ? &share : nullptr, sk.data());
      std::vector<double> want(static_cast<size_t>(n * dk));
      for (int64_t r = 0; r < n; ++r)
        for (int64_t d = 0; d < dk; ++d) {
          const double cur = k[r * ld + d], before = r > 0 ? k[(r - 1) * ld + d] : cur;
          const double key = shifted ? cur + share * (before - cur) : cur;
          want[r * dk + d] = key > 0 ? key + 1 : std::exp(key);
        }
      expect_close(sk, want, 1e-6, fmt::format("written_key_features n {} dk {} shifted {}", n, dk, shifted));
    }
  }
}

TEST(InfiniKernels, GatedReadAndWriteMatchScalarLoops) {
  for (const auto [n, dk, dv] : {MemoryCase{1, 16, 16}, {1, 64, 64}, {5, 17, 24}, {64, 64, 64}, {9, 33, 40}}) {
    const auto what = fmt::format("n {} dk {} dv {}", n, dk, dv);
    // Features are positive (ELU + 1), and so is z: the normaliser never crosses zero.
    auto sq = random_row(n * dk, 11);
    for (auto& v : sq) v = std::abs(v) + 0.1f;
    const auto M = random_row(dk * dv, 12);
    auto z = random_row(dk, 13);
    for (auto& v : z) v = std::abs(v) * 10 + 1;
    const float eps = 1e-6f, gate = 0.4f;

    // Gated read into rows of a wider output, as the heads' columns of the attention output are.
    const int64_t ld_out = dv + 7;
    const auto local = random_row(n * ld_out, 14);
    auto out = local;
    std::vector<float> scratch(static_cast<size_t>(n * dv));
    kernels::gated_memory_read(sq.data(), n, M.data(), z.data(), dk, dv, eps, gate, out.data(), ld_out, scratch.data());
    std::vector<double> want(local.begin(), local.end());
    for (int64_t r = 0; r < n; ++r) {
      double norm = eps;
      for (int64_t d = 0; d < dk; ++d) norm += double(sq[r * dk + d]) * z[d];
      for (int64_t e = 0; e < dv; ++e) {
        double read = 0;
        for (int64_t d = 0; d < dk; ++d) read += double(sq[r * dk + d]) * M[d * dv + e];
        want[r * ld_out + e] = local[r * ld_out + e] + gate * (read / norm - local[r * ld_out + e]);
      }
    }
    expect_close(out, want, 2e-6, "gated_memory_read " + what);

    // The write under both rules, values as rows of a wider matrix.
    const int64_t ld_v = dv + 5;
    const auto v = random_row(n * ld_v, 15);
    for (const bool delta : {false, true}) {
      std::vector<float> M_next(static_cast<size_t>(dk * dv)), z_next(static_cast<size_t>(dk));
      std::vector<float> work(static_cast<size_t>(n * dv + dk));
      kernels::memory_write(sq.data(), n, v.data(), ld_v, M.data(), z.data(), dk, dv, eps, delta, M_next.data(),
                            z_next.data(), work.data());
      std::vector<double> M_want(M.begin(), M.end()), z_want(z.begin(), z.end());
      for (int64_t r = 0; r < n; ++r) {
        double norm = eps;
        for (int64_t d = 0; d < dk; ++d) norm += double(sq[r * dk + d]) * z[d];
        for (int64_t e = 0; e < dv; ++e) {
          double value = v[r * ld_v + e];
          if (delta) {
            double read = 0;
            for (int64_t d = 0; d < dk; ++d) read += double(sq[r * dk + d]) * M[d * dv + e];
            value -= read / norm;
          }
          for (int64_t d = 0; d < dk; ++d) M_want[d * dv + e] += double(sq[r * dk + d]) * value;
        }
        for (int64_t d = 0; d < dk; ++d) z_want[d] += sq[r * dk + d];
      }
      expect_close(M_next, M_want, 4e-6, fmt::format("memory_write M, delta {}, {}", delta, what));
      expect_close(z_next, z_want, 1e-6, fmt::format("memory_write z, delta {}, {}", delta, what));
    }
  }
}

}  // namespace
}  // namespace infini
