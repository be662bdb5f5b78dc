// taskfarm-bench: the benchmark engine as a program of its own (the same as
// `taskfarm bench`). See docs/PERFORMANCE.md.

#include <taskfarm/bench/bench.hpp>
#include <taskfarm/taskfarm.hpp>

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);  // spawned workers of the start-up figures enter here
  return taskfarm::bench::main(argc, argv);
}
