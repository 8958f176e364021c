#include <stdexcept>

#include "tests/bench/bench.hpp"

namespace sitesfs::bench {
void run_deploy_benchmarks(const Options&, Report&) { throw std::runtime_error("not written yet"); }
}  // namespace sitesfs::bench
