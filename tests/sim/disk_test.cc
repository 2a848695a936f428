#include "sim/disk.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/simulator.h"

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

// --- Helpers -------------------------------------------------------------------

template <typename T>
std::optional<ErrorCode> code_of(const Result<T>& result) {
  if (result.ok()) return std::nullopt;
  return result.error().code;
}

template <typename T>
std::string describe(const Result<T>& result) {
  return result.ok() ? std::string("ok") : to_string(result.error());
}

std::string describe(std::optional<ErrorCode> code) { return code ? error_code_name(*code) : "ok"; }

#define EXPECT_DISK_OK(expr)                                      \
  do {                                                            \
    const auto disk_result_ = (expr);                             \
    EXPECT_TRUE(disk_result_.ok()) << #expr << ": " << describe(disk_result_); \
  } while (false)

// Bytes that say who wrote them and where: byte p (an absolute file offset)
// of the write tagged `tag`. A byte that ends up at the wrong offset, or
// from the wrong write, shows.
std::string pattern(std::uint64_t tag, std::uint64_t offset, std::uint64_t length) {
  std::string bytes(length, '\0');
  for (std::uint64_t i = 0; i < length; i++) {
    bytes[i] = static_cast<char>((tag * 151 + (offset + i) * 7 + 1) & 0xFF);
  }
  return bytes;
}

// FNV-1a, 64 bits: a single changed byte always changes it (each step is a
// bijection of the state), so it catches every bit flip.
std::uint64_t checksum(std::string_view bytes) {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ULL;
  }
  return h;
}

// A self-checking record of kRecordBytes: [offset u64][checksum u64][payload],
// the checksum covering the offset and the payload, so a record that lands
// at the wrong place fails as surely as one that is damaged.
constexpr std::uint64_t kRecordBytes = 512;

std::string make_record(std::uint64_t offset, std::uint64_t tag) {
  std::string record(kRecordBytes, '\0');
  std::memcpy(record.data(), &offset, 8);
  const std::string payload = pattern(tag, offset, kRecordBytes - 16);
  std::memcpy(record.data() + 16, payload.data(), payload.size());
  std::string covered = record.substr(0, 8) + payload;
  const std::uint64_t sum = checksum(covered);
  std::memcpy(record.data() + 8, &sum, 8);
  return record;
}

bool record_valid(std::string_view record, std::uint64_t offset) {
  if (record.size() != kRecordBytes) return false;
  std::uint64_t stored_offset = 0;
  std::uint64_t stored_sum = 0;
  std::memcpy(&stored_offset, record.data(), 8);
  std::memcpy(&stored_sum, record.data() + 8, 8);
  std::string covered(record.substr(0, 8));
  covered += record.substr(16);
  return stored_offset == offset && stored_sum == checksum(covered);
}

// Every file on the disk, as a checker sees it.
std::map<std::string, std::string> files_of(const Disk& disk) {
  std::map<std::string, std::string> files;
  for (const std::string& path : disk.list()) files[path] = disk.contents(path).value();
  return files;
}

// Latencies small enough to keep tests short, large enough that a crash
// can land inside an operation.
DiskOptions quick_options() {
  DiskOptions options;
  options.read_latency = {1us, 20us};
  options.write_latency = {1us, 20us};
  options.metadata_latency = {1us, 20us};
  options.fsync_latency = {100us, 1ms};
  return options;
}

// One simulator, one node, its disk; a crash of the node crashes the disk,
// as the world wires it.
struct DiskWorld {
  explicit DiskWorld(std::uint64_t seed, DiskOptions options = quick_options())
      : sim({.seed = seed}), node(sim.add_node("disk-node")), disk(sim, node, options, sim.random().fork("disk/disk-node")) {
    sim.add_crash_listener([this](NodeId crashed) {
      if (crashed == node) disk.crash();
    });
  }

  // Runs `body` in a fiber of the node until the simulation is quiet.
  template <typename Fn>
  void run(Fn&& body) {
    sim.spawn(node, "test", std::forward<Fn>(body));
    const RunResult result = sim.run();
    ASSERT_EQ(result.reason, StopReason::kQuiescent);
  }

  void crash_and_restart() {
    sim.crash(node);
    sim.restart(node);
  }

  Simulator sim;
  NodeId node;
  Disk disk;
};

// --- The model ------------------------------------------------------------------
//
// The crash model of disk.h, written again from its text and not from
// disk.cc: it tracks what must be durable and what is unsynced, and
// explain_crash() decides, exactly, whether a crash could have turned that
// into what the disk holds.

class DiskModel {
 public:
  struct Op {
    bool truncate = false;
    std::uint64_t offset = 0;  // Truncate: the new size.
    std::string bytes;
  };
  struct File {
    std::string durable;
    std::string cache;
    std::vector<Op> unsynced;
    std::uint64_t unsynced_bytes = 0;
  };
  struct JournalOp {
    enum class Kind { kCreate, kRename, kRemove };
    Kind kind;
    std::string path;
    std::string to;
    int file = -1;
  };
  using Names = std::map<std::string, int>;

  explicit DiskModel(DiskOptions options) : options_(options) {}

  std::optional<ErrorCode> create(const std::string& path) {
    if (names_.contains(path)) return ErrorCode::kAlreadyExists;
    const int id = next_file_++;
    push_journal(JournalOp{JournalOp::Kind::kCreate, path, {}, id});
    files_[id] = File{};
    names_[path] = id;
    return std::nullopt;
  }

  std::optional<ErrorCode> write(const std::string& path, std::uint64_t offset, const std::string& bytes) {
    File* file = find(path);
    if (file == nullptr) return ErrorCode::kNotFound;
    if (bytes.empty()) return std::nullopt;
    make_room(*file, bytes.size());
    apply(file->cache, Op{false, offset, bytes});
    file->unsynced.push_back(Op{false, offset, bytes});
    file->unsynced_bytes += bytes.size();
    return std::nullopt;
  }

  std::optional<ErrorCode> truncate(const std::string& path, std::uint64_t size) {
    File* file = find(path);
    if (file == nullptr) return ErrorCode::kNotFound;
    make_room(*file, 0);
    apply(file->cache, Op{true, size, {}});
    file->unsynced.push_back(Op{true, size, {}});
    return std::nullopt;
  }

  std::optional<ErrorCode> fsync(const std::string& path) {
    File* file = find(path);
    if (file == nullptr) return ErrorCode::kNotFound;
    flush(*file);
    commit();
    return std::nullopt;
  }

  void fsync_directory() { commit(); }

  std::optional<ErrorCode> rename(const std::string& from, const std::string& to) {
    if (!names_.contains(from)) return ErrorCode::kNotFound;
    if (from == to) return std::nullopt;
    push_journal(JournalOp{JournalOp::Kind::kRename, from, to, -1});
    const int id = names_.at(from);
    names_.erase(from);
    names_[to] = id;
    return std::nullopt;
  }

  std::optional<ErrorCode> remove(const std::string& path) {
    if (!names_.contains(path)) return ErrorCode::kNotFound;
    push_journal(JournalOp{JournalOp::Kind::kRemove, path, {}, -1});
    names_.erase(path);
    return std::nullopt;
  }

  const File* file(const std::string& path) const {
    const auto it = names_.find(path);
    return it == names_.end() ? nullptr : &files_.at(it->second);
  }
  const Names& names() const { return names_; }

  // After a crash: what the disk holds is now all durable.
  void adopt(const std::map<std::string, std::string>& files) {
    files_.clear();
    names_.clear();
    durable_names_.clear();
    journal_.clear();
    for (const auto& [path, contents] : files) {
      const int id = next_file_++;
      files_[id] = File{contents, contents, {}, 0};
      names_[path] = id;
    }
    durable_names_ = names_;
  }

  // Empty if a crash could leave exactly `files` (path -> contents);
  // otherwise why not.
  std::string explain_crash(const std::map<std::string, std::string>& files) const {
    std::string why;
    for (std::size_t kept = 0; kept <= journal_.size(); kept++) {
      Names names = durable_names_;
      for (std::size_t i = 0; i < kept; i++) apply_journal(names, journal_[i]);
      std::string mismatch;
      if (!same_paths(names, files)) {
        mismatch = "names differ";
      } else {
        for (const auto& [path, id] : names) {
          if (!explains_file(files_.at(id), files.at(path))) {
            mismatch = "contents of " + path + " unexplained";
            break;
          }
        }
      }
      if (mismatch.empty()) return {};
      why += "journal prefix ";
      why += std::to_string(kept);
      why += ": ";
      why += mismatch;
      why += "; ";
    }
    why += "after the crash:";
    for (const auto& [path, contents] : files) {
      why += " ";
      why += path;
      why += "(";
      why += std::to_string(contents.size());
      why += " bytes)";
    }
    return why;
  }

 private:
  File* find(const std::string& path) {
    const auto it = names_.find(path);
    return it == names_.end() ? nullptr : &files_.at(it->second);
  }

  static void apply(std::string& data, const Op& op) {
    if (op.truncate) {
      data.resize(op.offset, '\0');
      return;
    }
    if (data.size() < op.offset + op.bytes.size()) data.resize(op.offset + op.bytes.size(), '\0');
    data.replace(op.offset, op.bytes.size(), op.bytes);
  }

  // The disk writes a file back when it is at either unsynced bound.
  void make_room(File& file, std::uint64_t bytes) {
    const bool full = file.unsynced.size() >= options_.unsynced_ops_per_file_max ||
                      (!file.unsynced.empty() && file.unsynced_bytes + bytes > options_.unsynced_bytes_per_file_max);
    if (full) flush(file);
  }

  static void flush(File& file) {
    for (const Op& op : file.unsynced) apply(file.durable, op);
    file.unsynced.clear();
    file.unsynced_bytes = 0;
  }

  void push_journal(JournalOp op) {
    if (journal_.size() >= options_.journal_ops_max) commit();
    journal_.push_back(std::move(op));
  }

  void commit() {
    for (const JournalOp& op : journal_) apply_journal(durable_names_, op);
    journal_.clear();
  }

  static void apply_journal(Names& names, const JournalOp& op) {
    switch (op.kind) {
      case JournalOp::Kind::kCreate: names[op.path] = op.file; break;
      case JournalOp::Kind::kRename: {
        const int id = names.at(op.path);
        names.erase(op.path);
        names[op.to] = id;
        break;
      }
      case JournalOp::Kind::kRemove: names.erase(op.path); break;
    }
  }

  static bool same_paths(const Names& names, const std::map<std::string, std::string>& files) {
    if (names.size() != files.size()) return false;
    for (const auto& [path, id] : names) {
      if (!files.contains(path)) return false;
    }
    return true;
  }

 public:
  // Whether some choice of fates (each truncate kept or lost, each 512-byte
  // piece of each write kept or lost) applied in order to `file.durable`
  // gives `result`. Exact, and fast because the choice decomposes:
  //   - with the truncates' fates fixed, the final value of a byte x below
  //     the final size depends only on the pieces covering x (all in x's
  //     sector): the last kept one after the last kept truncate to <= x;
  //     else 0 if such a truncate exists (x was cut, then grown back over);
  //     else the durable byte (or 0 past the durable end);
  //   - the final size is max(t, ends of kept pieces after the last kept
  //     truncate), t being that truncate's size (or the durable size):
  //     pieces after it that end past the result's size must be lost, and
  //     if the result is longer than t a kept one must end exactly there,
  //     which puts it in the sector of the last byte.
  // So each sector is checked on its own, over the subsets of its pieces.
  static bool explains_file(const File& file, const std::string& result) {
    std::vector<std::size_t> truncates;
    for (std::size_t i = 0; i < file.unsynced.size(); i++) {
      if (file.unsynced[i].truncate) truncates.push_back(i);
    }
    RC_ASSERT(truncates.size() <= 16u);
    for (std::uint64_t mask = 0; mask < (std::uint64_t{1} << truncates.size()); mask++) {
      std::vector<bool> kept(file.unsynced.size(), true);
      for (std::size_t j = 0; j < truncates.size(); j++) kept[truncates[j]] = ((mask >> j) & 1) != 0;
      if (explains_with_truncates(file, kept, result)) return true;
    }
    return false;
  }

 private:
  struct Piece {
    std::size_t op;
    std::uint64_t begin;
    std::uint64_t end;
  };

  static bool explains_with_truncates(const File& file, const std::vector<bool>& kept, const std::string& result) {
    const std::vector<Op>& ops = file.unsynced;
    std::optional<std::size_t> last_truncate;
    std::uint64_t base_size = file.durable.size();
    for (std::size_t i = 0; i < ops.size(); i++) {
      if (ops[i].truncate && kept[i]) {
        last_truncate = i;
        base_size = ops[i].offset;
      }
    }
    const std::uint64_t size = result.size();
    if (size < base_size) return false;
    std::map<std::uint64_t, std::vector<Piece>> sectors;
    for (std::uint64_t s = 0; s * kDiskSectorBytes < size; s++) sectors[s];
    for (std::size_t i = 0; i < ops.size(); i++) {
      if (ops[i].truncate) continue;
      const std::uint64_t end = ops[i].offset + ops[i].bytes.size();
      for (std::uint64_t begin = ops[i].offset; begin < end;) {
        const std::uint64_t sector = begin / kDiskSectorBytes;
        const std::uint64_t piece_end = std::min(end, (sector + 1) * kDiskSectorBytes);
        sectors[sector].push_back(Piece{i, begin, piece_end});
        begin = piece_end;
      }
    }
    const auto after_last_truncate = [&](std::size_t op) { return !last_truncate || op > *last_truncate; };
    for (const auto& [sector, pieces] : sectors) {
      RC_ASSERT(pieces.size() <= 16u);
      bool explained = false;
      for (std::uint64_t subset = 0; subset < (std::uint64_t{1} << pieces.size()) && !explained; subset++) {
        bool possible = true;
        bool reaches_size = false;
        for (std::size_t j = 0; j < pieces.size(); j++) {
          if (((subset >> j) & 1) == 0 || !after_last_truncate(pieces[j].op)) continue;
          if (pieces[j].end > size) possible = false;
          if (pieces[j].end == size) reaches_size = true;
        }
        if (!possible) continue;
        if (size > base_size && sector == (size - 1) / kDiskSectorBytes && !reaches_size) continue;
        const std::uint64_t sector_end = std::min(size, (sector + 1) * kDiskSectorBytes);
        for (std::uint64_t x = sector * kDiskSectorBytes; x < sector_end && possible; x++) {
          possible = byte_at(file, kept, pieces, subset, x) == result[x];
        }
        explained = possible;
      }
      if (!explained) return false;
    }
    return true;
  }

  static char byte_at(const File& file, const std::vector<bool>& kept, const std::vector<Piece>& pieces,
                      std::uint64_t subset, std::uint64_t x) {
    std::optional<std::size_t> cut;
    for (std::size_t i = 0; i < file.unsynced.size(); i++) {
      if (file.unsynced[i].truncate && kept[i] && file.unsynced[i].offset <= x) cut = i;
    }
    std::optional<std::size_t> writer;
    for (std::size_t j = 0; j < pieces.size(); j++) {
      const Piece& piece = pieces[j];
      if (((subset >> j) & 1) == 0 || x < piece.begin || x >= piece.end) continue;
      if (cut && piece.op < *cut) continue;
      if (!writer || piece.op > *writer) writer = piece.op;
    }
    if (writer) return file.unsynced[*writer].bytes[x - file.unsynced[*writer].offset];
    if (cut) return '\0';
    return x < file.durable.size() ? file.durable[x] : '\0';
  }

  DiskOptions options_;
  std::map<int, File> files_;
  Names names_;
  Names durable_names_;
  std::vector<JournalOp> journal_;
  int next_file_ = 1;
};

// --- The model against the disk: the stateful property ---------------------------

const char* const kPaths[] = {"a", "b", "dir/c", "dir/d"};

struct OpSpec {
  OpSpec(int kind_, int file_, int other_, std::uint32_t offset_, std::uint32_t length_)
      : kind(kind_), file(file_), other(other_), offset(offset_), length(length_) {}
  int kind;  // 0..99: weights of the operation kinds, see run_op().
  int file;
  int other;
  std::uint32_t offset;
  std::uint32_t length;
};

std::ostream& operator<<(std::ostream& out, const OpSpec& op) {
  return out << "{kind " << op.kind << " file " << op.file << " other " << op.other << " offset " << op.offset
             << " length " << op.length << "}";
}

rc::Gen<OpSpec> op_spec() {
  return rc::gen::construct<OpSpec>(rc::gen::inRange(0, 100), rc::gen::inRange(0, 4), rc::gen::inRange(0, 4),
                                    rc::gen::inRange<std::uint32_t>(0, 4096), rc::gen::inRange<std::uint32_t>(0, 1300));
}

// Runs one operation on the disk and on the model; empty if they agree.
std::string run_op(Disk& disk, DiskModel& model, const OpSpec& op, std::uint64_t tag) {
  const std::string path = kPaths[op.file];
  const std::string other = kPaths[op.other];
  std::optional<ErrorCode> got;
  std::optional<ErrorCode> want;
  std::string what;
  if (op.kind < 15) {
    what = "create";
    got = code_of(disk.create(path));
    want = model.create(path);
  } else if (op.kind < 40) {
    what = "write";
    const std::string bytes = pattern(tag, op.offset, op.length);
    got = code_of(disk.write(path, op.offset, bytes));
    want = model.write(path, op.offset, bytes);
  } else if (op.kind < 60) {
    what = "append";
    const DiskModel::File* file = model.file(path);
    const std::uint64_t offset = file == nullptr ? 0 : file->cache.size();
    const std::string bytes = pattern(tag, offset, op.length);
    const Result<std::uint64_t> appended = disk.append(path, bytes);
    got = code_of(appended);
    want = model.write(path, offset, bytes);
    if (appended.ok() && appended.value() != offset) return "append landed at the wrong offset";
  } else if (op.kind < 68) {
    what = "truncate";
    got = code_of(disk.truncate(path, op.offset));
    want = model.truncate(path, op.offset);
  } else if (op.kind < 80) {
    what = "fsync";
    got = code_of(disk.fsync(path));
    want = model.fsync(path);
  } else if (op.kind < 84) {
    what = "fsync_directory";
    got = code_of(disk.fsync_directory());
    model.fsync_directory();
  } else if (op.kind < 92) {
    what = "rename";
    got = code_of(disk.rename(path, other));
    want = model.rename(path, other);
  } else if (op.kind < 96) {
    what = "remove";
    got = code_of(disk.remove(path));
    want = model.remove(path);
  } else {
    what = "read";
    const Result<std::string> read = disk.read(path, op.offset, op.length);
    got = code_of(read);
    const DiskModel::File* file = model.file(path);
    want = file == nullptr ? std::optional<ErrorCode>(ErrorCode::kNotFound) : std::nullopt;
    if (read.ok() && file != nullptr) {
      const std::string expected = op.offset < file->cache.size() ? file->cache.substr(op.offset, op.length) : "";
      if (read.value() != expected) return "read returned other bytes than were written";
    }
  }
  if (got != want) {
    std::string message = what;
    message += " ";
    message += path;
    message += ": disk says ";
    message += describe(got);
    message += ", model says ";
    message += describe(want);
    return message;
  }
  return {};
}

// Small bounds, so that writeback at the unsynced bound and commits of a
// full journal happen often.
DiskOptions property_options() {
  DiskOptions options = quick_options();
  options.unsynced_ops_per_file_max = 6;
  options.unsynced_bytes_per_file_max = 4096;
  options.journal_ops_max = 5;
  return options;
}

// Two rounds of operations drawn from `op_gen`, each ended by a crash at a
// random time: the disk agrees with the model throughout, and what each
// crash leaves is an outcome the model allows.
void check_crash_rounds(const rc::Gen<OpSpec>& op_gen) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  const DiskOptions options = property_options();
  DiskWorld world(seed, options);
  DiskModel model(options);
  std::uint64_t tag = 1;
  bool crashed_mid_operation = false;
  std::uint64_t unsynced_writes_max = 0;
  bool journal_ops_lost = false;
  // Two rounds: the second starts from what the first crash left.
  for (int round = 0; round < 2; round++) {
    const auto ops = *rc::gen::container<std::vector<OpSpec>>(
        static_cast<std::size_t>(*rc::gen::inRange(0, 50)), op_gen);
    // Often inside the operations (a fiber killed mid-operation), sometimes after them.
    const Duration crash_after = std::chrono::microseconds{*rc::gen::inRange(0, 3000)};
    std::string failure;
    bool finished = false;
    world.sim.spawn(world.node, "ops", [&] {
      for (const OpSpec& op : ops) {
        failure = run_op(world.disk, model, op, tag++);
        if (!failure.empty()) return;
      }
      // What a process sees agrees with the model too.
      std::vector<std::string> expected_paths;
      for (const auto& [path, id] : model.names()) expected_paths.push_back(path);
      if (world.disk.list() != expected_paths) failure = "list() differs from the model";
      for (const std::string& path : expected_paths) {
        if (world.disk.contents(path).value() != model.file(path)->cache) failure = "contents differ: " + path;
      }
      finished = true;
    });
    world.sim.schedule_after(crash_after, [&] {
      if (world.sim.is_up(world.node)) world.sim.crash(world.node);
    });
    const DiskStats before = world.disk.stats();
    (void)world.sim.run();
    if (!failure.empty()) RC_FAIL(failure);
    RC_ASSERT(!world.sim.is_up(world.node));
    const DiskStats& after = world.disk.stats();
    const std::uint64_t unsynced_at_crash = after.unsynced_writes_kept + after.unsynced_writes_lost +
                                            after.unsynced_writes_torn - before.unsynced_writes_kept -
                                            before.unsynced_writes_lost - before.unsynced_writes_torn;
    // What the crashes met, over both rounds (printed by RapidCheck).
    crashed_mid_operation |= !finished;
    unsynced_writes_max = std::max(unsynced_writes_max, unsynced_at_crash);
    journal_ops_lost |= after.journal_ops_lost > before.journal_ops_lost;
    world.disk.check_invariants();
    const std::map<std::string, std::string> files = files_of(world.disk);
    const std::string why = model.explain_crash(files);
    if (!why.empty()) RC_FAIL(why);
    model.adopt(files);
    world.sim.restart(world.node);
  }
  RC_CLASSIFY(crashed_mid_operation, "a crash killed an operation");
  RC_CLASSIFY(unsynced_writes_max >= 4, "a crash met 4+ unsynced writes");
  RC_CLASSIFY(journal_ops_lost, "a crash lost journal operations");
}

RC_GTEST_PROP(DiskProperty, CrashLeavesSyncedDataPlusASectorSubsetOfUnsyncedWritesInOrder, ()) {
  check_crash_rounds(op_spec());
}

// Logs: files only created, appended to, synced and read keep one copy of
// their bytes (disk.h, Inode), and must crash exactly as any other file.
RC_GTEST_PROP(DiskProperty, LogsOnlyAppendedToCrashAsTheModelSays, ()) {
  const auto kind = rc::gen::element(0 /* create */, 40 /* append */, 50 /* append */, 70 /* fsync */, 97 /* read */);
  check_crash_rounds(rc::gen::construct<OpSpec>(kind, rc::gen::inRange(0, 4), rc::gen::inRange(0, 4),
                                                 rc::gen::inRange<std::uint32_t>(0, 4096),
                                                 rc::gen::inRange<std::uint32_t>(0, 1300)));
}

// --- The checker itself: it must reject what the model forbids ---------------------

TEST(DiskModel, ExplainsAllowedOutcomesAndRejectsForbiddenOnes) {
  DiskModel model(DiskOptions{});
  ASSERT_FALSE(model.create("f"));
  const std::string a = pattern(1, 0, 1024);
  ASSERT_FALSE(model.write("f", 0, a));
  ASSERT_FALSE(model.fsync("f"));
  const std::string b = pattern(2, 256, 512);   // [256, 768): sectors 0 and 1.
  const std::string c = pattern(3, 512, 1024);  // [512, 1536): sectors 1 and 2.
  ASSERT_FALSE(model.write("f", 256, b));
  ASSERT_FALSE(model.write("f", 512, c));
  const auto with = [](std::string data, std::uint64_t offset, std::string_view bytes) {
    if (data.size() < offset + bytes.size()) data.resize(offset + bytes.size(), '\0');
    data.replace(offset, bytes.size(), bytes);
    return data;
  };
  const auto accepts = [&](const std::string& contents) { return model.explain_crash({{"f", contents}}).empty(); };

  EXPECT_TRUE(accepts(a));                                  // Both lost.
  EXPECT_TRUE(accepts(with(a, 256, b)));                    // b kept.
  EXPECT_TRUE(accepts(with(with(a, 256, b), 512, c)));      // Both kept: the live contents.
  EXPECT_TRUE(accepts(with(a, 512, c)));                    // c kept.
  EXPECT_TRUE(accepts(with(a, 256, b.substr(0, 256))));     // b torn: its first sector only.
  EXPECT_TRUE(accepts(with(a, 1024, c.substr(512))));       // c torn: its last sector only.

  EXPECT_FALSE(accepts(with(with(a, 512, c), 256, b)));     // Out of order: b over c.
  std::string flipped = a;
  flipped[100] = static_cast<char>(flipped[100] ^ 1);
  EXPECT_FALSE(accepts(flipped));                           // A synced byte changed.
  EXPECT_FALSE(accepts(with(a, 256, b.substr(0, 128))));    // Torn inside a sector.
  EXPECT_FALSE(accepts(a.substr(0, 512)));                  // Synced data lost.
  EXPECT_FALSE(accepts(a + '\0'));                          // A size no write gives.
  EXPECT_FALSE(accepts(with(a, 1024, c.substr(512, 100)))); // Part of c's last sector.
  EXPECT_FALSE(model.explain_crash({}).empty());            // A durable file gone.
  EXPECT_FALSE(model.explain_crash({{"f", a}, {"g", ""}}).empty());  // A file never made.
}

TEST(DiskModel, TruncatesAreKeptOrLostInOrderWithWrites) {
  DiskModel model(DiskOptions{});
  ASSERT_FALSE(model.create("g"));
  const std::string x = pattern(1, 0, 2048);
  ASSERT_FALSE(model.write("g", 0, x));
  ASSERT_FALSE(model.fsync("g"));
  ASSERT_FALSE(model.truncate("g", 512));
  const std::string y = pattern(2, 1024, 100);  // [1024, 1124), past the cut.
  ASSERT_FALSE(model.write("g", 1024, y));
  const auto accepts = [&](const std::string& contents) { return model.explain_crash({{"g", contents}}).empty(); };
  std::string cut_then_y = x.substr(0, 512) + std::string(512, '\0') + y;
  std::string y_over_x = x;
  y_over_x.replace(1024, 100, y);

  EXPECT_TRUE(accepts(x));                 // Both lost.
  EXPECT_TRUE(accepts(x.substr(0, 512)));  // Truncate kept, write lost.
  EXPECT_TRUE(accepts(cut_then_y));        // Both kept: the live contents.
  EXPECT_TRUE(accepts(y_over_x));          // Truncate lost, write kept.

  std::string uncut = x.substr(0, 1024) + y;  // Kept the write past a kept cut, but not the cut's zeros.
  EXPECT_FALSE(accepts(uncut));
  EXPECT_FALSE(accepts(x.substr(0, 256)));  // Cut further than any truncate.
}

TEST(DiskModel, APrefixOfTheJournalSurvives) {
  DiskModel model(DiskOptions{});
  ASSERT_FALSE(model.create("a"));
  model.fsync_directory();
  ASSERT_FALSE(model.create("b"));
  ASSERT_FALSE(model.create("c"));
  ASSERT_FALSE(model.rename("a", "d"));
  ASSERT_FALSE(model.remove("b"));
  const auto accepts = [&](std::initializer_list<const char*> paths) {
    std::map<std::string, std::string> files;
    for (const char* path : paths) files[path] = "";
    return model.explain_crash(files).empty();
  };
  EXPECT_TRUE(accepts({"a"}));
  EXPECT_TRUE(accepts({"a", "b"}));
  EXPECT_TRUE(accepts({"a", "b", "c"}));
  EXPECT_TRUE(accepts({"b", "c", "d"}));
  EXPECT_TRUE(accepts({"c", "d"}));

  EXPECT_FALSE(accepts({"a", "c"}));  // c's create without b's before it.
  EXPECT_FALSE(accepts({"a", "d"}));  // a renamed yet still there.
  EXPECT_FALSE(accepts({}));          // a was durable.
  EXPECT_FALSE(accepts({"d"}));       // The rename without the creates before it.
}

// --- API ------------------------------------------------------------------------

TEST(Disk, FilesByPath) {
  DiskWorld world(1);
  Disk& disk = world.disk;
  world.run([&] {
    EXPECT_EQ(code_of(disk.write("f", 0, "x")), ErrorCode::kNotFound);
    EXPECT_DISK_OK(disk.create("f"));
    EXPECT_EQ(code_of(disk.create("f")), ErrorCode::kAlreadyExists);
    EXPECT_TRUE(disk.exists("f"));
    EXPECT_EQ(disk.size("f").value(), 0u);
    EXPECT_DISK_OK(disk.write("f", 0, "hello"));
    EXPECT_EQ(disk.append("f", " world").value(), 5u);
    EXPECT_EQ(disk.read("f", 0, 100).value(), "hello world");
    EXPECT_EQ(disk.read("f", 6, 3).value(), "wor");
    EXPECT_EQ(disk.read("f", 11, 10).value(), "");
    EXPECT_EQ(disk.read("f", 1000, 10).value(), "");
    EXPECT_DISK_OK(disk.write("f", 13, "!"));  // A gap reads as zeros.
    EXPECT_EQ(disk.read("f", 0, 100).value(), std::string("hello world\0\0!", 14));
    EXPECT_DISK_OK(disk.truncate("f", 5));
    EXPECT_EQ(disk.contents("f").value(), "hello");
    EXPECT_DISK_OK(disk.truncate("f", 7));
    EXPECT_EQ(disk.contents("f").value(), std::string("hello\0\0", 7));
    EXPECT_DISK_OK(disk.fsync("f"));
    EXPECT_DISK_OK(disk.rename("f", "g"));
    EXPECT_FALSE(disk.exists("f"));
    EXPECT_EQ(disk.contents("g").value(), std::string("hello\0\0", 7));
    EXPECT_DISK_OK(disk.rename("g", "g"));
    EXPECT_EQ(code_of(disk.rename("f", "h")), ErrorCode::kNotFound);
    EXPECT_DISK_OK(disk.create("h"));
    EXPECT_DISK_OK(disk.rename("h", "g"));  // Replaces g.
    EXPECT_EQ(disk.contents("g").value(), "");
    EXPECT_DISK_OK(disk.remove("g"));
    EXPECT_EQ(code_of(disk.remove("g")), ErrorCode::kNotFound);
    EXPECT_EQ(code_of(disk.read("g", 0, 1)), ErrorCode::kNotFound);
    EXPECT_EQ(code_of(disk.fsync("g")), ErrorCode::kNotFound);
    EXPECT_EQ(code_of(disk.truncate("g", 0)), ErrorCode::kNotFound);
    EXPECT_EQ(code_of(disk.size("g")), ErrorCode::kNotFound);
    EXPECT_DISK_OK(disk.fsync_directory());
  });
  world.disk.check_invariants();
  EXPECT_EQ(world.disk.inodes(), 0u);
  EXPECT_EQ(world.disk.used_bytes(), 0u);
}

TEST(Disk, ListIsSortedAndFilteredByPrefix) {
  DiskWorld world(1);
  world.run([&] {
    for (const char* path : {"log/2", "snap", "log/10", "log/1", "logs", "a"}) EXPECT_DISK_OK(world.disk.create(path));
  });
  EXPECT_EQ(world.disk.list(), (std::vector<std::string>{"a", "log/1", "log/10", "log/2", "logs", "snap"}));
  EXPECT_EQ(world.disk.list("log/"), (std::vector<std::string>{"log/1", "log/10", "log/2"}));
  EXPECT_EQ(world.disk.list("log"), (std::vector<std::string>{"log/1", "log/10", "log/2", "logs"}));
  EXPECT_EQ(world.disk.list("zzz"), std::vector<std::string>{});
}

TEST(Disk, RejectsMalformedPaths) {
  DiskOptions options = quick_options();
  options.path_bytes_max = 8;
  DiskWorld world(1, options);
  world.run([&] {
    EXPECT_EQ(code_of(world.disk.create("")), ErrorCode::kInvalidArgument);
    EXPECT_EQ(code_of(world.disk.create("123456789")), ErrorCode::kInvalidArgument);
    EXPECT_EQ(code_of(world.disk.create(std::string_view("a\0b", 3))), ErrorCode::kInvalidArgument);
    EXPECT_DISK_OK(world.disk.create("12345678"));
    EXPECT_EQ(code_of(world.disk.rename("12345678", "")), ErrorCode::kInvalidArgument);
    EXPECT_EQ(code_of(world.disk.write("", 0, "x")), ErrorCode::kInvalidArgument);
  });
  EXPECT_EQ(world.disk.list(), std::vector<std::string>{"12345678"});
}

// --- Space ------------------------------------------------------------------------

TEST(Disk, FullDiskGivesNoSpaceAndLeavesTheFileConsistent) {
  DiskOptions options = quick_options();
  options.capacity_bytes = 10'000;
  DiskWorld world(1, options);
  Disk& disk = world.disk;
  std::string expected;
  world.run([&] {
    ASSERT_TRUE(disk.create("log").ok());
    std::optional<ErrorCode> last;
    for (int i = 0; i < 100 && !last; i++) {
      const std::string chunk = pattern(static_cast<std::uint64_t>(i), expected.size(), 3000);
      const Result<std::uint64_t> appended = disk.append("log", chunk);
      last = code_of(appended);
      if (appended.ok()) expected += chunk;
    }
    EXPECT_EQ(last, ErrorCode::kNoSpace);
    EXPECT_EQ(expected.size(), 9000u);  // Three fit, the fourth does not, and none is cut short.
    EXPECT_EQ(disk.contents("log").value(), expected);
    EXPECT_EQ(code_of(disk.write("log", 9000, std::string(1001, 'x'))), ErrorCode::kNoSpace);
    EXPECT_EQ(code_of(disk.truncate("log", 10'001)), ErrorCode::kNoSpace);
    EXPECT_DISK_OK(disk.write("log", 9000, std::string(1000, 'x')));  // Exactly full.
    expected += std::string(1000, 'x');
    EXPECT_EQ(disk.used_bytes(), 10'000u);
    EXPECT_EQ(code_of(disk.append("log", "y")), ErrorCode::kNoSpace);
    // Overwrites inside the file need no space.
    EXPECT_DISK_OK(disk.write("log", 0, "z"));
    expected[0] = 'z';
    // Writing nothing extends nothing, so it fits anywhere.
    EXPECT_DISK_OK(disk.write("log", 1'000'000, ""));
    EXPECT_DISK_OK(disk.fsync("log"));
    EXPECT_EQ(disk.contents("log").value(), expected);
  });
  world.disk.check_invariants();
  world.crash_and_restart();
  EXPECT_EQ(world.disk.contents("log").value(), expected);  // All of it was synced.
}

TEST(Disk, RemovedFilesKeepTheirSpaceUntilTheRemoveIsDurable) {
  DiskOptions options = quick_options();
  options.capacity_bytes = 8192;
  DiskWorld world(1, options);
  Disk& disk = world.disk;
  world.run([&] {
    ASSERT_TRUE(disk.create("old").ok());
    ASSERT_TRUE(disk.write("old", 0, std::string(8192, 'o')).ok());
    ASSERT_TRUE(disk.fsync("old").ok());
    ASSERT_TRUE(disk.remove("old").ok());
    EXPECT_EQ(disk.used_bytes(), 8192u);  // A crash could still bring "old" back.
    ASSERT_TRUE(disk.create("new").ok());
    // Out of space: the disk commits the journal, which frees "old", and
    // the write fits.
    const std::uint64_t commits = disk.stats().journal_commits;
    EXPECT_DISK_OK(disk.write("new", 0, std::string(4096, 'n')));
    EXPECT_EQ(disk.stats().journal_commits, commits + 1);
    EXPECT_EQ(disk.used_bytes(), 4096u);
  });
  world.disk.check_invariants();
}

TEST(Disk, TooManyFilesGivesNoSpace) {
  DiskOptions options = quick_options();
  options.files_max = 3;
  DiskWorld world(1, options);
  world.run([&] {
    for (const char* path : {"a", "b", "c"}) EXPECT_DISK_OK(world.disk.create(path));
    EXPECT_EQ(code_of(world.disk.create("d")), ErrorCode::kNoSpace);
    EXPECT_DISK_OK(world.disk.remove("a"));
    EXPECT_DISK_OK(world.disk.create("d"));  // The commit frees a's inode.
    EXPECT_EQ(code_of(world.disk.create("e")), ErrorCode::kNoSpace);
  });
  EXPECT_EQ(world.disk.list(), (std::vector<std::string>{"b", "c", "d"}));
  world.disk.check_invariants();
}

TEST(Disk, FileSizeLimitGivesNoSpace) {
  DiskOptions options = quick_options();
  options.file_size_bytes_max = 1000;
  DiskWorld world(1, options);
  world.run([&] {
    ASSERT_TRUE(world.disk.create("f").ok());
    EXPECT_EQ(code_of(world.disk.write("f", 999, "ab")), ErrorCode::kNoSpace);
    EXPECT_EQ(code_of(world.disk.write("f", UINT64_MAX - 1, "ab")), ErrorCode::kNoSpace);
    EXPECT_DISK_OK(world.disk.write("f", 999, "a"));
    EXPECT_EQ(code_of(world.disk.truncate("f", 1001)), ErrorCode::kNoSpace);
  });
  EXPECT_EQ(world.disk.size("f").value(), 1000u);
}

// --- Latency ------------------------------------------------------------------------

TEST(Disk, EachOperationCostsItsConfiguredLatency) {
  DiskOptions options;
  options.read_latency = {11us, 11us};
  options.write_latency = {3us, 3us};
  options.metadata_latency = {5us, 5us};
  options.fsync_latency = {7ms, 7ms};
  DiskWorld world(1, options);
  Disk& disk = world.disk;
  world.run([&] {
    const auto cost = [&](auto&& operation) {
      const TimePoint before = world.sim.now();
      (void)operation();
      return world.sim.now() - before;
    };
    EXPECT_EQ(cost([&] { return disk.create("f"); }), 5us);
    EXPECT_EQ(cost([&] { return disk.write("f", 0, "abc"); }), 3us);
    EXPECT_EQ(cost([&] { return disk.append("f", "abc"); }), 3us);
    EXPECT_EQ(cost([&] { return disk.truncate("f", 4); }), 3us);
    EXPECT_EQ(cost([&] { return disk.read("f", 0, 4); }), 11us);
    EXPECT_EQ(cost([&] { return disk.fsync("f"); }), 7ms);
    EXPECT_EQ(cost([&] { return disk.fsync_directory(); }), 7ms);
    EXPECT_EQ(cost([&] { return disk.rename("f", "g"); }), 5us);
    EXPECT_EQ(cost([&] { return disk.remove("g"); }), 5us);
    EXPECT_EQ(cost([&] { return disk.read("g", 0, 4); }), 11us);  // Failures cost too.
    EXPECT_EQ(cost([&] { return disk.exists("g"); }), 0us);
  });
}

TEST(Disk, LatencyIsDrawnFromTheConfiguredRange) {
  DiskOptions options;
  options.fsync_latency = {1ms, 3ms};
  DiskWorld world(7, options);
  std::set<Duration> seen;
  Duration total{0};
  world.run([&] {
    ASSERT_TRUE(world.disk.create("f").ok());
    for (int i = 0; i < 400; i++) {
      const TimePoint before = world.sim.now();
      ASSERT_TRUE(world.disk.fsync("f").ok());
      const Duration took = world.sim.now() - before;
      EXPECT_GE(took, 1ms);
      EXPECT_LE(took, 3ms);
      seen.insert(took);
      total += took;
    }
  });
  EXPECT_GT(seen.size(), 300u);  // Drawn, not constant.
  const double mean_ms = std::chrono::duration<double, std::milli>(total / 400).count();
  EXPECT_NEAR(mean_ms, 2.0, 0.15);
}

// --- Crashes ------------------------------------------------------------------------

TEST(Disk, SyncedDataAndNamesSurviveACrash) {
  for (std::uint64_t seed = 1; seed <= 20; seed++) {
    DiskWorld world(seed);
    world.run([&] {
      ASSERT_TRUE(world.disk.create("a").ok());
      ASSERT_TRUE(world.disk.create("b").ok());
      ASSERT_TRUE(world.disk.write("a", 0, pattern(1, 0, 3000)).ok());
      ASSERT_TRUE(world.disk.rename("b", "c").ok());
      ASSERT_TRUE(world.disk.fsync("a").ok());  // Commits the rename too: any fsync commits the journal.
    });
    world.crash_and_restart();
    EXPECT_EQ(files_of(world.disk), (std::map<std::string, std::string>{{"a", pattern(1, 0, 3000)}, {"c", ""}}));
  }
}

TEST(Disk, UnsyncedWritesAreKeptLostOrTornAtSectorGranularity) {
  constexpr std::uint64_t kSectors = 8;
  int kept = 0;
  int lost = 0;
  int torn = 0;
  for (std::uint64_t seed = 1; seed <= 200; seed++) {
    DiskWorld world(seed);
    const std::string data = pattern(9, 0, kSectors * kDiskSectorBytes);
    world.run([&] {
      ASSERT_TRUE(world.disk.create("f").ok());
      ASSERT_TRUE(world.disk.fsync_directory().ok());
      ASSERT_TRUE(world.disk.write("f", 0, data).ok());
    });
    world.crash_and_restart();
    const std::string after = world.disk.contents("f").value();
    ASSERT_EQ(after.size() % kDiskSectorBytes, 0u);
    ASSERT_LE(after.size(), data.size());
    std::uint64_t sectors_kept = 0;
    for (std::uint64_t s = 0; s * kDiskSectorBytes < after.size(); s++) {
      const std::string sector = after.substr(s * kDiskSectorBytes, kDiskSectorBytes);
      const bool is_new = sector == data.substr(s * kDiskSectorBytes, kDiskSectorBytes);
      ASSERT_TRUE(is_new || sector == std::string(kDiskSectorBytes, '\0')) << "seed " << seed << " sector " << s;
      sectors_kept += is_new ? 1 : 0;
    }
    // The size is the end of the last sector that made it.
    if (!after.empty()) {
      ASSERT_EQ(after.substr(after.size() - kDiskSectorBytes), data.substr(after.size() - kDiskSectorBytes, kDiskSectorBytes));
    }
    if (sectors_kept == kSectors) {
      kept++;
    } else if (sectors_kept == 0) {
      lost++;
    } else {
      torn++;
    }
  }
  // Each fate about a third of the time (a torn write rarely keeps all or none).
  EXPECT_GT(kept, 40);
  EXPECT_GT(lost, 40);
  EXPECT_GT(torn, 40);
}

TEST(Disk, CrashKeepsAPrefixOfTheMetadataJournal) {
  // create a, b, c, d unsynced: every prefix, and only prefixes.
  const std::vector<std::string> order = {"a", "b", "c", "d"};
  std::set<std::size_t> prefixes_seen;
  for (std::uint64_t seed = 1; seed <= 100; seed++) {
    DiskWorld world(seed);
    world.run([&] {
      for (const std::string& path : order) ASSERT_TRUE(world.disk.create(path).ok());
    });
    world.crash_and_restart();
    const std::vector<std::string> after = world.disk.list();
    ASSERT_TRUE(std::equal(after.begin(), after.end(), order.begin())) << "seed " << seed;
    prefixes_seen.insert(after.size());
  }
  EXPECT_EQ(prefixes_seen.size(), order.size() + 1);
}

TEST(Disk, FiberKilledMidOperationLeavesNoTraceOfIt) {
  DiskOptions options = quick_options();
  options.write_latency = {1ms, 1ms};
  options.metadata_latency = {1ms, 1ms};
  options.fsync_latency = {1ms, 1ms};
  DiskWorld world(3, options);
  world.sim.spawn(world.node, "writer", [&] {
    ASSERT_TRUE(world.disk.create("f").ok());                 // t = 1ms
    ASSERT_TRUE(world.disk.fsync("f").ok());                  // t = 2ms
    ASSERT_TRUE(world.disk.write("f", 0, "synced").ok());     // t = 3ms
    ASSERT_TRUE(world.disk.fsync("f").ok());                  // t = 4ms
    (void)world.disk.write("f", 0, "never");                  // killed at 4.5ms
    ADD_FAILURE() << "the writer outlived its node";
  });
  world.sim.schedule_after(4500us, [&] { world.sim.crash(world.node); });
  (void)world.sim.run();
  EXPECT_EQ(world.disk.contents("f").value(), "synced");
  EXPECT_EQ(world.disk.stats().writes, 1u);
}

TEST(Disk, FsyncKilledMidwayMakesNothingDurable) {
  DiskOptions options = quick_options();
  options.fsync_latency = {10ms, 10ms};
  int lost = 0;
  for (std::uint64_t seed = 1; seed <= 30; seed++) {
    DiskWorld world(seed, options);
    const std::string data = pattern(4, 0, 2048);
    world.sim.spawn(world.node, "writer", [&] {
      ASSERT_TRUE(world.disk.create("f").ok());
      ASSERT_TRUE(world.disk.fsync_directory().ok());
      ASSERT_TRUE(world.disk.write("f", 0, data).ok());
      (void)world.disk.fsync("f");  // Killed halfway.
    });
    world.sim.schedule_after(15ms, [&] { world.sim.crash(world.node); });  // fsync_directory() ends at ~10ms, fsync() at ~20ms.
    (void)world.sim.run();
    EXPECT_EQ(world.disk.stats().fsyncs, 1u);  // Only fsync_directory() returned.
    if (world.disk.contents("f").value() != data) lost++;
  }
  EXPECT_GT(lost, 10);
}

TEST(Disk, SameSeedSameCrashOutcome) {
  const auto outcome = [](std::uint64_t seed) {
    DiskWorld world(seed);
    world.run([&] {
      for (std::uint64_t i = 0; i < 6; i++) {
        const std::string path = "f" + std::to_string(i % 3);
        if (i < 3) {
          ASSERT_TRUE(world.disk.create(path).ok());
        }
        ASSERT_TRUE(world.disk.write(path, i * 700, pattern(i, i * 700, 1500)).ok());
        if (i == 2) {
          ASSERT_TRUE(world.disk.fsync("f0").ok());
        }
        if (i == 4) {
          ASSERT_TRUE(world.disk.truncate("f1", 900).ok());
        }
      }
      ASSERT_TRUE(world.disk.rename("f2", "f3").ok());
      ASSERT_TRUE(world.disk.create("f4").ok());
    });
    world.crash_and_restart();
    return std::make_pair(files_of(world.disk), world.sim.now());
  };
  std::set<std::map<std::string, std::string>> distinct;
  for (std::uint64_t seed = 1; seed <= 20; seed++) {
    const auto first = outcome(seed);
    EXPECT_EQ(first, outcome(seed)) << "seed " << seed;
    distinct.insert(first.first);
  }
  EXPECT_GT(distinct.size(), 10u);  // The seed decides, and it does decide.
}

TEST(Disk, WritebackAtTheUnsyncedBoundMakesEarlierWritesDurable) {
  DiskOptions options = quick_options();
  options.unsynced_ops_per_file_max = 4;
  for (std::uint64_t seed = 1; seed <= 20; seed++) {
    DiskWorld world(seed, options);
    world.run([&] {
      ASSERT_TRUE(world.disk.create("f").ok());
      ASSERT_TRUE(world.disk.fsync_directory().ok());
      for (std::uint64_t i = 0; i < 5; i++) {
        ASSERT_TRUE(world.disk.write("f", i * kDiskSectorBytes, pattern(i, i * kDiskSectorBytes, kDiskSectorBytes)).ok());
      }
    });
    EXPECT_EQ(world.disk.stats().writebacks, 1u);
    world.crash_and_restart();
    const std::string after = world.disk.contents("f").value();
    ASSERT_GE(after.size(), 4 * kDiskSectorBytes);
    for (std::uint64_t i = 0; i < 4; i++) {
      EXPECT_EQ(after.substr(i * kDiskSectorBytes, kDiskSectorBytes), pattern(i, i * kDiskSectorBytes, kDiskSectorBytes));
    }
  }
}

TEST(Disk, WritebackAtTheUnsyncedByteBound) {
  DiskOptions options = quick_options();
  options.unsynced_bytes_per_file_max = 1000;
  DiskWorld world(1, options);
  world.run([&] {
    ASSERT_TRUE(world.disk.create("f").ok());
    ASSERT_TRUE(world.disk.append("f", std::string(600, 'a')).ok());
    EXPECT_EQ(world.disk.stats().writebacks, 0u);
    ASSERT_TRUE(world.disk.append("f", std::string(600, 'b')).ok());
    EXPECT_EQ(world.disk.stats().writebacks, 1u);
    ASSERT_TRUE(world.disk.append("f", std::string(2000, 'c')).ok());  // Alone over the bound: allowed.
    EXPECT_EQ(world.disk.stats().writebacks, 2u);
  });
  world.disk.check_invariants();
}

TEST(Disk, AFullJournalCommits) {
  DiskOptions options = quick_options();
  options.journal_ops_max = 3;
  for (std::uint64_t seed = 1; seed <= 20; seed++) {
    DiskWorld world(seed, options);
    world.run([&] {
      for (const char* path : {"a", "b", "c", "d"}) ASSERT_TRUE(world.disk.create(path).ok());
    });
    world.crash_and_restart();
    const std::vector<std::string> after = world.disk.list();
    ASSERT_GE(after.size(), 3u);
    EXPECT_EQ(std::vector<std::string>(after.begin(), after.begin() + 3), (std::vector<std::string>{"a", "b", "c"}));
  }
}

// The snapshot pattern: either the old or the whole new snapshot, at any
// crash point; the new one once fsync_directory() has returned.
RC_GTEST_PROP(DiskProperty, RenameOverAnOldFileIsAtomic, ()) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  const Duration crash_after = std::chrono::microseconds{*rc::gen::inRange(0, 3000)};
  DiskWorld world(seed);
  const std::string old_snap = pattern(1, 0, 3000);
  const std::string new_snap = pattern(2, 0, 5000);
  world.run([&] {
    RC_ASSERT(world.disk.create("snap").ok());
    RC_ASSERT(world.disk.write("snap", 0, old_snap).ok());
    RC_ASSERT(world.disk.fsync("snap").ok());
  });
  bool done = false;
  world.sim.spawn(world.node, "snapshot", [&] {
    RC_ASSERT(world.disk.create("snap.tmp").ok());
    RC_ASSERT(world.disk.write("snap.tmp", 0, new_snap.substr(0, 2000)).ok());
    RC_ASSERT(world.disk.append("snap.tmp", new_snap.substr(2000)).ok());
    RC_ASSERT(world.disk.fsync("snap.tmp").ok());
    RC_ASSERT(world.disk.rename("snap.tmp", "snap").ok());
    RC_ASSERT(world.disk.fsync_directory().ok());
    done = true;
  });
  world.sim.schedule_after(crash_after, [&] {
    if (world.sim.is_up(world.node)) world.sim.crash(world.node);
  });
  (void)world.sim.run();
  const std::string snap = world.disk.contents("snap").value();
  RC_ASSERT(snap == old_snap || snap == new_snap);
  if (done) {
    RC_ASSERT(snap == new_snap);
  }
  RC_TAG(snap == new_snap ? "new" : "old");
}

// The example in docs/disk.md, verbatim.
Result<void> save_snapshot(Disk& disk, std::string_view bytes) {
  (void)disk.remove("snap.tmp");  // A leftover from a crash mid-save.
  if (auto r = disk.create("snap.tmp"); !r) return r;
  if (auto r = disk.write("snap.tmp", 0, bytes); !r) return r;
  if (auto r = disk.fsync("snap.tmp"); !r) return r;      // 1. the data
  if (auto r = disk.rename("snap.tmp", "snap"); !r) return r;
  return disk.fsync_directory();                          // 2. the name
}

TEST(Disk, TheGuidesSafeReplaceSurvivesCrashesAtEveryPoint) {
  const std::string old_snap = pattern(1, 0, 1500);
  const std::string new_snap = pattern(2, 0, 2500);
  for (std::uint64_t seed = 1; seed <= 40; seed++) {
    for (const std::int64_t crash_after_us : {0, 30, 300, 600, 1000, 1500, 2000, 5000}) {
      const Duration crash_after = std::chrono::microseconds{crash_after_us};
      DiskWorld world(seed);
      world.run([&] { ASSERT_TRUE(save_snapshot(world.disk, old_snap).ok()); });
      bool saved = false;
      world.sim.spawn(world.node, "save", [&] { saved = save_snapshot(world.disk, new_snap).ok(); });
      world.sim.schedule_after(crash_after, [&] {
        if (world.sim.is_up(world.node)) world.sim.crash(world.node);
      });
      (void)world.sim.run();
      const std::string snap = world.disk.contents("snap").value();
      EXPECT_TRUE(snap == old_snap || snap == new_snap) << "seed " << seed;
      if (saved) {
        EXPECT_EQ(snap, new_snap) << "seed " << seed;
      }
    }
  }
}

TEST(Disk, RenameWithoutFsyncOfTheNewFileCanLeaveItTorn) {
  // The classic bug the disk must reproduce: the rename is durable, the
  // data it names is not.
  int broken = 0;
  for (std::uint64_t seed = 1; seed <= 50; seed++) {
    DiskWorld world(seed);
    const std::string old_snap = pattern(1, 0, 3000);
    const std::string new_snap = pattern(2, 0, 5000);
    world.run([&] {
      ASSERT_TRUE(world.disk.create("snap").ok());
      ASSERT_TRUE(world.disk.write("snap", 0, old_snap).ok());
      ASSERT_TRUE(world.disk.fsync("snap").ok());
      ASSERT_TRUE(world.disk.create("snap.tmp").ok());
      ASSERT_TRUE(world.disk.write("snap.tmp", 0, new_snap).ok());
      ASSERT_TRUE(world.disk.rename("snap.tmp", "snap").ok());
      ASSERT_TRUE(world.disk.fsync_directory().ok());
    });
    world.crash_and_restart();
    const std::string snap = world.disk.contents("snap").value();
    if (snap != old_snap && snap != new_snap) broken++;
  }
  EXPECT_GT(broken, 10);
}

// --- Faults: I/O errors --------------------------------------------------------------

TEST(Disk, IoErrorWindowFailsOperationsAtItsRateAndFailuresChangeNothing) {
  DiskWorld world(5);
  Disk& disk = world.disk;
  constexpr int kOps = 4000;
  int failures = 0;
  std::map<std::string, int> failures_by_kind;
  std::string expected;  // f's contents.
  world.run([&] {
    ASSERT_TRUE(disk.create("f").ok());
    disk.set_io_error_probability(0.25);
    for (int i = 0; i < kOps; i++) {
      std::optional<ErrorCode> code;
      std::string kind;
      switch (i % 5) {
        case 0:
        case 1: {
          kind = "write";
          const std::uint64_t offset = static_cast<std::uint64_t>(i % 97) * 10;
          const std::string bytes = pattern(static_cast<std::uint64_t>(i), offset, 20);
          code = code_of(disk.write("f", offset, bytes));
          if (!code) {
            if (expected.size() < offset + 20) expected.resize(offset + 20, '\0');
            expected.replace(offset, 20, bytes);
          }
          break;
        }
        case 2: {
          kind = "read";
          const Result<std::string> read = disk.read("f", 0, 100'000);
          code = code_of(read);
          if (read.ok()) {
            EXPECT_EQ(read.value(), expected);
          }
          break;
        }
        case 3: {
          kind = "create";
          const std::string path = "g" + std::to_string(i);
          code = code_of(disk.create(path));
          EXPECT_EQ(disk.exists(path), !code);
          if (!code) {
            ASSERT_NE(code_of(disk.remove(path)), ErrorCode::kNotFound);
          }
          break;
        }
        default:
          kind = "fsync";
          code = code_of(disk.fsync("f"));
          break;
      }
      if (code) {
        ASSERT_EQ(*code, ErrorCode::kIoError);
        failures++;
        failures_by_kind[kind]++;
      }
      EXPECT_EQ(disk.contents("f").value(), expected);  // A failed write changed nothing.
    }
    disk.clear_io_errors();
    for (int i = 0; i < 500; i++) {
      EXPECT_DISK_OK(disk.write("f", 0, "x"));
      EXPECT_DISK_OK(disk.fsync("f"));
    }
  });
  // A binomial(kOps, 0.25) count: within 5 standard deviations of the mean.
  EXPECT_NEAR(failures, kOps * 0.25, 5 * 27.4);
  EXPECT_EQ(failures_by_kind.size(), 4u);
  // Removes of the created files failed too, sometimes: count all injected.
  EXPECT_GE(disk.stats().io_errors_injected, static_cast<std::uint64_t>(failures));
}

TEST(Disk, FailedFsyncDoesNotMakeDataDurableAndARetryDoesNotEither) {
  int lost = 0;
  for (std::uint64_t seed = 1; seed <= 60; seed++) {
    DiskWorld world(seed);
    const std::string data = pattern(3, 0, 4096);
    world.run([&] {
      ASSERT_TRUE(world.disk.create("f").ok());
      ASSERT_TRUE(world.disk.fsync_directory().ok());
      ASSERT_TRUE(world.disk.write("f", 0, data).ok());
      world.disk.set_io_error_probability(1.0);
      EXPECT_EQ(code_of(world.disk.fsync("f")), ErrorCode::kIoError);
      world.disk.clear_io_errors();
      EXPECT_DISK_OK(world.disk.fsync("f"));  // "Succeeds": nothing left to write.
      EXPECT_EQ(world.disk.read("f", 0, 5000).value(), data);  // The cache still looks right.
    });
    world.crash_and_restart();
    const std::string after = world.disk.contents("f").value();
    if (after != data) lost++;
    // What survived is what a crash would have left: whole sectors of data.
    for (std::uint64_t s = 0; s * kDiskSectorBytes < after.size(); s++) {
      const std::string sector = after.substr(s * kDiskSectorBytes, kDiskSectorBytes);
      EXPECT_TRUE(sector == data.substr(s * kDiskSectorBytes, kDiskSectorBytes) ||
                  sector == std::string(kDiskSectorBytes, '\0'));
    }
  }
  EXPECT_GT(lost, 20);
}

// --- Faults: corruption ----------------------------------------------------------------

// Writes `count` records, fsyncing after each, on a fresh disk; then
// crashes (dropping the cache) and returns how many records fail their
// checksum when read back.
struct RecordRun {
  int invalid_before_crash = 0;
  int invalid_after_crash = 0;
  DiskStats stats;
};

RecordRun run_records(std::uint64_t seed, int count, std::optional<double> probability, CorruptionKinds kinds,
                      bool clear_before_writing = false) {
  DiskWorld world(seed);
  RecordRun run;
  const auto invalid_records = [&] {
    int invalid = 0;
    for (int i = 0; i < count; i++) {
      const std::uint64_t offset = static_cast<std::uint64_t>(i) * kRecordBytes;
      const Result<std::string> record = world.disk.read("log", offset, kRecordBytes);
      if (!record.ok() || !record_valid(record.value(), offset)) invalid++;
    }
    return invalid;
  };
  world.run([&] {
    ASSERT_TRUE(world.disk.create("log").ok());
    if (probability) world.disk.set_corruption_probability(*probability, kinds);
    if (clear_before_writing) world.disk.clear_corruption();
    for (int i = 0; i < count; i++) {
      const std::uint64_t offset = static_cast<std::uint64_t>(i) * kRecordBytes;
      ASSERT_TRUE(world.disk.write("log", offset, make_record(offset, static_cast<std::uint64_t>(i))).ok());
      ASSERT_TRUE(world.disk.fsync("log").ok());
    }
    world.disk.clear_corruption();  // Reads below see what the media holds.
    run.invalid_before_crash = invalid_records();
  });
  world.crash_and_restart();
  world.run([&] { run.invalid_after_crash = invalid_records(); });
  run.stats = world.disk.stats();
  return run;
}

TEST(Disk, BitFlipsOnReadAreCaughtByAChecksum) {
  DiskWorld world(11);
  int caught = 0;
  world.run([&] {
    ASSERT_TRUE(world.disk.create("log").ok());
    for (std::uint64_t i = 0; i < 32; i++) {
      ASSERT_TRUE(world.disk.write("log", i * kRecordBytes, make_record(i * kRecordBytes, i)).ok());
    }
    ASSERT_TRUE(world.disk.fsync("log").ok());
    world.disk.set_corruption_probability(0.1, {.bit_flips = true, .misdirected_writes = false, .lost_writes = false});
    for (int pass = 0; pass < 20; pass++) {
      for (std::uint64_t i = 0; i < 32; i++) {
        const std::string record = world.disk.read("log", i * kRecordBytes, kRecordBytes).value();
        if (!record_valid(record, i * kRecordBytes)) caught++;
      }
    }
    world.disk.clear_corruption();
    // The media is intact: read again, every record is right.
    for (std::uint64_t i = 0; i < 32; i++) {
      EXPECT_TRUE(record_valid(world.disk.read("log", i * kRecordBytes, kRecordBytes).value(), i * kRecordBytes));
    }
  });
  EXPECT_GT(caught, 20);
  EXPECT_EQ(static_cast<std::uint64_t>(caught), world.disk.stats().bit_flips);  // Every flip caught.
  EXPECT_EQ(world.disk.stats().lost_writes + world.disk.stats().misdirected_writes, 0u);
}

TEST(Disk, MisdirectedWritesAreCaughtByAChecksum) {
  const RecordRun run = run_records(12, 64, 0.2, {.bit_flips = false, .misdirected_writes = true, .lost_writes = false});
  EXPECT_GT(run.stats.misdirected_writes, 3u);
  EXPECT_EQ(run.stats.bit_flips, 0u);
  // Reads see the cache until the crash; afterwards each misdirected record
  // is missing from its slot (and may have clobbered another).
  EXPECT_EQ(run.invalid_before_crash, 0);
  EXPECT_GE(static_cast<std::uint64_t>(run.invalid_after_crash), run.stats.misdirected_writes);
}

TEST(Disk, LostWritesAreCaughtByAChecksum) {
  const RecordRun run = run_records(13, 64, 0.2, {.bit_flips = false, .misdirected_writes = false, .lost_writes = true});
  EXPECT_GT(run.stats.lost_writes, 3u);
  EXPECT_EQ(run.stats.misdirected_writes, 0u);
  EXPECT_EQ(run.invalid_before_crash, 0);
  // fsync said yes every time, yet exactly the lost records are gone.
  EXPECT_EQ(static_cast<std::uint64_t>(run.invalid_after_crash), run.stats.lost_writes);
}

TEST(Disk, NoCorruptionWhileNoWindowIsOpen) {
  for (std::uint64_t seed = 1; seed <= 5; seed++) {
    const RecordRun never = run_records(seed, 64, std::nullopt, {});
    EXPECT_EQ(never.invalid_after_crash, 0);
    EXPECT_EQ(never.stats.corruptions(), 0u);
    const RecordRun cleared = run_records(seed, 64, 1.0, {}, /*clear_before_writing=*/true);
    EXPECT_EQ(cleared.invalid_after_crash, 0);
    EXPECT_EQ(cleared.stats.corruptions(), 0u);
    // And the same workload with the window open is caught, so the two
    // above could have failed.
    const RecordRun open = run_records(seed, 64, 0.2, {});
    EXPECT_GT(open.invalid_after_crash, 0);
  }
}

// --- Boundaries ------------------------------------------------------------------------

TEST(DiskDeathTest, OperationsFromAnotherNodeAssert) {
  EXPECT_DEATH(
      {
        DiskWorld world(1);
        const NodeId other = world.sim.add_node("other");
        world.sim.spawn(other, "intruder", [&] { (void)world.disk.create("f"); });
        (void)world.sim.run();
      },
      "another node");
}

TEST(DiskDeathTest, OperationsOutsideAFiberAssert) {
  EXPECT_DEATH(
      {
        DiskWorld world(1);
        Simulator::Scope scope(world.sim);
        (void)world.disk.create("f");
      },
      "outside a fiber");
}

TEST(DiskDeathTest, CrashWhileTheNodeIsUpAsserts) {
  EXPECT_DEATH(
      {
        DiskWorld world(1);
        world.disk.crash();
      },
      "while its node is up");
}

}  // namespace
}  // namespace duro::sim
