#include "sim/network.h"

#include <fmt/format.h>

#include <algorithm>

namespace duro::sim {

std::string to_string(Endpoint endpoint) {
  return fmt::format("{}:{}", to_string(endpoint.address), endpoint.port);
}

namespace {

Duration exponential_duration(Random& random, Duration mean) {
  if (mean.count() <= 0) return Duration{0};
  return Duration{static_cast<Duration::rep>(random.exponential(static_cast<double>(mean.count())))};
}

}  // namespace

// A digest of the payload: the trace hash covers what was sent, so a change
// in message contents changes the run's hash. Every message is digested,
// so it takes eight bytes a step (FNV-1a takes one): each word is
// multiplied in and the sum is mixed by a step of splitmix64. Words
// are assembled little-endian byte by byte, so the digest does not depend
// on the host's byte order. Not cryptographic: it only has to tell
// different runs apart.
std::uint64_t payload_digest(std::string_view payload) noexcept {
  constexpr std::uint64_t kMultiplier = 0x9E3779B97F4A7C15ULL;
  const auto* data = reinterpret_cast<const unsigned char*>(payload.data());
  std::size_t size = payload.size();
  std::uint64_t digest = 0xCBF29CE484222325ULL ^ (size * kMultiplier);
  while (size >= 8) {
    std::uint64_t word = 0;
    for (std::size_t i = 0; i < 8; i++) word |= static_cast<std::uint64_t>(data[i]) << (8 * i);
    digest = (digest ^ word) * kMultiplier;
    digest ^= digest >> 29;
    data += 8;
    size -= 8;
  }
  std::uint64_t tail = 0;
  for (std::size_t i = 0; i < size; i++) tail |= static_cast<std::uint64_t>(data[i]) << (8 * i);
  std::uint64_t state = digest ^ tail;
  return splitmix64(state);
}

// --- Socket --------------------------------------------------------------

Socket::~Socket() {
  if (network_ != nullptr) network_->unbind(*this);
}

Result<void> Socket::send(Endpoint to, std::string payload) {
  DURO_ASSERT_MSG(network_ != nullptr, "send() on a socket whose network is gone");
  if (payload.size() > network_->options_.payload_bytes_max) {
    return Error{ErrorCode::kInvalidArgument, fmt::format("payload of {} bytes over the limit", payload.size())};
  }
  network_->send_from(*this, to, std::move(payload));
  return {};
}

// --- Network -------------------------------------------------------------

Network::Network(Simulator& sim, NetworkOptions options, Random random)
    : sim_(sim), options_(options), random_(random) {
  DURO_ASSERT(options.in_flight_max > 0 && options.socket_queue_max > 0);
  DURO_ASSERT(options.latency_base.count() >= 0);
}

Network::~Network() {
  // Sockets may outlive the network (their processes die with the
  // simulator); they must not call back into it.
  for (auto& [endpoint, socket] : sockets_) socket->network_ = nullptr;
}

Result<std::unique_ptr<Socket>> Network::bind(NodeId node, std::uint16_t port) {
  DURO_ASSERT_MSG(sim_.is_up(node), "bind() on a node that is down");
  const Endpoint endpoint{sim_.node_address(node), port};
  if (sockets_.contains(endpoint)) {
    return Error{ErrorCode::kAlreadyExists, fmt::format("{} is already bound", to_string(endpoint))};
  }
  std::unique_ptr<Socket> socket(new Socket(this, node, endpoint, options_.socket_queue_max));
  sockets_.emplace(endpoint, socket.get());
  return socket;
}

void Network::unbind(const Socket& socket) noexcept {
  const auto found = sockets_.find(socket.endpoint_);
  DURO_ASSERT(found != sockets_.end() && found->second == &socket);
  sockets_.erase(found);
}

void Network::ensure_nodes(std::size_t count) {
  if (count <= nodes_known_) return;
  // Re-lay the cut matrix for the larger node count, keeping every cut.
  std::vector<std::uint8_t> grown(count * count, 0);
  for (std::size_t from = 0; from < nodes_known_; from++) {
    for (std::size_t to = 0; to < nodes_known_; to++) grown[from * count + to] = cut_[from * nodes_known_ + to];
  }
  cut_ = std::move(grown);
  clogged_until_.resize(count, TimePoint::min());
  nodes_known_ = count;
}

void Network::partition(std::span<const NodeId> a, std::span<const NodeId> b, bool one_way) {
  ensure_nodes(sim_.node_count());
  auto cut = [&](NodeId from, NodeId to) {
    DURO_ASSERT(from < nodes_known_ && to < nodes_known_);
    if (from == to) return;
    std::uint8_t& link = cut_[from * nodes_known_ + to];
    if (link == 0) cut_links_++;
    link = 1;
  };
  for (const NodeId from : a) {
    for (const NodeId to : b) {
      cut(from, to);
      if (!one_way) cut(to, from);
    }
  }
  sim_.trace("partition", fmt::format("{} directed links cut", cut_links_));
}

void Network::isolate(NodeId node) {
  std::vector<NodeId> others;
  for (NodeId other = 0; other < sim_.node_count(); other++) {
    if (other != node) others.push_back(other);
  }
  const NodeId self[] = {node};
  partition(self, others);
}

void Network::heal() {
  std::fill(cut_.begin(), cut_.end(), 0);
  cut_links_ = 0;
  sim_.trace("heal", "");
}

bool Network::is_cut(NodeId from, NodeId to) const noexcept {
  if (cut_links_ == 0 || from >= nodes_known_ || to >= nodes_known_) return false;
  return cut_[from * nodes_known_ + to] != 0;
}

void Network::clog(NodeId node, TimePoint until) {
  ensure_nodes(sim_.node_count());
  DURO_ASSERT(node < nodes_known_);
  clogged_until_[node] = std::max(clogged_until_[node], until);
}

void Network::unclog_all() {
  std::fill(clogged_until_.begin(), clogged_until_.end(), TimePoint::min());
  // Release what the clogs held, now rather than at their old end.
  for (std::uint32_t index = 0; index < in_flight_.size(); index++) {
    if (in_flight_[index].live && in_flight_[index].held) launch(index, sim_.now());
  }
}

TimePoint Network::clogged_until(NodeId node) const noexcept {
  return node < clogged_until_.size() ? clogged_until_[node] : TimePoint::min();
}

Duration Network::draw_latency() {
  Duration latency = options_.latency_base + exponential_duration(random_, options_.latency_jitter_mean);
  if (random_.bernoulli(options_.spike_probability)) latency += exponential_duration(random_, options_.spike_mean);
  if (random_.bernoulli(options_.reorder_probability)) {
    latency += exponential_duration(random_, options_.reorder_delay_mean);
  }
  return latency;
}

std::uint32_t Network::allocate_in_flight() {
  if (in_flight_count_ >= options_.in_flight_max) {
    stats_.dropped_in_flight_max++;
    return kNoSlot;
  }
  std::uint32_t index;
  if (!free_in_flight_.empty()) {
    index = free_in_flight_.back();
    free_in_flight_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(in_flight_.size());
    in_flight_.emplace_back();
  }
  in_flight_count_++;
  DURO_ASSERT(!in_flight_[index].live);
  in_flight_[index].live = true;
  in_flight_[index].held = false;
  return index;
}

void Network::release_in_flight(std::uint32_t index) {
  InFlight& message = in_flight_[index];
  DURO_ASSERT(message.live && in_flight_count_ > 0);
  message.live = false;
  message.packet.payload.clear();
  in_flight_count_--;
  free_in_flight_.push_back(index);
}

void Network::send_from(Socket& socket, Endpoint to, std::string&& payload) {
  const NodeId from_node = socket.node_;
  DURO_ASSERT_MSG(!sim_.in_fiber() || sim_.current_node() == from_node, "a socket is used only by its own node");
  DURO_ASSERT(sim_.is_up(from_node));
  stats_.sent++;
  const NodeId to_node = sim_.node_at(to.address);
  if (to_node == kNoNode) {
    stats_.dropped_no_listener++;
    return;
  }
  if (is_cut(from_node, to_node)) {
    stats_.dropped_partition++;
    return;
  }
  if (random_.bernoulli(options_.loss_probability)) {
    stats_.dropped_loss++;
    return;
  }
  const bool duplicate = random_.bernoulli(options_.duplicate_probability);
  const std::uint32_t index = allocate_in_flight();
  if (index == kNoSlot) return;
  InFlight& message = in_flight_[index];
  message.packet.from = socket.endpoint_;
  message.packet.to = to;
  message.packet.payload = std::move(payload);
  message.from_node = from_node;
  message.to_node = to_node;
  message.from_incarnation = sim_.incarnation(from_node);
  message.to_incarnation = to_node == kNoNode ? 0 : sim_.incarnation(to_node);
  // A clog is applied on arrival (deliver() holds the message), so that
  // clearing it releases everything it held at once.
  const TimePoint departs = sim_.now();
  if (duplicate) {
    stats_.duplicated++;
    const std::uint32_t copy_index = allocate_in_flight();
    if (copy_index == kNoSlot) {
      launch(index, departs + draw_latency());
      return;
    }
    InFlight& copy = in_flight_[copy_index];
    const InFlight& original = in_flight_[index];  // Re-read: the vector may have grown.
    copy.packet = original.packet;
    copy.from_node = original.from_node;
    copy.to_node = original.to_node;
    copy.from_incarnation = original.from_incarnation;
    copy.to_incarnation = original.to_incarnation;
    launch(copy_index, departs + draw_latency());
  }
  launch(index, departs + draw_latency());
}

void Network::launch(std::uint32_t index, TimePoint at) {
  InFlight& message = in_flight_[index];
  const std::uint32_t generation = ++message.generation;
  // Unowned: delivery decides about crashes itself (both ends matter).
  sim_.schedule_at(at, [this, index, generation] { deliver(index, generation); }, kNoNode,
                   payload_digest(message.packet.payload) ^ message.packet.to.port);
}

void Network::deliver(std::uint32_t index, std::uint32_t generation) {
  InFlight& message = in_flight_[index];
  if (!message.live || message.generation != generation) return;  // Rescheduled.
  message.held = false;
  const NodeId to_node = message.to_node;
  const auto crashed_since = [this](NodeId node, std::uint32_t incarnation) {
    return node == kNoNode || !sim_.is_up(node) || sim_.incarnation(node) != incarnation;
  };
  if (crashed_since(message.from_node, message.from_incarnation) || crashed_since(to_node, message.to_incarnation)) {
    stats_.dropped_crash++;
    release_in_flight(index);
    return;
  }
  if (is_cut(message.from_node, to_node)) {
    stats_.dropped_partition++;
    release_in_flight(index);
    return;
  }
  // A clog that began while the message was in flight holds it too.
  const TimePoint held_until = std::max(clogged_until(message.from_node), clogged_until(to_node));
  if (held_until > sim_.now()) {
    message.held = true;
    launch(index, held_until);
    return;
  }
  const auto socket = sockets_.find(message.packet.to);
  if (socket == sockets_.end()) {
    stats_.dropped_no_listener++;
    release_in_flight(index);
    return;
  }
  if (socket->second->inbox_.try_send(std::move(message.packet))) {
    stats_.delivered++;
  } else {
    stats_.dropped_queue_full++;
  }
  release_in_flight(index);
}

}  // namespace duro::sim
