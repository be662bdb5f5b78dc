// The taskfarm program. All of its logic is in the taskfarm::cli library.

#include <taskfarm/cli/cli.hpp>
#include <taskfarm/taskfarm.hpp>

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);  // a spawned worker never returns from here
  return taskfarm::cli::main(argc, argv);
}
