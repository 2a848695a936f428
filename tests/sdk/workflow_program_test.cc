// Random workflow programs under the chaos fault profile.
//
// RapidCheck draws programs — sequences of activities (flaky: their first
// attempts fail), timers, signal waits with and without timeouts, side
// effects, children, parallel groups, `patched` branches, and a
// continue-as-new — and a seed. One workflow type interprets any program
// (run_program); a reference interpreter computes, without any simulation,
// the result the program must end with (expected_result). Each case runs
// the programs on a cluster of a store, three servers and two SDK workers
// while the nemesis crashes and partitions them, and checks that every
// workflow closes within a bound after the faults stop, with the reference's
// result, that its histories are well formed, and that they replay cleanly
// in a fresh replayer.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/history/history_validator.h"
#include "engine/sdk/registry.h"
#include "engine/sdk/replayer.h"
#include "engine/testing/sdk_cluster.h"
#include "sim/nemesis.h"
#include "sim/sanitizer.h"

namespace duro::sdk {

enum class StepKind : std::uint8_t {
  kActivity,       // value: its input; failures: attempts that fail first.
  kTimer,          // value: seconds.
  kSignal,         // waits for signal "s<value>", which the client sends.
  kSignalTimeout,  // waits value seconds for a signal nobody sends.
  kSideEffect,     // records value * 3.
  kChild,          // a child program of the activities in `group`.
  kParallel,       // the activities in `group`, started together.
  kPatched,        // patched("p<value>"): new runs take the new branch.
};

struct Step {
  StepKind kind = StepKind::kActivity;
  std::int32_t value = 0;
  std::int32_t failures = 0;
  std::vector<std::int32_t> group{};
};
DURO_CODEC_FIELDS(Step, kind, value, failures, group);

struct Program {
  std::vector<Step> steps;
  std::int32_t continue_at = -1;  // Continue as new before this step (-1: never).
  std::int32_t start = 0;         // Where this run begins (after a continue-as-new).
  std::vector<std::string> trace{};  // What the runs before this one produced.
};
DURO_CODEC_FIELDS(Program, steps, continue_at, start, trace);

struct EchoInput {
  std::int32_t value = 0;
  std::int32_t failures = 0;
};
DURO_CODEC_FIELDS(EchoInput, value, failures);

namespace {

using namespace std::chrono_literals;
using engine::testing::SdkCluster;
using engine::testing::TestClient;

constexpr const char* kProgramType = "program";

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& part : parts) out += (out.empty() ? "" : ",") + part;
  return out;
}

std::string echo(ActivityContext& ctx, const EchoInput& input) {
  if (ctx.attempt() <= input.failures) throw ApplicationError("Flaky", "attempt " + std::to_string(ctx.attempt()));
  return "a" + std::to_string(input.value);
}

const ActivityOptions kActivityOptions{
    .start_to_close = 10s,
    .retry = {.initial_interval = 1s, .backoff_coefficient = 2.0, .maximum_interval = 10s},
};

std::string run_program(WorkflowContext& ctx, const Program& program) {
  std::vector<std::string> trace = program.trace;
  for (std::size_t i = static_cast<std::size_t>(program.start); i < program.steps.size(); i++) {
    if (static_cast<std::int32_t>(i) == program.continue_at && static_cast<std::int32_t>(i) != program.start) {
      Program next = program;
      next.start = static_cast<std::int32_t>(i);
      next.trace = trace;
      ctx.continue_as_new(next);
    }
    const Step& step = program.steps[i];
    switch (step.kind) {
      case StepKind::kActivity:
        trace.push_back(ctx.activity<std::string>("echo", EchoInput{step.value, step.failures}, kActivityOptions));
        break;
      case StepKind::kTimer:
        ctx.sleep(std::chrono::seconds{step.value});
        trace.push_back("t" + std::to_string(step.value));
        break;
      case StepKind::kSignal:
        trace.push_back(ctx.wait_signal<std::string>("s" + std::to_string(step.value)));
        break;
      case StepKind::kSignalTimeout: {
        std::optional<std::string> signal = ctx.wait_signal<std::string>("never", std::chrono::seconds{step.value});
        trace.push_back(signal ? "unexpected:" + *signal : "timeout");
        break;
      }
      case StepKind::kSideEffect:
        trace.push_back(std::to_string(ctx.side_effect([&] { return step.value * 3; })));
        break;
      case StepKind::kChild: {
        Program child;
        for (std::int32_t value : step.group) child.steps.push_back(Step{StepKind::kActivity, value, 0, {}});
        trace.push_back("[" + ctx.child<std::string>(kProgramType, child) + "]");
        break;
      }
      case StepKind::kParallel: {
        std::vector<Future<std::string>> results;
        for (std::int32_t value : step.group) {
          results.push_back(ctx.start_activity<std::string>("echo", EchoInput{value, step.failures}, kActivityOptions));
        }
        ctx.wait_all(results);
        std::vector<std::string> parts;
        for (const Future<std::string>& result : results) parts.push_back(result.get());
        trace.push_back("{" + join(parts) + "}");
        break;
      }
      case StepKind::kPatched:
        trace.push_back(ctx.patched("p" + std::to_string(step.value)) ? "new" : "old");
        break;
    }
  }
  return join(trace);
}

// The reference: what run_program must return, computed directly.
std::string expected_result(const Program& program) {
  std::vector<std::string> trace;
  for (const Step& step : program.steps) {
    switch (step.kind) {
      case StepKind::kActivity: trace.push_back("a" + std::to_string(step.value)); break;
      case StepKind::kTimer: trace.push_back("t" + std::to_string(step.value)); break;
      case StepKind::kSignal: trace.push_back("sig" + std::to_string(step.value)); break;
      case StepKind::kSignalTimeout: trace.push_back("timeout"); break;
      case StepKind::kSideEffect: trace.push_back(std::to_string(step.value * 3)); break;
      case StepKind::kChild: {
        std::vector<std::string> parts;
        for (std::int32_t value : step.group) parts.push_back("a" + std::to_string(value));
        trace.push_back("[" + join(parts) + "]");
        break;
      }
      case StepKind::kParallel: {
        std::vector<std::string> parts;
        for (std::int32_t value : step.group) parts.push_back("a" + std::to_string(value));
        trace.push_back("{" + join(parts) + "}");
        break;
      }
      case StepKind::kPatched: trace.push_back("new"); break;
    }
  }
  return join(trace);
}

Registry program_registry() {
  Registry registry;
  registry.workflow(kProgramType, run_program).activity("echo", echo);
  return registry;
}

// --- Generators ----------------------------------------------------------------------

rc::Gen<Step> step_gen() {
  using rc::gen::inRange;
  return rc::gen::oneOf(
      rc::gen::build<Step>(rc::gen::set(&Step::kind, rc::gen::just(StepKind::kActivity)),
                           rc::gen::set(&Step::value, inRange<std::int32_t>(0, 100)),
                           rc::gen::set(&Step::failures, inRange<std::int32_t>(0, 3))),
      rc::gen::build<Step>(rc::gen::set(&Step::kind, rc::gen::just(StepKind::kTimer)),
                           rc::gen::set(&Step::value, inRange<std::int32_t>(1, 600))),
      rc::gen::build<Step>(rc::gen::set(&Step::kind, rc::gen::just(StepKind::kSignalTimeout)),
                           rc::gen::set(&Step::value, inRange<std::int32_t>(1, 300))),
      rc::gen::build<Step>(rc::gen::set(&Step::kind, rc::gen::just(StepKind::kSideEffect)),
                           rc::gen::set(&Step::value, inRange<std::int32_t>(0, 1000))),
      rc::gen::build<Step>(rc::gen::set(&Step::kind, rc::gen::just(StepKind::kChild)),
                           rc::gen::set(&Step::group, rc::gen::resize(3, rc::gen::nonEmpty(rc::gen::container<std::vector<std::int32_t>>(
                                                                              inRange<std::int32_t>(0, 100)))))),
      rc::gen::build<Step>(rc::gen::set(&Step::kind, rc::gen::just(StepKind::kParallel)),
                           rc::gen::set(&Step::failures, inRange<std::int32_t>(0, 2)),
                           rc::gen::set(&Step::group, rc::gen::resize(4, rc::gen::nonEmpty(rc::gen::container<std::vector<std::int32_t>>(
                                                                              inRange<std::int32_t>(0, 100)))))),
      rc::gen::build<Step>(rc::gen::set(&Step::kind, rc::gen::just(StepKind::kPatched)),
                           rc::gen::set(&Step::value, inRange<std::int32_t>(0, 3))));
}

rc::Gen<Program> program_gen() {
  return rc::gen::mapcat(rc::gen::resize(8, rc::gen::nonEmpty(rc::gen::container<std::vector<Step>>(step_gen()))),
                         [](std::vector<Step> steps) {
                           return rc::gen::map(rc::gen::inRange<std::int32_t>(-1, static_cast<std::int32_t>(steps.size())),
                                               [steps](std::int32_t continue_at) {
                                                 Program program;
                                                 program.steps = steps;
                                                 program.continue_at = continue_at <= 0 ? -1 : continue_at;
                                                 // Signals go before a continue-as-new: a run that
                                                 // continues drops the signals it has not taken.
                                                 const std::size_t signals_end =
                                                     program.continue_at < 0 ? program.steps.size()
                                                                             : static_cast<std::size_t>(program.continue_at);
                                                 for (std::size_t i = 0; i < signals_end; i += 3) {
                                                   if (program.steps[i].kind == StepKind::kSideEffect) {
                                                     program.steps[i] = Step{StepKind::kSignal, static_cast<std::int32_t>(i), 0, {}};
                                                   }
                                                 }
                                                 return program;
                                               });
                         });
}

// --- One case --------------------------------------------------------------------------

struct CaseOutcome {
  int acknowledged = 0;
  int completed = 0;
  int crashes = 0;
  std::vector<std::string> problems;
};

CaseOutcome run_case(std::uint64_t seed, const std::vector<Program>& programs, const std::string& profile_name) {
  constexpr sim::Duration kChaos = 10min;
  constexpr sim::Duration kLivenessBound = 30min;  // After the quiet phase begins.
  const Registry registry = program_registry();
  worker::WorkerOptions worker_options;
  worker_options.cache_size = 100;
  SdkCluster cluster(registry, {.seed = seed, .servers = 3, .workers = 2, .worker = worker_options});

  sim::Result<sim::FaultProfile> profile = sim::fault_profile(profile_name);
  EXPECT_TRUE(profile.ok());
  profile.value().disk_corruption.enabled = false;  // A corrupt store refuses to serve, by design.
  std::vector<std::string> crashable{"server-1", "server-2", "server-3", "worker-1", "worker-2"};
  const sim::FaultPlan plan =
      sim::draw_fault_plan(seed, profile.value(), sim::FaultTopology{crashable, {"store"}, {}, kChaos});
  EXPECT_TRUE(cluster.world.apply(plan).ok());

  CaseOutcome outcome;
  const sim::TimePoint quiet_at = cluster.world.sim().now() + kChaos;
  const sim::TimePoint live_by = quiet_at + kLivenessBound;
  for (std::size_t i = 0; i < programs.size(); i++) {
    cluster.on_client([&, i](sim::Env&, TestClient& client) {
      const Program& program = programs[i];
      const std::string workflow_id = "program-" + std::to_string(seed) + "-" + std::to_string(i);
      const std::string expected = expected_result(program);
      engine::StartWorkflowExecutionRequest start;
      start.request_id = "start/" + workflow_id;
      start.workflow_id = workflow_id;
      start.workflow_type = kProgramType;
      start.task_queue = engine::TaskQueue{"default", engine::TaskQueueKind::kNormal};
      start.input = to_payload(program);
      auto started = client.start(start, quiet_at);
      if (!started.ok()) return;  // Not acknowledged: not owed a result.
      outcome.acknowledged++;
      const std::string first_run = started.value().run_id;
      for (const Step& step : program.steps) {
        if (step.kind != StepKind::kSignal) continue;
        const std::string name = "s" + std::to_string(step.value);
        engine::SignalWorkflowExecutionRequest signal{"signal/" + workflow_id + "/" + name, {workflow_id, first_run},
                                                      name, to_payload("sig" + std::to_string(step.value)), "client"};
        if (!client.signal(signal, live_by).ok()) {
          outcome.problems.push_back(workflow_id + ": signal " + name + " never acknowledged");
          return;
        }
      }
      auto result = client.wait_result({workflow_id, first_run}, live_by);
      if (!result.ok()) {
        outcome.problems.push_back(workflow_id + ": not closed within " + sim::format_duration(kLivenessBound) +
                                   " of the quiet phase: " + sim::to_string(result.error()));
        return;
      }
      const auto* completed =
          result.value().close_event ? result.value().close_event->as<engine::WorkflowExecutionCompleted>() : nullptr;
      if (completed == nullptr) {
        outcome.problems.push_back(workflow_id + " closed as " +
                                   engine::workflow_status_name(result.value().status));
        return;
      }
      const std::string actual = from_payload<std::string>(completed->result);
      if (actual != expected) {
        outcome.problems.push_back(workflow_id + ": result " + actual + ", the reference says " + expected);
        return;
      }
      Replayer replayer(registry);
      for (const std::string& run : {first_run, result.value().run_id}) {
        auto history = client.history({workflow_id, run}, live_by + 10min);
        if (!history.ok()) {
          outcome.problems.push_back(workflow_id + ": history unreadable: " + sim::to_string(history.error()));
          return;
        }
        for (const std::string& violation : engine::validate_history(history.value())) {
          outcome.problems.push_back(workflow_id + " run " + run + ": " + violation);
        }
        ReplayResult replay = replayer.replay(history.value().events, workflow_id, run);
        if (!replay.ok) outcome.problems.push_back(workflow_id + " run " + run + " does not replay: " + replay.message);
      }
      outcome.completed++;
    });
  }
  cluster.world.run({.until = live_by + 15min});
  for (const sim::AppliedFault& fault : cluster.world.fault_log()) {
    if (fault.outcome == "applied" && fault.action.kind == sim::FaultKind::kCrash) outcome.crashes++;
  }
  return outcome;
}

std::string describe(const Program& program) {
  std::string out = "continue_at=" + std::to_string(program.continue_at) + " steps:";
  for (const Step& step : program.steps) {
    out += " " + std::to_string(static_cast<int>(step.kind)) + "/" + std::to_string(step.value) + "/" +
           std::to_string(step.failures);
    if (!step.group.empty()) out += "/" + std::to_string(step.group.size());
  }
  return out;
}

// The number of cases: DURO_SDK_PROGRAM_CASES, else 50 (about 0.25 s
// each in Release; 5 under ASan, which runs ten times slower).
int cases() {
  if (const char* env = std::getenv("DURO_SDK_PROGRAM_CASES")) return std::atoi(env);
  return sim::sanitizer::kAddressSanitizer ? 5 : 50;
}

TEST(WorkflowPrograms, RandomProgramsMatchTheReferenceWithoutFaults) {
  const Program program{{Step{StepKind::kActivity, 1, 1, {}}, Step{StepKind::kSignal, 1, 0, {}},
                         Step{StepKind::kTimer, 30, 0, {}}, Step{StepKind::kParallel, 0, 1, {2, 3}},
                         Step{StepKind::kChild, 0, 0, {4, 5}}, Step{StepKind::kSideEffect, 7, 0, {}},
                         Step{StepKind::kPatched, 1, 0, {}}, Step{StepKind::kSignalTimeout, 5, 0, {}},
                         Step{StepKind::kActivity, 6, 0, {}}},
                        5};
  const CaseOutcome outcome = run_case(1, {program}, "none");
  for (const std::string& problem : outcome.problems) ADD_FAILURE() << problem;
  EXPECT_EQ(outcome.acknowledged, 1);
  EXPECT_EQ(outcome.completed, 1);
  EXPECT_EQ(expected_result(program), "a1,sig1,t30,{a2,a3},[a4,a5],21,new,timeout,a6");
}

TEST(WorkflowPrograms, RandomProgramsUnderChaosCompleteWithTheReferenceResultAndReplay) {
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.maxSuccess = cases();
  rc::detail::TestMetadata metadata;
  metadata.id = "random workflow programs under chaos";
  metadata.description = metadata.id;
  int crashes = 0;
  int acknowledged = 0;
  const auto result = rc::detail::checkTestable(
      [&] {
        const auto seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
        const auto programs = *rc::gen::resize(3, rc::gen::nonEmpty(rc::gen::container<std::vector<Program>>(program_gen())));
        const CaseOutcome outcome = run_case(seed, programs, "chaos");
        for (const Program& program : programs) RC_LOG() << describe(program) << "\n";
        for (const std::string& problem : outcome.problems) RC_LOG() << problem << "\n";
        RC_ASSERT(outcome.problems.empty());
        RC_ASSERT(outcome.completed == outcome.acknowledged);
        crashes += outcome.crashes;
        acknowledged += outcome.acknowledged;
      },
      metadata, params);
  rc::detail::printResultMessage(result, std::cerr);
  EXPECT_TRUE(result.template is<rc::detail::SuccessResult>());
  // Not vacuous: workflows ran and the nemesis crashed nodes under them.
  EXPECT_GT(acknowledged, 0);
  EXPECT_GT(crashes, 0);
  std::printf("%d cases: %d workflows acknowledged and checked, %d crashes\n", params.maxSuccess, acknowledged, crashes);
}

}  // namespace
}  // namespace duro::sdk
