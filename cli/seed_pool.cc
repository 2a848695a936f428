#include "cli/seed_pool.h"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "sim/assert.h"
#include "sim/codec.h"

namespace duro::cli {
namespace {

constexpr std::size_t kStderrTailBytes = 4096;
constexpr std::uint32_t kFrameBytesMax = 64u << 20;

struct Worker {
  pid_t pid = -1;
  int job_fd = -1;     // Parent writes job indexes.
  int result_fd = -1;  // Parent reads framed reports.
  int err_fd = -1;     // Parent reads the worker's stderr.
  std::ptrdiff_t current = -1;  // The job it runs, or -1.
  std::string buffer;
  std::string stderr_tail;
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

bool write_all(int fd, const void* data, std::size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t size) {
  char* bytes = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::read(fd, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// The worker's side: run jobs until the parent closes the job pipe.
[[noreturn]] void worker_main(int job_fd, int result_fd, const std::vector<SeedJob>& jobs, const SeedPool::RunFn& run) {
  for (;;) {
    std::uint32_t index = 0;
    if (!read_all(job_fd, &index, sizeof index)) ::_exit(0);
    DURO_ASSERT(index < jobs.size());
    std::string bytes;
    // An exception must not unwind into the parent's code this process
    // was forked from: it dies here, and the parent reports the seed with
    // the message.
    try {
      bytes = sim::encode(run(jobs[index]));
    } catch (const std::exception& error) {
      std::fprintf(stderr, "uncaught exception: %s\n", error.what());
      ::_exit(4);
    } catch (...) {
      std::fprintf(stderr, "uncaught exception of unknown type\n");
      ::_exit(4);
    }
    const auto size = static_cast<std::uint32_t>(bytes.size());
    DURO_ASSERT(size <= kFrameBytesMax);
    if (!write_all(result_fd, &size, sizeof size) || !write_all(result_fd, bytes.data(), bytes.size())) ::_exit(3);
  }
}

std::string death(int status) {
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), ::strsignal(WTERMSIG(status)));
  }
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  return "vanished";
}

}  // namespace

SeedPool::SeedPool(int jobs, RunFn run) : jobs_(jobs), run_(std::move(run)) { DURO_ASSERT(jobs_ >= 1); }

void SeedPool::run(const std::vector<SeedJob>& jobs, const ResultFn& on_result, const SkipFn& skip) {
  if (jobs.empty()) return;
  DURO_ASSERT(jobs.size() < UINT32_MAX);
  // A worker that died must not kill the parent when it writes to it.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction previous {};
  ::sigaction(SIGPIPE, &ignore, &previous);

  std::vector<Worker> workers(static_cast<std::size_t>(std::min<std::size_t>(jobs_, jobs.size())));
  std::size_t next_job = 0;
  std::size_t done = 0;

  auto assign = [&](Worker& worker) {
    while (next_job < jobs.size() && skip && skip(jobs[next_job])) {
      next_job++;
      done++;
    }
    if (next_job == jobs.size()) {
      close_fd(worker.job_fd);  // The worker exits when it reads the end.
      return;
    }
    worker.current = static_cast<std::ptrdiff_t>(next_job);
    worker.stderr_tail.clear();
    const auto index = static_cast<std::uint32_t>(next_job++);
    if (!write_all(worker.job_fd, &index, sizeof index)) close_fd(worker.job_fd);  // Death shows on the result pipe.
  };

  auto spawn = [&](Worker& worker) {
    int job_pipe[2];
    int result_pipe[2];
    int err_pipe[2];
    DURO_ASSERT(::pipe(job_pipe) == 0 && ::pipe(result_pipe) == 0 && ::pipe(err_pipe) == 0);
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = ::fork();
    DURO_ASSERT_MSG(pid >= 0, "fork failed");
    if (pid == 0) {
      // Only this worker's own ends stay open: others' pipes must see EOF
      // when their worker dies.
      for (Worker& other : workers) {
        close_fd(other.job_fd);
        close_fd(other.result_fd);
        close_fd(other.err_fd);
      }
      ::close(job_pipe[1]);
      ::close(result_pipe[0]);
      ::close(err_pipe[0]);
      ::dup2(err_pipe[1], STDERR_FILENO);
      ::close(err_pipe[1]);
      worker_main(job_pipe[0], result_pipe[1], jobs, run_);
    }
    ::close(job_pipe[0]);
    ::close(result_pipe[1]);
    ::close(err_pipe[1]);
    worker = Worker{};
    worker.pid = pid;
    worker.job_fd = job_pipe[1];
    worker.result_fd = result_pipe[0];
    worker.err_fd = err_pipe[0];
    assign(worker);
  };

  for (Worker& worker : workers) spawn(worker);

  auto drain_stderr = [](Worker& worker, bool until_eof) {
    char chunk[4096];
    for (;;) {
      if (worker.err_fd < 0) return;
      if (!until_eof) {
        pollfd probe{worker.err_fd, POLLIN, 0};
        if (::poll(&probe, 1, 0) <= 0) return;
      }
      const ssize_t n = ::read(worker.err_fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close_fd(worker.err_fd);
        return;
      }
      worker.stderr_tail.append(chunk, static_cast<std::size_t>(n));
      if (worker.stderr_tail.size() > kStderrTailBytes) {
        worker.stderr_tail.erase(0, worker.stderr_tail.size() - kStderrTailBytes);
      }
    }
  };

  while (done < jobs.size()) {
    std::vector<pollfd> fds;
    std::vector<std::pair<std::size_t, bool>> owners;  // (worker, is stderr)
    for (std::size_t i = 0; i < workers.size(); i++) {
      if (workers[i].result_fd >= 0) {
        fds.push_back(pollfd{workers[i].result_fd, POLLIN, 0});
        owners.emplace_back(i, false);
      }
      if (workers[i].err_fd >= 0) {
        fds.push_back(pollfd{workers[i].err_fd, POLLIN, 0});
        owners.emplace_back(i, true);
      }
    }
    DURO_ASSERT_MSG(!fds.empty(), "jobs left and no worker to run them");
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      DURO_ASSERT(errno == EINTR);
      continue;
    }
    for (std::size_t k = 0; k < fds.size(); k++) {
      if (fds[k].revents == 0) continue;
      Worker& worker = workers[owners[k].first];
      if (owners[k].second) {
        drain_stderr(worker, /*until_eof=*/false);
        continue;
      }
      if (worker.result_fd < 0) continue;
      char chunk[65536];
      const ssize_t n = ::read(worker.result_fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        worker.buffer.append(chunk, static_cast<std::size_t>(n));
        for (;;) {
          std::uint32_t size = 0;
          if (worker.buffer.size() < sizeof size) break;
          std::memcpy(&size, worker.buffer.data(), sizeof size);
          DURO_ASSERT(size <= kFrameBytesMax);
          if (worker.buffer.size() < sizeof size + size) break;
          sim::Result<scenarios::SeedReport> report =
              sim::decode<scenarios::SeedReport>(std::string_view(worker.buffer).substr(sizeof size, size));
          DURO_ASSERT_MSG(report.ok(), "a worker sent a report that does not decode");
          worker.buffer.erase(0, sizeof size + size);
          DURO_ASSERT(worker.current >= 0);
          const SeedJob& job = jobs[static_cast<std::size_t>(worker.current)];
          worker.current = -1;
          done++;
          on_result(job, report.value());
          drain_stderr(worker, /*until_eof=*/false);  // What it wrote belongs to this job, not the next.
          assign(worker);
        }
        continue;
      }
      // EOF: the worker is gone, finished or dead.
      close_fd(worker.result_fd);
      close_fd(worker.job_fd);
      drain_stderr(worker, /*until_eof=*/true);
      int status = 0;
      while (::waitpid(worker.pid, &status, 0) < 0 && errno == EINTR) {
      }
      worker.pid = -1;
      if (worker.current >= 0) {
        const SeedJob& job = jobs[static_cast<std::size_t>(worker.current)];
        scenarios::SeedReport report;
        report.scenario = job.scenario;
        report.seed = job.seed;
        report.profile = job.profile;
        report.passed = false;
        std::string tail = worker.stderr_tail;
        while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
        report.violations.push_back(scenarios::Violation{
            {}, "crash", fmt::format("the seed's process {}{}{}", death(status), tail.empty() ? "" : ": ", tail)});
        report.violations_total = 1;
        worker.current = -1;
        done++;
        on_result(job, report);
        if (next_job < jobs.size()) spawn(worker);
      }
      // Descriptors may have been closed and reused: poll afresh.
      break;
    }
  }
  for (Worker& worker : workers) {
    close_fd(worker.job_fd);
    close_fd(worker.result_fd);
    close_fd(worker.err_fd);
    if (worker.pid > 0) {
      int status = 0;
      while (::waitpid(worker.pid, &status, 0) < 0 && errno == EINTR) {
      }
      worker.pid = -1;
    }
  }
  ::sigaction(SIGPIPE, &previous, nullptr);
}

}  // namespace duro::cli
