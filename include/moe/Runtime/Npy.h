//===- Npy.h - Reading and writing .npy arrays ------------------*- C++ -*-===//
//
// NumPy's .npy format (versions 1.0, 2.0 and 3.0): a magic string, a version,
// a header length, a Python dict literal {'descr', 'fortran_order', 'shape'}
// and the raw data. The runtime's inputs are C-order little-endian float32
// ('<f2' and '<f8' inputs are converted to float32); it writes float32
// activations and float32, int32 or int64 statistics.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_NPY_H
#define MOE_RUNTIME_NPY_H

#include "moe/Runtime/Result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moe::runtime {

/// A C-order float32 array.
struct NpyArray {
  /// The dimensions; empty for a 0-d array.
  std::vector<int64_t> shape;
  /// The row-major elements.
  std::vector<float> data;
  /// The dtype the file stored ('<f4', '<f2' or '<f8') before the conversion
  /// to float32; writeNpy ignores it.
  std::string descr = "<f4";
};

/// Reads the .npy file at `path` ('<f4', '<f2' or '<f8', C order) as float32.
/// Errors read "<path>: <problem>".
Result<NpyArray> readNpy(const std::string &path);

/// Writes `data` (row-major, with `shape`) as a '<f4' .npy file: version 1.0,
/// or 2.0 when the header does not fit 1.0. Errors read "<path>: <problem>".
Status writeNpy(const std::string &path, const std::vector<int64_t> &shape,
                const float *data);

/// The element types writeNpy can write: '<f4', '<i4' and '<i8'.
enum class NpyElement { F32, I32, I64 };

/// Writes `data` (row-major little-endian elements of `element`, with
/// `shape`; empty for a 0-d array) as a .npy file.
Status writeNpy(const std::string &path, const std::vector<int64_t> &shape,
                NpyElement element, const void *data);

/// Writes `array` as a '<f4' .npy file.
Status writeNpy(const std::string &path, const NpyArray &array);

} // namespace moe::runtime

#endif // MOE_RUNTIME_NPY_H
