// The test program's own main: taskfarm::init first, as every taskfarm program
// must, so that a worker started with Start::spawn (this same program executed
// again) runs the worker loop instead of the test suite. (gtest_main's main is
// not linked: this one resolves the symbol first.)

#include <gtest/gtest.h>

#include "taskfarm/taskfarm.hpp"

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
