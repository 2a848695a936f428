// WorkflowContext forwards to the run it belongs to (workflow_run.h holds
// the rules); this file keeps that machinery out of the header users read.
#include "engine/sdk/workflow_context.h"

#include "engine/sdk/workflow_run.h"
#include "sim/assert.h"

namespace duro::sdk {

void CancellationScope::cancel() {
  DURO_ASSERT(state_ != nullptr);
  state_->run->cancel_scope(*state_);
}

bool CancellationScope::cancelled() const noexcept { return state_ != nullptr && state_->cancelled; }

WorkflowContext::ScopeGuard::ScopeGuard(WorkflowContext& context, const CancellationScope& scope)
    : context_(context), previous_(context.run_->current_scope()) {
  context_.run_->current_scope() = scope.state_;
}

WorkflowContext::ScopeGuard::~ScopeGuard() { context_.run_->current_scope() = std::move(previous_); }

const WorkflowInfo& WorkflowContext::info() const noexcept { return run_->info(); }
sim::TimePoint WorkflowContext::now() const noexcept { return run_->now(); }
std::uint64_t WorkflowContext::random() noexcept { return run_->random().next(); }
std::uint64_t WorkflowContext::random_uniform(std::uint64_t bound) {
  DURO_ASSERT(bound > 0);
  return run_->random().uniform(bound);
}
bool WorkflowContext::is_replaying() const noexcept { return run_->replaying(); }
bool WorkflowContext::cancel_requested() const noexcept { return run_->cancel_requested(); }

std::shared_ptr<detail::FutureCore> WorkflowContext::start_activity_payload(std::string_view type, Payload input,
                                                                            const ActivityOptions& options,
                                                                            const std::source_location& location) {
  return run_->start_activity(type, std::move(input), options, location);
}

Future<void> WorkflowContext::timer(sim::Duration duration, std::source_location location) {
  return Future<void>(run_->start_timer(duration, location));
}

std::optional<Payload> WorkflowContext::wait_signal_payload(std::string_view name, std::optional<sim::Duration> timeout,
                                                            const std::source_location& location) {
  return run_->wait_signal(name, timeout, location);
}

void WorkflowContext::on_signal_payload(std::string_view name, std::function<void(const Payload&)> handler) {
  run_->on_signal(name, std::move(handler));
}

void WorkflowContext::on_query_payload(std::string_view name, std::function<Payload(const Payload&)> handler) {
  run_->on_query(name, std::move(handler));
}

Payload WorkflowContext::side_effect_payload(detail::FunctionRef<Payload()> produce,
                                             const std::source_location& location) {
  return run_->side_effect(produce, location);
}

bool WorkflowContext::patched(std::string_view patch_id, std::source_location location) {
  return run_->patched(patch_id, /*deprecated=*/false, location);
}

void WorkflowContext::deprecate_patch(std::string_view patch_id, std::source_location location) {
  (void)run_->patched(patch_id, /*deprecated=*/true, location);
}

std::pair<std::shared_ptr<detail::FutureCore>, std::shared_ptr<detail::FutureCore>>
WorkflowContext::start_child_payload(std::string_view workflow_type, Payload input, const ChildOptions& options,
                                     const std::source_location& location) {
  return run_->start_child(workflow_type, std::move(input), options, location);
}

std::shared_ptr<detail::FutureCore> WorkflowContext::signal_workflow_payload(const engine::WorkflowExecution& target,
                                                                             std::string_view signal_name,
                                                                             Payload input,
                                                                             const std::source_location& location) {
  return run_->signal_external(target, signal_name, std::move(input), location);
}

Future<void> WorkflowContext::cancel_workflow(const engine::WorkflowExecution& target, std::source_location location) {
  return Future<void>(run_->cancel_external(target, location));
}

std::shared_ptr<detail::FutureCore> WorkflowContext::go_payload(std::function<Payload()> body) {
  return run_->go(std::move(body));
}

void WorkflowContext::await_condition(detail::FunctionRef<bool()> condition, const std::source_location& location) {
  run_->block_until(condition, /*cancellable=*/true, location);
}

CancellationScope WorkflowContext::new_scope(bool cancellable) { return CancellationScope(run_->new_scope(cancellable)); }

void WorkflowContext::continue_as_new_payload(Payload input, const ContinueAsNewOptions& options) {
  run_->continue_as_new(std::move(input), options);
}

}  // namespace duro::sdk
