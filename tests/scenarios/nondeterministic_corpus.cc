// A corpus of deliberately nondeterministic workflows, one scenario each,
// for `duro fuzz` to find (fuzz_test.cc): the ten ways workflow code goes
// wrong most often. Each workflow is otherwise ordinary: a few activities,
// a timer, started twice by its scenario's client. What is wrong with each
// is the comment above it, and the line marked "<-" is the culprit.
#include "tests/scenarios/nondeterministic_corpus.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "engine/sdk/workflow_context.h"
#include "scenarios/harness.h"

namespace duro::testing {
namespace nondeterministic_corpus {

using namespace std::chrono_literals;
using sdk::WorkflowContext;

sdk::ActivityOptions quick() {
  sdk::ActivityOptions options;
  options.start_to_close = 10s;
  return options;
}

void step(WorkflowContext& ctx, const std::string& name) { ctx.activity<std::string>(name, name, quick()); }

// A setting the program may change while workflows run (a feature flag, a
// config reloaded from disk): the global-setting workflow reads it.
bool g_new_pricing = false;

// The two versions of code a deploy switches between, for the workflows
// changed in a new version.
struct Deploy {
  bool shipped = false;
};

// The scenario: registers `install`'s workflow and activities "a" to "d"
// (and "enable_new_pricing", which turns g_new_pricing on), starts the workflow twice,
// optionally signals each, and ships the new version two minutes in.
class CorpusScenario final : public scenarios::Scenario {
 public:
  using Install = std::function<void(sdk::Registry& registry, const std::string& type, Deploy& deploy)>;
  CorpusScenario(std::string type, Install install, std::string signal)
      : type_(std::move(type)), install_(std::move(install)), signal_(std::move(signal)) {}

  void setup(scenarios::Harness& harness) override {
    // Each seed starts with the old setting, as a program would after a
    // restart; the "enable_new_pricing" activity turns it on mid-run.
    g_new_pricing = false;
    for (const char* activity : {"a", "b", "c", "d"}) {
      harness.registry().activity(activity, [](sdk::ActivityContext&, const std::string& text) { return text; });
    }
    harness.registry().activity("enable_new_pricing", [](sdk::ActivityContext&, const std::string& text) {
      g_new_pricing = true;
      return text;
    });
    install_(harness.registry(), type_, deploy_);
    harness.client("starter", [this, &harness](sdk::Client& client, sim::Env& env) {
      std::vector<engine::WorkflowExecution> started;
      for (int i = 0; i < 2; i++) {
        auto run = client.start(type_, type_ + "-" + std::to_string(i), std::string("x"));
        if (!run.ok()) continue;
        started.push_back(run.value());
        // Any outcome will do: what fuzzing looks at is the history.
        harness.expect(run.value(), type_, [](const sdk::WorkflowOutcome<sdk::Payload>&) { return std::string(); });
      }
      env.sleep_for(20s);
      for (const engine::WorkflowExecution& run : started) {
        if (!signal_.empty()) (void)client.signal(run, signal_, std::string("poke"));
      }
      env.sleep_for(100s);
      deploy_.shipped = true;
    });
  }
  void check_end(scenarios::Harness&, scenarios::Checker&) override {}

 private:
  std::string type_;
  Install install_;
  std::string signal_;
  Deploy deploy_;
};

void add(scenarios::ScenarioRegistry& registry, const std::string& type, CorpusScenario::Install install,
         std::string signal = "") {
  scenarios::ScenarioDefinition definition;
  definition.name = "corpus-" + type;
  definition.summary = "a deliberately nondeterministic workflow: " + type;
  definition.shape.chaos = 3min;
  definition.shape.liveness_bound = 10min;
  definition.shape.default_profile = "crashes";
  definition.make = [type, install, signal] { return std::make_unique<CorpusScenario>(type, install, signal); };
  registry.add(std::move(definition));
}

template <typename Fn>
CorpusScenario::Install plain(Fn body) {
  return [body](sdk::Registry& registry, const std::string& type, Deploy&) {
    registry.workflow(type, [body](WorkflowContext& ctx, const std::string&) {
      body(ctx);
      return std::string("done");
    });
  };
}

}  // namespace nondeterministic_corpus

void add_nondeterministic_corpus(scenarios::ScenarioRegistry& registry) {
  using namespace nondeterministic_corpus;

  // 1. Branches on the wall clock instead of ctx.now().
  add(registry, "wall_clock", plain([](WorkflowContext& ctx) {
        const auto now = std::chrono::system_clock::now();  // <-
        step(ctx, now.time_since_epoch().count() % 2 == 0 ? "a" : "b");
        ctx.sleep(1min);
        step(ctx, "c");
      }));

  // 2. Real randomness instead of ctx.random().
  add(registry, "rand", plain([](WorkflowContext& ctx) {
        step(ctx, "a");
        step(ctx, std::rand() % 2 == 0 ? "b" : "c");  // <-
        ctx.sleep(1min);
        step(ctx, "d");
      }));

  // 3. Iterates an unordered container keyed by pointers: the order
  //    follows where the allocator put them.
  add(registry, "unordered_pointers", plain([](WorkflowContext& ctx) {
        std::vector<std::unique_ptr<std::string>> names;
        for (const char* name : {"a", "b", "c", "d"}) names.push_back(std::make_unique<std::string>(name));
        std::unordered_set<const std::string*> pending;
        for (const auto& name : names) pending.insert(name.get());
        for (const std::string* name : pending) step(ctx, *name);  // <-
        ctx.sleep(1min);
      }));

  // 4. A static counter survives from one run (and one replay) to the next.
  add(registry, "static_counter", plain([](WorkflowContext& ctx) {
        static int executions = 0;
        executions++;  // <-
        step(ctx, "a");
        ctx.sleep(1min);
        step(ctx, executions % 2 == 1 ? "b" : "c");
      }));

  // 5. Reads a global setting the program changes while it runs.
  add(registry, "global_setting", plain([](WorkflowContext& ctx) {
        const bool new_pricing = g_new_pricing;  // <-
        step(ctx, "enable_new_pricing");
        ctx.sleep(1min);
        step(ctx, new_pricing ? "b" : "c");
      }));

  // 6. Starts a thread.
  add(registry, "thread", plain([](WorkflowContext& ctx) {
        int computed = 0;
        std::thread worker([&computed] { computed = 1; });  // <-
        worker.join();
        step(ctx, computed == 1 ? "a" : "b");
        ctx.sleep(1min);
      }));

  // 7. Orders its activities by a hash of an address.
  add(registry, "address_hash", plain([](WorkflowContext& ctx) {
        auto token = std::make_unique<int>(0);
        // A multiplicative hash, as a hash table would use: every bit of
        // the address counts.
        const std::uint64_t hash = std::hash<const void*>{}(token.get()) * 0x9E3779B97F4A7C15ull;  // <-
        if (hash >> 63 == 0) {
          step(ctx, "a");
          step(ctx, "b");
        } else {
          step(ctx, "b");
          step(ctx, "a");
        }
        ctx.sleep(1min);
      }));

  // 8. A new version removes a timer, without a patch.
  add(registry, "timer_removed", [](sdk::Registry& registry, const std::string& type, Deploy& deploy) {
    registry.workflow(type, [&deploy](WorkflowContext& ctx, const std::string&) {
      step(ctx, "a");
      if (!deploy.shipped) ctx.sleep(3min);  // <- gone in the new version
      step(ctx, "b");
      ctx.sleep(2min);
      return std::string("done");
    });
  });

  // 9. A new version adds an activity, without a patch.
  add(registry, "activity_added", [](sdk::Registry& registry, const std::string& type, Deploy& deploy) {
    registry.workflow(type, [&deploy](WorkflowContext& ctx, const std::string&) {
      step(ctx, "a");
      if (deploy.shipped) step(ctx, "c");  // <- new in the new version
      step(ctx, "b");
      ctx.sleep(3min);
      step(ctx, "d");
      return std::string("done");
    });
  });

  // 10. A signal handler that issues commands (handlers may only change
  //     state; the workflow's code acts on it).
  add(
      registry, "signal_handler_commands",
      [](sdk::Registry& registry, const std::string& type, Deploy&) {
        registry.workflow(type, [](WorkflowContext& ctx, const std::string&) {
          ctx.on_signal<std::string>("poke", [&ctx](const std::string&) { step(ctx, "d"); });  // <-
          step(ctx, "a");
          ctx.sleep(1min);
          step(ctx, "b");
          return std::string("done");
        });
      },
      "poke");
}

std::vector<std::string> nondeterministic_corpus_types() {
  return {"wall_clock",   "rand",          "unordered_pointers", "static_counter", "global_setting",
          "thread",       "address_hash",  "timer_removed",      "activity_added", "signal_handler_commands"};
}

}  // namespace duro::testing
