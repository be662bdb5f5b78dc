// Task<R(Args...)> and the process-wide registry: lookup, listing, local calls,
// invocation through the registry, scoped registration, duplicate names.
//
// Registry conflicts are permanent for the life of a process (a duplicate is a
// programming error), so only DuplicateNameIsReportedWithBothPlaces creates one.

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/registry.hpp"
#include "taskfarm/common/serialize.hpp"
#include "taskfarm/common/task.hpp"

namespace registry_test {

inline int g_void_calls = 0;

inline const taskfarm::Task<int(int)> square{"registry_test.square", [](int x) { return x * x; }};
inline const int square_line = __LINE__ - 1;

std::string repeat_impl(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}
inline const taskfarm::Task<std::string(std::string, int)> repeat{"registry_test.repeat",
                                                                  &repeat_impl};
inline const taskfarm::Task<void()> touch{"registry_test.touch", [] { ++g_void_calls; }};
inline const taskfarm::Task<int(int)> thrower{"registry_test.thrower", [](int x) -> int {
  throw std::out_of_range("no " + std::to_string(x));
}};

}  // namespace registry_test

namespace {

using taskfarm::detail::Registry;

TEST(Task, CallsTheFunctionLocally) {
  EXPECT_EQ(registry_test::square(7), 49);
  EXPECT_EQ(registry_test::repeat("ab", 3), "ababab");
  const int before = registry_test::g_void_calls;
  registry_test::touch();
  EXPECT_EQ(registry_test::g_void_calls, before + 1);
  EXPECT_THROW(registry_test::thrower(1), std::out_of_range);
  EXPECT_EQ(registry_test::square.name(), "registry_test.square");
}

TEST(Registry, FindsStaticTasksWithTheirSignatureAndPlace) {
  auto info = Registry::instance().find("registry_test.square");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "registry_test.square");
  EXPECT_EQ(info->signature, "int (int)");
  EXPECT_EQ(info->where, std::string(__FILE__) + ":" + std::to_string(registry_test::square_line));

  auto rep = Registry::instance().find("registry_test.repeat");
  ASSERT_NE(rep, nullptr);
  EXPECT_NE(rep->signature.find("int"), std::string::npos) << rep->signature;
  EXPECT_NE(rep->signature.find("string"), std::string::npos) << rep->signature;

  EXPECT_EQ(Registry::instance().find("registry_test.no_such_task"), nullptr);
  EXPECT_EQ(Registry::instance().find(""), nullptr);
}

TEST(Registry, ListIsSortedByNameAndHasEveryTask) {
  const auto all = Registry::instance().list();
  std::vector<std::string> names;
  for (const auto& t : all) names.push_back(t->name);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* n : {"registry_test.repeat", "registry_test.square", "registry_test.thrower",
                        "registry_test.touch"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
}

TEST(Registry, InvokeDecodesArgumentsAndEncodesTheResult) {
  auto info = Registry::instance().find("registry_test.repeat");
  ASSERT_NE(info, nullptr);
  std::vector<std::byte> out;
  info->invoke(taskfarm::encode(std::string("xy"), 2), out);
  EXPECT_EQ(taskfarm::decode<std::string>(out), "xyxy");

  auto sq = Registry::instance().find("registry_test.square");
  ASSERT_NE(sq, nullptr);
  out.clear();
  sq->invoke(taskfarm::encode(-12), out);
  EXPECT_EQ(taskfarm::decode<int>(out), 144);
}

TEST(Registry, InvokeOfAVoidTaskWritesNothing) {
  auto info = Registry::instance().find("registry_test.touch");
  ASSERT_NE(info, nullptr);
  const int before = registry_test::g_void_calls;
  std::vector<std::byte> out;
  info->invoke({}, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(registry_test::g_void_calls, before + 1);
}

TEST(Registry, InvokeWithWrongArgumentsIsASerializationError) {
  auto sq = Registry::instance().find("registry_test.square");
  ASSERT_NE(sq, nullptr);
  std::vector<std::byte> out;
  EXPECT_THROW(sq->invoke(taskfarm::encode(std::string("not an int")), out),
               taskfarm::SerializationError);
  EXPECT_THROW(sq->invoke({}, out), taskfarm::SerializationError);
  EXPECT_THROW(sq->invoke(taskfarm::encode(1, 2), out), taskfarm::SerializationError);
}

TEST(Registry, InvokePropagatesWhatTheTaskThrows) {
  auto t = Registry::instance().find("registry_test.thrower");
  ASSERT_NE(t, nullptr);
  std::vector<std::byte> out;
  EXPECT_THROW(t->invoke(taskfarm::encode(3), out), std::out_of_range);
}

TEST(Registry, ATaskGoingOutOfScopeUnregisters) {
  {
    const taskfarm::Task<int(int)> scoped{"registry_test.scoped", [](int x) { return x + 1; }};
    auto info = Registry::instance().find("registry_test.scoped");
    ASSERT_NE(info, nullptr);
    std::vector<std::byte> out;
    info->invoke(taskfarm::encode(41), out);
    EXPECT_EQ(taskfarm::decode<int>(out), 42);
  }
  EXPECT_EQ(Registry::instance().find("registry_test.scoped"), nullptr);
  // The name is free again.
  const taskfarm::Task<int(int)> again{"registry_test.scoped", [](int x) { return x + 2; }};
  auto info = Registry::instance().find("registry_test.scoped");
  ASSERT_NE(info, nullptr);
  std::vector<std::byte> out;
  info->invoke(taskfarm::encode(40), out);
  EXPECT_EQ(taskfarm::decode<int>(out), 42);
}

TEST(Registry, AFoundTaskStaysUsableAfterItIsRemoved) {
  std::shared_ptr<const taskfarm::detail::TaskInfo> info;
  {
    const taskfarm::Task<int(int)> scoped{"registry_test.short_lived", [](int x) { return -x; }};
    info = Registry::instance().find("registry_test.short_lived");
  }
  ASSERT_NE(info, nullptr);
  std::vector<std::byte> out;
  info->invoke(taskfarm::encode(5), out);
  EXPECT_EQ(taskfarm::decode<int>(out), -5);
}

TEST(Registry, DuplicateNameIsReportedWithBothPlaces) {
  EXPECT_NO_THROW(Registry::instance().check()) << "no duplicates before this test";

  const taskfarm::Task<int(int)> first{"registry_test.dup", [](int x) { return 1 + x; }}; const int first_line = __LINE__;
  const taskfarm::Task<double(double)> second{"registry_test.dup", [](double x) { return 2 * x; }}; const int second_line = __LINE__;

  // The first registration stays in force.
  auto info = Registry::instance().find("registry_test.dup");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->signature, "int (int)");
  std::vector<std::byte> out;
  info->invoke(taskfarm::encode(1), out);
  EXPECT_EQ(taskfarm::decode<int>(out), 2);

  try {
    Registry::instance().check();
    FAIL() << "check() accepted a duplicate task name";
  } catch (const taskfarm::ConfigError& e) {
    const std::string what = e.what();
    const std::string file = __FILE__;
    EXPECT_NE(what.find("registry_test.dup"), std::string::npos) << what;
    EXPECT_NE(what.find(file + ":" + std::to_string(first_line)), std::string::npos) << what;
    EXPECT_NE(what.find(file + ":" + std::to_string(second_line)), std::string::npos) << what;
    EXPECT_LT(what.find(file + ":" + std::to_string(first_line)),
              what.find(file + ":" + std::to_string(second_line)))
        << "the first definition is named first: " << what;
  }
}

}  // namespace
