#include <taskfarm/taskfarm.hpp>

#include <cstdio>
#include <string>
#include <vector>

inline const taskfarm::Task<std::string(std::string)> shout{
    "consumer.shout", [](std::string s) { return s + "!"; }};

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);
  taskfarm::Pool pool({.workers = 2});
  const auto out = pool.map(shout, std::vector<std::string>{"a", "b", "c"});
  const bool ok = out == std::vector<std::string>{"a!", "b!", "c!"};
  std::printf("consumer: %s %s %s -> %s\n", out[0].c_str(), out[1].c_str(), out[2].c_str(),
              ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
