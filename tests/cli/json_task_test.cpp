// JsonTask: a user-defined JSON-callable task, its adapter, and a pool running it.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "taskfarm/cli/json_task.hpp"
#include "taskfarm/common/registry.hpp"
#include "taskfarm/taskfarm.hpp"

namespace {

using nlohmann::json;

struct Rect {
  int w = 0;
  int h = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(w, h);
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Rect, w, h)

struct Area {
  long area = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(area, label);
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Area, area, label)

const taskfarm::cli::JsonTask<Area(Rect)> area_task{
    "test.area", [](Rect r) { return Area{static_cast<long>(r.w) * r.h, std::to_string(r.w) + "x" + std::to_string(r.h)}; },
    {.arg_shape = R"({"w": integer, "h": integer})", .description = "area of a rectangle"}};

const taskfarm::cli::JsonTask<std::vector<int>(std::vector<int>)> reverse_task{
    "test.reverse", [](std::vector<int> v) { return std::vector<int>(v.rbegin(), v.rend()); }};

const taskfarm::cli::JsonTask<json(json)> keys_task{"test.keys", [](json j) {
                                                      json out = json::array();
                                                      for (auto& [k, v] : j.items()) out.push_back(k);
                                                      return out;
                                                    }};

const taskfarm::Task<int(int)> plain_task{"test.plain", [](int x) { return x + 1; }};

// Runs a task the way a worker does: encoded argument in, encoded result out.
json call_through_adapter(const std::string& name, const json& arg) {
  const auto adapter = taskfarm::cli::find_json_adapter(name);
  EXPECT_NE(adapter, nullptr);
  std::vector<std::byte> in, out;
  adapter->encode(arg, in);
  taskfarm::detail::Registry::instance().find(name)->invoke(in, out);
  return adapter->decode(out);
}

TEST(JsonTask, AdapterRoundTripsStructs) {
  EXPECT_EQ(call_through_adapter("test.area", json{{"w", 3}, {"h", 4}}), json({{"area", 12}, {"label", "3x4"}}));
}

TEST(JsonTask, AdapterRoundTripsContainersAndJson) {
  EXPECT_EQ(call_through_adapter("test.reverse", json{1, 2, 3}), json({3, 2, 1}));
  EXPECT_EQ(call_through_adapter("test.keys", json{{"b", 1}, {"a", {1, 2}}}), json({"a", "b"}));
  EXPECT_EQ(call_through_adapter("echo", json{{"s", "\u00e9"}, {"f", 0.1}, {"n", nullptr}}),
            json({{"s", "\u00e9"}, {"f", 0.1}, {"n", nullptr}}));
}

TEST(JsonTask, ShapesAreDescribed) {
  EXPECT_EQ(taskfarm::cli::find_json_adapter("test.area")->arg_shape, R"({"w": integer, "h": integer})");
  EXPECT_EQ(taskfarm::cli::find_json_adapter("test.area")->description, "area of a rectangle");
  EXPECT_EQ(taskfarm::cli::find_json_adapter("test.reverse")->arg_shape, "[integer, ...]");
  EXPECT_EQ(taskfarm::cli::find_json_adapter("test.keys")->result_shape, "any JSON");
  EXPECT_EQ(taskfarm::cli::find_json_adapter("test.plain"), nullptr);  // registered, but not JSON-callable
}

TEST(JsonTask, WrongArgumentsAreRefusedBeforeSending) {
  const auto adapter = taskfarm::cli::find_json_adapter("test.reverse");
  std::vector<std::byte> out;
  EXPECT_THROW(adapter->encode(json("nope"), out), std::invalid_argument);
  EXPECT_THROW(taskfarm::cli::find_json_adapter("sleep_ms")->encode(json(1.5), out), std::invalid_argument);
  EXPECT_THROW(taskfarm::cli::find_json_adapter("sleep_ms")->encode(json(1e30), out), std::invalid_argument);
}

TEST(JsonTask, StrictNumberConversion) {
  using taskfarm::cli::json_to_arg;
  EXPECT_EQ(json_to_arg<int>(json(-3)), -3);
  EXPECT_THROW((void)json_to_arg<int>(json(3.0)), std::invalid_argument);
  EXPECT_THROW((void)json_to_arg<int>(json(5'000'000'000LL)), std::invalid_argument);
  EXPECT_THROW((void)json_to_arg<unsigned>(json(-1)), std::invalid_argument);
  EXPECT_THROW((void)json_to_arg<bool>(json(1)), std::invalid_argument);
  EXPECT_DOUBLE_EQ(json_to_arg<double>(json(2)), 2.0);
  EXPECT_THROW((void)json_to_arg<std::string>(json(2)), std::invalid_argument);
}

class JsonTaskPool : public taskfarm::test::LeakCheck {};

TEST_F(JsonTaskPool, APoolRunsJsonTasksLikeAnyTask) {
  taskfarm::Pool pool({.workers = 2});
  const std::vector<Area> areas = pool.map(area_task, std::vector<Rect>{{1, 2}, {3, 4}, {5, 6}});
  ASSERT_EQ(areas.size(), 3u);
  EXPECT_EQ(areas[2].area, 30);
  EXPECT_EQ(areas[2].label, "5x6");
  const std::vector<json> keys = pool.map(keys_task, std::vector<json>{json{{"x", 1}}, json::object()});
  EXPECT_EQ(keys[0], json({"x"}));
  EXPECT_EQ(keys[1], json::array());
}

TEST_F(JsonTaskPool, ThroughTheAdapterAndRunBatch) {
  const auto adapter = taskfarm::cli::find_json_adapter("count_primes");
  taskfarm::detail::BatchBuilder b;
  for (int i = 0; i < 4; ++i) {
    adapter->encode(json{{"lo", i * 100}, {"hi", (i + 1) * 100}}, b.arena());
    b.end_item();
  }
  taskfarm::Pool pool({.workers = 2});
  auto batch = pool.run_batch("count_primes", std::move(b), taskfarm::MapOptions{1});
  batch->wait();
  const int expected[] = {25, 21, 16, 16};  // primes per hundred below 400
  for (std::size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(batch->outcome(i).ok);
    EXPECT_EQ(adapter->decode(batch->outcome(i).value), json(expected[i]));
  }
}

}  // namespace
