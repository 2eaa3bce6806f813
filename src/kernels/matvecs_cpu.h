// A matrix's rows times several vectors: the products of a decode step, for one sequence or a batch
// (src/infer/decoder.h). The matrix is packed once into panels of 24 rows, each column's 24 values
// side by side: three loads serve 24 rows, a panel is one contiguous stream (several streams at once
// starve the prefetchers when the weights come from L3), and each loaded column is multiplied by up
// to 4 vectors while it is in registers.
#pragma once

#include <cstdint>
#include <vector>

namespace infini::kernels {

struct PackedRows {
  int64_t rows = 0, cols = 0;
  static constexpr int64_t kRows = 24;  // rows per panel
  std::vector<float> panels;  // (ceil(rows / 24), cols, 24); rows past `rows` are zero

  // Packs the row-major (rows, cols) matrix W.
  static PackedRows pack(const float* W, int64_t rows, int64_t cols);
  int64_t panel_count() const { return (rows + kRows - 1) / kRows; }
  // Panels [p0, p1) hold rows [row_begin(p0), row_end(p1)).
  int64_t row_begin(int64_t p0) const { return p0 * kRows; }
  int64_t row_end(int64_t p1) const { return p1 * kRows < rows ? p1 * kRows : rows; }
};

// ys[v][r] = W[r, :] . xs[v] for the rows of panels [p0, p1) and each vector v < n. Every output is
// one running sum over the columns in order, whatever n is and whatever tile it falls in, so a
// vector's results are the same bit for bit alone or beside others.
void matvecs_packed(const PackedRows& W, const float* const* xs, int64_t n, float* const* ys, int64_t p0, int64_t p1);

}  // namespace infini::kernels
