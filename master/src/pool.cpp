#include "taskfarm/master/pool.hpp"

#include "pool_core.hpp"
#include "taskfarm/common/registry.hpp"

namespace taskfarm {

Pool::Pool(PoolOptions options) : core_(std::make_shared<detail::PoolCore>(std::move(options))) {}

Pool::~Pool() {
  try {
    core_->shutdown(true, false);
  } catch (...) {
    // a destructor must not throw; the core's own destructor finishes the job
  }
}

std::shared_ptr<detail::Batch> Pool::run_batch(std::string task, detail::BatchBuilder inputs,
                                               MapOptions opts, bool observable,
                                               std::uint64_t index_base) {
  if (!detail::Registry::instance().find(task))
    throw ConfigError("no task named \"" + task + "\" is registered in this program");
  const std::size_t n = inputs.size();
  auto batch = inputs.build(std::move(task), observable);
  batch->index_base = index_base;
  std::size_t chunk = opts.chunksize;
  if (chunk == 0) {
    const std::size_t div = 4 * core_->options().workers;
    chunk = std::max<std::size_t>(1, (n + div - 1) / div);
  }
  core_->submit(batch, chunk);
  return batch;
}

std::shared_ptr<detail::CallbackQueue> Pool::callbacks() const { return core_->callbacks(); }

void Pool::close() { core_->close(); }
void Pool::join() { core_->join(); }
void Pool::shutdown(bool wait, bool cancel_pending) { core_->shutdown(wait, cancel_pending); }
void Pool::terminate() { core_->terminate(); }
PoolStats Pool::stats() const { return core_->stats(); }
std::size_t Pool::size() const noexcept { return core_->options().workers; }
const PoolOptions& Pool::options() const noexcept { return core_->options(); }

}  // namespace taskfarm
