// Typed RPC over the simulated network.
//
//   struct Put { std::string key; std::string value; };   DURO_CODEC_FIELDS(Put, key, value);
//   struct PutReply { std::uint64_t version; };            DURO_CODEC_FIELDS(PutReply, version);
//
//   // On the server's node (in its boot function):
//   auto server = std::make_unique<sim::RpcServer>(network, node, 7000);
//   server->handle<Put, PutReply>("put", [&](const Put& put) -> sim::Result<PutReply> { ... });
//   server->start();
//
//   // In a client fiber:
//   sim::RpcClient client(network, node, 7001);
//   sim::Result<PutReply> reply = client.call<PutReply>(server_endpoint, "put", Put{"k", "v"}, 2s);
//
// Requests and replies cross the network as real bytes (sim/codec.h), so
// they can be lost, duplicated, reordered and delayed like any message.
// A call to a server on the caller's own node does not cross the network
// (one process calling itself): the request bytes go straight to a handler
// fiber (or to the handler in the caller's fiber: a deferred method's, and
// any method's if the server says so, RpcServerOptions::local_calls_inline),
// and only the rules below that concern the server still apply.
//
// - Every call has a deadline. No reply by then is Error{kTimeout}: the
//   outcome is unknown (the request may have run, and may still run), and
//   the caller decides whether to retry, as over a real network. (A local
//   call run inline has none of its own: it lasts as long as its handler.)
// - Request ids tie replies to calls; a late or duplicated reply is dropped.
//   A duplicated request runs twice: delivery is at least once, so handlers
//   that change state must be idempotent (the engine uses request ids).
// - Each request runs in its own fiber on the server's node, unless it is
//   a local call run inline, or its method answers later (handle_deferred():
//   a store's write, answered when its batch is durable), whose handler
//   runs in the receive loop and keeps an Answer instead of a waiting
//   fiber. At most `concurrent_max` requests run (or wait for their answer)
//   at once; beyond that the server answers Error{kOverloaded} at once
//   instead of queueing without limit.
// - Errors a handler returns travel back with their code and message; an
//   unknown method is kNotFound; bytes that do not decode are kDecode.
//
// Server and client belong to their node's process: a crash unwinds their
// fibers and closes their sockets, and calls waiting on a crashed client
// die with it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "sim/codec.h"
#include "sim/future.h"
#include "sim/network.h"
#include "sim/pending_calls.h"

namespace duro::sim {

// What travels on the wire for both directions of a call: this header,
// then the encoded request or reply as the rest of the bytes. The payload
// has no length of its own, so it is encoded straight after the header and
// read where it lies: it is never copied into a frame, nor out of one.
struct RpcHeader {
  std::uint8_t kind = 0;       // kRequest or kResponse.
  std::uint64_t id = 0;        // The caller's request id.
  std::string_view method{};   // Requests only.
  std::int64_t budget_ns = 0;  // Requests: how long the caller will wait.
  std::uint8_t status = 0;     // Responses: 0 ok, else 1 + ErrorCode.
  std::string_view message{};  // Responses with an error.

  static constexpr std::uint8_t kRequest = 0;
  static constexpr std::uint8_t kResponse = 1;
};

// Appends `header`'s encoding to `frame`; the payload goes after it.
void append_rpc_header(std::string& frame, const RpcHeader& header);

// Reads the header at the front of `frame` into `header`, whose views then
// point into `frame`, and returns the payload's offset; kDecode if the
// bytes are no frame.
Result<std::size_t> read_rpc_header(std::string_view frame, RpcHeader& header);

struct RpcServerOptions {
  std::size_t concurrent_max = 64;
  // Whether a caller on the server's node runs a method's handler in its
  // own fiber, as a function call: no second fiber, stack and copy of the
  // request per call. The caller then waits for the handler to return and
  // takes its result however late (its timeout is not enforced: the
  // handler's own deadlines bound the wait); a cancel of the caller waits
  // for the handler too (Simulator::CancelDeferred), a crash unwinds both.
  // For a server whose handlers bound each of their waits by a deadline
  // (the engine's). Deferred methods run in the caller's fiber either way.
  bool local_calls_inline = false;
};

struct RpcServerStats {
  std::uint64_t requests = 0;
  std::uint64_t rejected_overloaded = 0;
  std::uint64_t unknown_method = 0;
  std::uint64_t undecodable = 0;
  std::uint64_t direct = 0;  // Of `requests`: from callers on the server's node.
};

class RpcServer {
 private:
  class RunningToken;
  class DirectAnswer;

 public:
  // The answer to one request of a deferred method (handle_deferred()),
  // which the handler keeps and sends once it knows it, from any fiber of
  // the server's node. While it lives it counts as a running request.
  // Dropped unsent, the caller hears nothing, as if the server had died
  // mid-request: over the network it times out, on the node it gets
  // kBrokenPromise. It must not outlive its server.
  class Answer {
   public:
    Answer(Answer&& other) noexcept;
    Answer& operator=(Answer&&) = delete;
    ~Answer();

    template <typename Response>
    void reply(const Response& response) {
      EncodeScratch scratch;
      encode_append(scratch.buffer(), response);
      reply_bytes(scratch.buffer());
    }
    // The encoded reply.
    void reply_bytes(std::string_view payload);
    void fail(const Error& error);

   private:
    friend class RpcServer;
    Answer(RpcServer* server, Endpoint caller, std::uint64_t id, std::unique_ptr<DirectAnswer> direct) noexcept;

    RpcServer* server_;  // nullptr once sent, or moved from.
    Endpoint caller_;
    std::uint64_t id_;
    std::unique_ptr<DirectAnswer> direct_;  // A caller on the node: answered through its frame.
  };

  // Binds `port` on `node`; the node must be up and the port free.
  RpcServer(Network& network, NodeId node, std::uint16_t port, RpcServerOptions options = {});
  ~RpcServer();
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  Endpoint endpoint() const noexcept { return socket_->endpoint(); }
  const RpcServerStats& stats() const noexcept { return stats_; }
  std::size_t running() const noexcept { return running_; }

  // Registers `handler` (Result<Response>(const Request&), or
  // (Request&&) to keep what it needs of the request without a copy) for
  // `method`. It runs in a fiber on the server's node and may suspend.
  template <typename Request, typename Response, typename Handler>
  void handle(std::string method, Handler handler) {
    DURO_ASSERT_MSG(!started_, "handle() after start()");
    DURO_ASSERT(!method.empty());
    DURO_ASSERT_MSG(!deferred_.contains(method), "method registered twice");
    const bool inserted =
        handlers_
            .emplace(std::move(method),
                     [handler = std::move(handler)](std::string_view payload, std::string& reply) -> Result<void> {
                       Result<Request> request = decode<Request>(payload);
                       if (!request.ok()) return request.error();
                       Result<Response> response = handler(std::move(request.value()));
                       if (!response.ok()) return response.error();
                       // Encoded in a scratch buffer leased only now, after
                       // the handler (which may wait) is done: a lease held
                       // across the wait is one fewer buffer for everyone
                       // else, and 1,000 waiting handlers emptied the pool.
                       EncodeScratch scratch;
                       std::string& encoded = scratch.buffer();
                       encoded.append(reply);
                       encode_append(encoded, response.value());
                       reply.assign(encoded);
                       return {};
                     })
            .second;
    DURO_ASSERT_MSG(inserted, "method registered twice");
  }

  // A handler of the encoded request, which appends the encoded reply to
  // `reply`: for a node that passes a request on without reading all of it
  // (a frontend forwarding to history). It must check what it reads. It
  // must not hold an EncodeScratch while it waits (see handle()).
  using RawHandler = std::function<Result<void>(std::string_view payload, std::string& reply)>;
  void handle_raw(std::string method, RawHandler handler) {
    DURO_ASSERT_MSG(!started_, "handle_raw() after start()");
    DURO_ASSERT(!method.empty() && handler != nullptr);
    DURO_ASSERT_MSG(!deferred_.contains(method), "method registered twice");
    DURO_ASSERT_MSG(handlers_.emplace(std::move(method), std::move(handler)).second, "method registered twice");
  }

  // A method that answers later without holding a fiber meanwhile: the
  // handler runs where the request arrives (the receive loop, or a direct
  // caller's fiber), must not suspend (asserted), reads what it needs of
  // the encoded request, and keeps `answer` until it knows the reply. For
  // requests that wait on something shared, a thousand at a time (writes
  // waiting for a group commit): a thousand fibers would be a thousand
  // stacks, each faulted in page by page.
  using DeferredHandler = std::function<void(std::string_view payload, Answer answer)>;
  void handle_deferred(std::string method, DeferredHandler handler) {
    DURO_ASSERT_MSG(!started_, "handle_deferred() after start()");
    DURO_ASSERT(!method.empty() && handler != nullptr);
    DURO_ASSERT_MSG(!handlers_.contains(method), "method registered twice");
    DURO_ASSERT_MSG(deferred_.emplace(std::move(method), std::move(handler)).second, "method registered twice");
  }

  // Starts the receive loop (a daemon fiber on the node).
  void start();

  // Runs `method` on the encoded request `payload` for a caller on this
  // server's node, in a handler fiber as a request from the network would
  // be (a deferred method's handler in the caller's fiber), and waits at
  // most `timeout` for the encoded reply; with local_calls_inline, runs
  // the handler in the caller's fiber and returns what it returns, when it
  // returns. RpcClient calls it; from a fiber of the server's node, after
  // start().
  Result<std::string> call_direct(std::string_view method, std::string_view payload, Duration timeout);

 private:
  // Each method's handler: decodes the request in `payload`, runs, and on
  // success appends the encoded reply to `reply` (which holds the reply's
  // header).
  // Hashed: every request looks its method up, and method names share
  // long prefixes ("history.", "store."). Registered before start() only:
  // a running handler holds an iterator, which a rehash would invalidate.
  struct MethodHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view method) const noexcept { return std::hash<std::string_view>{}(method); }
  };
  using Handlers = std::unordered_map<std::string, RawHandler, MethodHash, std::equal_to<>>;
  using DeferredHandlers = std::unordered_map<std::string, DeferredHandler, MethodHash, std::equal_to<>>;

  // One running handler, counted in `running_` for as long as it lives.
  class RunningToken {
   public:
    explicit RunningToken(std::size_t* running) noexcept;
    RunningToken(RunningToken&& other) noexcept;
    RunningToken& operator=(RunningToken&&) = delete;
    ~RunningToken();

   private:
    std::size_t* running_;
  };

  // A direct call's answer, owned by its handler's fiber: send() hands the
  // result to the caller if it still waits. Destroyed unsent (the fiber was
  // killed, before it ran or while it ran), it answers kBrokenPromise.
  class DirectAnswer {
   public:
    DirectAnswer(PendingCalls* calls, std::uint64_t id) noexcept : calls_(calls), id_(id) {}
    DirectAnswer(DirectAnswer&& other) noexcept;
    DirectAnswer& operator=(DirectAnswer&&) = delete;
    ~DirectAnswer();
    void send(Result<std::string> result);

   private:
    PendingCalls* calls_;  // nullptr once sent, or moved from.
    std::uint64_t id_;
  };

  void receive_loop();
  // Runs `handler` in this fiber for a direct call (local_calls_inline).
  Result<std::string> run_inline(Handlers::const_iterator handler, std::string_view payload);
  // Runs a deferred method's handler here, in a fiber that must not
  // suspend in it.
  void run_deferred(const DeferredHandlers::value_type& method, std::string_view payload, Answer answer);
  // Runs `handler` on the request frame `frame`, whose payload starts at
  // `payload_offset`, and answers.
  void serve(Endpoint caller, std::uint64_t id, Handlers::const_iterator handler, const std::string& frame,
             std::size_t payload_offset);
  void reply_error(Endpoint caller, std::uint64_t id, const Error& error);
  void send_reply(Endpoint caller, std::uint64_t id, std::string frame);

  Network& network_;
  NodeId node_;
  RpcServerOptions options_;
  std::unique_ptr<Socket> socket_;
  Handlers handlers_;
  DeferredHandlers deferred_;
  // Direct calls waiting for their handler's answer (call_direct()).
  PendingCalls direct_calls_;
  std::uint64_t next_direct_call_ = 0;
  RpcServerStats stats_;
  std::size_t running_ = 0;
  bool started_ = false;
};

class RpcClient {
 public:
  // Binds `port` on `node` for replies, and starts its receive loop.
  RpcClient(Network& network, NodeId node, std::uint16_t port);
  // Takes a socket already bound on `node` (say, to the first free port of
  // a range: a short-lived client per call).
  RpcClient(Network& network, NodeId node, std::unique_ptr<Socket> socket);
  ~RpcClient();
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;

  // Calls `method` on `server`; waits at most `timeout` (unless the server
  // is on this node and runs its handlers inline: RpcServerOptions). From
  // a fiber of the client's node.
  template <typename Response, typename Request>
  Result<Response> call(Endpoint server, std::string_view method, const Request& request, Duration timeout) {
    Result<std::string> bytes = call_raw(server, method, encode(request), timeout);
    if (!bytes.ok()) return bytes.error();
    return decode<Response>(bytes.value());
  }

  // The same, on an encoded request; the reply comes back encoded.
  Result<std::string> call_raw(Endpoint server, std::string_view method, std::string_view payload, Duration timeout);

  std::size_t pending() const noexcept { return state_->pending.size(); }

 private:
  // Shared by the client, its receive loop and every call in progress, so
  // destroying the client while calls wait (or while the loop unwinds)
  // leaves none of them touching freed memory; the last one frees it.
  struct State {
    Network* network;
    NodeId node;
    std::unique_ptr<Socket> socket;
    PendingCalls pending;
    // Ids are unique across every client of the run (a block per client,
    // from the network, which outlives crashes), so a late reply to a dead
    // client's call can never answer a new client's call on the same port.
    std::uint64_t next_id = 0;
  };

  static void receive_loop(const std::shared_ptr<State>& state);

  std::shared_ptr<State> state_;
  FiberHandle receiver_;
};

}  // namespace duro::sim
