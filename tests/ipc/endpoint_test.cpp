// Endpoint strings (how a worker finds its end of a link), the ipc error
// vocabulary, and attach_link's refusals.

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "taskfarm/ipc/endpoint.hpp"
#include "taskfarm/ipc/errc.hpp"
#include "taskfarm/ipc/link.hpp"

namespace {

using taskfarm::ipc::Endpoint;
using taskfarm::ipc::Errc;

bool same(const Endpoint& a, const Endpoint& b) {
  return a.transport == b.transport && a.fds == b.fds && a.params == b.params;
}

TEST(Endpoint, ToString) {
  EXPECT_EQ((Endpoint{"pipe", {5, 6}, {}}).to_string(), "pipe:fds=5,6");
  EXPECT_EQ((Endpoint{"socket", {3}, {}}).to_string(), "socket:fds=3");
  EXPECT_EQ((Endpoint{"shm", {7}, {{"name", "/taskfarm-1-ab-w3"}, {"slot", "3"}}}).to_string(),
            "shm:fds=7;name=/taskfarm-1-ab-w3;slot=3");
  EXPECT_EQ((Endpoint{"mpi", {}, {{"rank", "2"}}}).to_string(), "mpi:fds=;rank=2");
}

TEST(Endpoint, ParseRoundTrip) {
  const Endpoint cases[] = {
      {"pipe", {5, 6}, {}},
      {"socket", {0}, {}},
      {"shm", {7, 8, 9}, {{"name", "/taskfarm-4711-1f0c9a8e33b2-w3"}, {"slot", "3"}}},
      {"mpi", {}, {{"rank", "2"}}},
      {"x", {2147483647}, {{"empty", ""}, {"eq", "a=b"}}},
  };
  for (const auto& e : cases) {
    const std::string text = e.to_string();
    std::string error;
    const auto back = Endpoint::parse(text, &error);
    ASSERT_TRUE(back.has_value()) << text << ": " << error;
    EXPECT_TRUE(same(*back, e)) << text << " -> " << back->to_string();
    EXPECT_EQ(back->to_string(), text);
  }
}

TEST(Endpoint, ParseErrorsSayWhatIsWrong) {
  struct Case {
    const char* text;
    const char* why;
  };
  const Case cases[] = {
      {"", "expected <transport>:"},
      {"pipe", "expected <transport>:"},
      {":fds=1", "expected <transport>:"},
      {"pipe:", "expected key=value"},
      {"pipe:5,6", "expected key=value"},
      {"pipe:fd=5,6", "the first field must be fds="},
      {"pipe:name=x;fds=1", "the first field must be fds="},
      {"pipe:fds=a", "bad descriptor \"a\""},
      {"pipe:fds=-1", "bad descriptor \"-1\""},
      {"pipe:fds=5x", "bad descriptor \"5x\""},
      {"pipe:fds=1,,2", "bad descriptor \"\""},
      {"pipe:fds=99999999999", "bad descriptor"},
      {"pipe:fds=1;novalue", "expected key=value, found \"novalue\""},
      {"pipe:fds=1;=v", "empty key"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(Endpoint::parse(c.text, &error).has_value()) << c.text;
    EXPECT_NE(error.find("invalid endpoint \"" + std::string(c.text) + "\""), std::string::npos)
        << error;
    EXPECT_NE(error.find(c.why), std::string::npos) << c.text << ": " << error;
    EXPECT_FALSE(Endpoint::parse(c.text).has_value()) << "no error string needed";
  }
}

TEST(Endpoint, ParamAndSet) {
  Endpoint e{"pipe", {1, 2}, {}};
  EXPECT_EQ(e.param("slot"), nullptr);
  e.set("slot", "3");
  e.set("init", "setup");
  ASSERT_NE(e.param("slot"), nullptr);
  EXPECT_EQ(*e.param("slot"), "3");
  e.set("slot", "4");  // replaces, keeps the position
  EXPECT_EQ(*e.param("slot"), "4");
  EXPECT_EQ(e.to_string(), "pipe:fds=1,2;slot=4;init=setup");
  EXPECT_EQ(e.param(""), nullptr);
}

TEST(Errc, CategoryAndMessages) {
  const std::error_code ec = Errc::peer_gone;
  EXPECT_STREQ(ec.category().name(), "taskfarm.ipc");
  EXPECT_EQ(ec, Errc::peer_gone);
  EXPECT_NE(ec, Errc::closed);
  EXPECT_TRUE(static_cast<bool>(ec));
  EXPECT_FALSE(static_cast<bool>(std::error_code(Errc::ok)));
  for (int v = 1; v <= 6; ++v) {
    const std::string msg = taskfarm::ipc::make_error_code(static_cast<Errc>(v)).message();
    EXPECT_FALSE(msg.empty());
    EXPECT_EQ(msg.find("unknown"), std::string::npos) << v << ": " << msg;
  }
  EXPECT_EQ(std::error_code(Errc::protocol_error).message(), "protocol error: invalid frame");
}

TEST(Errc, FromErrnoIsTheOneMapping) {
  using taskfarm::ipc::from_errno;
  EXPECT_FALSE(from_errno(0));
  EXPECT_EQ(from_errno(EAGAIN), Errc::would_block);
  EXPECT_EQ(from_errno(ETIMEDOUT), Errc::timed_out);
  EXPECT_EQ(from_errno(EPIPE), Errc::peer_gone);
  EXPECT_EQ(from_errno(ECONNRESET), Errc::peer_gone);
  EXPECT_EQ(from_errno(EMSGSIZE), Errc::too_large);
  EXPECT_EQ(from_errno(EBADF), Errc::closed);
  const auto other = from_errno(ENOMEM);
  EXPECT_EQ(other.category(), std::system_category());
  EXPECT_EQ(other.value(), ENOMEM);
}

TEST(AttachLink, RefusesEndpointsItCannotUse) {
  std::unique_ptr<taskfarm::ipc::Link> link;
  const taskfarm::ipc::LinkConfig cfg;
  // Wrong descriptor counts are refused before any descriptor is adopted.
  EXPECT_EQ(taskfarm::ipc::attach_link(Endpoint{"pipe", {1}, {}}, cfg, link),
            std::errc::invalid_argument);
  EXPECT_EQ(taskfarm::ipc::attach_link(Endpoint{"socket", {1, 2}, {}}, cfg, link),
            std::errc::invalid_argument);
  EXPECT_TRUE(taskfarm::ipc::attach_link(Endpoint{"carrier-pigeon", {}, {}}, cfg, link));
  EXPECT_EQ(link, nullptr);
}

}  // namespace
