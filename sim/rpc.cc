#include "sim/rpc.h"

#include <fmt/format.h>

#include <utility>

#include "sim/trace_slice.h"

namespace duro::sim {

namespace {

constexpr std::size_t kErrorCodeCount = static_cast<std::size_t>(ErrorCode::kDecode) + 1;

std::uint8_t status_of(const Error& error) { return static_cast<std::uint8_t>(static_cast<int>(error.code) + 1); }

// A frame of exactly `header` and `payload`: one allocation, one copy.
std::string make_frame(const RpcHeader& header, std::string_view payload) {
  EncodeScratch scratch;
  append_rpc_header(scratch.buffer(), header);
  std::string frame;
  frame.reserve(scratch.buffer().size() + payload.size());
  frame.append(scratch.buffer());
  frame.append(payload);
  return frame;
}

}  // namespace

// --- Frames ----------------------------------------------------------------

void append_rpc_header(std::string& frame, const RpcHeader& header) {
  DURO_ASSERT(header.kind == RpcHeader::kRequest || header.kind == RpcHeader::kResponse);
  Encoder encoder(frame);
  encoder.write(header.kind);
  encoder.write(header.id);
  encoder.write_bytes(header.method);
  encoder.write(header.budget_ns);
  encoder.write(header.status);
  encoder.write_bytes(header.message);
}

Result<std::size_t> read_rpc_header(std::string_view frame, RpcHeader& header) {
  Decoder decoder(frame);
  const bool read = decoder.read(header.kind) && decoder.read(header.id) && decoder.read_bytes(header.method) &&
                    decoder.read(header.budget_ns) && decoder.read(header.status) &&
                    decoder.read_bytes(header.message);
  if (!read) return decoder.error();
  if (header.kind != RpcHeader::kRequest && header.kind != RpcHeader::kResponse) {
    return Error{ErrorCode::kDecode, "unknown frame kind at byte 0"};
  }
  return decoder.offset_bytes();
}

// --- RpcServer -------------------------------------------------------------

RpcServer::RunningToken::RunningToken(std::size_t* running) noexcept : running_(running) { ++*running_; }

RpcServer::RunningToken::RunningToken(RunningToken&& other) noexcept : running_(std::exchange(other.running_, nullptr)) {}

RpcServer::RunningToken::~RunningToken() {
  if (running_ != nullptr) --*running_;
}

RpcServer::DirectAnswer::DirectAnswer(DirectAnswer&& other) noexcept
    : calls_(std::exchange(other.calls_, nullptr)), id_(other.id_) {}

RpcServer::DirectAnswer::~DirectAnswer() {
  if (calls_ != nullptr) send(Error{ErrorCode::kBrokenPromise, "the handler ended without an answer"});
}

void RpcServer::DirectAnswer::send(Result<std::string> result) {
  DURO_ASSERT_MSG(calls_ != nullptr, "a direct call answered twice");
  PendingCalls* calls = std::exchange(calls_, nullptr);
  PendingCalls::Call* call = calls->find(id_);
  if (call == nullptr) return;  // The caller gave up.
  DURO_ASSERT(!call->ready());
  call->result.emplace(std::move(result));
  calls->erase(id_);  // Before the wake: the caller then has nothing left to erase.
  call->wake();
}

RpcServer::Answer::Answer(RpcServer* server, Endpoint caller, std::uint64_t id,
                          std::unique_ptr<DirectAnswer> direct) noexcept
    : server_(server), caller_(caller), id_(id), direct_(std::move(direct)) {
  DURO_ASSERT(server_ != nullptr);
  server_->running_++;
}

RpcServer::Answer::Answer(Answer&& other) noexcept
    : server_(std::exchange(other.server_, nullptr)),
      caller_(other.caller_),
      id_(other.id_),
      direct_(std::move(other.direct_)) {}

RpcServer::Answer::~Answer() {
  // Unsent: the direct caller's DirectAnswer says kBrokenPromise as it goes;
  // a caller over the network hears nothing.
  if (server_ != nullptr) {
    DURO_ASSERT(server_->running_ > 0);
    server_->running_--;
  }
}

void RpcServer::Answer::reply_bytes(std::string_view payload) {
  DURO_ASSERT_MSG(server_ != nullptr, "an RPC answered twice");
  RpcServer* server = std::exchange(server_, nullptr);
  DURO_ASSERT(server->running_ > 0);
  server->running_--;
  if (direct_ != nullptr) {
    if (payload.size() > server->network_.options().payload_bytes_max) {
      direct_->send(Error{ErrorCode::kInvalidArgument, "reply too large to send"});
    } else {
      direct_->send(std::string(payload));
    }
    return;
  }
  server->send_reply(caller_, id_, make_frame(RpcHeader{.kind = RpcHeader::kResponse, .id = id_}, payload));
}

void RpcServer::Answer::fail(const Error& error) {
  DURO_ASSERT_MSG(server_ != nullptr, "an RPC answered twice");
  RpcServer* server = std::exchange(server_, nullptr);
  DURO_ASSERT(server->running_ > 0);
  server->running_--;
  if (error.code == ErrorCode::kDecode) server->stats_.undecodable++;
  if (direct_ != nullptr) {
    direct_->send(error);
    return;
  }
  server->reply_error(caller_, id_, error);
}

RpcServer::RpcServer(Network& network, NodeId node, std::uint16_t port, RpcServerOptions options)
    : network_(network), node_(node), options_(options) {
  DURO_ASSERT(options.concurrent_max > 0);
  Result<std::unique_ptr<Socket>> socket = network.bind(node, port);
  DURO_ASSERT_MSG(socket.ok(), "RpcServer: the port is taken");
  socket_ = std::move(socket.value());
}

RpcServer::~RpcServer() {
  socket_->set_rpc_server(nullptr);
  // Handlers use this server to the end; a crash unwinds them before the
  // process (and this) is destroyed. Destroying a server with handlers in
  // flight would leave them on freed memory.
  DURO_ASSERT_MSG(running_ == 0, "RpcServer destroyed while handlers run");
}

void RpcServer::start() {
  DURO_ASSERT(!started_);
  started_ = true;
  socket_->set_rpc_server(this);
  network_.sim().spawn(node_, "rpc-server", [this] { receive_loop(); }, {.daemon = true});
}

Result<std::string> RpcServer::call_direct(std::string_view method, std::string_view payload, Duration timeout) {
  Simulator& sim = network_.sim();
  DURO_ASSERT_MSG(started_, "call_direct() before start()");
  DURO_ASSERT_MSG(sim.in_fiber() && sim.current_node() == node_, "call_direct() from a fiber of the server's node");
  DURO_ASSERT(timeout.count() > 0);
  stats_.requests++;
  stats_.direct++;
  if (running_ >= options_.concurrent_max) {
    stats_.rejected_overloaded++;
    return Error{ErrorCode::kOverloaded, fmt::format("{} requests already running", running_)};
  }
  // Most servers have no deferred method: no hashing for nothing.
  const auto deferred = deferred_.empty() ? deferred_.end() : deferred_.find(method);
  const auto handler = handlers_.find(method);
  if (deferred == deferred_.end() && handler == handlers_.end()) {
    stats_.unknown_method++;
    return Error{ErrorCode::kNotFound, fmt::format("no method '{}'", method)};
  }
  if (deferred == deferred_.end() && options_.local_calls_inline) return run_inline(handler, payload);
  // The answer lands in the caller's frame, found by call id while the
  // caller waits (as RpcClient's replies are): no shared state to allocate.
  const std::uint64_t call_id = next_direct_call_++;
  PendingCalls::Call reply;
  direct_calls_.add(call_id, &reply);
  // Each entry has a running request (it leaves when answered), so the
  // concurrency bound bounds the table.
  DURO_ASSERT(direct_calls_.size() <= options_.concurrent_max);
  // A call left unanswered (timed out, or unwinding) erases its entry; its
  // handler still runs (or its answer is still held), so the server is
  // still there. An answered one touches the server no more: it may be gone
  // by the time this runs.
  struct Forget {
    PendingCalls* calls;
    const PendingCalls::Call* reply;
    std::uint64_t id;
    ~Forget() {
      if (!reply->ready()) calls->erase(id);
    }
  } forget{&direct_calls_, &reply, call_id};
  if (deferred != deferred_.end()) {
    // No fiber: the handler runs here and keeps the answer. The request's
    // bytes go into the trace hash as a spawned handler's would.
    sim.mix_digest(payload_digest(payload) ^ payload_digest(method));
    run_deferred(*deferred, payload,
                 Answer(this, Endpoint{}, call_id, std::make_unique<DirectAnswer>(&direct_calls_, call_id)));
    return wait_for_reply(reply, sim.deadline_after(timeout));
  }
  // The handler gets its own copy of the request and its own fiber: the
  // caller may time out and go while it runs, as over the network.
  sim.spawn(node_, "rpc-handler",
            [this, token = RunningToken(&running_), handler, request = std::string(payload),
             answer = DirectAnswer(&direct_calls_, call_id)]() mutable {
              const TraceSlice slice(network_.sim(), [&] { return "rpc " + handler->first; });
              // A plain string, not a scratch lease: the handler may wait,
              // and encodes its reply only when it is done.
              std::string encoded;
              Result<void> result = handler->second(request, encoded);
              if (!result.ok()) {
                if (result.error().code == ErrorCode::kDecode) stats_.undecodable++;
                answer.send(result.error());
              } else if (encoded.size() > network_.options().payload_bytes_max) {
                answer.send(Error{ErrorCode::kInvalidArgument, "reply too large to send"});
              } else {
                answer.send(std::move(encoded));
              }
            },
            {.digest = payload_digest(payload) ^ payload_digest(method)});
  return wait_for_reply(reply, sim.deadline_after(timeout));
}

Result<std::string> RpcServer::run_inline(Handlers::const_iterator handler, std::string_view payload) {
  Simulator& sim = network_.sim();
  // The request's bytes go into the trace hash as a spawned handler's would.
  sim.mix_digest(payload_digest(payload) ^ payload_digest(handler->first));
  const RunningToken token(&running_);
  const TraceSlice slice(sim, [&] { return "rpc " + handler->first; });
  // The handler is the server's: cancelling the caller (a shard stopping
  // its fibers) must not cut it short halfway, as it would not a handler
  // fiber. A crash still unwinds both.
  const Simulator::CancelDeferred no_cancel(sim);
  // `payload` is the caller's, who waits: no copy. A plain string for the
  // reply, not a scratch lease: the handler may wait.
  std::string encoded;
  const Result<void> result = handler->second(payload, encoded);
  if (!result.ok()) {
    if (result.error().code == ErrorCode::kDecode) stats_.undecodable++;
    return result.error();
  }
  if (encoded.size() > network_.options().payload_bytes_max) {
    return Error{ErrorCode::kInvalidArgument, "reply too large to send"};
  }
  return encoded;
}

void RpcServer::receive_loop() {
  for (;;) {
    Result<Packet> packet = socket_->receive();
    if (!packet.ok()) return;
    RpcHeader header;
    Result<std::size_t> payload_offset = read_rpc_header(packet.value().payload, header);
    if (!payload_offset.ok() || header.kind != RpcHeader::kRequest) {
      stats_.undecodable++;  // Without a readable id there is nobody to answer.
      continue;
    }
    stats_.requests++;
    const Endpoint caller = packet.value().from;
    if (running_ >= options_.concurrent_max) {
      stats_.rejected_overloaded++;
      reply_error(caller, header.id, Error{ErrorCode::kOverloaded, fmt::format("{} requests already running", running_)});
      continue;
    }
    if (const auto deferred = deferred_.empty() ? deferred_.end() : deferred_.find(header.method);
        deferred != deferred_.end()) {
      run_deferred(*deferred, std::string_view(packet.value().payload).substr(payload_offset.value()),
                   Answer(this, caller, header.id, nullptr));
      continue;
    }
    const auto handler = handlers_.find(header.method);
    if (handler == handlers_.end()) {
      stats_.unknown_method++;
      reply_error(caller, header.id, Error{ErrorCode::kNotFound, fmt::format("no method '{}'", header.method)});
      continue;
    }
    // The token counts the handler down however its fiber ends: normally,
    // killed while running, or killed before it ever ran (its body, and
    // the token with it, is then destroyed unrun). The frame moves into the
    // fiber whole; the handler reads the request where it lies.
    network_.sim().spawn(node_, "rpc-handler",
                         [this, token = RunningToken(&running_), caller, id = header.id, handler,
                          frame = std::move(packet.value().payload), offset = payload_offset.value()] {
                           serve(caller, id, handler, frame, offset);
                         });
  }
}

void RpcServer::run_deferred(const DeferredHandlers::value_type& method, std::string_view payload, Answer answer) {
  const TraceSlice slice(network_.sim(), [&] { return "rpc " + method.first; });
  const Simulator::SuspendForbidden no_suspend(network_.sim(), "a deferred RPC handler");
  method.second(payload, std::move(answer));
}

void RpcServer::serve(Endpoint caller, std::uint64_t id, Handlers::const_iterator handler, const std::string& frame,
                      std::size_t payload_offset) {
  DURO_ASSERT(payload_offset <= frame.size());
  const TraceSlice slice(network_.sim(), [&] { return "rpc " + handler->first; });
  // The reply's header, to which the handler appends the reply once it is
  // done (handle() encodes it in a scratch buffer then, and copies it here
  // at its size). Not a scratch lease itself: the handler may wait.
  std::string reply;
  append_rpc_header(reply, RpcHeader{.kind = RpcHeader::kResponse, .id = id});
  Result<void> result = handler->second(std::string_view(frame).substr(payload_offset), reply);
  if (!result.ok()) {
    if (result.error().code == ErrorCode::kDecode) stats_.undecodable++;
    reply_error(caller, id, result.error());
    return;
  }
  send_reply(caller, id, std::move(reply));
}

void RpcServer::reply_error(Endpoint caller, std::uint64_t id, const Error& error) {
  send_reply(caller, id,
             make_frame(RpcHeader{.kind = RpcHeader::kResponse, .id = id, .status = status_of(error),
                                  .message = error.message},
                        {}));
}

void RpcServer::send_reply(Endpoint caller, std::uint64_t id, std::string frame) {
  // A reply too large to send is the handler's bug; say so to the caller.
  const bool too_large = frame.size() > network_.options().payload_bytes_max;
  if (too_large || !socket_->send(caller, std::move(frame)).ok()) {
    const Error failure{ErrorCode::kInvalidArgument, "reply too large to send"};
    (void)socket_->send(caller, make_frame(RpcHeader{.kind = RpcHeader::kResponse, .id = id,
                                                     .status = status_of(failure), .message = failure.message},
                                           {}));
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
  state_->pending.drain([](PendingCalls::Call& call) {
    call.result.emplace(Error{ErrorCode::kBrokenPromise, "the client is gone"});
    call.wake();
  });
}

void RpcClient::receive_loop(const std::shared_ptr<State>& state) {
  for (;;) {
    if (state->socket == nullptr) return;  // The client is gone.
    Result<Packet> packet = state->socket->receive();
    if (!packet.ok()) return;
    std::string& frame = packet.value().payload;
    RpcHeader header;
    Result<std::size_t> payload_offset = read_rpc_header(frame, header);
    if (!payload_offset.ok() || header.kind != RpcHeader::kResponse) continue;
    PendingCalls::Call* call = state->pending.find(header.id);
    if (call == nullptr) continue;  // Late, duplicated, or given up on.
    DURO_ASSERT(!call->ready());    // A call leaves the table when answered.
    if (header.status == 0) {
      // The reply stays in the frame's buffer: moved, not copied.
      frame.erase(0, payload_offset.value());
      call->result.emplace(std::move(frame));
    } else if (header.status <= kErrorCodeCount) {
      call->result.emplace(Error{static_cast<ErrorCode>(header.status - 1), std::string(header.message)});
    } else {
      call->result.emplace(Error{ErrorCode::kDecode, "reply with an unknown status"});
    }
    state->pending.erase(header.id);
    call->wake();
  }
}

Result<std::string> RpcClient::call_raw(Endpoint server, std::string_view method, std::string_view payload,
                                        Duration timeout) {
  const std::shared_ptr<State> state = state_;  // Outlives the client if need be.
  Simulator& sim = state->network->sim();
  DURO_ASSERT_MSG(sim.in_fiber() && sim.current_node() == state->node, "call() from a fiber of the client's node");
  DURO_ASSERT(timeout.count() > 0);
  DURO_ASSERT(!method.empty());
  if (payload.size() + method.size() > state->network->options().payload_bytes_max) {
    return Error{ErrorCode::kInvalidArgument, fmt::format("request of {} bytes over the limit", payload.size())};
  }
  if (state->socket == nullptr) return Error{ErrorCode::kClosed, "the client is gone"};
  if (const Socket* target = state->network->bound(server); target != nullptr && target->node() == state->node &&
                                                           target->rpc_server() != nullptr) {
    return target->rpc_server()->call_direct(method, payload, timeout);
  }
  const std::uint64_t id = state->next_id++;
  std::string frame = make_frame(
      RpcHeader{.kind = RpcHeader::kRequest, .id = id, .method = method, .budget_ns = timeout.count()}, payload);
  // The reply lands here, in this fiber's frame. However the call ends
  // (reply, timeout, or the fiber unwinding) its entry goes before the
  // frame does, so a late reply is dropped and the table stays bounded by
  // the calls in flight.
  PendingCalls::Call reply;
  state->pending.add(id, &reply);
  struct Forget {
    State* state;
    std::uint64_t id;
    ~Forget() { state->pending.erase(id); }
  } forget{state.get(), id};
  if (Result<void> sent = state->socket->send(server, std::move(frame)); !sent.ok()) return sent.error();
  return wait_for_reply(reply, sim.deadline_after(timeout));
}

}  // namespace duro::sim
