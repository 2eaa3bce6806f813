// A matrix's rows times several vectors: the products of a decode step, for one sequence or a batch
// (src/infer/decoder.h). The matrix is packed once into panels of rows, each column's values for the
// panel's rows side by side: a few loads serve a whole panel, a panel is one contiguous stream
// (several streams at once starve the prefetchers when the weights come from L3), and each loaded
// column is multiplied by several vectors while it is in registers. Panels hold 32 rows on CPUs with
// AVX-512 (two registers; 32 registers hold the running sums of 12 vectors, so a batch of 12 reads
// the weights once) and 24 with AVX2 (three registers; 16 registers hold the sums of 4 vectors).
#pragma once

#include <cstdint>
#include <vector>

namespace infini::kernels {

struct PackedRows {
  int64_t rows = 0, cols = 0;
  int64_t panel_rows = 0;     // rows per panel: 32 or 24 (preferred_panel_rows)
  std::vector<float> panels;  // (ceil(rows / panel_rows), cols, panel_rows); rows past `rows` are zero

  // The panel height this CPU's fastest kernel reads: 32 with AVX-512, else 24.
  static int64_t preferred_panel_rows();
  // Packs the row-major (rows, cols) matrix W into panels of `panel_rows` (32 or 24) rows.
  static PackedRows pack(const float* W, int64_t rows, int64_t cols, int64_t panel_rows = preferred_panel_rows());
  int64_t panel_count() const { return (rows + panel_rows - 1) / panel_rows; }
  // Panels [p0, p1) hold rows [row_begin(p0), row_end(p1)).
  int64_t row_begin(int64_t p0) const { return p0 * panel_rows; }
  int64_t row_end(int64_t p1) const { return p1 * panel_rows < rows ? p1 * panel_rows : rows; }
};

// ys[v][r] = W[r, :] . xs[v] for the rows of panels [p0, p1) and each vector v < n. Every output is
// one running sum of fused multiply-adds over the columns in order, whatever n is, whatever tile it
// falls in, so a vector's results are the same bit for bit alone or beside others.
void matvecs_packed(const PackedRows& W, const float* const* xs, int64_t n, float* const* ys, int64_t p0, int64_t p1);

}  // namespace infini::kernels
