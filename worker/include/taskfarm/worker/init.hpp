#pragma once

namespace taskfarm {

// Call first in main(). In the master it checks the task registry (a duplicate
// task name throws ConfigError naming both definitions) and returns. In a worker
// started with Start::spawn it runs the worker loop and never returns: the
// process exits when the master is done with it. In a process started as a
// pool's clean fork server (a master that had threads when it created a pool)
// it serves forks and never returns either.
void init(int argc, char** argv);

}  // namespace taskfarm
