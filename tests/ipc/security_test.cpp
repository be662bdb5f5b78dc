// Security of the links: every shared-memory object and message queue is
// owner-only (0600) and created exclusively (O_EXCL: an object that is already
// there, whoever put it there, is never reused), and a second user on the
// machine can neither open, nor read, nor inject into a pool's links.
//
// The tests run as root (they skip otherwise): the "second user" is a child
// that drops to nobody (65534) after closing every descriptor it inherited, so
// it holds no more than an unrelated process of another user would.
//
// Exclusive creation is tested by collision: this program replaces getrandom()
// (the only source of the random part of object names) so that it can make the
// next names predictable, plants an object of a stranger under the name the
// library is about to use, and checks that the library refuses it -- it picks
// another name, or fails -- and leaves the planted object as it was.

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"
#include "taskfarm/common/frame.hpp"
#include "taskfarm/ipc/fd.hpp"
#include "taskfarm/ipc/link.hpp"
#include "taskfarm/ipc/names.hpp"
#include "taskfarm/taskfarm.hpp"

// ---- a getrandom() that can be told to repeat itself ------------------------

namespace {
std::atomic<int> g_fixed_calls{0};           // how many next calls return g_fixed
std::atomic<std::uint64_t> g_fixed{0};
std::atomic<int> g_calls{0};                 // calls so far, fixed or not
}  // namespace

// Replaces the C library's getrandom() in this program (the taskfarm libraries
// are linked statically into it). Passes through to the system call unless a
// test asked for fixed bytes.
extern "C" ssize_t getrandom(void* buf, size_t len, unsigned int flags) {
  g_calls.fetch_add(1);
  int left = g_fixed_calls.load();
  while (left > 0 && !g_fixed_calls.compare_exchange_weak(left, left - 1)) {
  }
  if (left > 0) {
    const std::uint64_t v = g_fixed.load();
    auto* p = static_cast<unsigned char*>(buf);
    for (size_t i = 0; i < len; ++i) p[i] = static_cast<unsigned char>(v >> (8 * (i % 8)));
    return static_cast<ssize_t>(len);
  }
  return static_cast<ssize_t>(::syscall(SYS_getrandom, buf, len, flags));
}

namespace {

using taskfarm::Frame;
using taskfarm::FrameKind;
using taskfarm::Transport;
using taskfarm::ipc::Link;
using taskfarm::ipc::LinkConfig;
using taskfarm::ipc::LinkPair;
using namespace std::chrono_literals;

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr auto kPatience = 30s;

// The name taskfarm gives an object of this process whose random part is `r`
// (taskfarm/ipc/names.hpp: "/taskfarm-<pid>-<start time>-<16 hex digits>-<tag>"),
// without the leading slash: its file name in /dev/shm.
std::string predicted_name(std::uint64_t r, const std::string& tag) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "taskfarm-%ld-%llu-%016llx-%s", static_cast<long>(::getpid()),
                static_cast<unsigned long long>(taskfarm::ipc::process_start_time(::getpid()).value_or(0)),
                static_cast<unsigned long long>(r), tag.c_str());
  return buf;
}

std::string read_link(const std::string& path) {
  char buf[4096];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return {};
  return std::string(buf, static_cast<std::size_t>(n));
}

// Every /dev/shm name that looks like taskfarm's, whoever created it.
std::vector<std::string> all_taskfarm_objects() {
  std::vector<std::string> out;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(d))
      if (std::strncmp(e->d_name, "taskfarm-", 9) == 0) out.emplace_back(e->d_name);
    ::closedir(d);
  }
  return out;
}

// The numbers of the open descriptors of process `pid`.
std::vector<int> fds_of(pid_t pid) {
  std::vector<int> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') out.push_back(std::atoi(e->d_name));
    ::closedir(d);
  }
  return out;
}

// A descriptor or mapping of process `pid` that refers to a /dev/shm object.
struct ShmRef {
  std::string where;   // "/proc/<pid>/fd/<n>" or "/proc/<pid>/map_files/<range>"
  std::string target;  // what it points to, e.g. "/dev/shm/taskfarm-1-ab-shm (deleted)"
};

std::vector<ShmRef> shm_refs_of(pid_t pid) {
  std::vector<ShmRef> out;
  const std::string proc = "/proc/" + std::to_string(pid);
  for (int fd : fds_of(pid)) {
    const std::string where = proc + "/fd/" + std::to_string(fd);
    const std::string target = read_link(where);
    if (target.rfind("/dev/shm/", 0) == 0) out.push_back({where, target});
  }
  std::ifstream maps(proc + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto at = line.find("/dev/shm/");
    if (at == std::string::npos) continue;
    const std::string range = line.substr(0, line.find(' '));
    out.push_back({proc + "/map_files/" + range, line.substr(at)});
  }
  return out;
}

// Children (not zombies) of `parent`.
std::vector<pid_t> live_children(pid_t parent) { return taskfarm::test::children_of(parent); }

// ---- the second user ------------------------------------------------------------

struct Attempt {
  std::string what;  // "open O_RDWR /dev/shm/x"
  int err = 0;       // errno of the failure, 0 if it succeeded
};

// One way to try to get at a path or name.
struct Probe {
  enum Kind { open_path, shm_open_name } kind;
  std::string target;
  int flags = O_RDONLY;
};

// Runs the probes in a child that closed every inherited descriptor and became
// nobody; returns what each attempt gave. Everything is prepared here, so the
// child (forked from a possibly multi-threaded process) only makes system calls.
std::vector<Attempt> as_second_user(const std::vector<Probe>& probes) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    ::alarm(30);
    // Nothing inherited: an unrelated process of another user holds none of
    // the master's descriptors.
    for (int fd = 3; fd < 65536; ++fd)
      if (fd != p[1]) ::close(fd);
    int code = 0;
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNogroup) != 0 || ::setuid(kNobody) != 0 ||
        ::getuid() != kNobody || ::geteuid() != kNobody || ::getegid() != kNogroup)
      ::_exit(90);
    for (const auto& probe : probes) {
      int fd = -1;
      switch (probe.kind) {
        case Probe::open_path:
          fd = ::open(probe.target.c_str(), probe.flags | O_CLOEXEC);
          break;
        case Probe::shm_open_name:
          fd = ::shm_open(probe.target.c_str(), probe.flags | O_CLOEXEC, 0);
          break;
      }
      const int e = fd >= 0 ? 0 : errno;
      if (fd >= 0) ::close(fd);
      if (::write(p[1], &e, sizeof e) != sizeof e) code = 91;
    }
    ::_exit(code);
  }
  ::close(p[1]);
  std::vector<Attempt> out;
  for (const auto& probe : probes) {
    int e = -1;
    if (::read(p[0], &e, sizeof e) != sizeof e) break;
    const char* how = probe.kind == Probe::open_path ? "open" : "shm_open";
    out.push_back({std::string(how) + (probe.flags == O_RDONLY ? " O_RDONLY " : " O_RDWR ") +
                       probe.target,
                   e});
  }
  ::close(p[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("the second-user child failed: status " + std::to_string(status));
  return out;
}

// Runs `probes` as the second user and checks that every one of them failed
// with EACCES, ENOENT or EPERM. Two controls run with them and must succeed,
// so a refusal means the permissions said no, not that the child could not
// open anything: /dev/null, and a /dev/shm object of ours made world-writable
// (as taskfarm's would be with a wrong mode).
void expect_refused_to_second_user(const std::vector<Probe>& probes) {
  const std::string control = "/dev/shm/tfsec-control-" + std::to_string(::getpid());
  const int cfd = ::open(control.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(cfd, 0) << control << ": " << std::strerror(errno);
  ASSERT_EQ(::fchmod(cfd, 0666), 0);
  ::close(cfd);
  std::vector<Probe> all = probes;
  all.push_back({Probe::open_path, "/dev/null", O_RDWR});
  all.push_back({Probe::shm_open_name, control.substr(8), O_RDWR});
  std::vector<Attempt> attempts;
  try {
    attempts = as_second_user(all);
  } catch (const std::exception& e) {
    ::unlink(control.c_str());
    FAIL() << e.what();
  }
  ::unlink(control.c_str());
  ASSERT_EQ(attempts.size(), all.size());
  EXPECT_EQ(attempts[probes.size()].err, 0) << "control: nobody can open /dev/null";
  EXPECT_EQ(attempts[probes.size() + 1].err, 0) << "control: nobody can open a 0666 object";
  std::size_t eacces = 0, enoent = 0, eperm = 0;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const Attempt& a = attempts[i];
    EXPECT_NE(a.err, 0) << "nobody could " << a.what;
    if (a.err == EACCES) {
      ++eacces;
    } else if (a.err == ENOENT) {
      ++enoent;
    } else if (a.err == EPERM) {
      ++eperm;
    } else if (a.err != 0) {
      ADD_FAILURE() << a.what << ": " << std::strerror(a.err);
    }
  }
  std::printf("[security] %s: nobody made %zu attempts, all refused (EACCES %zu, ENOENT %zu, EPERM %zu)\n",
              ::testing::UnitTest::GetInstance()->current_test_info()->name(), probes.size(), eacces,
              enoent, eperm);
}

// Probes that try to open each path for reading and for writing.
void add_open_probes(std::vector<Probe>& probes, const std::string& path) {
  probes.push_back({Probe::open_path, path, O_RDONLY});
  probes.push_back({Probe::open_path, path, O_RDWR});
}

// ---- fixture ----------------------------------------------------------------------

class LinkSecurity : public taskfarm::test::LeakCheck {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root, to act as a second user (nobody)";
    LeakCheck::SetUp();
  }
  void TearDown() override {
    g_fixed_calls.store(0);
    for (const auto& p : planted_) ::unlink(p.c_str());
    if (::geteuid() == 0) LeakCheck::TearDown();
  }
  // Puts a stranger's object (owned by nobody, mode 0666, content "decoy")
  // under /dev/shm/<name>; removed by TearDown.
  void plant(const std::string& name) {
    const std::string path = "/dev/shm/" + name;
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
    planted_.push_back(path);
    ASSERT_EQ(::write(fd, "decoy", 5), 5);
    ASSERT_EQ(::fchown(fd, kNobody, kNogroup), 0);
    ASSERT_EQ(::fchmod(fd, 0666), 0);
    ::close(fd);
  }
  // The planted object is exactly as it was planted.
  void expect_untouched(const std::string& name) {
    const std::string path = "/dev/shm/" + name;
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0) << path << " was removed";
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0666u) << path;
    EXPECT_EQ(st.st_uid, kNobody) << path;
    EXPECT_EQ(st.st_size, 5) << path << " was resized";
    std::ifstream in(path);
    std::string content;
    std::getline(in, content);
    EXPECT_EQ(content, "decoy") << path;
  }
  void expect_owner_only(int fd, const std::string& what) {
    struct stat st {};
    ASSERT_EQ(::fstat(fd, &st), 0) << what;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << what;
    EXPECT_EQ(st.st_uid, ::geteuid()) << what;
    EXPECT_EQ(st.st_gid, ::getegid()) << what;
    EXPECT_EQ(st.st_nlink, 0u) << what << ": the name should be gone";
    const std::string target = read_link("/proc/self/fd/" + std::to_string(fd));
    EXPECT_EQ(target.rfind("/dev/shm/taskfarm-", 0), 0u) << what << ": " << target;
    EXPECT_NE(target.find(" (deleted)"), std::string::npos) << what << ": " << target;
  }

  std::vector<std::string> planted_;
};

// A worker attached in a forked child: says hello, then waits for the end.
pid_t fork_worker(LinkPair& pair) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(60);
    taskfarm::ipc::close_internal_fds_except(pair.worker.fds);
    std::unique_ptr<Link> link;
    if (taskfarm::ipc::attach_link(pair.worker, LinkConfig{}, link)) ::_exit(2);
    if (link->send(FrameKind::hello, 0, {})) ::_exit(3);
    Frame f;
    while (!link->receive(f)) {
    }
    ::_exit(0);
  }
  for (int fd : pair.worker.fds) ::close(fd);
  pair.worker.fds.clear();
  return pid;
}

int reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// ---- shm ---------------------------------------------------------------------------

TEST_F(LinkSecurity, ShmObjectIsOwnerOnlyAndNamelessFromTheStart) {
  const auto before = taskfarm::test::shm_objects();
  LinkPair pair;
  ASSERT_FALSE(taskfarm::ipc::create_link(Transport::shm, LinkConfig{}, pair));
  ASSERT_EQ(pair.worker.fds.size(), 2u);
  // The object travels by descriptor only: its name was removed at creation.
  EXPECT_EQ(taskfarm::test::shm_objects(), before);
  expect_owner_only(pair.worker.fds[0], "the shm object");
  // The master's mapping is of the same, unlinked object.
  for (const auto& ref : shm_refs_of(::getpid()))
    EXPECT_NE(ref.target.find(" (deleted)"), std::string::npos) << ref.where << " -> " << ref.target;

  // A second user: no name to open, no way into this process's descriptors.
  std::vector<Probe> probes;
  for (const auto& name : all_taskfarm_objects()) {
    add_open_probes(probes, "/dev/shm/" + name);
    probes.push_back({Probe::shm_open_name, "/" + name, O_RDWR});
  }
  for (int fd : {pair.worker.fds[0], pair.worker.fds[1], pair.master->readable_fd()})
    add_open_probes(probes, "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fd));
  for (const auto& ref : shm_refs_of(::getpid())) add_open_probes(probes, ref.where);
  expect_refused_to_second_user(probes);

  for (int fd : pair.worker.fds) ::close(fd);
}

TEST_F(LinkSecurity, ShmCreationNeverReusesAnObjectThatIsAlreadyThere) {
  const std::uint64_t r = 0x5eed5eed5eed0001ull;
  const std::string name = predicted_name(r, "shm");
  plant(name);
  // Every name it draws is taken: creation fails instead of opening the object.
  g_fixed.store(r);
  g_fixed_calls.store(1000);
  LinkPair pair;
  const auto ec = taskfarm::ipc::create_link(Transport::shm, LinkConfig{}, pair);
  g_fixed_calls.store(0);
  EXPECT_EQ(ec, std::errc::file_exists) << ec.message();
  EXPECT_FALSE(pair.master);
  expect_untouched(name);

  // Only the first name is taken: it draws another and goes on, leaving the
  // stranger's object alone.
  g_fixed_calls.store(1);
  const int calls = g_calls.load();
  LinkPair ok;
  ASSERT_FALSE(taskfarm::ipc::create_link(Transport::shm, LinkConfig{}, ok));
  EXPECT_EQ(g_fixed_calls.load(), 0);
  EXPECT_EQ(g_calls.load() - calls, 2) << "one name drawn, taken; a second drawn";
  expect_owner_only(ok.worker.fds[0], "the shm object created beside the stranger's");
  expect_untouched(name);
  for (int fd : ok.worker.fds) ::close(fd);
}

TEST_F(LinkSecurity, ShmCreationDoesNotFollowAPlantedSymlink) {
  const std::uint64_t r = 0x5eed5eed5eed0002ull;
  const std::string name = predicted_name(r, "shm");
  const std::string target = "/tmp/taskfarm-security-symlink-target-" + std::to_string(::getpid());
  ::unlink(target.c_str());
  const std::string link = "/dev/shm/" + name;
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0) << std::strerror(errno);
  planted_.push_back(link);
  g_fixed.store(r);
  g_fixed_calls.store(1000);
  LinkPair pair;
  const auto ec = taskfarm::ipc::create_link(Transport::shm, LinkConfig{}, pair);
  g_fixed_calls.store(0);
  EXPECT_TRUE(ec) << "created through a symlink";
  struct stat st {};
  EXPECT_NE(::stat(target.c_str(), &st), 0) << "the symlink's target was created";
  EXPECT_EQ(::lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the symlink itself is left as it was";
  ::unlink(target.c_str());
}

// ---- mqueue ------------------------------------------------------------------------

TEST_F(LinkSecurity, MqueueNamesAreOwnerOnlyUntilBothSidesAttachedThenGone) {
  const auto before = taskfarm::test::shm_objects();
  LinkPair pair;
  ASSERT_FALSE(taskfarm::ipc::create_link(Transport::mqueue, LinkConfig{}, pair));
  ASSERT_EQ(pair.worker.fds.size(), 2u);
  const std::string* m2w = pair.worker.param("m2w");
  const std::string* w2m = pair.worker.param("w2m");
  ASSERT_TRUE(m2w && w2m);
  const std::vector<std::string> queues = {*m2w, *w2m};
  // The control block travels by descriptor, nameless, like the shm object.
  expect_owner_only(pair.worker.fds[0], "the mqueue control block");

  // The queues have names until the worker opens them: owner-only, ours.
  for (const auto& q : queues) {
    ASSERT_EQ(q.rfind("/taskfarm-" + std::to_string(::getpid()) + "-", 0), 0u) << q;
    struct stat st {};
    ASSERT_EQ(::lstat(("/dev/shm" + q).c_str(), &st), 0) << q << ": " << std::strerror(errno);
    EXPECT_TRUE(S_ISREG(st.st_mode)) << q;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << q;
    EXPECT_EQ(st.st_uid, ::geteuid()) << q;
    EXPECT_GT(st.st_size, 0) << q;
  }
  EXPECT_EQ(taskfarm::test::shm_objects().size(), before.size() + 2);

  // While they exist, a second user can open neither (to read, or to inject).
  std::vector<Probe> probes;
  for (const auto& q : queues) {
    add_open_probes(probes, "/dev/shm" + q);
    probes.push_back({Probe::shm_open_name, q, O_RDONLY});
    probes.push_back({Probe::shm_open_name, q, O_RDWR});
  }
  for (const auto& name : all_taskfarm_objects()) add_open_probes(probes, "/dev/shm/" + name);
  for (int fd : fds_of(::getpid()))
    add_open_probes(probes, "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fd));
  expect_refused_to_second_user(probes);

  // Both sides attached: the names are gone.
  const pid_t worker = fork_worker(pair);
  Frame f;
  ASSERT_FALSE(pair.master->receive_for(f, kPatience));
  ASSERT_EQ(f.kind(), FrameKind::hello);
  for (const auto& q : queues) {
    struct stat st {};
    EXPECT_NE(::lstat(("/dev/shm" + q).c_str(), &st), 0)
        << q << " still exists after the worker attached";
  }
  pair.master->peer_attached();
  EXPECT_EQ(taskfarm::test::shm_objects(), before);
  pair.master.reset();
  EXPECT_EQ(reap(worker), 0);
}

TEST_F(LinkSecurity, MqueueCreationNeverReusesAQueueThatIsAlreadyThere) {
  const std::uint64_t r = 0x5eed5eed5eed0003ull;
  for (const std::string dir : {"m2w", "w2m"}) {
    SCOPED_TRACE("a stranger's object under the " + dir + " name");
    const std::string name = predicted_name(r, "mq-" + dir);
    plant(name);
    g_fixed.store(r);
    g_fixed_calls.store(1000);
    LinkPair pair;
    const auto ec = taskfarm::ipc::create_link(Transport::mqueue, LinkConfig{}, pair);
    g_fixed_calls.store(0);
    EXPECT_EQ(ec, std::errc::file_exists) << ec.message();
    EXPECT_FALSE(pair.master);
    expect_untouched(name);
    // Nothing of ours stays behind: the planted object is all there is.
    const auto ours = taskfarm::test::shm_objects();
    EXPECT_EQ(ours, std::vector<std::string>{name});
    ::unlink(("/dev/shm/" + name).c_str());
    planted_.clear();
  }
  // The control block's name is drawn first; a collision there too.
  const std::string ctl = predicted_name(r, "mqctl");
  plant(ctl);
  g_fixed.store(r);
  g_fixed_calls.store(1);
  const int calls = g_calls.load();
  LinkPair pair;
  ASSERT_FALSE(taskfarm::ipc::create_link(Transport::mqueue, LinkConfig{}, pair))
      << "one collision: another name is drawn";
  EXPECT_EQ(g_calls.load() - calls, 3) << "control block: taken, drawn again; then the queues";
  expect_untouched(ctl);
  expect_owner_only(pair.worker.fds[0], "the mqueue control block");
  const pid_t worker = fork_worker(pair);
  Frame f;
  ASSERT_FALSE(pair.master->receive_for(f, kPatience));
  pair.master->peer_attached();
  pair.master.reset();
  EXPECT_EQ(reap(worker), 0);
}

// ---- stream transports ---------------------------------------------------------------

TEST_F(LinkSecurity, StreamLinksHaveNoNameAnyoneCouldOpenOrConnectTo) {
  for (Transport t : {Transport::pipe, Transport::socket}) {
    SCOPED_TRACE(std::string(taskfarm::to_string(t)));
    LinkPair pair;
    ASSERT_FALSE(taskfarm::ipc::create_link(t, LinkConfig{}, pair));
    std::vector<Probe> probes;
    for (int fd : pair.worker.fds) {
      const std::string target = read_link("/proc/self/fd/" + std::to_string(fd));
      EXPECT_TRUE(target.rfind("pipe:[", 0) == 0 || target.rfind("socket:[", 0) == 0)
          << "an anonymous pipe or socket, not " << target;
      add_open_probes(probes, "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fd));
    }
    // No Unix-domain socket of ours is bound to a path or an abstract name.
    std::ifstream unix_sockets("/proc/net/unix");
    std::string line;
    while (std::getline(unix_sockets, line)) EXPECT_EQ(line.find("taskfarm"), std::string::npos) << line;
    expect_refused_to_second_user(probes);
    for (int fd : pair.worker.fds) ::close(fd);
  }
}

// ---- a whole pool ----------------------------------------------------------------------

const taskfarm::Task<int(int)> sec_square{"security_test.square", [](int x) { return x * x; }};

class PoolSecurity : public LinkSecurity, public ::testing::WithParamInterface<Transport> {};

TEST_P(PoolSecurity, NoProcessOfAPoolHoldsAnythingASecondUserCouldOpen) {
  taskfarm::PoolOptions o;
  o.workers = 2;
  o.transport = GetParam();
  taskfarm::Pool pool(o);
  ASSERT_EQ(pool.map(sec_square, std::vector{1, 2, 3, 4}), (std::vector{1, 4, 9, 16}));
  // Once every worker has attached no name is left. (One worker may have run
  // all four inputs while the other was still starting: give it the time.)
  for (int i = 0; i < 5000 && !taskfarm::test::shm_objects().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_TRUE(taskfarm::test::shm_objects().empty())
      << "left in /dev/shm: " << taskfarm::test::shm_objects().front();

  // The master, its fork server, the workers.
  std::vector<pid_t> procs{::getpid()};
  for (pid_t z : live_children(::getpid())) {
    procs.push_back(z);
    for (pid_t w : live_children(z)) procs.push_back(w);
  }
  ASSERT_GE(procs.size(), 4u) << "master, fork server and two workers";

  std::vector<Probe> probes;
  std::size_t shared = 0;
  for (pid_t p : procs) {
    for (const auto& ref : shm_refs_of(p)) {
      ++shared;
      EXPECT_NE(ref.target.find("/dev/shm/taskfarm-"), std::string::npos) << ref.target;
      EXPECT_NE(ref.target.find(" (deleted)"), std::string::npos)
          << ref.where << " -> " << ref.target << ": the object still has a name";
      struct stat st {};
      ASSERT_EQ(::stat(ref.where.c_str(), &st), 0) << ref.where << ": " << std::strerror(errno);
      EXPECT_EQ(st.st_mode & 07777, 0600u) << ref.where << " -> " << ref.target;
      EXPECT_EQ(st.st_uid, ::geteuid()) << ref.where;
      add_open_probes(probes, ref.where);
    }
    for (int fd : fds_of(p))
      add_open_probes(probes, "/proc/" + std::to_string(p) + "/fd/" + std::to_string(fd));
  }
  if (GetParam() == Transport::shm || GetParam() == Transport::mqueue) {
    EXPECT_GT(shared, 0u) << "the shared-memory transports map shared objects";
  } else {
    EXPECT_EQ(shared, 0u);
  }
  for (const auto& name : all_taskfarm_objects()) {
    add_open_probes(probes, "/dev/shm/" + name);
    probes.push_back({Probe::shm_open_name, "/" + name, O_RDWR});
  }
  expect_refused_to_second_user(probes);
  // The pool is unharmed and still works.
  EXPECT_EQ(pool.map(sec_square, std::vector{5}), std::vector{25});
}

INSTANTIATE_TEST_SUITE_P(Transports, PoolSecurity,
                         ::testing::Values(Transport::pipe, Transport::socket, Transport::mqueue,
                                           Transport::shm),
                         [](const auto& p) { return std::string(taskfarm::to_string(p.param)); });

}  // namespace
