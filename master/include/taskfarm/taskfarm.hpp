#pragma once
// The public API of taskfarm: everything a program needs to run tasks in a pool
// of worker processes. See README.md, "Using the pool from C++".

#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/options.hpp"
#include "taskfarm/common/serialize.hpp"
#include "taskfarm/common/task.hpp"
#include "taskfarm/master/future.hpp"
#include "taskfarm/master/pool.hpp"
#include "taskfarm/master/result.hpp"
#include "taskfarm/master/stats.hpp"
#include "taskfarm/worker/init.hpp"
