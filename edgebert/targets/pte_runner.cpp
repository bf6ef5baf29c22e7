// A .pte program run by ExecuTorch's C++ runtime (its Module API), as an app links it:
// XNNPACK delegate and the optimized kernels, no torch. Built for aarch64 by
// `edgebert arm-env` and run under qemu to check arm64 outputs (edgebert/targets/arm64.py).
//
//   pte_runner MODEL.pte INPUTS OUTPUTS
//
// INPUTS holds calls, each: int32 n; n tensors, each int32 ndim, int32 dims[ndim] and
// int64 values (row-major). OUTPUTS gets, per call: int32 n; n tensors, each int32 ndim,
// int32 dims[ndim] and float32 values. Little-endian; exit 1 with a line on stderr on any
// failure.
#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor_ptr.h>

#include <cstdint>
#include <cstdio>
#include <vector>

using executorch::aten::ScalarType;
using executorch::extension::Module;
using executorch::extension::TensorPtr;
using executorch::extension::make_tensor_ptr;
using executorch::runtime::EValue;

static bool read_all(FILE* f, void* buf, size_t bytes) {
  return fread(buf, 1, bytes, f) == bytes;
}

static int fail(const char* what) {
  fprintf(stderr, "pte_runner: %s\n", what);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 4) return fail("usage: pte_runner MODEL.pte INPUTS OUTPUTS");
  Module module(argv[1]);
  if (module.load_forward() != executorch::runtime::Error::Ok)
    return fail("cannot load the program's forward method");
  FILE* in = fopen(argv[2], "rb");
  FILE* out = fopen(argv[3], "wb");
  if (!in || !out) return fail("cannot open the input or output file");
  int32_t n;
  while (read_all(in, &n, sizeof n)) {
    std::vector<TensorPtr> tensors;  // kept alive until the call returns
    std::vector<EValue> args;
    for (int32_t t = 0; t < n; ++t) {
      int32_t ndim;
      if (!read_all(in, &ndim, sizeof ndim)) return fail("truncated input");
      std::vector<int32_t> dims(ndim);
      if (!read_all(in, dims.data(), ndim * sizeof(int32_t))) return fail("truncated input");
      size_t count = 1;
      for (int32_t d : dims) count *= d;
      std::vector<int64_t> values(count);
      if (!read_all(in, values.data(), count * sizeof(int64_t))) return fail("truncated input");
      std::vector<executorch::aten::SizesType> sizes(dims.begin(), dims.end());
      tensors.push_back(make_tensor_ptr(sizes, std::move(values)));
      args.emplace_back(tensors.back());
    }
    auto result = module.forward(args);
    if (!result.ok()) return fail("forward failed");
    int32_t outputs = static_cast<int32_t>(result->size());
    fwrite(&outputs, sizeof outputs, 1, out);
    for (const EValue& value : *result) {
      if (!value.isTensor()) return fail("an output is not a tensor");
      const auto& tensor = value.toTensor();
      if (tensor.scalar_type() != ScalarType::Float) return fail("an output is not float32");
      int32_t ndim = static_cast<int32_t>(tensor.dim());
      fwrite(&ndim, sizeof ndim, 1, out);
      for (int32_t d = 0; d < ndim; ++d) {
        int32_t size = static_cast<int32_t>(tensor.size(d));
        fwrite(&size, sizeof size, 1, out);
      }
      fwrite(tensor.const_data_ptr<float>(), sizeof(float), tensor.numel(), out);
    }
  }
  fclose(out);
  return 0;
}
