#include "sim/disk.h"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <set>
#include <utility>

#include "sim/simulator.h"

namespace duro::sim {

namespace {

// How far a misdirected write lands from where it was aimed, in sectors
// either way: a few blocks off, as a bug in a drive's mapping layer does.
constexpr std::uint64_t kMisdirectSectorsMax = 8;

Error disk_error(ErrorCode code, const char* what, std::string_view path) {
  std::string message = what;
  message += ": ";
  message += path;
  return Error{code, std::move(message)};
}

bool valid_path(std::string_view path, std::size_t path_bytes_max) {
  return !path.empty() && path.size() <= path_bytes_max && path.find('\0') == std::string_view::npos;
}

}  // namespace

Disk::Disk(Simulator& sim, NodeId node, DiskOptions options, Random random)
    : sim_(sim),
      node_(node),
      options_(options),
      latency_random_(random.fork("latency")),
      fault_random_(random.fork("faults")),
      crash_random_(random.fork("crash")) {
  DURO_ASSERT_MSG(node < sim.node_count(), "a disk for an unknown node");
  DURO_ASSERT(options_.capacity_bytes > 0);
  DURO_ASSERT(options_.file_size_bytes_max > 0);
  DURO_ASSERT(options_.files_max > 0);
  DURO_ASSERT(options_.path_bytes_max > 0);
  DURO_ASSERT(options_.unsynced_ops_per_file_max > 0);
  DURO_ASSERT(options_.unsynced_bytes_per_file_max > 0);
  DURO_ASSERT(options_.journal_ops_max > 0);
  // Offsets plus lengths are summed unchecked once each is known to be at
  // most file_size_bytes_max.
  DURO_ASSERT(options_.file_size_bytes_max <= UINT64_MAX / 4);
  for (const DiskLatency* latency : {&options_.read_latency, &options_.write_latency,
                                     &options_.metadata_latency, &options_.fsync_latency}) {
    DURO_ASSERT(latency->min.count() >= 0);
    DURO_ASSERT(latency->min <= latency->max);
  }
}

// --- Boundaries ----------------------------------------------------------------

void Disk::assert_owner_fiber() const {
  DURO_ASSERT_MSG(Simulator::current_or_null() == &sim_, "disk used outside its simulation");
  DURO_ASSERT_MSG(sim_.in_fiber(), "disk operation outside a fiber");
  DURO_ASSERT_MSG(sim_.current_node() == node_, "disk operation from a fiber of another node");
}

void Disk::assert_may_query() const {
  DURO_ASSERT_MSG(!sim_.in_fiber() || sim_.current_node() == node_, "disk query from a fiber of another node");
}

void Disk::pause(const DiskLatency& latency) {
  Duration delay = latency.min;
  if (latency.max > latency.min) {
    const auto spread = static_cast<std::uint64_t>((latency.max - latency.min).count());
    delay += Duration{static_cast<Duration::rep>(latency_random_.uniform(spread + 1))};
  }
  // No suspension at all for a zero latency: a benchmark or a test may
  // want the disk to cost no events.
  if (delay.count() > 0) this_fiber::sleep_for(delay);
}

bool Disk::inject_io_error(const char* operation, std::string_view path) {
  // No draw while the window is closed, so that opening one does not shift
  // what the fault stream gives afterwards for a run that never opens one.
  if (!(io_error_probability_ > 0)) return false;
  if (!fault_random_.bernoulli(io_error_probability_)) return false;
  stats_.io_errors_injected++;
  if (sim_.tracing()) sim_.trace("disk.io_error", fmt::format("{} {}", operation, path));
  return true;
}

Result<Disk::Inode*> Disk::find(std::string_view path) {
  if (!valid_path(path, options_.path_bytes_max)) {
    return disk_error(ErrorCode::kInvalidArgument, "bad path", path);
  }
  const auto name = names_.find(path);
  if (name == names_.end()) return disk_error(ErrorCode::kNotFound, "no such file", path);
  const auto inode = inodes_.find(name->second);
  DURO_ASSERT(inode != inodes_.end());
  return &inode->second;
}

const Disk::Inode* Disk::find(std::string_view path) const {
  const auto name = names_.find(path);
  if (name == names_.end()) return nullptr;
  const auto inode = inodes_.find(name->second);
  DURO_ASSERT(inode != inodes_.end());
  return &inode->second;
}

// --- Namespace -------------------------------------------------------------------

Result<void> Disk::create(std::string_view path) {
  assert_owner_fiber();
  pause(options_.metadata_latency);
  // From here on nothing suspends: the operation happens at one instant.
  if (!valid_path(path, options_.path_bytes_max)) return disk_error(ErrorCode::kInvalidArgument, "bad path", path);
  if (names_.contains(path)) return disk_error(ErrorCode::kAlreadyExists, "file exists", path);
  // Removed files hold their inodes until the remove is durable.
  if (inodes_.size() >= options_.files_max) commit_journal();
  if (inodes_.size() >= options_.files_max) return disk_error(ErrorCode::kNoSpace, "no free inodes for", path);
  if (inject_io_error("create", path)) return disk_error(ErrorCode::kIoError, "injected I/O error creating", path);
  const InodeId id = inode_next_++;
  // Journal first: if the journal is full, its commit must not see (and
  // collect) an inode nothing references yet.
  append_journal(JournalOp{JournalOp::Kind::kCreate, std::string(path), {}, id});
  inodes_.emplace(id, Inode{});
  names_.emplace(std::string(path), id);
  DURO_ASSERT(inodes_.size() <= options_.files_max);
  stats_.metadata_ops++;
  return {};
}

Result<void> Disk::rename(std::string_view from, std::string_view to) {
  assert_owner_fiber();
  pause(options_.metadata_latency);
  if (!valid_path(from, options_.path_bytes_max)) return disk_error(ErrorCode::kInvalidArgument, "bad path", from);
  if (!valid_path(to, options_.path_bytes_max)) return disk_error(ErrorCode::kInvalidArgument, "bad path", to);
  const auto source = names_.find(from);
  if (source == names_.end()) return disk_error(ErrorCode::kNotFound, "no such file", from);
  if (from == to) return {};  // POSIX: nothing to do, and nothing journaled.
  if (inject_io_error("rename", from)) return disk_error(ErrorCode::kIoError, "injected I/O error renaming", from);
  const InodeId id = source->second;
  // A commit inside append_journal() touches only the durable names, so
  // `source` stays valid.
  append_journal(JournalOp{JournalOp::Kind::kRename, std::string(from), std::string(to), 0});
  names_.erase(source);
  // A replaced file's inode stays (durable names or the journal still hold
  // it) until the rename is durable.
  names_.insert_or_assign(std::string(to), id);
  stats_.metadata_ops++;
  return {};
}

Result<void> Disk::remove(std::string_view path) {
  assert_owner_fiber();
  pause(options_.metadata_latency);
  if (!valid_path(path, options_.path_bytes_max)) return disk_error(ErrorCode::kInvalidArgument, "bad path", path);
  const auto name = names_.find(path);
  if (name == names_.end()) return disk_error(ErrorCode::kNotFound, "no such file", path);
  if (inject_io_error("remove", path)) return disk_error(ErrorCode::kIoError, "injected I/O error removing", path);
  append_journal(JournalOp{JournalOp::Kind::kRemove, std::string(path), {}, 0});
  names_.erase(name);
  stats_.metadata_ops++;
  return {};
}

Result<void> Disk::fsync_directory() {
  assert_owner_fiber();
  pause(options_.fsync_latency);
  if (inject_io_error("fsync_directory", "")) {
    return Error{ErrorCode::kIoError, "injected I/O error in fsync_directory"};
  }
  commit_journal();
  stats_.fsyncs++;
  return {};
}

void Disk::append_journal(JournalOp op) {
  // A full journal commits, as a full jbd2 transaction does; the new
  // operation starts the next one.
  if (journal_.size() >= options_.journal_ops_max) commit_journal();
  journal_.push_back(std::move(op));
  DURO_ASSERT(journal_.size() <= options_.journal_ops_max);
}

void Disk::commit_journal() {
  if (journal_.empty()) return;
  for (const JournalOp& op : journal_) apply_journal_op(durable_names_, op);
  journal_.clear();
  stats_.journal_commits++;
  // The whole journal applied to the durable names gives the live ones.
  DURO_ASSERT(durable_names_.size() == names_.size());
  collect_garbage();
}

void Disk::apply_journal_op(Namespace& names, const JournalOp& op) {
  // Each operation was valid on the live namespace when it was made, and
  // the live namespace then was exactly this one: the assertions hold
  // unless the journal is out of order.
  switch (op.kind) {
    case JournalOp::Kind::kCreate: {
      const bool inserted = names.emplace(op.path, op.inode).second;
      DURO_ASSERT(inserted);
      return;
    }
    case JournalOp::Kind::kRename: {
      const auto source = names.find(op.path);
      DURO_ASSERT(source != names.end());
      const InodeId id = source->second;
      names.erase(source);
      names.insert_or_assign(op.to, id);
      return;
    }
    case JournalOp::Kind::kRemove: {
      const std::size_t erased = names.erase(op.path);
      DURO_ASSERT(erased == 1);
      return;
    }
  }
  DURO_ASSERT_MSG(false, "unknown journal operation");
}

void Disk::collect_garbage() {
  // An inode lives while a crash could still leave a name for it: a
  // durable name, or a create in the journal. Every live name is one of
  // those, since live = durable + journal.
  std::set<InodeId> referenced;
  for (const auto& [path, id] : durable_names_) referenced.insert(id);
  for (const JournalOp& op : journal_) {
    if (op.kind == JournalOp::Kind::kCreate) referenced.insert(op.inode);
  }
  for (auto it = inodes_.begin(); it != inodes_.end();) {
    if (referenced.contains(it->first)) {
      ++it;
      continue;
    }
    DURO_ASSERT(used_bytes_ >= it->second.footprint_bytes);
    used_bytes_ -= it->second.footprint_bytes;
    it = inodes_.erase(it);
  }
  DURO_ASSERT(inodes_.size() == referenced.size());
}

// --- Data ------------------------------------------------------------------------

Result<std::string> Disk::read(std::string_view path, std::uint64_t offset, std::uint64_t length) {
  assert_owner_fiber();
  pause(options_.read_latency);
  Result<Inode*> found = find(path);
  if (!found.ok()) return found.error();
  if (inject_io_error("read", path)) return disk_error(ErrorCode::kIoError, "injected I/O error reading", path);
  std::string bytes = found.value()->cache.read(offset, length);
  if (!bytes.empty() && corruption_probability_ > 0 && corruption_kinds_.bit_flips &&
      fault_random_.bernoulli(corruption_probability_)) {
    const std::uint64_t bit = fault_random_.uniform(bytes.size() * 8);
    auto& byte = reinterpret_cast<unsigned char&>(bytes[bit / 8]);
    byte = static_cast<unsigned char>(byte ^ (1U << (bit % 8)));
    stats_.bit_flips++;
    if (sim_.tracing()) sim_.trace("disk.bit_flip", fmt::format("{} bit {} from {}", path, bit, offset));
  }
  stats_.reads++;
  stats_.bytes_read += bytes.size();
  return bytes;
}

Result<void> Disk::write(std::string_view path, std::uint64_t offset, std::string_view bytes) {
  assert_owner_fiber();
  pause(options_.write_latency);
  Result<Inode*> found = find(path);
  if (!found.ok()) return found.error();
  return write_at(path, *found.value(), offset, bytes);
}

Result<std::uint64_t> Disk::append(std::string_view path, std::string_view bytes) {
  assert_owner_fiber();
  pause(options_.write_latency);
  Result<Inode*> found = find(path);
  if (!found.ok()) return found.error();
  Inode& inode = *found.value();
  const std::uint64_t offset = inode.cache.size();
  Result<void> written = write_at(path, inode, offset, bytes);
  if (!written.ok()) return written.error();
  return offset;
}

Result<void> Disk::write_at(std::string_view path, Inode& inode, std::uint64_t offset, std::string_view bytes) {
  const std::uint64_t length = bytes.size();
  if (offset > options_.file_size_bytes_max || length > options_.file_size_bytes_max - offset) {
    return disk_error(ErrorCode::kNoSpace, "file size limit reached by a write to", path);
  }
  const std::uint64_t end = offset + length;
  // Writing nothing extends nothing (POSIX), so it needs no space.
  if (length > 0 && !reserve(inode, std::max(inode.footprint_bytes, end))) {
    return disk_error(ErrorCode::kNoSpace, "disk full writing", path);
  }
  if (inject_io_error("write", path)) return disk_error(ErrorCode::kIoError, "injected I/O error writing", path);
  stats_.writes++;
  if (length == 0) return {};
  make_room_for_unsynced(inode, length);
  if (inode.appended_only && offset == inode.cache.size()) {
    // An append to a log: its bytes are kept once, in the cache.
    inode.cache.append(bytes);
    inode.unsynced.push_back(Unsynced{offset, 0, length, false});
  } else {
    separate(inode);
    inode.cache.write(offset, bytes);
    inode.unsynced.push_back(Unsynced{offset, inode.unsynced_data.size(), length, false});
    inode.unsynced_data.append(bytes);
  }
  // The writeback above may have shrunk the footprint: reserve() made room
  // for the larger one, so this fits.
  set_footprint(inode, std::max(inode.footprint_bytes, end));
  stats_.bytes_written += length;
  return {};
}

Result<void> Disk::truncate(std::string_view path, std::uint64_t size_bytes) {
  assert_owner_fiber();
  pause(options_.write_latency);
  Result<Inode*> found = find(path);
  if (!found.ok()) return found.error();
  Inode& inode = *found.value();
  if (size_bytes > options_.file_size_bytes_max) {
    return disk_error(ErrorCode::kNoSpace, "file size limit reached by a truncate of", path);
  }
  if (!reserve(inode, std::max(inode.footprint_bytes, size_bytes))) {
    return disk_error(ErrorCode::kNoSpace, "disk full truncating", path);
  }
  if (inject_io_error("truncate", path)) return disk_error(ErrorCode::kIoError, "injected I/O error truncating", path);
  make_room_for_unsynced(inode, 0);
  separate(inode);
  inode.cache.resize(size_bytes);
  inode.unsynced.push_back(Unsynced{size_bytes, inode.unsynced_data.size(), 0, true});
  set_footprint(inode, std::max(inode.footprint_bytes, size_bytes));
  stats_.truncates++;
  return {};
}

Result<void> Disk::fsync(std::string_view path) {
  assert_owner_fiber();
  pause(options_.fsync_latency);
  Result<Inode*> found = find(path);
  if (!found.ok()) return found.error();
  Inode& inode = *found.value();
  if (inject_io_error("fsync", path)) {
    // The device failed partway: some of the file's writes reached the
    // media, some did not, and the kernel forgets which. The cache keeps
    // the bytes, so reads look fine, and a retried fsync finds nothing to
    // do (see FAULTS in disk.h). The journal does not commit.
    settle_as_crash(inode, fault_random_);
    set_footprint(inode, std::max<std::uint64_t>(inode.cache.size(), durable_bytes(inode)));
    return disk_error(ErrorCode::kIoError, "injected I/O error in fsync of", path);
  }
  flush(inode);
  commit_journal();
  stats_.fsyncs++;
  return {};
}

bool Disk::reserve(Inode& inode, std::uint64_t footprint_bytes) {
  DURO_ASSERT(footprint_bytes >= inode.footprint_bytes);
  DURO_ASSERT(used_bytes_ <= options_.capacity_bytes);
  const auto fits = [&] { return footprint_bytes - inode.footprint_bytes <= options_.capacity_bytes - used_bytes_; };
  if (fits()) return true;
  // Removed files hold their space until the remove is durable. `inode`
  // is live, so the commit cannot collect it.
  commit_journal();
  return fits();
}

void Disk::set_footprint(Inode& inode, std::uint64_t footprint_bytes) {
  DURO_ASSERT(used_bytes_ >= inode.footprint_bytes);
  DURO_ASSERT(inode.cache.size() <= footprint_bytes);
  DURO_ASSERT(durable_bytes(inode) <= footprint_bytes);
  DURO_ASSERT(footprint_bytes <= options_.file_size_bytes_max);
  used_bytes_ = used_bytes_ - inode.footprint_bytes + footprint_bytes;
  inode.footprint_bytes = footprint_bytes;
  DURO_ASSERT(used_bytes_ <= options_.capacity_bytes);
}

void Disk::make_room_for_unsynced(Inode& inode, std::uint64_t bytes) {
  DURO_ASSERT(inode.unsynced.size() <= options_.unsynced_ops_per_file_max);
  const bool ops_full = inode.unsynced.size() == options_.unsynced_ops_per_file_max;
  const bool bytes_full =
      !inode.unsynced.empty() && unsynced_bytes(inode) + bytes > options_.unsynced_bytes_per_file_max;
  if (!ops_full && !bytes_full) return;
  stats_.writebacks++;
  flush(inode);
  DURO_ASSERT(inode.unsynced.empty());
}

void Disk::flush(Inode& inode) {
  const bool may_corrupt = corruption_probability_ > 0 &&
                           (corruption_kinds_.misdirected_writes || corruption_kinds_.lost_writes);
  if (may_corrupt) separate(inode);
  if (inode.appended_only) {
    // Every unsynced append reaches the media whole: it holds the cache.
    inode.durable_size = inode.cache.size();
    inode.unsynced.clear();
    set_footprint(inode, inode.cache.size());
    return;
  }
  for (const Unsynced& op : inode.unsynced) {
    if (op.truncate) {
      inode.durable.resize(op.offset, '\0');
      continue;
    }
    const std::string_view bytes(inode.unsynced_data.data() + op.data_begin, op.length);
    if (may_corrupt && fault_random_.bernoulli(corruption_probability_)) {
      const bool misdirect = corruption_kinds_.misdirected_writes &&
                             (!corruption_kinds_.lost_writes || fault_random_.chance(1, 2));
      // A write with nowhere else to land in its file is lost instead.
      if (misdirect && misdirect_write(inode.durable, op.offset, bytes)) {
        stats_.misdirected_writes++;
        if (sim_.tracing()) sim_.trace("disk.misdirected_write", fmt::format("{} bytes at {}", op.length, op.offset));
      } else {
        stats_.lost_writes++;
        if (sim_.tracing()) sim_.trace("disk.lost_write", fmt::format("{} bytes at {}", op.length, op.offset));
      }
      continue;
    }
    apply_write(inode.durable, op.offset, bytes);
  }
  inode.unsynced.clear();
  inode.unsynced_data.clear();
  set_footprint(inode, std::max<std::uint64_t>(inode.cache.size(), inode.durable.size()));
}

void Disk::separate(Inode& inode) {
  if (!inode.appended_only) return;
  DURO_ASSERT(inode.durable.empty() && inode.unsynced_data.empty());
  DURO_ASSERT(inode.durable_size <= inode.cache.size());
  inode.durable = inode.cache.read(0, inode.durable_size);
  for (Unsynced& op : inode.unsynced) {
    DURO_ASSERT(!op.truncate && op.offset + op.length <= inode.cache.size());
    op.data_begin = inode.unsynced_data.size();
    inode.cache.append_to(inode.unsynced_data, op.offset, op.length);
  }
  inode.appended_only = false;
  inode.durable_size = 0;
}

std::uint64_t Disk::durable_bytes(const Inode& inode) noexcept {
  return inode.appended_only ? inode.durable_size : inode.durable.size();
}

std::uint64_t Disk::unsynced_bytes(const Inode& inode) noexcept {
  return inode.appended_only ? inode.cache.size() - inode.durable_size : inode.unsynced_data.size();
}

bool Disk::misdirect_write(std::string& data, std::uint64_t offset, std::string_view bytes) {
  // The file takes the size the write gave it (the size is metadata, and
  // right); the bytes go a whole number of sectors away, inside that size.
  const std::uint64_t size = std::max<std::uint64_t>(data.size(), offset + bytes.size());
  std::uint64_t targets[2 * kMisdirectSectorsMax];
  std::size_t count = 0;
  for (std::uint64_t sectors = 1; sectors <= kMisdirectSectorsMax; sectors++) {
    const std::uint64_t shift = sectors * kDiskSectorBytes;
    if (shift <= offset) targets[count++] = offset - shift;
    if (offset + shift < size) targets[count++] = offset + shift;
  }
  if (count == 0) return false;
  const std::uint64_t target = targets[fault_random_.uniform(count)];
  DURO_ASSERT(target != offset && target < size);
  data.resize(size, '\0');
  const std::uint64_t landed = std::min<std::uint64_t>(bytes.size(), size - target);
  std::copy_n(bytes.begin(), landed, data.begin() + static_cast<std::ptrdiff_t>(target));
  return true;
}

void Disk::settle_as_crash(Inode& inode, Random& random) {
  separate(inode);
  for (const Unsynced& op : inode.unsynced) {
    if (op.truncate) {
      if (random.chance(1, 2)) {
        inode.durable.resize(op.offset, '\0');
        stats_.unsynced_truncates_kept++;
      } else {
        stats_.unsynced_truncates_lost++;
      }
      continue;
    }
    const std::string_view bytes(inode.unsynced_data.data() + op.data_begin, op.length);
    switch (random.uniform(3)) {
      case 0:
        apply_write(inode.durable, op.offset, bytes);
        stats_.unsynced_writes_kept++;
        break;
      case 1:
        stats_.unsynced_writes_lost++;
        break;
      default: {
        // Torn: each sector the write touches independently made it. A
        // sector is a piece of the write that lies in one aligned 512-byte
        // block of the file.
        const std::uint64_t end = op.offset + op.length;
        for (std::uint64_t begin = op.offset; begin < end;) {
          const std::uint64_t piece_end = std::min(end, (begin / kDiskSectorBytes + 1) * kDiskSectorBytes);
          if (random.chance(1, 2)) apply_write(inode.durable, begin, bytes.substr(begin - op.offset, piece_end - begin));
          begin = piece_end;
        }
        stats_.unsynced_writes_torn++;
        break;
      }
    }
  }
  inode.unsynced.clear();
  inode.unsynced_data.clear();
  DURO_ASSERT(inode.durable.size() <= inode.footprint_bytes);
}

void Disk::apply_write(std::string& data, std::uint64_t offset, std::string_view bytes) {
  if (offset == data.size()) {
    data.append(bytes);  // The common case, an append: no zero fill first.
    return;
  }
  const std::uint64_t end = offset + bytes.size();
  if (end > data.size()) data.resize(end, '\0');
  std::copy(bytes.begin(), bytes.end(), data.begin() + static_cast<std::ptrdiff_t>(offset));
}

// --- Queries ---------------------------------------------------------------------

bool Disk::exists(std::string_view path) const {
  assert_may_query();
  return names_.contains(path);
}

Result<std::uint64_t> Disk::size(std::string_view path) const {
  assert_may_query();
  const Inode* inode = find(path);
  if (inode == nullptr) return disk_error(ErrorCode::kNotFound, "no such file", path);
  return std::uint64_t{inode->cache.size()};
}

std::vector<std::string> Disk::list(std::string_view prefix) const {
  assert_may_query();
  std::vector<std::string> paths;
  for (auto it = names_.lower_bound(prefix); it != names_.end() && it->first.starts_with(prefix); ++it) {
    paths.push_back(it->first);
  }
  DURO_ASSERT(paths.size() <= options_.files_max);
  return paths;
}

Result<std::string> Disk::contents(std::string_view path) const {
  assert_may_query();
  const Inode* inode = find(path);
  if (inode == nullptr) return disk_error(ErrorCode::kNotFound, "no such file", path);
  return inode->cache.to_string();
}

// --- The world ---------------------------------------------------------------------

void Disk::crash() {
  DURO_ASSERT_MSG(!sim_.in_fiber(), "Disk::crash() from a fiber: call it from a crash listener");
  DURO_ASSERT_MSG(!sim_.is_up(node_), "Disk::crash() while its node is up");
  stats_.crashes++;
  // Namespace first: a prefix of the journal survives.
  const std::uint64_t journal_kept = crash_random_.uniform(journal_.size() + 1);
  for (std::uint64_t i = 0; i < journal_kept; i++) apply_journal_op(durable_names_, journal_[i]);
  stats_.journal_ops_lost += journal_.size() - journal_kept;
  if (sim_.tracing()) {
    sim_.trace("disk.crash", fmt::format("node {}: {} of {} journal ops kept", node_, journal_kept, journal_.size()));
  }
  journal_.clear();
  names_ = durable_names_;
  collect_garbage();
  // Then the data of every file that still has a name, in inode order.
  for (auto& [id, inode] : inodes_) {
    settle_as_crash(inode, crash_random_);
    // What is left is on the media alone: one copy again.
    inode.cache.assign(inode.durable);
    inode.durable.clear();
    inode.durable.shrink_to_fit();
    inode.appended_only = true;
    inode.durable_size = inode.cache.size();
    set_footprint(inode, inode.cache.size());
  }
}

void Disk::set_io_error_probability(double probability) {
  DURO_ASSERT(probability >= 0 && probability <= 1);
  io_error_probability_ = probability;
}

void Disk::set_corruption_probability(double probability, CorruptionKinds kinds) {
  DURO_ASSERT(probability >= 0 && probability <= 1);
  DURO_ASSERT_MSG(kinds.bit_flips || kinds.misdirected_writes || kinds.lost_writes, "no corruption kind enabled");
  corruption_probability_ = probability;
  corruption_kinds_ = kinds;
}

void Disk::check_invariants() const {
  DURO_ASSERT(inodes_.size() <= options_.files_max);
  DURO_ASSERT(journal_.size() <= options_.journal_ops_max);
  std::uint64_t used = 0;
  for (const auto& [id, inode] : inodes_) {
    DURO_ASSERT(id > 0 && id < inode_next_);
    DURO_ASSERT(inode.footprint_bytes <= options_.file_size_bytes_max);
    DURO_ASSERT(inode.cache.size() <= inode.footprint_bytes);
    DURO_ASSERT(durable_bytes(inode) <= inode.footprint_bytes);
    DURO_ASSERT(inode.unsynced.size() <= options_.unsynced_ops_per_file_max);
    if (inode.appended_only) {
      // The media holds a prefix of the cache; the unsynced appends are
      // the rest of it, in order.
      DURO_ASSERT(inode.durable.empty() && inode.unsynced_data.empty());
      std::uint64_t end = inode.durable_size;
      for (const Unsynced& op : inode.unsynced) {
        DURO_ASSERT(!op.truncate && op.length > 0 && op.offset == end);
        end += op.length;
      }
      DURO_ASSERT(end == inode.cache.size());
      used += inode.footprint_bytes;
      continue;
    }
    std::uint64_t data_bytes = 0;
    for (const Unsynced& op : inode.unsynced) {
      DURO_ASSERT(op.data_begin == data_bytes);
      if (op.truncate) {
        DURO_ASSERT(op.length == 0);
        DURO_ASSERT(op.offset <= inode.footprint_bytes);
      } else {
        DURO_ASSERT(op.length > 0);
        DURO_ASSERT(op.offset + op.length <= inode.footprint_bytes);
      }
      data_bytes += op.length;
    }
    DURO_ASSERT(data_bytes == inode.unsynced_data.size());
    used += inode.footprint_bytes;
  }
  DURO_ASSERT(used == used_bytes_);
  DURO_ASSERT(used_bytes_ <= options_.capacity_bytes);
  // live = durable + journal, and every inode is reachable from one.
  Namespace replayed = durable_names_;
  std::set<InodeId> referenced;
  for (const auto& [path, id] : durable_names_) referenced.insert(id);
  for (const JournalOp& op : journal_) {
    apply_journal_op(replayed, op);
    if (op.kind == JournalOp::Kind::kCreate) referenced.insert(op.inode);
  }
  DURO_ASSERT(replayed == names_);
  DURO_ASSERT(referenced.size() == inodes_.size());
  for (const InodeId id : referenced) DURO_ASSERT(inodes_.contains(id));
  for (const auto& [path, id] : names_) DURO_ASSERT(valid_path(path, options_.path_bytes_max));
}

}  // namespace duro::sim
