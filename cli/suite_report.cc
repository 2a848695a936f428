#include "cli/suite_report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

namespace duro::cli {
namespace {

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 allows no control characters but tab, newline, return.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string human_seconds(double seconds) {
  if (seconds >= 86400) return fmt::format("{:.1f}d", seconds / 86400);
  if (seconds >= 3600) return fmt::format("{:.1f}h", seconds / 3600);
  if (seconds >= 60) return fmt::format("{:.1f}m", seconds / 60);
  return fmt::format("{:.1f}s", seconds);
}

std::string compression(double simulated, double wall) {
  if (wall <= 0) return "-";
  return fmt::format("{:.0f}x", simulated / wall);
}

}  // namespace

SuiteReport::SuiteReport(std::string program, std::string profile)
    : program_(std::move(program)), profile_(std::move(profile)) {}

void SuiteReport::add(const scenarios::SeedReport& report) {
  auto [it, inserted] = totals_.try_emplace(report.scenario);
  if (inserted) {
    it->second.scenario = report.scenario;
    order_.push_back(report.scenario);
  }
  ScenarioTotals& totals = it->second;
  totals.seeds++;
  if (report.passed) {
    totals.passed++;
  } else {
    auto at = std::lower_bound(totals.failures.begin(), totals.failures.end(), report.seed,
                               [](const scenarios::SeedReport& failure, std::uint64_t seed) { return failure.seed < seed; });
    totals.failures.insert(at, report);
  }
  totals.simulated_seconds += static_cast<double>(report.simulated_ns) / 1e9;
  totals.wall_seconds += report.wall_seconds;
}

std::string SuiteReport::repro_line(const scenarios::SeedReport& report) const {
  if (report.profile.empty()) return fmt::format("{} repro {} --seed {}", program_, report.scenario, report.seed);
  return fmt::format("{} repro {} --seed {} --faults {}", program_, report.scenario, report.seed, report.profile);
}

std::vector<std::string> SuiteReport::repro_lines() const {
  std::vector<std::string> lines;
  for (const std::string& name : order_) {
    for (const scenarios::SeedReport& failure : totals_.at(name).failures) lines.push_back(repro_line(failure));
  }
  return lines;
}

bool SuiteReport::passed() const noexcept { return failed() == 0; }

std::uint64_t SuiteReport::seeds() const noexcept {
  std::uint64_t seeds = 0;
  for (const auto& [name, totals] : totals_) seeds += totals.seeds;
  return seeds;
}

std::uint64_t SuiteReport::failed() const noexcept {
  std::uint64_t failed = 0;
  for (const auto& [name, totals] : totals_) failed += totals.failures.size();
  return failed;
}

std::string SuiteReport::summary_table(double elapsed_seconds) const {
  std::string out = fmt::format("{:<24} {:>7} {:>7} {:>7} {:>11} {:>9} {:>12} {:>10}\n", "scenario", "seeds", "passed",
                                "failed", "simulated", "wall", "compression", "seeds/min");
  ScenarioTotals all;
  for (const std::string& name : order_) {
    const ScenarioTotals& totals = totals_.at(name);
    out += fmt::format("{:<24} {:>7} {:>7} {:>7} {:>11} {:>9} {:>12} {:>10.0f}\n", name, totals.seeds, totals.passed,
                       totals.failures.size(), human_seconds(totals.simulated_seconds),
                       human_seconds(totals.wall_seconds), compression(totals.simulated_seconds, totals.wall_seconds),
                       totals.wall_seconds > 0 ? static_cast<double>(totals.seeds) * 60 / totals.wall_seconds : 0.0);
    all.seeds += totals.seeds;
    all.passed += totals.passed;
    all.simulated_seconds += totals.simulated_seconds;
    all.wall_seconds += totals.wall_seconds;
  }
  out += fmt::format("{:<24} {:>7} {:>7} {:>7} {:>11} {:>9} {:>12} {:>10.0f}\n", "total", all.seeds, all.passed,
                     all.seeds - all.passed, human_seconds(all.simulated_seconds), human_seconds(elapsed_seconds),
                     compression(all.simulated_seconds, elapsed_seconds),
                     elapsed_seconds > 0 ? static_cast<double>(all.seeds) * 60 / elapsed_seconds : 0.0);
  out += "(wall per scenario is summed over seeds, one core each; the total is the elapsed time)\n";
  return out;
}

std::string SuiteReport::json(double elapsed_seconds) const {
  nlohmann::ordered_json root;
  root["profile"] = profile_.empty() ? "per scenario" : profile_;
  root["seeds"] = seeds();
  root["failed"] = failed();
  root["elapsed_seconds"] = elapsed_seconds;
  nlohmann::ordered_json scenarios = nlohmann::ordered_json::array();
  for (const std::string& name : order_) {
    const ScenarioTotals& totals = totals_.at(name);
    nlohmann::ordered_json entry;
    entry["scenario"] = name;
    entry["seeds"] = totals.seeds;
    entry["passed"] = totals.passed;
    entry["simulated_seconds"] = totals.simulated_seconds;
    entry["wall_seconds"] = totals.wall_seconds;
    nlohmann::ordered_json failed = nlohmann::ordered_json::array();
    for (const scenarios::SeedReport& failure : totals.failures) {
      nlohmann::ordered_json seed;
      seed["seed"] = failure.seed;
      seed["repro"] = repro_line(failure);
      seed["trace_hash"] = fmt::format("{:016x}", failure.trace_hash);
      nlohmann::ordered_json violations = nlohmann::ordered_json::array();
      for (const scenarios::Violation& violation : failure.violations) {
        violations.push_back({{"invariant", violation.invariant}, {"message", violation.message}});
      }
      seed["violations"] = std::move(violations);
      failed.push_back(std::move(seed));
    }
    entry["failed_seeds"] = std::move(failed);
    scenarios.push_back(std::move(entry));
  }
  root["scenarios"] = std::move(scenarios);
  return root.dump(2) + "\n";
}

std::string SuiteReport::junit(double elapsed_seconds) const {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites name=\"duro\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n", seeds(), failed(),
                     elapsed_seconds);
  for (const std::string& name : order_) {
    const ScenarioTotals& totals = totals_.at(name);
    out += fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n", xml_escape(name),
                       totals.seeds, totals.failures.size(), totals.wall_seconds);
    // One case per failed seed (with its repro line), and one for the
    // seeds that passed, so a large suite stays a small file.
    for (const scenarios::SeedReport& failure : totals.failures) {
      std::string message = repro_line(failure);
      for (const scenarios::Violation& violation : failure.violations) {
        message += "\n" + violation.invariant + ": " + violation.message;
      }
      out += fmt::format("    <testcase classname=\"{}\" name=\"seed {}\" time=\"{:.3f}\">\n", xml_escape(name),
                         failure.seed, failure.wall_seconds);
      out += fmt::format("      <failure message=\"{}\">{}</failure>\n", xml_escape(repro_line(failure)),
                         xml_escape(message));
      out += "    </testcase>\n";
    }
    out += fmt::format("    <testcase classname=\"{}\" name=\"{} seeds passed\" time=\"{:.3f}\"/>\n", xml_escape(name),
                       totals.passed, totals.wall_seconds);
    out += "  </testsuite>\n";
  }
  out += "</testsuites>\n";
  return out;
}

}  // namespace duro::cli
