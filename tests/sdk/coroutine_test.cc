#include "engine/sdk/coroutine.h"

#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace duro::sdk {
namespace {

// Workflow code waits inside catch blocks (a saga compensating for a failed
// step), and the driver switches to other coroutines meanwhile: each must
// keep the exceptions it is handling.
TEST(Coroutine, EachKeepsTheExceptionsItIsHandlingWhileSuspended) {
  sim::StackPool stacks(64 * 1024, 4);
  std::vector<std::string> log;
  auto catcher = [&log](std::string name) {
    return [&log, name] {
      try {
        throw std::runtime_error(name);
      } catch (const std::runtime_error& caught) {
        Coroutine::suspend();
        try {
          throw;
        } catch (const std::runtime_error& again) {
          log.push_back(name + " rethrew " + again.what());
        }
        Coroutine::suspend();
        log.push_back(name + " still holds " + caught.what());
      }
    };
  };
  Coroutine a(stacks, catcher("a"));
  Coroutine b(stacks, catcher("b"));
  try {
    throw std::logic_error("driver");
  } catch (const std::logic_error&) {
    // The driver too is handling one while it drives.
    a.resume();
    b.resume();
    a.resume();
    b.resume();
    a.resume();
    b.resume();
    EXPECT_EQ(std::uncaught_exceptions(), 0);
    try {
      throw;
    } catch (const std::logic_error& again) {
      log.push_back(std::string("driver rethrew ") + again.what());
    }
  }
  EXPECT_TRUE(a.done());
  EXPECT_TRUE(b.done());
  EXPECT_EQ(log, (std::vector<std::string>{"a rethrew a", "b rethrew b", "a still holds a", "b still holds b",
                                           "driver rethrew driver"}));
}

// Destroying a coroutine suspended inside a catch block unwinds it cleanly.
TEST(Coroutine, DestroyingOneSuspendedInACatchBlockUnwindsIt) {
  sim::StackPool stacks(64 * 1024, 2);
  bool unwound = false;
  {
    Coroutine c(stacks, [&unwound] {
      struct Mark {
        bool* unwound;
        ~Mark() { *unwound = true; }
      };
      try {
        throw std::runtime_error("c");
      } catch (const std::runtime_error&) {
        Mark mark{&unwound};
        Coroutine::suspend();
      }
    });
    c.resume();
    EXPECT_FALSE(c.done());
  }
  EXPECT_TRUE(unwound);
  EXPECT_EQ(std::current_exception(), nullptr);
}

}  // namespace
}  // namespace duro::sdk
