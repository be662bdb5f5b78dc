// The custom runner of docs/JOBFILES.md ("Tasks"), built from an install.
#include <taskfarm/cli/cli.hpp>
#include <taskfarm/cli/json_task.hpp>
#include <taskfarm/taskfarm.hpp>

struct Rect {
  int w = 0, h = 0;
  template <class A>
  void serialize(A& a) {
    a(w, h);
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Rect, w, h)

inline const taskfarm::cli::JsonTask<long(Rect)> area{
    "area", [](Rect r) { return long{r.w} * r.h; },
    {.arg_shape = R"({"w": integer, "h": integer})", .description = "area of a rectangle"}};

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);
  return taskfarm::cli::main(argc, argv);
}
