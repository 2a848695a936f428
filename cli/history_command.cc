#include "cli/history_command.h"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/bad_input.h"
#include "cli/files.h"
#include "engine/history/history_json.h"
#include "engine/history/text_encoding.h"
#include "sim/clock.h"

namespace duro::cli {

namespace {

using Json = nlohmann::ordered_json;

// Payloads in the JSON form are {"data": base64}; in `show`, a payload
// whose bytes are printable text is shown as that text (payloads are
// JSON by default, so usually it is).
bool printable(std::string_view text) {
  if (!engine::is_utf8(text)) return false;
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') return false;
  }
  return true;
}

void readable_payloads(Json& json) {
  if (json.is_object()) {
    if (json.size() == 1 && json.contains("data") && json["data"].is_string()) {
      std::optional<std::string> bytes = engine::base64_decode(json["data"].get<std::string>());
      if (bytes && printable(*bytes)) json = *bytes;
      return;
    }
    for (auto& [key, value] : json.items()) readable_payloads(value);
  } else if (json.is_array()) {
    for (Json& element : json) readable_payloads(element);
  }
}

int show(const std::string& path) {
  const engine::HistoryFile file = load_history_file(path);
  const engine::HistoryFileHeader& header = file.header;
  fmt::print("{}: history file, format {}\n", path, engine::kHistoryFileVersion);
  fmt::print("  workflow  {}  id {}  run {}\n", header.workflow_type, header.workflow_id, header.run_id);
  if (!header.scenario.empty()) {
    fmt::print("  recorded  scenario {}{}, build {}\n", header.scenario,
               header.seed ? fmt::format(" seed {}", *header.seed) : std::string(), header.build_id);
  } else {
    fmt::print("  recorded  build {}\n", header.build_id.empty() ? "(none)" : header.build_id);
  }
  const std::vector<engine::HistoryEvent>& events = file.history.events;
  const sim::TimePoint start = events.front().time;
  fmt::print("  {} events over {}{}\n\n", events.size(), sim::format_duration(events.back().time - start),
             file.history.closed() ? "" : " (open: the run had not closed)");
  for (const engine::HistoryEvent& event : events) {
    Json json = Json::parse(engine::to_json(event));
    Json attributes = std::move(json[engine::event_attributes_key(event.type())]);
    readable_payloads(attributes);
    fmt::print("{:>6}  +{:<12} {}  {}\n", event.event_id, sim::format_duration(event.time - start),
               engine::event_type_name(event.type()), attributes.dump());
  }
  return kExitPassed;
}

int export_json(const std::string& path, const std::string& output) {
  const std::string json = engine::history_file_to_json(load_history_file(path), true) + "\n";
  if (output.empty()) {
    fmt::print("{}", json);
  } else {
    write_file(output, json);
  }
  return kExitPassed;
}

int import_json(const std::string& path, std::string output) {
  sim::Result<engine::HistoryFile> file =
      engine::history_file_from_json(read_file(path, engine::kHistoryFileBytesMax));
  if (!file.ok()) throw BadInput{fmt::format("{}: {}", path, file.error().message)};
  if (output.empty()) output = std::filesystem::path(path).replace_extension(kHistoryFileExtension).string();
  if (output == path) throw BadInput{fmt::format("{}: give -o: the output would overwrite the input", path)};
  write_file(output, engine::encode_history_file(file.value()));
  fmt::print("{}: {} events, written to {}\n", path, file.value().history.events.size(), output);
  return kExitPassed;
}

}  // namespace

engine::HistoryFile load_history_file(const std::string& path) {
  // A compressed file is smaller than what it holds, so the content's cap
  // bounds the file too.
  sim::Result<engine::HistoryFile> file =
      engine::decode_history_file(read_file(path, engine::kHistoryFileBytesMax));
  if (!file.ok()) throw BadInput{fmt::format("{}: {}", path, file.error().message)};
  return std::move(file.value());
}

HistoryCommand::HistoryCommand(CLI::App& app) {
  history_ = app.add_subcommand("history", "show a history file, or convert it to and from JSON");
  history_->require_subcommand(1);
  show_ = history_->add_subcommand("show", "the header and every event, one per line");
  show_->add_option("file", file_, "the history file")->required();
  export_ = history_->add_subcommand("export", "the history file as JSON (Temporal's event names and fields)");
  export_->add_flag("--json", json_, "JSON (the only form; accepted for clarity)");
  export_->add_option("file", file_, "the history file")->required();
  export_->add_option("-o,--output", output_, "write here instead of to stdout");
  import_ = history_->add_subcommand("import", "JSON (as export writes it) back to a history file");
  import_->add_option("file", file_, "the JSON file")->required();
  import_->add_option("-o,--output", output_, "the history file to write (default: the input with .dhist)");
}

bool HistoryCommand::parsed() const { return history_->parsed(); }

int HistoryCommand::run() {
  if (show_->parsed()) return show(file_);
  if (export_->parsed()) return export_json(file_, output_);
  if (import_->parsed()) return import_json(file_, output_);
  throw BadInput{"history: give show, export or import"};
}

}  // namespace duro::cli
