#include "sim/rpc.h"

#include <fmt/format.h>

namespace duro::sim {

namespace {

constexpr std::size_t kErrorCodeCount = static_cast<std::size_t>(ErrorCode::kDecode) + 1;

std::uint8_t status_of(const Error& error) { return static_cast<std::uint8_t>(static_cast<int>(error.code) + 1); }

}  // namespace

// --- RpcServer -------------------------------------------------------------

RpcServer::RpcServer(Network& network, NodeId node, std::uint16_t port, RpcServerOptions options)
    : network_(network), node_(node), options_(options) {
  DURO_ASSERT(options.concurrent_max > 0);
  Result<std::unique_ptr<Socket>> socket = network.bind(node, port);
  DURO_ASSERT_MSG(socket.ok(), "RpcServer: the port is taken");
  socket_ = std::move(socket.value());
}

RpcServer::~RpcServer() = default;

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
    running_++;
    network_.sim().spawn(node_, "rpc-handler", [this, caller, request = std::move(frame.value())]() mutable {
      // Counted down however the handler ends, killed included.
      struct Running {
        std::size_t* running;
        ~Running() { --*running; }
      } guard{&running_};
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
  if (!socket_->send(caller, encode(response)).ok()) {
    RpcFrame failure;
    failure.kind = RpcFrame::kResponse;
    failure.id = id;
    failure.status = status_of(Error{ErrorCode::kInvalidArgument, {}});
    failure.message = "reply too large to send";
    (void)socket_->send(caller, encode(failure));
  }
}

// --- RpcClient -------------------------------------------------------------

RpcClient::RpcClient(Network& network, NodeId node, std::uint16_t port) : network_(network), node_(node) {
  Result<std::unique_ptr<Socket>> socket = network.bind(node, port);
  DURO_ASSERT_MSG(socket.ok(), "RpcClient: the port is taken");
  socket_ = std::move(socket.value());
  receiver_ = network.sim().spawn(node, "rpc-client", [this] { receive_loop(); }, {.daemon = true});
}

RpcClient::~RpcClient() {
  // The receive loop reads this object: stop it first (a crash has already
  // unwound it; between runs, cancel() unwinds it now).
  if (!receiver_.done()) receiver_.cancel();
}

void RpcClient::receive_loop() {
  for (;;) {
    Result<Packet> packet = socket_->receive();
    if (!packet.ok()) return;
    Result<RpcFrame> frame = decode<RpcFrame>(packet.value().payload);
    if (!frame.ok() || frame.value().kind != RpcFrame::kResponse) continue;
    const auto pending = pending_.find(frame.value().id);
    if (pending == pending_.end()) continue;  // Late, duplicated, or given up on.
    RpcFrame& response = frame.value();
    if (response.status == 0) {
      pending->second.set_value(std::move(response.payload));
    } else if (response.status <= kErrorCodeCount) {
      pending->second.set_error(Error{static_cast<ErrorCode>(response.status - 1), std::move(response.message)});
    } else {
      pending->second.set_error(Error{ErrorCode::kDecode, "reply with an unknown status"});
    }
    pending_.erase(pending);
  }
}

Result<std::string> RpcClient::call_raw(Endpoint server, std::string_view method, std::string payload,
                                        Duration timeout) {
  Simulator& sim = network_.sim();
  DURO_ASSERT_MSG(sim.in_fiber() && sim.current_node() == node_, "call() from a fiber of the client's node");
  DURO_ASSERT(timeout.count() > 0);
  const std::uint64_t id = next_id_++;
  RpcFrame request;
  request.kind = RpcFrame::kRequest;
  request.id = id;
  request.method = std::string(method);
  request.budget_ns = timeout.count();
  request.payload = std::move(payload);
  Future<std::string> reply = pending_[id].future();
  if (Result<void> sent = socket_->send(server, encode(request)); !sent.ok()) {
    pending_.erase(id);
    return sent.error();
  }
  Result<std::string> result = reply.get_for(timeout);
  // On a timeout the promise is still registered; forget it so a late reply
  // is dropped and the map stays bounded by calls in flight.
  pending_.erase(id);
  return result;
}

}  // namespace duro::sim
