// The simulated disk: files of real bytes on one node, with the crash,
// latency and fault behaviour of a real disk under a journaling filesystem.
//
// Each node has one Disk. The world owns it, not the node's process, so it
// outlives crashes: the world calls crash() from a crash listener, after the
// node's fibers are unwound, and what a restarted process finds is what the
// crash left. Files are named by path in one flat namespace (a single
// directory); there are no handles: every call names its file.
//
//   sim::Disk disk(sim, node, {}, sim.random().fork("disk/store-0"));
//   sim.add_crash_listener([&](sim::NodeId n) { if (n == node) disk.crash(); });
//   // in a fiber of `node`:
//   disk.create("log").value();
//   disk.append("log", record).value();
//   disk.fsync("log").value();   // now the record and the create are durable
//
// Every operation is called from a fiber of the owning node (asserted), and
// costs simulated latency drawn from the disk's own random stream: the
// calling fiber sleeps, then the whole effect of the operation happens at
// one instant, just before it returns. A fiber killed during the latency
// (its node crashed) leaves no trace of the operation it was in: it never
// reached the disk. Queries (exists, size, list, contents) are answered
// from memory, at once, without faults.
//
// THE CRASH MODEL. Data and namespace are made durable separately, the way
// ext4 (data=ordered) and most journaling filesystems do it.
//
// Data. Writes, appends and truncates change a file's contents at once (a
// read sees them) but sit in a volatile cache, as the file's unsynced
// operations, until fsync(path) of that file returns success. On crash()
// each unsynced operation of each file is decided independently, from the
// seed, and the survivors are applied to the file's durable contents in
// their original order (so overlapping writes land in the order they were
// made):
//   - a write (or append) is kept whole, lost whole, or torn: torn keeps a
//     random subset of its 512-byte sectors (sectors are aligned to file
//     offsets: sector k holds bytes [512k, 512k + 512)). A surviving piece
//     that starts past the end of the file extends it, and the gap reads as
//     zeros; so does any part of a torn append whose sectors were lost but
//     that lies below a kept one. Nothing survives of a lost write, not even
//     the size it added.
//   - a truncate is kept or lost.
// Data a successful fsync made durable is never lost by a crash (only
// overwritten by later unsynced writes that the crash keeps), unless an
// injected lost or misdirected write (FAULTS) kept it off the media.
//
// Namespace. create, rename and remove take effect at once (exists() and
// list() see them) and are appended to an ordered metadata journal. The
// journal commits, making every operation in it durable, when any fsync or
// fsync_directory() on this disk returns success. On crash() a prefix of the
// uncommitted journal survives, drawn from the seed (possibly none of it,
// possibly all of it): namespace operations become durable in the order
// they were made, never one without those before it. A file's name and its
// data are durable separately: a create that survives names a file whose
// data is whatever its own fsyncs made durable.
//
// Files are inodes: a name maps to an inode, and the data and unsynced
// operations belong to the inode, so rename moves them and rename over an
// existing name replaces it atomically. The safe replace:
//   write tmp; fsync(tmp); rename(tmp, snap); fsync_directory()
// After a crash at any point, snap holds either the old contents or the
// whole new contents, never a mix; once fsync_directory() returns, the new.
// Skipping fsync(tmp) is the classic bug this disk reproduces: the rename
// may survive while tmp's data does not, leaving snap empty or torn.
//
// Space. A file occupies the largest size a crash could still leave it
// with (its current size, its durable size, or the end of any unsynced
// write or truncate); a removed file keeps its space until the remove is
// durable (a crash could bring it back), and its inode counts against
// files_max until then. When a write, a truncate or a create does not fit,
// the disk first commits the journal, as jbd2 does, to free what committed
// removes release; then it fails with kNoSpace, changing nothing. Writes
// are all or nothing; there are no short writes. (Host memory: a file only
// ever appended to costs its size once; any other about twice, media and
// cache, plus its unsynced bytes.)
//
// Bounds. At most unsynced_ops_per_file_max unsynced operations, and
// unsynced_bytes_per_file_max unsynced bytes (unless one write alone is
// larger), per file: the operation that would pass either bound first
// writes the file's unsynced operations back to the media, at no extra
// latency (as the kernel's dirty-page writeback does), which makes them
// durable early: allowed, since a crash may keep any of them anyway. At most
// journal_ops_max uncommitted namespace operations: the one that would pass
// the bound first commits the journal.
//
// FAULTS (off unless set; the world's fault plan sets them for a window):
//   I/O errors: every operation that would otherwise succeed fails with
//     kIoError with the set probability, and has no effect. A failed fsync
//     does NOT make the file durable, and worse, the lesson of PostgreSQL's
//     "fsyncgate": the file's unsynced operations are settled at once as a
//     crash would settle them (each kept, lost or torn), while reads still
//     see the cached bytes, and a retried fsync succeeds with nothing left to
//     write. After a failed fsync the data may be gone for good: the only
//     safe reaction is to crash and recover from what is durable.
//   Corruption, which only a checksum can catch (each draw with the set
//     probability, for the kinds enabled):
//     - bit flip: a read returns its bytes with one bit flipped (the media
//       is intact: reading again may return the right bytes);
//     - misdirected write: when a write reaches the media (at fsync or
//       writeback) its bytes land a few sectors away from its offset, inside
//       the file; the intended range keeps its old bytes;
//     - lost write: a write reaches the media not at all, yet fsync returns
//       success.
//     Reads keep seeing the written bytes until a crash drops the cache, as
//     on a real machine: the damage shows after recovery.
//
// Determinism: latencies, faults and crash outcomes come from three streams
// forked from the Random the disk is built with, so turning faults on does
// not change latencies, and the same seed gives the same crash outcome.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sim/clock.h"
#include "sim/file_bytes.h"
#include "sim/node.h"
#include "sim/random.h"
#include "sim/result.h"

namespace duro::sim {

class Simulator;

// The unit a crash tears writes at.
inline constexpr std::uint64_t kDiskSectorBytes = 512;

// A latency, drawn uniformly from [min, max]. A zero latency does not
// suspend the caller at all.
struct DiskLatency {
  Duration min{0};
  Duration max{0};
};

struct DiskOptions {
  std::uint64_t capacity_bytes = std::uint64_t{1} << 30;
  std::uint64_t file_size_bytes_max = std::uint64_t{256} << 20;
  std::size_t files_max = 1024;  // Inodes, counting removed files not yet durably gone.
  std::size_t path_bytes_max = 255;
  std::size_t unsynced_ops_per_file_max = 4096;
  std::uint64_t unsynced_bytes_per_file_max = std::uint64_t{64} << 20;
  std::size_t journal_ops_max = 1024;

  // A read comes from the device; a write only reaches the page cache; a
  // namespace operation updates in-memory structures and the journal; an
  // fsync waits for the device to flush, and is the slowest by far.
  DiskLatency read_latency{std::chrono::microseconds{20}, std::chrono::microseconds{100}};
  DiskLatency write_latency{std::chrono::microseconds{5}, std::chrono::microseconds{20}};
  DiskLatency metadata_latency{std::chrono::microseconds{10}, std::chrono::microseconds{50}};
  DiskLatency fsync_latency{std::chrono::milliseconds{1}, std::chrono::milliseconds{4}};
};

// Which kinds of corruption a corruption window may inject.
struct CorruptionKinds {
  bool bit_flips = true;
  bool misdirected_writes = true;
  bool lost_writes = true;
};

// Counters for tests and benchmarks. Only operations that return success
// count as reads, writes and fsyncs.
struct DiskStats {
  std::uint64_t reads = 0;
  std::uint64_t writes = 0;        // write() and append().
  std::uint64_t truncates = 0;
  std::uint64_t fsyncs = 0;        // fsync() and fsync_directory().
  std::uint64_t metadata_ops = 0;  // create(), rename(), remove().
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t writebacks = 0;    // Files written back at their unsynced bound.
  std::uint64_t journal_commits = 0;
  std::uint64_t io_errors_injected = 0;
  std::uint64_t bit_flips = 0;
  std::uint64_t misdirected_writes = 0;
  std::uint64_t lost_writes = 0;
  std::uint64_t crashes = 0;
  // How crashes (and failed fsyncs) settled unsynced operations.
  std::uint64_t unsynced_writes_kept = 0;
  std::uint64_t unsynced_writes_lost = 0;
  std::uint64_t unsynced_writes_torn = 0;
  std::uint64_t unsynced_truncates_kept = 0;
  std::uint64_t unsynced_truncates_lost = 0;
  std::uint64_t journal_ops_lost = 0;

  std::uint64_t corruptions() const noexcept { return bit_flips + misdirected_writes + lost_writes; }
};

class Disk {
 public:
  // `random` should be forked for this disk alone (e.g. by node name).
  Disk(Simulator& sim, NodeId node, DiskOptions options, Random random);
  Disk(const Disk&) = delete;
  Disk& operator=(const Disk&) = delete;

  NodeId node() const noexcept { return node_; }
  const DiskOptions& options() const noexcept { return options_; }
  const DiskStats& stats() const noexcept { return stats_; }
  // Bytes occupied (see "Space" above); never more than capacity_bytes.
  std::uint64_t used_bytes() const noexcept { return used_bytes_; }
  // Inodes held, counting removed files whose remove is not yet durable.
  std::size_t inodes() const noexcept { return inodes_.size(); }

  // --- Namespace: from a fiber of the owning node; metadata latency -------

  // A new empty file. kAlreadyExists; kNoSpace when files_max inodes exist.
  Result<void> create(std::string_view path);
  // Moves `from` to `to`, replacing `to` if it exists. kNotFound if `from`
  // does not exist. Renaming a file to itself succeeds and does nothing.
  Result<void> rename(std::string_view from, std::string_view to);
  // kNotFound if `path` does not exist.
  Result<void> remove(std::string_view path);
  // Commits the metadata journal (fsync of the directory). Fsync latency.
  Result<void> fsync_directory();

  // --- Data: from a fiber of the owning node ------------------------------

  // Up to `length` bytes from `offset` (fewer at the end of the file; none
  // at or past it). Read latency. kNotFound.
  Result<std::string> read(std::string_view path, std::uint64_t offset, std::uint64_t length);
  // Writes `bytes` at `offset`, extending the file (a gap reads as zeros).
  // Write latency. kNotFound; kNoSpace past capacity_bytes or
  // file_size_bytes_max. Writing no bytes succeeds and changes nothing.
  Result<void> write(std::string_view path, std::uint64_t offset, std::string_view bytes);
  // Writes `bytes` at the end of the file and returns the offset they
  // landed at. As write().
  Result<std::uint64_t> append(std::string_view path, std::string_view bytes);
  // Sets the file's size: cuts it, or extends it with zeros. Write latency.
  // kNotFound; kNoSpace.
  Result<void> truncate(std::string_view path, std::uint64_t size_bytes);
  // Makes the file's data durable and commits the metadata journal. Fsync
  // latency. kNotFound; kIoError (see FAULTS: the data may now be lost).
  Result<void> fsync(std::string_view path);

  // --- Queries: at once, no faults; from a fiber of the owning node or
  // --- from outside any fiber (checkers, tests) ----------------------------

  bool exists(std::string_view path) const;
  // The current size (what a read sees). kNotFound.
  Result<std::uint64_t> size(std::string_view path) const;
  // Paths starting with `prefix`, sorted bytewise.
  std::vector<std::string> list(std::string_view prefix = {}) const;
  // The file's current bytes, as a read sees them but never corrupted.
  Result<std::string> contents(std::string_view path) const;

  // --- The world -----------------------------------------------------------

  // The node crashed: drops the volatile cache and settles every unsynced
  // operation as the crash model says. Called from the scheduler (a crash
  // listener) while the node is down.
  void crash();

  // Fault windows: each applies from now until cleared. p in [0, 1].
  void set_io_error_probability(double probability);
  void clear_io_errors() { io_error_probability_ = 0; }
  double io_error_probability() const noexcept { return io_error_probability_; }
  void set_corruption_probability(double probability, CorruptionKinds kinds = {});
  void clear_corruption() { corruption_probability_ = 0; }
  double corruption_probability() const noexcept { return corruption_probability_; }

  // Checks every internal invariant (space accounting, bounds, the live
  // namespace equals the durable one plus the journal); asserts on failure.
  // O(size of the disk): for tests.
  void check_invariants() const;

 private:
  using InodeId = std::uint64_t;

  // One unsynced operation of a file. A write's bytes are kept in the
  // inode's unsynced_data arena (one buffer reused across fsyncs, so the
  // steady state of append + fsync allocates nothing), or, for a file in
  // the appended-only state (Inode), in its cache.
  struct Unsynced {
    std::uint64_t offset = 0;       // Write: where. Truncate: the new size.
    std::uint64_t data_begin = 0;   // Write: where its bytes start in unsynced_data.
    std::uint64_t length = 0;       // Write: how many bytes.
    bool truncate = false;
  };

  // A file. Most files on a disk are logs: only appended to, and synced.
  // Such a file keeps one copy of its bytes, not three: while
  // `appended_only` (from create and from a crash, until anything but an
  // append, or a fault, touches it) the media holds exactly the cache's
  // first `durable_size` bytes, and the unsynced operations are appends
  // whose bytes are the rest of the cache. Anything else first writes the
  // file out in full (separate()), and the crash model then runs on the
  // copies exactly as it always did: the same outcomes from the same seed.
  struct Inode {
    std::string durable;  // What the media holds: what a crash starts from. Empty while appended_only.
    FileBytes cache;      // What reads see.
    std::vector<Unsynced> unsynced;  // In the order they were made.
    std::string unsynced_data;       // Empty while appended_only.
    bool appended_only = true;
    std::uint64_t durable_size = 0;  // While appended_only: how much of the cache the media holds.
    // The largest size a crash could leave this file with; its share of
    // used_bytes_.
    std::uint64_t footprint_bytes = 0;
  };

  struct JournalOp {
    enum class Kind : std::uint8_t { kCreate, kRename, kRemove };
    Kind kind;
    std::string path;  // Create, remove: the path. Rename: from.
    std::string to;    // Rename only.
    InodeId inode = 0; // Create only.
  };

  using Namespace = std::map<std::string, InodeId, std::less<>>;

  void assert_owner_fiber() const;
  void assert_may_query() const;
  void pause(const DiskLatency& latency);
  bool inject_io_error(const char* operation, std::string_view path);
  Result<Inode*> find(std::string_view path);
  const Inode* find(std::string_view path) const;
  Result<void> write_at(std::string_view path, Inode& inode, std::uint64_t offset, std::string_view bytes);
  bool reserve(Inode& inode, std::uint64_t footprint_bytes);
  void set_footprint(Inode& inode, std::uint64_t footprint_bytes);
  void make_room_for_unsynced(Inode& inode, std::uint64_t bytes);
  void flush(Inode& inode);
  // Leaves the appended-only state: the media and the unsynced writes get
  // their own copies of their bytes.
  void separate(Inode& inode);
  static std::uint64_t durable_bytes(const Inode& inode) noexcept;
  static std::uint64_t unsynced_bytes(const Inode& inode) noexcept;
  bool misdirect_write(std::string& data, std::uint64_t offset, std::string_view bytes);
  void settle_as_crash(Inode& inode, Random& random);
  void append_journal(JournalOp op);
  void commit_journal();
  void collect_garbage();
  static void apply_journal_op(Namespace& names, const JournalOp& op);
  static void apply_write(std::string& data, std::uint64_t offset, std::string_view bytes);

  Simulator& sim_;
  const NodeId node_;
  const DiskOptions options_;
  Random latency_random_;
  Random fault_random_;
  Random crash_random_;
  DiskStats stats_;

  // Ordered maps: iteration order (list(), crash settling) is by name and
  // by inode number, never by address or hash.
  std::map<InodeId, Inode> inodes_;
  Namespace names_;          // The live namespace.
  Namespace durable_names_;  // What a crash with no journal left would leave.
  std::vector<JournalOp> journal_;  // Uncommitted, in order.
  InodeId inode_next_ = 1;
  std::uint64_t used_bytes_ = 0;

  double io_error_probability_ = 0;
  double corruption_probability_ = 0;
  CorruptionKinds corruption_kinds_;
};

}  // namespace duro::sim
