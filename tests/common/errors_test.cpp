// The user-facing exceptions and the options vocabulary: what their messages say.

#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <typeinfo>

#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/options.hpp"

namespace {

using namespace taskfarm;

TEST(Errors, AllDeriveFromErrorAndRuntimeError) {
  EXPECT_THROW(throw RemoteError("T", "m", "t", 1), Error);
  EXPECT_THROW(throw WorkerLost({}), Error);
  EXPECT_THROW(throw TaskTimeout("t", 1, std::chrono::milliseconds(5)), Error);
  EXPECT_THROW(throw Cancelled("x"), Error);
  EXPECT_THROW(throw PoolClosed("x"), Error);
  EXPECT_THROW(throw ConfigError("x"), Error);
  EXPECT_THROW(throw SerializationError("x"), Error);
  EXPECT_THROW(throw Error("x"), std::runtime_error);
}

TEST(Errors, RemoteErrorCarriesWhatTheWorkerSaw) {
  const RemoteError e("std::invalid_argument", "bad input", "resize", 17);
  EXPECT_EQ(e.type_name(), "std::invalid_argument");
  EXPECT_EQ(e.message(), "bad input");
  EXPECT_EQ(e.task(), "resize");
  EXPECT_EQ(e.index(), 17u);
  EXPECT_STREQ(e.what(), "task \"resize\" #17 raised std::invalid_argument: bad input");

  const RemoteError no_msg("int", "", "t", 0);
  EXPECT_STREQ(no_msg.what(), "task \"t\" #0 raised int");
}

TEST(Errors, WorkerLostMessageNamesWorkerPidSignalTaskAndIndex) {
  WorkerLost::Details d;
  d.worker = 3;
  d.pid = 4711;
  d.signal = SIGKILL;
  d.exit_code = -1;
  d.task = "resize";
  d.index = 17;
  const WorkerLost e(d);
  EXPECT_STREQ(e.what(), "worker 3 (pid 4711) was killed by SIGKILL while running task \"resize\" #17");
  EXPECT_EQ(e.signal(), SIGKILL);
  EXPECT_EQ(e.exit_code(), -1);
  EXPECT_EQ(e.worker(), 3);
  EXPECT_EQ(e.pid(), 4711);
  EXPECT_EQ(e.task(), "resize");
  EXPECT_EQ(e.index(), 17u);
}

TEST(Errors, WorkerLostWithACause) {
  WorkerLost::Details d;
  d.worker = 0;
  d.pid = 12;
  d.signal = SIGKILL;
  d.task = "t";
  d.index = 2;
  d.cause = "sent a corrupt frame and was killed by SIGKILL";
  EXPECT_STREQ(WorkerLost(d).what(),
               "worker 0 (pid 12) sent a corrupt frame and was killed by SIGKILL while running "
               "task \"t\" #2");
}

TEST(Errors, DescribeStatus) {
  EXPECT_EQ(WorkerLost::describe_status(SIGKILL, -1), "was killed by SIGKILL");
  EXPECT_EQ(WorkerLost::describe_status(SIGSEGV, -1), "was killed by SIGSEGV");
  EXPECT_EQ(WorkerLost::describe_status(0, 3), "exited with code 3");
  EXPECT_EQ(WorkerLost::describe_status(0, 0), "exited with code 0");
  EXPECT_EQ(WorkerLost::describe_status(0, -1), "was lost");
}

TEST(Errors, TaskTimeoutMessage) {
  const TaskTimeout e("sleepy", 4, std::chrono::milliseconds(200));
  EXPECT_EQ(e.task(), "sleepy");
  EXPECT_EQ(e.index(), 4u);
  EXPECT_EQ(e.timeout(), std::chrono::milliseconds(200));
  const std::string what = e.what();
  EXPECT_NE(what.find("\"sleepy\" #4"), std::string::npos) << what;
  EXPECT_NE(what.find("200 ms"), std::string::npos) << what;
}

TEST(Errors, Demangle) {
  EXPECT_EQ(demangle(typeid(int).name()), "int");
  EXPECT_EQ(demangle(typeid(std::runtime_error).name()), "std::runtime_error");
  EXPECT_EQ(demangle(nullptr), "unknown");
  EXPECT_EQ(demangle("not a mangled name!"), "not a mangled name!");
}

TEST(Options, TransportAndStartNamesRoundTrip) {
  for (auto t : {Transport::pipe, Transport::socket, Transport::mqueue, Transport::shm})
    EXPECT_EQ(parse_transport(to_string(t)), t) << to_string(t);
  for (auto s : {Start::fork, Start::spawn}) EXPECT_EQ(parse_start(to_string(s)), s);
  EXPECT_EQ(to_string(Transport::shm), "shm");
  EXPECT_EQ(to_string(Start::spawn), "spawn");
  EXPECT_EQ(parse_transport("PIPE"), std::nullopt);
  EXPECT_EQ(parse_transport(""), std::nullopt);
  EXPECT_EQ(parse_start("exec"), std::nullopt);
}

TEST(Options, Defaults) {
  const PoolOptions o;
  EXPECT_EQ(o.workers, 0u);
  EXPECT_EQ(o.transport, Transport::pipe);
  EXPECT_EQ(o.start, Start::fork);
  EXPECT_EQ(o.task_timeout.count(), 0);
  EXPECT_EQ(o.max_retries, 0u);
  EXPECT_EQ(o.initializer, nullptr);
  EXPECT_GE(o.max_message_bytes, std::size_t{256} << 20) << "DESIGN.md: default >= 256 MiB";
  EXPECT_EQ(MapOptions{}.chunksize, 0u);
}

}  // namespace
