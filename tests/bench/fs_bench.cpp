#include <stdexcept>

#include "tests/bench/bench.hpp"

namespace sitesfs::bench {
void run_fs_benchmarks(const Options&, Report&) { throw std::runtime_error("not written yet"); }
}  // namespace sitesfs::bench
