// Registry: the workflow and activity types a worker (or a replayer) runs.
//
//   duro::sdk::Registry registry;
//   registry.workflow("provision", provision);       // R(WorkflowContext&, const A&)
//   registry.activity("pick_cell", pick_cell);       // R(ActivityContext&, const A&)
//
// Functions may also take no argument after the context. Arguments and
// results are converted with payload.h: a type that does not convert is a
// compile error here, not a surprise at run time.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "engine/sdk/activity_context.h"
#include "engine/sdk/payload.h"
#include "engine/sdk/workflow_context.h"
#include "engine/sdk/workflow_run.h"

namespace duro::sdk {

struct ActivityDefinition {
  std::function<Payload(ActivityContext&, const Payload&)> body;
};

namespace detail {

// What a callable's signature is, via std::function's deduction guides.
template <typename Signature>
struct Callable;
template <typename R, typename Context, typename... Args>
struct Callable<std::function<R(Context&, Args...)>> {
  using Result = R;
  static constexpr std::size_t kArgs = sizeof...(Args);
  using Arg = std::remove_cvref_t<std::tuple_element_t<0, std::tuple<Args..., void>>>;
};

// Wraps fn(context[, arg]) -> R as fn(context, payload) -> payload.
template <typename Context, typename Fn>
std::function<Payload(Context&, const Payload&)> erase(Fn fn) {
  using Info = Callable<decltype(std::function{fn})>;
  static_assert(Info::kArgs <= 1, "workflows and activities take the context and at most one argument");
  return [fn = std::move(fn)](Context& context, const Payload& input) mutable -> Payload {
    auto call = [&]() -> decltype(auto) {
      if constexpr (Info::kArgs == 0) {
        return fn(context);
      } else {
        return fn(context, from_payload<typename Info::Arg>(input));
      }
    };
    if constexpr (std::is_void_v<typename Info::Result>) {
      call();
      return Payload{};
    } else {
      return to_payload<typename Info::Result>(call());
    }
  };
}

}  // namespace detail

class Registry {
 public:
  template <typename Fn>
  Registry& workflow(std::string name, Fn fn, WorkflowOptions options = {}) {
    add_workflow(std::move(name), WorkflowDefinition{detail::erase<WorkflowContext>(std::move(fn)), std::move(options)});
    return *this;
  }
  template <typename Fn>
  Registry& activity(std::string name, Fn fn) {
    add_activity(std::move(name), ActivityDefinition{detail::erase<ActivityContext>(std::move(fn))});
    return *this;
  }

  // nullptr when the type is not registered.
  const WorkflowDefinition* find_workflow(std::string_view type) const;
  const ActivityDefinition* find_activity(std::string_view type) const;
  std::vector<std::string> workflow_types() const;
  std::vector<std::string> activity_types() const;

 private:
  void add_workflow(std::string name, WorkflowDefinition definition);
  void add_activity(std::string name, ActivityDefinition definition);

  std::map<std::string, WorkflowDefinition, std::less<>> workflows_;
  std::map<std::string, ActivityDefinition, std::less<>> activities_;
};

}  // namespace duro::sdk
