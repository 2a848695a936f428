#include "scenarios/checker.h"

#include <utility>

namespace duro::scenarios {

void Checker::violate(std::string_view invariant, std::string message) {
  violations_total_++;
  if (violations_.size() < kKeptMax) {
    violations_.push_back(Violation{sim_ == nullptr ? sim::TimePoint{} : sim_->now(), std::string(invariant),
                                    std::move(message)});
  }
}

}  // namespace duro::scenarios
