// Runs the `duro` command line in-process for a test, with a registry of
// the test's own scenarios, and keeps what it printed.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/cli.h"

namespace duro::testing {

struct CliResult {
  int exit_code = 0;
  std::string out;  // Its standard output.
};

// `args` without the program name: {"replay", dir}.
inline CliResult run_cli(const scenarios::ScenarioRegistry& registry, std::vector<std::string> args) {
  args.insert(args.begin(), "duro");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  ::testing::internal::CaptureStdout();
  const int code = cli::main(static_cast<int>(argv.size()), argv.data(), registry);
  return CliResult{code, ::testing::internal::GetCapturedStdout()};
}

}  // namespace duro::testing
