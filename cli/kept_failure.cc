#include "cli/kept_failure.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/bad_input.h"

namespace duro::cli {

namespace {

using Json = nlohmann::ordered_json;

constexpr std::uint64_t kKeptFailureFormat = 1;

}  // namespace

std::string kept_failure_to_json(const KeptFailure& failure) {
  Json json = Json::object();
  json["format"] = kKeptFailureFormat;
  json["scenario"] = failure.scenario;
  json["seed"] = failure.seed;
  json["buildId"] = failure.build_id;
  json["invariant"] = failure.invariant;
  json["message"] = failure.message;
  json["faultPlan"] = failure.plan.to_text();
  return json.dump(2) + "\n";
}

KeptFailure kept_failure_from_json(const std::string& path, const std::string& text) {
  auto bad = [&](const std::string& what) { return BadInput{fmt::format("{}: {}", path, what)}; };
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::parse_error& error) {
    throw bad(fmt::format("JSON parse error at byte {}", error.byte));
  } catch (const Json::exception& error) {  // A number out of range, say.
    throw bad(fmt::format("JSON parse error: {}", error.what()));
  }
  if (!json.is_object()) throw bad("expected an object");
  auto string_field = [&](const char* key) {
    if (!json.contains(key) || !json[key].is_string()) throw bad(fmt::format("\"{}\": expected a string", key));
    return json[key].get<std::string>();
  };
  if (!json.contains("format") || json["format"] != kKeptFailureFormat) throw bad("expected \"format\": 1");
  KeptFailure failure;
  failure.scenario = string_field("scenario");
  if (!json.contains("seed") || !json["seed"].is_number_unsigned()) throw bad("\"seed\": expected a seed");
  failure.seed = json["seed"].get<std::uint64_t>();
  failure.build_id = string_field("buildId");
  failure.invariant = string_field("invariant");
  failure.message = string_field("message");
  sim::Result<sim::FaultPlan> plan = sim::FaultPlan::parse(string_field("faultPlan"));
  if (!plan.ok()) throw bad("\"faultPlan\": " + plan.error().message);
  failure.plan = std::move(plan.value());
  return failure;
}

}  // namespace duro::cli
