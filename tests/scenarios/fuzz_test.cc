// `duro fuzz` finds every kind of nondeterminism in the corpus
// (nondeterministic_corpus.cc) within 100 seeds, and names it; the
// determinism guard catches a call from workflow code and lets every other
// call through.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/determinism_guard.h"
#include "tests/scenarios/nondeterministic_corpus.h"
#include "tests/scenarios/cli_runner.h"

namespace duro::cli {
namespace fuzz_test {

using testing::CliResult;
using testing::run_cli;

TEST(Fuzz, FindsEveryKindOfNondeterminismInTheCorpusWithin100Seeds) {
  scenarios::ScenarioRegistry registry;
  testing::add_nondeterministic_corpus(registry);
  const CliResult result = run_cli(registry, {"fuzz", "--all", "--seeds", "100", "--jobs", "2"});
  EXPECT_EQ(result.exit_code, 1) << result.out;
  const std::vector<std::string> types = testing::nondeterministic_corpus_types();
  ASSERT_EQ(types.size(), 10u);
  for (const std::string& type : types) {
    EXPECT_NE(result.out.find("FOUND " + type + " ("), std::string::npos) << type << " not found:\n" << result.out;
  }
  EXPECT_NE(result.out.find("10 of 10 type(s) with a finding"), std::string::npos) << result.out;
  // The guard names the call; a divergence names the line.
  EXPECT_NE(result.out.find("called clock_gettime"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("called rand"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("called pthread_create"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("nondeterministic_corpus.cc:"), std::string::npos) << result.out;
}

TEST(Fuzz, AnUnknownTypeIsBadInput) {
  scenarios::ScenarioRegistry registry;
  testing::add_nondeterministic_corpus(registry);
  EXPECT_EQ(run_cli(registry, {"fuzz", "no_such_type", "--seeds", "1"}).exit_code, 2);
  EXPECT_EQ(run_cli(registry, {"fuzz", "rand", "--all"}).exit_code, 2);
}

TEST(DeterminismGuard, OutsideWorkflowCodeEveryCallGoesThroughUnrecorded) {
  arm_determinism_guard(true);
  timespec now{};
  EXPECT_EQ(::clock_gettime(CLOCK_REALTIME, &now), 0);
  EXPECT_GT(now.tv_sec, 0) << "forwarded to the real clock";
  EXPECT_GT(std::chrono::system_clock::now().time_since_epoch().count(), 0);
  arm_determinism_guard(false);
  EXPECT_TRUE(take_guard_findings().empty());
}

TEST(DeterminismGuard, OpenForwardsItsOptionalModeOnlyWhenItMayCreate) {
  arm_determinism_guard(true);
  const std::string path = ::testing::TempDir() + "duro-guard-open-" + std::to_string(::getpid());
  ::unlink(path.c_str());
  const mode_t umask_before = ::umask(0);  // The file gets exactly the mode passed.
  const int created = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0604);
  ::umask(umask_before);
  ASSERT_GE(created, 0);
  ::close(created);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0604U) << "the mode reached the real open";
  const int read_only = ::openat(AT_FDCWD, path.c_str(), O_RDONLY);
  EXPECT_GE(read_only, 0);
  if (read_only >= 0) ::close(read_only);
  arm_determinism_guard(false);
  ::unlink(path.c_str());
  EXPECT_TRUE(take_guard_findings().empty());
}

}  // namespace fuzz_test
}  // namespace duro::cli
