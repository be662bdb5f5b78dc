// The taskfarm program. All of its logic is in the taskfarm::cli library (and,
// for `taskfarm bench`, in the taskfarm::bench engine when it is built).

#include <taskfarm/cli/cli.hpp>
#include <taskfarm/taskfarm.hpp>

#ifdef TASKFARM_WITH_BENCH
#include <taskfarm/bench/bench.hpp>
#endif

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);  // a spawned worker never returns from here
#ifdef TASKFARM_WITH_BENCH
  taskfarm::cli::add_command("bench", "Benchmark the IPC transports and the pool against baselines",
                             &taskfarm::bench::main);
#endif
  return taskfarm::cli::main(argc, argv);
}
