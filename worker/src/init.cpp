#include "taskfarm/worker/init.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "taskfarm/common/registry.hpp"
#include "taskfarm/worker/fork_server.hpp"
#include "taskfarm/worker/worker.hpp"

namespace taskfarm {

void init(int /*argc*/, char** /*argv*/) {
  if (const char* server = std::getenv(worker::kForkServerEnv)) {
    // A root fork server executed by a master that had threads (fork_server.hpp).
    const std::string text = server;
    ::unsetenv(worker::kForkServerEnv);
    worker::run_root_fork_server(text);
  }
  const char* spec = std::getenv(worker::kWorkerEnv);
  if (spec == nullptr) {
    detail::Registry::instance().check();  // duplicate task names: ConfigError
    worker::note_init_called();
    return;
  }
  // A spawned worker. Remove the marker so that programs this worker starts are
  // not mistaken for workers.
  const std::string text = spec;
  ::unsetenv(worker::kWorkerEnv);
  std::string error;
  auto ep = ipc::Endpoint::parse(text, &error);
  int code = worker::kExitAttachFailed;
  if (!ep) {
    std::fprintf(stderr, "taskfarm worker: %s\n", error.c_str());
  } else {
    try {
      detail::Registry::instance().check();
      code = worker::run(*ep, worker::WorkerConfig::load(*ep));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "taskfarm worker: %s\n", e.what());
    }
  }
  std::fflush(nullptr);
  ::_exit(code);
}

}  // namespace taskfarm
