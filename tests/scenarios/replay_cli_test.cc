// Recorded histories end to end, through the command line: `duro run
// --record-histories` writes them, `duro replay` passes them against the
// same code, fails them against a breaking change with a message that
// names the changed line, passes them against the change guarded by
// `patched`; `duro record-golden` keeps a manifest that replay enforces;
// bad files are exit 2 and never stop the others from being replayed.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "engine/sdk/workflow_context.h"
#include "scenarios/harness.h"
#include "tests/scenarios/cli_runner.h"

namespace duro::cli {
namespace replay_cli_test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

enum class Version { kOriginal, kBroken, kPatched };

sdk::ActivityOptions activity_options() {
  sdk::ActivityOptions options;
  options.start_to_close = 10s;
  return options;
}

std::string greet_original(sdk::WorkflowContext& ctx, const std::string& name) {
  std::string text = ctx.activity<std::string>("fetch", name, activity_options());
  ctx.sleep(1min);
  return ctx.activity<std::string>("send", text, activity_options());
}

// A new step put in front of "send" without a patch: running workflows
// that already scheduled "send" cannot replay.
constexpr int kChangedLine = __LINE__ + 4;
std::string greet_broken(sdk::WorkflowContext& ctx, const std::string& name) {
  std::string text = ctx.activity<std::string>("fetch", name, activity_options());
  ctx.sleep(1min);
  text = ctx.activity<std::string>("audit", text, activity_options());
  return ctx.activity<std::string>("send", text, activity_options());
}

// The same step, guarded: old histories take the old path.
std::string greet_patched(sdk::WorkflowContext& ctx, const std::string& name) {
  std::string text = ctx.activity<std::string>("fetch", name, activity_options());
  ctx.sleep(1min);
  if (ctx.patched("audit-before-send")) text = ctx.activity<std::string>("audit", text, activity_options());
  return ctx.activity<std::string>("send", text, activity_options());
}

class Greeter final : public scenarios::Scenario {
 public:
  explicit Greeter(Version version) : version_(version) {}

  void setup(scenarios::Harness& harness) override {
    for (const char* activity : {"fetch", "audit", "send"}) {
      harness.registry().activity(activity, [](sdk::ActivityContext&, const std::string& text) { return text + "!"; });
    }
    harness.registry().workflow("greet", version_ == Version::kOriginal ? &greet_original
                                         : version_ == Version::kBroken ? &greet_broken
                                                                        : &greet_patched);
    harness.client("greeter", [&harness](sdk::Client& client, sim::Env&) {
      for (int i = 0; i < 2; i++) {
        auto run = client.start("greet", "greet-" + std::to_string(i), std::string("ada"));
        if (!run.ok()) continue;
        harness.expect(run.value(), "greet", [](const sdk::WorkflowOutcome<sdk::Payload>& outcome) {
          return outcome.completed() ? std::string() : std::string("it completes");
        });
      }
    });
  }
  void check_end(scenarios::Harness&, scenarios::Checker&) override {}

 private:
  Version version_;
};

scenarios::ScenarioRegistry registry_of(Version version) {
  scenarios::ScenarioDefinition definition;
  definition.name = "greeter";
  definition.summary = "a test scenario";
  definition.shape.chaos = 2min;
  definition.shape.liveness_bound = 10min;
  definition.shape.default_profile = "crashes";
  definition.make = [version] { return std::make_unique<Greeter>(version); };
  scenarios::ScenarioRegistry registry;
  registry.add(std::move(definition));
  return registry;
}

using testing::CliResult;

CliResult run_cli(Version version, std::vector<std::string> args) {
  return testing::run_cli(registry_of(version), std::move(args));
}

std::string fresh_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/replay_cli_test-" + name;
  fs::remove_all(dir);
  return dir;
}

std::size_t history_files(const std::string& dir) {
  std::size_t count = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) count += entry.path().extension() == ".dhist";
  return count;
}

TEST(ReplayCli, ARecordedRunReplaysAgainstItsCodeAndABreakingChangeNamesTheLine) {
  const std::string dir = fresh_dir("record");
  const CliResult recorded =
      run_cli(Version::kOriginal, {"run", "greeter", "--seeds", "2", "--jobs", "1", "--record-histories", dir});
  ASSERT_EQ(recorded.exit_code, 0) << recorded.out;
  ASSERT_EQ(history_files(dir), 4u) << "two workflows in each of two seeds";

  const CliResult same = run_cli(Version::kOriginal, {"replay", dir});
  EXPECT_EQ(same.exit_code, 0) << same.out;
  EXPECT_NE(same.out.find("4 passed, 0 failed"), std::string::npos) << same.out;

  const CliResult broken = run_cli(Version::kBroken, {"replay", dir});
  EXPECT_EQ(broken.exit_code, 1) << broken.out;
  EXPECT_NE(broken.out.find("0 passed, 4 failed"), std::string::npos) << broken.out;
  EXPECT_NE(broken.out.find(fmt::format("replay_cli_test.cc:{}", kChangedLine)), std::string::npos)
      << "the report names the changed line, " << kChangedLine << ":\n"
      << broken.out;
  EXPECT_NE(broken.out.find("audit"), std::string::npos) << broken.out;
  EXPECT_NE(broken.out.find("send"), std::string::npos) << broken.out;

  const CliResult patched = run_cli(Version::kPatched, {"replay", dir});
  EXPECT_EQ(patched.exit_code, 0) << patched.out;
}

TEST(ReplayCli, HistoryFilesShowExportAndImportExactly) {
  const std::string dir = fresh_dir("convert");
  ASSERT_EQ(run_cli(Version::kOriginal, {"run", "greeter", "--seeds", "1", "--jobs", "1", "--record-histories", dir})
                .exit_code,
            0);
  std::string file;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().extension() == ".dhist") file = entry.path().string();
  }
  ASSERT_FALSE(file.empty());
  const CliResult shown = run_cli(Version::kOriginal, {"history", "show", file});
  EXPECT_EQ(shown.exit_code, 0);
  EXPECT_NE(shown.out.find("workflow  greet"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("ActivityTaskScheduled"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("scenario greeter seed 1"), std::string::npos) << shown.out;

  const std::string json = dir + "/h.json";
  const std::string back = dir + "/back.dhist";
  EXPECT_EQ(run_cli(Version::kOriginal, {"history", "export", "--json", file, "-o", json}).exit_code, 0);
  EXPECT_EQ(run_cli(Version::kOriginal, {"history", "import", json, "-o", back}).exit_code, 0);
  std::ifstream a(file, std::ios::binary);
  std::ifstream b(back, std::ios::binary);
  const std::string original((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
  const std::string round_trip((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>());
  EXPECT_EQ(original, round_trip) << "export then import gives back the same bytes";
}

TEST(ReplayCli, BadHistoryFilesAreExitTwoAndTheRestStillReplay) {
  const std::string dir = fresh_dir("bad");
  ASSERT_EQ(run_cli(Version::kOriginal, {"run", "greeter", "--seeds", "1", "--jobs", "1", "--record-histories", dir})
                .exit_code,
            0);
  {
    std::ofstream garbage(dir + "/garbage.dhist", std::ios::binary);
    garbage << "not a history at all";
  }
  const CliResult replayed = run_cli(Version::kOriginal, {"replay", dir});
  EXPECT_EQ(replayed.exit_code, 2) << replayed.out;
  EXPECT_NE(replayed.out.find("UNREADABLE"), std::string::npos) << replayed.out;
  EXPECT_NE(replayed.out.find("2 passed, 0 failed, 1 unreadable"), std::string::npos) << replayed.out;

  EXPECT_EQ(run_cli(Version::kOriginal, {"history", "show", dir + "/garbage.dhist"}).exit_code, 2);
  EXPECT_EQ(run_cli(Version::kOriginal, {"history", "show", dir + "/missing.dhist"}).exit_code, 2);
  EXPECT_EQ(run_cli(Version::kOriginal, {"history", "show", dir}).exit_code, 2) << "a directory";
  {
    std::ofstream json(dir + "/bad.json");
    json << R"({"header": {"format": 1}, "events": [{"eventId": 1}]})";
  }
  EXPECT_EQ(run_cli(Version::kOriginal, {"history", "import", dir + "/bad.json"}).exit_code, 2);
  EXPECT_EQ(run_cli(Version::kOriginal, {"replay", dir + "/nothing-here"}).exit_code, 2);
  EXPECT_EQ(run_cli(Version::kOriginal, {"history"}).exit_code, 2) << "no subcommand";
}

TEST(ReplayCli, GoldenHistoriesKeepAManifestThatReplayEnforces) {
  const std::string dir = fresh_dir("golden");
  const CliResult recorded =
      run_cli(Version::kOriginal, {"record-golden", "--out", dir, "--seeds", "2", "--jobs", "1"});
  ASSERT_EQ(recorded.exit_code, 0) << recorded.out;
  ASSERT_TRUE(fs::exists(dir + "/manifest.json"));
  const std::size_t kept = history_files(dir);
  // Both runs of both seeds do the same things: one covers them all.
  EXPECT_EQ(kept, 1u) << recorded.out;
  EXPECT_EQ(run_cli(Version::kOriginal, {"replay", dir}).exit_code, 0);

  // A golden file added by hand, not through record-golden, fails.
  std::string golden;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().extension() == ".dhist") golden = entry.path().string();
  }
  fs::copy_file(golden, dir + "/extra.dhist");
  const CliResult extra = run_cli(Version::kOriginal, {"replay", dir});
  EXPECT_EQ(extra.exit_code, 1);
  EXPECT_NE(extra.out.find("extra.dhist is not in the manifest"), std::string::npos) << extra.out;
  fs::remove(dir + "/extra.dhist");

  // So does one deleted.
  fs::remove(golden);
  const CliResult missing = run_cli(Version::kOriginal, {"replay", dir});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("in the manifest but missing"), std::string::npos) << missing.out;
}

}  // namespace replay_cli_test
}  // namespace duro::cli
