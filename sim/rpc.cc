#include "sim/rpc.h"

#include <fmt/format.h>

#include <utility>

#include "sim/trace_slice.h"

namespace duro::sim {

namespace {

constexpr std::size_t kErrorCodeCount = static_cast<std::size_t>(ErrorCode::kDecode) + 1;

std::uint8_t status_of(const Error& error) { return static_cast<std::uint8_t>(static_cast<int>(error.code) + 1); }

}  // namespace

// --- RpcServer -------------------------------------------------------------

RpcServer::RunningToken::RunningToken(std::size_t* running) noexcept : running_(running) { ++*running_; }

RpcServer::RunningToken::RunningToken(RunningToken&& other) noexcept : running_(std::exchange(other.running_, nullptr)) {}

RpcServer::RunningToken::~RunningToken() {
  if (running_ != nullptr) --*running_;
}

RpcServer::RpcServer(Network& network, NodeId node, std::uint16_t port, RpcServerOptions options)
    : network_(network), node_(node), options_(options) {
  DURO_ASSERT(options.concurrent_max > 0);
  Result<std::unique_ptr<Socket>> socket = network.bind(node, port);
  DURO_ASSERT_MSG(socket.ok(), "RpcServer: the port is taken");
  socket_ = std::move(socket.value());
}

RpcServer::~RpcServer() {
  // Handlers use this server to the end; a crash unwinds them before the
  // process (and this) is destroyed. Destroying a server with handlers in
  // flight would leave them on freed memory.
  DURO_ASSERT_MSG(running_ == 0, "RpcServer destroyed while handlers run");
}

void RpcServer::start() {
  DURO_ASSERT(!started_);
  started_ = true;
  network_.sim().spawn(node_, "rpc-server", [this] { receive_loop(); }, {.daemon = true});
}

void RpcServer::receive_loop() {
  for (;;) {
    Result<Packet> packet = socket_->receive();
    if (!packet.ok()) return;
    Result<RpcFrame> frame = decode<RpcFrame>(packet.value().payload);
    if (!frame.ok() || frame.value().kind != RpcFrame::kRequest) {
      stats_.undecodable++;  // Without a readable id there is nobody to answer.
      continue;
    }
    stats_.requests++;
    const Endpoint caller = packet.value().from;
    if (running_ >= options_.concurrent_max) {
      stats_.rejected_overloaded++;
      reply(caller, frame.value().id,
            Error{ErrorCode::kOverloaded, fmt::format("{} requests already running", running_)});
      continue;
    }
    // The token counts the handler down however its fiber ends: normally,
    // killed while running, or killed before it ever ran (its body, and
    // the token with it, is then destroyed unrun).
    network_.sim().spawn(node_, "rpc-handler",
                         [this, token = RunningToken(&running_), caller, request = std::move(frame.value())]() mutable {
                           serve(caller, std::move(request));
                         });
  }
}

void RpcServer::serve(Endpoint caller, RpcFrame request) {
  const auto handler = handlers_.find(request.method);
  if (handler == handlers_.end()) {
    stats_.unknown_method++;
    reply(caller, request.id, Error{ErrorCode::kNotFound, fmt::format("no method '{}'", request.method)});
    return;
  }
  const TraceSlice slice(network_.sim(), [&] { return "rpc " + request.method; });
  Result<std::string> result = handler->second(request.payload);
  if (!result.ok() && result.error().code == ErrorCode::kDecode) stats_.undecodable++;
  reply(caller, request.id, std::move(result));
}

void RpcServer::reply(Endpoint caller, std::uint64_t id, Result<std::string> result) {
  RpcFrame response;
  response.kind = RpcFrame::kResponse;
  response.id = id;
  if (result.ok()) {
    response.payload = std::move(result.value());
  } else {
    response.status = status_of(result.error());
    response.message = result.error().message;
  }
  // A reply too large to send is the handler's bug; say so to the caller.
  const bool too_large = response.payload.size() + response.message.size() > network_.options().payload_bytes_max;
  if (too_large || !socket_->send(caller, encode(response)).ok()) {
    RpcFrame failure;
    failure.kind = RpcFrame::kResponse;
    failure.id = id;
    failure.status = status_of(Error{ErrorCode::kInvalidArgument, {}});
    failure.message = "reply too large to send";
    (void)socket_->send(caller, encode(failure));
  }
}

// --- RpcClient -------------------------------------------------------------

namespace {

std::unique_ptr<Socket> bind_or_die(Network& network, NodeId node, std::uint16_t port) {
  Result<std::unique_ptr<Socket>> socket = network.bind(node, port);
  DURO_ASSERT_MSG(socket.ok(), "RpcClient: the port is taken");
  return std::move(socket.value());
}

}  // namespace

RpcClient::RpcClient(Network& network, NodeId node, std::uint16_t port)
    : RpcClient(network, node, bind_or_die(network, node, port)) {}

RpcClient::RpcClient(Network& network, NodeId node, std::unique_ptr<Socket> socket)
    : state_(std::make_shared<State>()) {
  DURO_ASSERT(socket != nullptr);
  state_->network = &network;
  state_->node = node;
  state_->socket = std::move(socket);
  state_->next_id = network.next_id_block();
  receiver_ = network.sim().spawn(node, "rpc-client", [state = state_] { receive_loop(state); }, {.daemon = true});
}

RpcClient::~RpcClient() {
  // Stop the receive loop (a crash has unwound it already), free the port
  // now (a new client may bind it at once), and wake calls still waiting
  // with kBrokenPromise. They and the loop keep the state alive as they
  // unwind.
  if (!receiver_.done()) receiver_.cancel();
  state_->socket.reset();
  state_->pending.clear();
}

void RpcClient::receive_loop(const std::shared_ptr<State>& state) {
  for (;;) {
    if (state->socket == nullptr) return;  // The client is gone.
    Result<Packet> packet = state->socket->receive();
    if (!packet.ok()) return;
    Result<RpcFrame> frame = decode<RpcFrame>(packet.value().payload);
    if (!frame.ok() || frame.value().kind != RpcFrame::kResponse) continue;
    const auto pending = state->pending.find(frame.value().id);
    if (pending == state->pending.end()) continue;  // Late, duplicated, or given up on.
    RpcFrame& response = frame.value();
    if (response.status == 0) {
      pending->second.set_value(std::move(response.payload));
    } else if (response.status <= kErrorCodeCount) {
      pending->second.set_error(Error{static_cast<ErrorCode>(response.status - 1), std::move(response.message)});
    } else {
      pending->second.set_error(Error{ErrorCode::kDecode, "reply with an unknown status"});
    }
    state->pending.erase(pending);
  }
}

Result<std::string> RpcClient::call_raw(Endpoint server, std::string_view method, std::string payload,
                                        Duration timeout) {
  const std::shared_ptr<State> state = state_;  // Outlives the client if need be.
  Simulator& sim = state->network->sim();
  DURO_ASSERT_MSG(sim.in_fiber() && sim.current_node() == state->node, "call() from a fiber of the client's node");
  DURO_ASSERT(timeout.count() > 0);
  if (payload.size() + method.size() > state->network->options().payload_bytes_max) {
    return Error{ErrorCode::kInvalidArgument, fmt::format("request of {} bytes over the limit", payload.size())};
  }
  const std::uint64_t id = state->next_id++;
  RpcFrame request;
  request.kind = RpcFrame::kRequest;
  request.id = id;
  request.method = std::string(method);
  request.budget_ns = timeout.count();
  request.payload = std::move(payload);
  Future<std::string> reply = state->pending[id].future();
  // However this call ends (reply, timeout, or the fiber unwinding) the
  // entry goes, so a late reply is dropped and the map stays bounded by
  // the calls in flight.
  struct Forget {
    State* state;
    std::uint64_t id;
    ~Forget() { state->pending.erase(id); }
  } forget{state.get(), id};
  if (state->socket == nullptr) return Error{ErrorCode::kClosed, "the client is gone"};
  if (Result<void> sent = state->socket->send(server, encode(request)); !sent.ok()) return sent.error();
  return reply.get_for(timeout);
}

}  // namespace duro::sim
